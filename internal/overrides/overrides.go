// Package overrides keeps the human decisions a filter applies before its
// expression: "approve this image, whatever its scores", by image content,
// in overrides.yaml at the workspace root (meant to be committed and
// reviewed like the policy).
package overrides

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/internal/atomicfile"
)

// Name is the file's name, at the workspace root.
const Name = "overrides.yaml"

// Pattern matches the file when it exists and nothing otherwise, for a
// step's Reads (a missing literal path is an error there).
const Pattern = "{" + Name + "}"

// Override is one decision.
type Override struct {
	SHA256   string `yaml:"sha256" json:"sha256"`
	Path     string `yaml:"path" json:"path"` // where the image was when decided
	Decision string `yaml:"decision" json:"decision"`
	Reason   string `yaml:"reason" json:"reason"`
	By       string `yaml:"by" json:"by"`
	At       string `yaml:"at" json:"at"` // RFC 3339
}

// Approve says the decision is to approve.
func (o Override) Approve() bool { return o.Decision == "approve" }

type file struct {
	Overrides []Override `yaml:"overrides"`
}

// Read returns the workspace's overrides, in file order; none when there
// is no file. A malformed file or entry is an error naming the file.
func Read(root string) ([]Override, error) {
	name := filepath.Join(root, Name)
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // empty: none
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	for i, o := range f.Overrides {
		if len(o.SHA256) != 64 || (o.Decision != "approve" && o.Decision != "reject") || o.Reason == "" {
			return nil, fmt.Errorf("%s: entry %d: want sha256 (64 hex digits), decision approve or reject, and a reason", Name, i+1)
		}
	}
	return f.Overrides, nil
}

// BySHA indexes overrides by image digest (a later entry wins).
func BySHA(list []Override) map[string]Override {
	m := make(map[string]Override, len(list))
	for _, o := range list {
		m[o.SHA256] = o
	}
	return m
}

const header = `# Human decisions on images, applied by every filter before its expression,
# by image content (sha256): an image approved here stays approved whatever
# its scores or the thresholds. Written by lifeos override; commit it.
`

// Write replaces the file atomically with list, sorted by path.
func Write(root string, list []Override) error {
	sort.SliceStable(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(file{Overrides: list}); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(root, Name), b.Bytes(), 0o666)
}
