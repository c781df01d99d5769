package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/manifest"
	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

func (a *app) manifestCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "manifest", Short: "Create and compare dataset manifests"}
	var output string
	create := &cobra.Command{
		Use:   "create DIR",
		Short: "Write the manifest of a dataset: SHA-256, dimensions and caption of every image, and a summary",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			if argv, err = a.args(argv); err != nil {
				return err
			}
			out := ""
			if output != "" {
				rel, err := a.arg(output)
				if err != nil {
					return err
				}
				out = resolve(root, rel)
			}
			data, counts, err := a.createManifest(root, resolve(root, argv[0]), out)
			if err != nil {
				return err
			}
			if output == "" {
				_, err = a.stdout.Write(data)
				return err
			}
			fmt.Fprintf(a.stdout, "%s: %d image(s), %d captioned, %d resolution(s); sha256 %s\n", output,
				counts.Images, counts.Captioned, counts.Resolutions, counts.Digest)
			return nil
		},
	}
	create.Flags().StringVarP(&output, "output", "o", "", "write the manifest to `FILE` (default: standard output)")
	diff := &cobra.Command{
		Use:   "diff A.json B.json",
		Short: "Say what changed between two manifests; exit 1 when they differ",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			if argv, err = a.args(argv); err != nil {
				return err
			}
			ma, err := manifest.Read(resolve(root, argv[0]))
			if err != nil {
				return &runner.UsageError{Err: err}
			}
			mb, err := manifest.Read(resolve(root, argv[1]))
			if err != nil {
				return &runner.UsageError{Err: err}
			}
			d := manifest.Compare(ma, mb)
			if d.Empty() {
				fmt.Fprintln(a.stdout, "no difference")
				return nil
			}
			fmt.Fprint(a.stdout, d.String())
			return exitError{exitFailed}
		},
	}
	cmd.AddCommand(create, diff)
	return cmd
}

// resolve makes a command-line path absolute against the workspace root.
func resolve(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// manifestCounts is what manifest create prints about a manifest.
type manifestCounts struct {
	Images, Captioned, Resolutions int
	Digest                         string // of the manifest file
}

// createManifest builds the manifest of the dataset dir and, when out is
// not empty, writes it there; it returns the manifest's bytes unless they
// were already at out. Files are hashed through the workspace's stat cache,
// and finished manifests are kept in the cache by what they depend on (the
// images' and captions' digests): a dataset that did not change is only
// stat'ed, its manifest neither parsed nor encoded again, and an out
// already holding it is not rewritten. Without a usable cache
// (LIFEOS_CACHE=off, or one that cannot be created) every file is read.
func (a *app) createManifest(root, dir, out string) ([]byte, manifestCounts, error) {
	var c *cache.Cache
	if cdir, err := cache.DefaultDir(root); err == nil && cdir != "" {
		c, _ = cache.Open(cdir)
	}
	jobs := runtime.NumCPU()
	// What the last scan of dir saw (manifest.Record): while every folder
	// and file keeps its stamp, the dataset has that scan's key, and is
	// neither listed nor looked up in the stat cache (whose 19,000 lines
	// for a 10,000-image dataset took longer to read than the stats).
	stampsID := cache.ActionID(sha256.Sum256([]byte("lifeos manifest stamps\n" + dir)))
	if c != nil {
		// Mapped: one command, one read of a megabyte per 10,000 images.
		if rec, _, err := c.GetBytesMapped(stampsID); err == nil {
			if key, ok := manifest.Unchanged(a.ctx, dir, rec, jobs); ok {
				if data, counts, ok := a.memoManifest(c, key, out); ok {
					return data, counts, nil
				}
			}
		}
	}
	sc := cache.OpenStatCache("")
	if c != nil {
		sc = c.StatCache()
	}
	sc.Preload()
	// The stat cache is saved while the manifest is encoded and written
	// (or, on a memo hit, at the end), and always before returning.
	var saveErr error
	saved := make(chan struct{})
	startSave := sync.OnceFunc(func() {
		go func() {
			defer close(saved)
			saveErr = sc.Save()
		}()
	})
	defer func() {
		startSave()
		<-saved
		if saveErr != nil {
			fmt.Fprintf(a.stderr, "lifeos: %v\n", saveErr)
		}
	}()
	scan, err := manifest.Scan(a.ctx, dir, runner.Hasher(sc), jobs)
	if err != nil {
		return nil, manifestCounts{}, err
	}
	key := scan.Key()
	if c != nil {
		// Kept on the other core while the manifest is made (15 ms of
		// CPU for 10,000 images), and before returning. It only spares
		// work: a record not kept is not a failure.
		recorded := make(chan struct{})
		go func() {
			defer close(recorded)
			if rec, ok := scan.Record(time.Now()); ok {
				c.PutBytes(stampsID, rec)
			}
		}()
		defer func() { <-recorded }()
		if data, counts, ok := a.memoManifest(c, key, out); ok {
			return data, counts, nil
		}
	}

	startSave()
	var prev func() *manifest.Manifest
	if out != "" {
		prev = func() *manifest.Manifest { return manifest.Previous(out) }
	}
	m, err := scan.Manifest(a.ctx, prev)
	if err != nil {
		return nil, manifestCounts{}, err
	}
	data, err := m.Encode()
	if err != nil {
		return nil, manifestCounts{}, err
	}
	if out != "" {
		if err := atomicfile.WriteFile(out, data, 0o666); err != nil {
			return nil, manifestCounts{}, err
		}
	}
	counts := manifestCounts{Images: m.Summary.Images, Captioned: m.Summary.Captioned,
		Resolutions: len(m.Summary.Resolutions), Digest: cache.Sum(data).String()}
	if c != nil {
		// The memo only spares work: failing to keep it is not the
		// command's failure.
		id, countsID := manifestIDs(key)
		cj, _ := json.Marshal(counts)
		if _, err := c.PutBytes(id, data); err != nil {
			fmt.Fprintf(a.stderr, "lifeos: warning: manifest not cached: %v\n", err)
		} else if _, err := c.PutBytes(countsID, cj); err != nil {
			fmt.Fprintf(a.stderr, "lifeos: warning: manifest not cached: %v\n", err)
		}
	}
	return data, counts, nil
}

// manifestIDs are the cache keys of the manifest of a scan with key and
// of its counts.
func manifestIDs(key [sha256.Size]byte) (id, countsID cache.ActionID) {
	return cache.ActionID(key), cache.ActionID(sha256.Sum256(append([]byte("manifest counts\n"), key[:]...)))
}

// memoManifest is the cached manifest of a scan with key: its bytes (nil
// when out already holds them, so nothing is read) and its counts. ok is
// false on any miss or damage, and the manifest is then built as if never
// cached. out is checked by its stamp, through the cache's stat cache of
// outputs (hashing a 3 MB manifest was a tenth of an unchanged dataset's
// run).
func (a *app) memoManifest(c *cache.Cache, key [sha256.Size]byte, out string) (data []byte, counts manifestCounts, ok bool) {
	id, countsID := manifestIDs(key)
	cj, _, err := c.GetBytes(countsID)
	if err != nil || json.Unmarshal(cj, &counts) != nil {
		return nil, counts, false
	}
	e, err := c.Get(id)
	if err != nil || e.Output.String() != counts.Digest {
		return nil, counts, false
	}
	if out != "" {
		sc := c.OutputsStatCache()
		sum, _, err := sc.Sum(out)
		if err := sc.Save(); err != nil {
			fmt.Fprintf(a.stderr, "lifeos: %v\n", err)
		}
		if err == nil && sum == e.Output {
			return nil, counts, true
		}
	}
	data, _, err = c.GetBytes(id)
	if err != nil {
		return nil, counts, false
	}
	if out != "" {
		if err := atomicfile.WriteFile(out, data, 0o666); err != nil {
			return nil, counts, false
		}
	}
	return data, counts, true
}
