package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/comfytest"
	"github.com/lifeos/lifeos/internal/fakegen"
	"github.com/lifeos/lifeos/internal/fixture"
	"github.com/lifeos/lifeos/runner"
)

func (a *app) comfyServeCmd() *cobra.Command {
	var fake bool
	var reference, loras, addr string
	cmd := &cobra.Command{
		Use:   "serve --fake [--reference DIR] [--loras DIR] [--addr HOST:PORT]",
		Short: "Run a ComfyUI stand-in: the whole loop without a GPU",
		Long: `Run a stand-in for a ComfyUI server that speaks its API (/prompt, /history,
/view, /queue, /interrupt, /system_stats, /object_info, /models/loras, /ws)
and makes each image from photos of the person (--reference DIR; default
the bundled portrait of ecollins), the same image for the same LoRA
content, prompt and seed. Most are mild variations of a reference photo; a
share are failures (another face, smoothed skin, noise, under-exposure) and
that share depends on the LoRA file: one whose first line is
"lifeos-fake-lora quality=0.85" gives 85% good images, any other a share
drawn from its content. LoRAs are the files in --loras DIR (default
models/loras), listed on every request. The first line printed is the
server's URL. Ctrl-C stops it.

  lifeos comfy serve --fake --reference datasets/reference &
  lifeos run pipelines/production.yaml --param server=http://127.0.0.1:8188`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !fake {
				return &runner.UsageError{Err: errors.New("comfy serve needs --fake: the stand-in is the only server it runs")}
			}
			base, err := a.base()
			if err != nil {
				return err
			}
			g := &fakegen.Generator{LoraDir: resolve(base, loras)}
			refName := "ecollins"
			if reference != "" {
				files, err := imageFiles(base, []string{reference})
				if err != nil {
					return &runner.UsageError{Err: fmt.Errorf("--reference: %w", err)}
				}
				for _, f := range files {
					img, err := readImage(resolve(base, f))
					if err != nil {
						return fmt.Errorf("--reference: %s: %w", f, err)
					}
					g.References = append(g.References, img)
				}
				refName = fmt.Sprintf("%d photos in %s", len(files), reference)
			} else {
				img, err := fixture.Photo("ecollins")
				if err != nil {
					return err
				}
				g.References = []image.Image{img}
			}
			for _, p := range fixture.People {
				if reference == "" && p.Trigger == "ecollins" {
					continue
				}
				img, err := fixture.Photo(p.Trigger)
				if err != nil {
					return err
				}
				g.Others = append(g.Others, img)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--addr %s: %w", addr, err)}
			}
			s, h := comfytest.Handler(comfytest.Options{LoraDir: g.LoraDir, Render: g.Render, Size: 512})
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(a.stdout, "http://%s\n", ln.Addr())
			have := "none yet: files copied there become usable at once"
			if names := s.Loras(); len(names) > 0 {
				have = strings.Join(names, ", ")
			}
			fmt.Fprintf(a.stdout, "fake ComfyUI: images of %s; LoRAs from %s (%s); Ctrl-C stops it\n", refName, g.LoraDir, have)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return fmt.Errorf("comfy serve: %w", err)
			case <-a.ctx.Done():
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
				return a.ctx.Err()
			}
		},
	}
	cmd.Flags().BoolVar(&fake, "fake", false, "serve the built-in stand-in (required)")
	cmd.Flags().StringVar(&reference, "reference", "", "`DIR` of photos of the person the images show (default: a bundled portrait)")
	cmd.Flags().StringVar(&loras, "loras", "models/loras", "`DIR` whose files are the server's LoRAs")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8188", "listen on `HOST:PORT` (port 0: any free one; the URL is printed first)")
	return cmd
}
