package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/manifest"
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
			hash, save := a.hasher(root)
			o := manifest.Options{Jobs: runtime.NumCPU()}
			if output != "" {
				o.Previous = manifest.Previous(resolve(root, output))
			}
			m, err := manifest.Create(a.ctx, resolve(root, argv[0]), hash, o)
			if err != nil {
				return err
			}
			if err := save(); err != nil {
				fmt.Fprintf(a.stderr, "lifeos: %v\n", err)
			}
			data, err := m.Encode()
			if err != nil {
				return err
			}
			if output == "" {
				_, err = a.stdout.Write(data)
				return err
			}
			if err := atomicfile.WriteFile(resolve(root, output), data, 0o666); err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(a.stdout, "%s: %d image(s), %d captioned, %d resolution(s); sha256 %s\n", output,
				m.Summary.Images, m.Summary.Captioned, len(m.Summary.Resolutions), hex.EncodeToString(sum[:]))
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
			ma, err := manifest.Read(resolve(root, argv[0]))
			if err != nil {
				return &usageError{err}
			}
			mb, err := manifest.Read(resolve(root, argv[1]))
			if err != nil {
				return &usageError{err}
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

// hasher returns a file hasher backed by the workspace's stat cache (so a
// second manifest of an unchanged dataset reads no image), and a function
// that saves the stat cache.
// The stat cache is a hint: without a usable cache directory
// (LIFEOS_CACHE=off, or one that cannot be created) every file is hashed.
func (a *app) hasher(root string) (manifest.Hasher, func() error) {
	sc := cache.OpenStatCache("")
	if dir, err := cache.DefaultDir(root); err == nil && dir != "" {
		if c, err := cache.Open(dir); err == nil {
			sc = c.StatCache()
		}
	}
	return func(abs string) (string, error) {
		sum, _, err := sc.Sum(abs)
		return sum.String(), err
	}, sc.Save
}
