package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/manifest"
	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "manifest",
		Version: 1,
		Summary: "dataset manifest: SHA-256, size and caption of every image, with a summary; its digest is an output",
		New:     func() Step { return new(Manifest) },
	})
	Register(&Type{
		Name:    "manifest.diff",
		Version: 1,
		Summary: "compare two dataset manifests: images added, removed, changed; captions and resolutions changed",
		New:     func() Step { return new(ManifestDiff) },
	})
}

// Manifest writes the manifest of a kohya-style dataset. Its digest (the
// SHA-256 of the file, as sha256sum prints it) identifies the dataset's
// content for training steps and scorecards.
type Manifest struct {
	Dataset string `yaml:"dataset" doc:"the dataset directory (kohya layout: 10_name/ with captions beside images)"`
	Output  string `yaml:"output" doc:"where to write the manifest JSON"`
}

// Validate checks the paths.
func (m *Manifest) Validate() error {
	if m.Dataset == "" || m.Output == "" {
		return errors.New("manifest needs dataset: a directory and output: a file")
	}
	if err := pathglob.CheckRead(m.Dataset); err != nil {
		return err
	}
	return pathglob.Check(m.Output)
}

// Deps reads the dataset and writes the manifest.
func (m *Manifest) Deps(map[string]Outputs) Deps {
	return Deps{Reads: []string{m.Dataset}, Writes: []string{m.Output}}
}

// Run builds and writes the manifest.
func (m *Manifest) Run(ctx context.Context, env *Env) (Outputs, error) {
	hash := manifest.HashFile
	if env.Hash != nil {
		hash = env.Hash
	}
	out := filepath.Join(env.Root, filepath.FromSlash(m.Output))
	// The manifest being replaced lends the dimensions and captions of the
	// images that did not change.
	man, err := manifest.Create(ctx, pathglob.Abs(env.Root, m.Dataset), hash,
		manifest.Options{Jobs: runtime.NumCPU(), Previous: func() *manifest.Manifest { return manifest.Previous(out) }})
	if err != nil {
		return nil, err
	}
	data, err := man.Encode()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(out, data, 0o666); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	var summary map[string]any
	b, _ := json.Marshal(man.Summary)
	json.Unmarshal(b, &summary)
	fmt.Fprintf(env.Log, "%d images, %d captioned; sha256 %s\n", man.Summary.Images, man.Summary.Captioned, digest)
	return Outputs{"digest": digest, "path": m.Output, "images": man.Summary.Images, "summary_stats": summary,
		"summary": fmt.Sprintf("%s, sha256 %s", plural(man.Summary.Images, "image"), digest[:12])}, nil
}

// ManifestDiff compares two manifests; its outputs say what changed, for
// gates (`outputs.changed`) and records.
type ManifestDiff struct {
	A string `yaml:"a" doc:"the older manifest"`
	B string `yaml:"b" doc:"the newer manifest"`
}

// Validate checks the paths.
func (d *ManifestDiff) Validate() error {
	if d.A == "" || d.B == "" {
		return errors.New("manifest.diff needs a: and b: manifest files")
	}
	if err := pathglob.CheckRead(d.A); err != nil {
		return err
	}
	return pathglob.CheckRead(d.B)
}

// Deps reads the two manifests.
func (d *ManifestDiff) Deps(map[string]Outputs) Deps { return Deps{Reads: []string{d.A, d.B}} }

// Run compares the manifests.
func (d *ManifestDiff) Run(ctx context.Context, env *Env) (Outputs, error) {
	a, err := manifest.Read(pathglob.Abs(env.Root, d.A))
	if err != nil {
		return nil, err
	}
	b, err := manifest.Read(pathglob.Abs(env.Root, d.B))
	if err != nil {
		return nil, err
	}
	diff := manifest.Compare(a, b)
	io.WriteString(env.Log, diff.String())
	out := Outputs{"added": diff.Added, "removed": diff.Removed, "content_changed": diff.ContentChanged,
		"caption_changed": diff.CaptionChanged, "resolution_changed": diff.ResolutionChanged, "changed": !diff.Empty()}
	if diff.Empty() {
		out["summary"] = "no change"
	} else {
		out["summary"] = fmt.Sprintf("%d added, %d removed, %d changed", len(diff.Added), len(diff.Removed), len(diff.ContentChanged)+len(diff.CaptionChanged)+len(diff.ResolutionChanged))
	}
	return out, nil
}
