package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/fixture"
	"github.com/lifeos/lifeos/runner"
)

func (a *app) fixtureCmd() *cobra.Command {
	var o fixture.Options
	var reference string
	cmd := &cobra.Command{
		Use:   "fixture DIR",
		Short: "Write a small, deterministic training dataset made from the bundled portraits",
		Long: `Write a kohya-layout dataset (10_<trigger>/ with a caption beside every
image) of the bundled public-domain portraits under mild seeded
augmentations (tilt, zoom, shift, light): the same options give the same
bytes on one platform, so tests, benchmarks and demos can share a dataset
without shipping one. DIR must not exist or be empty.

With --reference DIR it also writes the first person's photo, unaltered,
into DIR (kept if there): the reference photos for face and skin scores.

  lifeos fixture datasets --people 2 --images 20
  lifeos fixture datasets/v1 --people 1 --images 6 --reference datasets/reference
  lifeos manifest create datasets/10_ecollins`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			base, err := a.base()
			if err != nil {
				return err
			}
			if err := o.Check(); err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--%w", err)}
			}
			files, err := fixture.Write(resolve(base, argv[0]), o)
			if errors.Is(err, fixture.ErrNotEmpty) {
				return &runner.UsageError{Err: fmt.Errorf("fixture: %s is %w", argv[0], fixture.ErrNotEmpty)}
			}
			if err != nil {
				return fmt.Errorf("fixture: %w", err)
			}
			fmt.Fprintf(a.stdout, "wrote %d images of %d people with captions to %s (10_<trigger>/)\n", (len(files)-1)/2, o.People, argv[0])
			if reference != "" {
				if _, err := fixture.WriteReference(resolve(base, reference)); err != nil {
					return fmt.Errorf("fixture: --reference: %w", err)
				}
				fmt.Fprintf(a.stdout, "wrote the reference photo of %s to %s\n", fixture.People[0].Trigger, reference)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&o.People, "people", 2, "how many of the bundled people (1-3: ecollins, ghopper, lvcamera)")
	cmd.Flags().IntVar(&o.Images, "images", 20, "images per person")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 1, "the augmentations' seed")
	cmd.Flags().StringVar(&reference, "reference", "", "also write the first person's photo into `DIR`")
	return cmd
}
