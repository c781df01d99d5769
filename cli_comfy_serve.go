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

	"github.com/lifeos/lifeos/internal/comfyrec"
	"github.com/lifeos/lifeos/internal/comfytest"
	"github.com/lifeos/lifeos/internal/fakegen"
	"github.com/lifeos/lifeos/internal/fixture"
	"github.com/lifeos/lifeos/internal/retryhttp"
	"github.com/lifeos/lifeos/runner"
)

func (a *app) comfyServeCmd() *cobra.Command {
	var fake bool
	var reference, loras, addr, replay string
	cmd := &cobra.Command{
		Use:   "serve --fake [--reference DIR] [--loras DIR] | --replay DIR  [--addr HOST:PORT]",
		Short: "Run a ComfyUI stand-in (--fake) or replay a recorded server (--replay)",
		Long: `Run a stand-in for a ComfyUI server that speaks its API (/prompt, /history,
/view, /queue, /interrupt, /system_stats, /object_info, /models/loras, /ws).

With --fake it makes each image from photos of the person (--reference DIR;
default the bundled portrait of ecollins), the same image for the same LoRA
content, prompt and seed. Most are mild variations of a reference photo; a
share are failures (another face, smoothed skin, noise, under-exposure) and
that share depends on the LoRA file: one whose first line is
"lifeos-fake-lora quality=0.85" gives 85% good images, any other a share
drawn from its content. LoRAs are the files in --loras DIR (default
models/loras), listed on every request.

With --replay DIR it answers as the server recorded by lifeos comfy record
did: the same images for the same prompts, offline. A prompt that was not
recorded is refused as ComfyUI refuses a workflow, with the fields that
differ from the closest recorded prompt. /ws answers 404 (clients poll).

The first line printed is the server's URL. Ctrl-C stops it.

  lifeos comfy serve --fake --reference datasets/reference &
  lifeos run pipelines/production.yaml --param server=http://127.0.0.1:8188
  lifeos comfy serve --replay testdata/pod-recording &`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fake == (replay != "") {
				return &runner.UsageError{Err: errors.New("comfy serve needs --fake (the stand-in) or --replay DIR (a recording), one of them")}
			}
			base, err := a.base()
			if err != nil {
				return err
			}
			if replay != "" {
				r, n, err := comfyrec.NewReplayer(resolve(base, replay))
				if err != nil {
					return &runner.UsageError{Err: fmt.Errorf("--replay %s: %w", replay, err)}
				}
				r.Log = func(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }
				return a.serveHTTP(addr, r, fmt.Sprintf("replaying ComfyUI: %d recorded prompts from %s; Ctrl-C stops it", n, replay))
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
			s, h := comfytest.Handler(comfytest.Options{LoraDir: g.LoraDir, Render: g.Render, Size: 512})
			have := "none yet: files copied there become usable at once"
			if names := s.Loras(); len(names) > 0 {
				have = strings.Join(names, ", ")
			}
			return a.serveHTTP(addr, h, fmt.Sprintf("fake ComfyUI: images of %s; LoRAs from %s (%s); Ctrl-C stops it", refName, g.LoraDir, have))
		},
	}
	cmd.Flags().BoolVar(&fake, "fake", false, "serve the built-in stand-in")
	cmd.Flags().StringVar(&replay, "replay", "", "replay the recording in `DIR` (from lifeos comfy record)")
	cmd.Flags().StringVar(&reference, "reference", "", "with --fake: `DIR` of photos of the person the images show (default: a bundled portrait)")
	cmd.Flags().StringVar(&loras, "loras", "models/loras", "with --fake: `DIR` whose files are the server's LoRAs")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8188", "listen on `HOST:PORT` (port 0: any free one; the URL is printed first)")
	return cmd
}

func (a *app) comfyRecordCmd() *cobra.Command {
	var upstream, dir, addr string
	cmd := &cobra.Command{
		Use:   "record --upstream URL --dir DIR [--addr HOST:PORT]",
		Short: "Proxy a real ComfyUI server and record its answers, to replay them offline",
		Long: `Proxy a ComfyUI server (--upstream) and record each exchange into DIR: the
prompt as submitted (its key), its /history entry, its images (stored once,
by content), and the server's /system_stats, /object_info and
/models/loras. Point a pipeline's server at the printed URL and run it once
on the pod; then lifeos comfy serve --replay DIR answers the same prompts
in CI without one. A recording is added to, never cleared. /ws is
passed through, so clients hear when a prompt is done.

  lifeos comfy record --upstream http://pod:8188 --dir testdata/pod-recording &
  lifeos run pipelines/production.yaml --param server=http://127.0.0.1:8189`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if upstream == "" || dir == "" {
				return &runner.UsageError{Err: errors.New("comfy record needs --upstream URL and --dir DIR")}
			}
			base, err := a.base()
			if err != nil {
				return err
			}
			r, err := comfyrec.NewRecorder(upstream, resolve(base, dir))
			if err != nil {
				return &runner.UsageError{Err: err}
			}
			r.Log = func(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }
			return a.serveHTTP(addr, r, fmt.Sprintf("recording %s into %s; Ctrl-C stops it", retryhttp.Redact(upstream), dir))
		},
	}
	cmd.Flags().StringVar(&upstream, "upstream", "", "the ComfyUI server to record (`URL`)")
	cmd.Flags().StringVar(&dir, "dir", "", "record into `DIR`")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8189", "listen on `HOST:PORT` (port 0: any free one; the URL is printed first)")
	return cmd
}

// serveHTTP serves h on addr, printing its URL and then banner, until
// Ctrl-C.
func (a *app) serveHTTP(addr string, h http.Handler, banner string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &runner.UsageError{Err: fmt.Errorf("--addr %s: %w", addr, err)}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(a.stdout, "http://%s\n", ln.Addr())
	fmt.Fprintln(a.stdout, banner)
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
}
