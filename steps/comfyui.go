package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/robustio"
)

func init() {
	Register(&Type{
		Name:    "comfyui.generate",
		Version: 1,
		Summary: "patch an API-format workflow and generate images on one or several ComfyUI servers",
		New:     func() Step { return new(Generate) },
	})
}

// Generate runs a ComfyUI workflow once per (prompt, seed), patched with the
// step's LoRA, prompts, seed, sampler settings and size, and downloads the
// images. Each image is cached by its patched workflow, never by server: a
// re-run, or a batch that grows, submits only what is new.
type Generate struct {
	Server      string            `yaml:"server" doc:"ComfyUI base URL, e.g. http://127.0.0.1:8188"`
	Servers     []string          `yaml:"servers" doc:"several ComfyUI servers to spread the batch over"`
	Workflow    string            `yaml:"workflow" doc:"API-format workflow JSON (Export (API) in ComfyUI)"`
	Prompts     any               `yaml:"prompts" doc:"a text file (one prompt a line) or a list of prompts"`
	Negative    string            `yaml:"negative" doc:"negative prompt"`
	Seeds       []int64           `yaml:"seeds" doc:"every prompt is generated with every seed"`
	Seed        *int64            `yaml:"seed" doc:"first seed: image i uses seed+i and prompt i mod len(prompts)"`
	Count       int               `yaml:"count" doc:"number of images with seed: (default: one per prompt)"`
	Lora        *LoraSpec         `yaml:"lora" doc:"one LoRA: {name, strength}"`
	Loras       []LoraSpec        `yaml:"loras" doc:"several LoRAs, in the workflow's chain order"`
	Sampler     *SamplerSpec      `yaml:"sampler" doc:"{steps, cfg, sampler_name, scheduler, denoise}"`
	Size        *SizeSpec         `yaml:"size" doc:"{width, height} of the empty latent"`
	Checkpoint  string            `yaml:"checkpoint" doc:"checkpoint (or UNET) file for the base model's loader"`
	Nodes       map[string]string `yaml:"nodes" doc:"explicit node ids by role: sampler, positive, negative, latent, lora, checkpoint (comma-separated)"`
	Output      string            `yaml:"output" doc:"directory for the images"`
	Concurrency int               `yaml:"concurrency" doc:"prompts in flight per server (default 1)"`
	Timeout     time.Duration     `yaml:"timeout" doc:"per image, from submission to download (default 10m)"`
}

// LoraSpec is one LoRA to load.
type LoraSpec struct {
	Name          string   `yaml:"name" json:"name"`
	Node          string   `yaml:"node" json:"node,omitempty"` // the loader's id, title or current lora_name; else by chain position
	Strength      *float64 `yaml:"strength" json:"strength,omitempty"`
	StrengthModel *float64 `yaml:"strength_model" json:"strength_model,omitempty"`
	StrengthClip  *float64 `yaml:"strength_clip" json:"strength_clip,omitempty"`
	// File is the local copy of the LoRA the server loads by Name. Its
	// content is part of each image's key, so a LoRA retrained under the
	// same name makes new images instead of restoring the old ones.
	File string `yaml:"file" json:"file,omitempty"`
	// SHA256 is File's digest, recorded with each image.
	SHA256 string `yaml:"-" json:"sha256,omitempty"`
}

// SamplerSpec overrides the sampler's settings; zero values keep the
// workflow's.
type SamplerSpec struct {
	Steps       int      `yaml:"steps" json:"steps,omitempty"`
	CFG         *float64 `yaml:"cfg" json:"cfg,omitempty"`
	SamplerName string   `yaml:"sampler_name" json:"sampler_name,omitempty"`
	Scheduler   string   `yaml:"scheduler" json:"scheduler,omitempty"`
	Denoise     *float64 `yaml:"denoise" json:"denoise,omitempty"`
}

// SizeSpec is the image size.
type SizeSpec struct {
	Width  int `yaml:"width" json:"width"`
	Height int `yaml:"height" json:"height"`
}

// Validate checks the params that need no files.
func (g *Generate) Validate() error {
	switch {
	case g.Server == "" && len(g.Servers) == 0:
		return errors.New("comfyui.generate needs server: URL (or servers: [URL...])")
	case g.Server != "" && len(g.Servers) > 0:
		return errors.New("give server or servers, not both")
	case g.Workflow == "":
		return errors.New("comfyui.generate needs workflow: path to an API-format workflow")
	case g.Output == "":
		return errors.New("comfyui.generate needs output: a directory for the images")
	case g.Prompts == nil:
		return errors.New("comfyui.generate needs prompts: a file or a list")
	case len(g.Seeds) > 0 && (g.Seed != nil || g.Count > 0):
		return errors.New("give seeds: (every prompt x every seed) or seed: with count:, not both")
	case g.Lora != nil && len(g.Loras) > 0:
		return errors.New("give lora or loras, not both")
	case g.Count < 0 || g.Concurrency < 0:
		return errors.New("count and concurrency must not be negative")
	}
	if err := pathglob.CheckRead(g.Workflow); err != nil {
		return err
	}
	if err := pathglob.Check(g.Output); err != nil {
		return err
	}
	for _, l := range g.loras() {
		if l.File != "" {
			if err := pathglob.CheckRead(l.File); err != nil {
				return fmt.Errorf("lora %s: file: %w", l.Name, err)
			}
		}
	}
	if s, ok := g.Prompts.(string); ok {
		return pathglob.CheckRead(s)
	}
	return nil
}

// ValidateWorkspace loads the workflow and prompts and finds the nodes to
// patch, so that a wrong workflow fails before anything is submitted.
func (g *Generate) ValidateWorkspace(root string) error {
	wf, err := g.loadWorkflow(root)
	if err != nil {
		return err
	}
	if _, err := g.prompts(root); err != nil {
		return err
	}
	_, err = g.plan(wf)
	return err
}

// Deps reads the workflow and the prompts file and writes the output
// directory.
func (g *Generate) Deps(map[string]Outputs) Deps {
	r := []string{g.Workflow}
	if s, ok := g.Prompts.(string); ok {
		r = append(r, s)
	}
	for _, l := range g.loras() {
		if l.File != "" {
			r = append(r, l.File)
		}
	}
	return Deps{Reads: r, Writes: []string{g.Output}, Policy: []string{"comfyui.max_image_bytes"}}
}

func (g *Generate) loadWorkflow(root string) (workflow, error) {
	data, err := os.ReadFile(pathglob.Abs(root, g.Workflow))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is the workspace's, named below
		}
		return nil, fmt.Errorf("workflow %s: %w", g.Workflow, err)
	}
	return parseWorkflow(g.Workflow, data)
}

// prompts returns the prompt list: the file's non-empty lines that are not
// # comments, or the list as given.
func (g *Generate) prompts(root string) ([]string, error) {
	var out []string
	switch p := g.Prompts.(type) {
	case string:
		data, err := os.ReadFile(pathglob.Abs(root, p))
		if err != nil {
			return nil, fmt.Errorf("prompts: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
	case []any:
		for i, v := range p {
			s, ok := v.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("prompts[%d]: want a non-empty string", i)
			}
			out = append(out, s)
		}
	default:
		return nil, fmt.Errorf("prompts: want a file name or a list of strings, got %T", g.Prompts)
	}
	if len(out) == 0 {
		return nil, errors.New("prompts: no prompt")
	}
	return out, nil
}

func (g *Generate) loras() []LoraSpec {
	if g.Lora != nil {
		return []LoraSpec{*g.Lora}
	}
	return g.Loras
}

// genJob is one image to make.
type genJob struct {
	index  int
	prompt string
	seed   int64
	wf     workflow
	key    string // digest of the patched workflow
}

// jobs expands prompts and seeds: every prompt with every seed, or count
// images from seed on, prompt i mod len(prompts).
func (g *Generate) jobs(prompts []string) []genJob {
	var jobs []genJob
	if len(g.Seeds) > 0 {
		for _, p := range prompts {
			for _, s := range g.Seeds {
				jobs = append(jobs, genJob{index: len(jobs), prompt: p, seed: s})
			}
		}
		return jobs
	}
	var first int64
	if g.Seed != nil {
		first = *g.Seed
	}
	n := g.Count
	if n == 0 {
		n = len(prompts)
	}
	for i := 0; i < n; i++ {
		jobs = append(jobs, genJob{index: i, prompt: prompts[i%len(prompts)], seed: first + int64(i)})
	}
	return jobs
}

// genMeta is what the per-image cache keeps besides the image bytes.
type genMeta struct {
	SHA256   string `json:"sha256"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	PromptID string `json:"prompt_id"`
	Server   string `json:"server"`
	Format   string `json:"format,omitempty"` // png when empty (older entries)
}

// ShareUnit makes a generation a Sharer: its images can be made on
// several machines at once.
func (g *Generate) ShareUnit() string { return "images" }

// Run generates what the cache does not have (of its share, with
// env.Share).
func (g *Generate) Run(ctx context.Context, env *Env) (Outputs, error) {
	wf, err := g.loadWorkflow(env.Root)
	if err != nil {
		return nil, err
	}
	prompts, err := g.prompts(env.Root)
	if err != nil {
		return nil, err
	}
	pl, err := g.plan(wf)
	if err != nil {
		return nil, err
	}
	for _, n := range pl.notes {
		fmt.Fprintf(env.Log, "note: %s\n", n)
	}
	// The LoRA files' digests salt every image's key (the server knows a
	// LoRA by name only) and are recorded with the images.
	salt := ""
	for i, l := range g.loras() {
		if l.File == "" {
			continue
		}
		sum, err := env.Sum(pathglob.Abs(env.Root, l.File))
		if err != nil {
			return nil, fmt.Errorf("lora %s: %w", l.Name, err)
		}
		salt += "\nlora " + l.Name + " " + sum
		if g.Lora != nil {
			g.Lora.SHA256 = sum
		} else {
			g.Loras[i].SHA256 = sum
		}
	}
	jobs := g.jobs(prompts)
	out := filepath.Join(env.Root, filepath.FromSlash(g.Output))
	if err := os.MkdirAll(out, 0o777); err != nil {
		return nil, err
	}
	items := make([]Item, len(jobs))
	var todo []int
	mine := jobs // a share's jobs, or all of them
	if sh := env.Share; sh != nil {
		sh.Total = len(jobs)
		from := min(max(sh.From, 0), len(jobs))
		mine = jobs[from:min(max(sh.To, from), len(jobs))]
	}
	for i := range jobs {
		j := &jobs[i]
		j.wf = g.patch(wf, pl, *j)
		b, _ := json.Marshal(j.wf) // maps marshal sorted: a canonical form
		sum := sha256.Sum256(append(b, salt...))
		j.key = hex.EncodeToString(sum[:])
	}
	if env.Cache != nil {
		keys := make([]string, 0, 2*len(mine))
		for _, j := range mine {
			keys = append(keys, metaKey+j.key, imageKey+j.key)
		}
		prefetch(env.Cache, keys)
	}
	for i := range mine {
		j := &mine[i]
		if it, ok := g.fromCache(env, out, *j); ok {
			items[j.index] = it
			continue
		}
		todo = append(todo, j.index)
	}
	if sh := env.Share; sh != nil {
		fmt.Fprintf(env.Log, "images %d to %d of %d: %d from cache, %d to generate\n", sh.From, sh.From+len(mine), len(jobs), len(mine)-len(todo), len(todo))
	} else {
		fmt.Fprintf(env.Log, "%d images: %d from cache, %d to generate\n", len(jobs), len(jobs)-len(todo), len(todo))
	}
	env.progress("images", len(mine)-len(todo), len(mine))
	if len(todo) > 0 {
		if err := g.generateAll(ctx, env, out, jobs, todo, items); err != nil {
			// The images that were made stay in the output and in the
			// cache: a re-run submits only the others.
			return nil, &PartialError{Kept: madePaths(items), Err: err}
		}
	}
	if sh := env.Share; sh != nil {
		// Its images are in the per-item cache, for the whole step.
		env.Incomplete = true
		return Outputs{"count": len(mine), "summary": fmt.Sprintf("images %d to %d of %d", sh.From, sh.From+len(mine), len(jobs))}, nil
	}
	// The folder holds this batch and nothing else: images of an earlier,
	// larger batch would otherwise sit beside it looking like part of it.
	if err := keepOnly(out, madePaths(items), env.Root); err != nil {
		return nil, err
	}
	return Outputs{"items": items, "count": len(items), "summary": plural(len(items), "image")}, nil
}

// generateAll makes the images todo (indexes into jobs) on the step's
// servers, filling items; the error names what failed.
func (g *Generate) generateAll(ctx context.Context, env *Env, out string, jobs []genJob, todo []int, items []Item) error {
	servers := g.Servers
	if g.Server != "" {
		servers = []string{g.Server}
	}
	var maxImage int64 // the client's default when the policy has none
	if v, set := env.Policy["comfyui.max_image_bytes"]; set && v != nil {
		n, ok := number(v)
		if !ok || n < 1 {
			return fmt.Errorf("policy comfyui.max_image_bytes: %v: want a positive number of bytes", v)
		}
		maxImage = int64(n)
	}
	per := max(g.Concurrency, 1)
	var mu sync.Mutex
	var errs []error
	done := len(jobs) - len(todo)
	// A refused workflow stops the batch: the other images would be
	// refused the same way, one POST and one message each.
	gctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var refusal error
	// Prompts still queued from an earlier run are found by their ids
	// (derived from the request) on whichever server holds them.
	pool := &serverPool{alive: len(servers), log: env.Log}
	clients := make([]*comfyClient, len(servers))
	earlier := map[string]*comfyClient{}
	for k, srv := range servers {
		clients[k] = newComfyClient(srv, env.Log)
		if maxImage > 0 {
			clients[k].maxImage = maxImage
		}
		if len(servers) > 1 {
			clients[k].health.pool = pool
		}
		ids, err := clients[k].queued(ctx)
		if err != nil && ctx.Err() != nil {
			return context.Cause(ctx)
		}
		for id := range ids {
			earlier[id] = clients[k]
		}
	}
	// The queue holds every image not made yet; an image whose server was
	// taken out goes back into it for the others.
	queue := make(chan int, len(todo))
	for _, i := range todo {
		queue <- i
	}
	remaining := len(todo)
	finished := make(chan struct{})
	settle := func() { // under mu
		done++
		env.progress("images", done, len(jobs))
		if remaining--; remaining == 0 {
			close(finished)
		}
	}
	moved := make([]int, len(jobs))
	// Each server's WebSocket says when a prompt is done, so its history
	// is read once instead of polled.
	lctx, stopListening := context.WithCancel(gctx)
	defer stopListening()
	var dials sync.WaitGroup
	for _, c := range clients {
		dials.Go(func() { c.listen(lctx) })
	}
	dials.Wait()
	var wg sync.WaitGroup
	for _, c := range clients {
		for w := 0; w < per; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !c.isOut() {
					var i int
					select {
					case i = <-queue:
					case <-finished:
						return
					case <-gctx.Done():
						return
					}
					it, err := g.generate(gctx, env, c, earlier, out, jobs[i])
					mu.Lock()
					var refused *workflowRefused
					switch {
					case err == nil:
						items[i] = it
						settle()
					case errors.Is(err, errServerOut) && gctx.Err() == nil && moved[i] < len(servers):
						moved[i]++
						queue <- i
					case errors.As(err, &refused):
						if refusal == nil {
							refusal = err
							stop(err)
						}
						settle()
					case gctx.Err() != nil && ctx.Err() == nil:
						// Stopped by the refusal.
						settle()
					default:
						errs = append(errs, fmt.Errorf("image %d (seed %d): %w", jobs[i].index, jobs[i].seed, err))
						settle()
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, c := range clients {
		if secs := c.gpuSeconds(); secs > 0 {
			env.gpu(c.shown, secs)
		}
	}
	// What this run queued and will not collect is taken off the servers,
	// even after a Ctrl-C (hence a context of its own, briefly).
	cctx, cancelCleanup := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	for _, c := range clients {
		if err := c.cancelInflight(cctx); err != nil {
			fmt.Fprintf(env.Log, "warning: %v\n", err)
		}
	}
	cancelCleanup()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if refusal != nil {
		return fmt.Errorf("%w; the batch stopped there, as every image would be refused", refusal)
	}
	if len(errs) > 0 {
		// The servers taken out are named with their last error, and a
		// server that cannot be reached at all gets the hint of where its
		// address comes from.
		failed := len(errs)
		for _, c := range clients {
			if last := c.lastFailure(); last != nil {
				errs = append(errs, fmt.Errorf("%s was taken out earlier: %w", c.shown, last))
			}
		}
		err := fmt.Errorf("%d of %d images failed: %w", failed, len(todo), errors.Join(errs...))
		var down *serverUnreachable
		if errors.As(err, &down) {
			err = fmt.Errorf("%w\n%s", err, unreachableHint(down.url))
		}
		return err
	}
	return nil
}

// madePaths are the paths of the images made so far.
func madePaths(items []Item) []string {
	var kept []string
	for _, it := range items {
		if it.Path != "" {
			kept = append(kept, it.Path)
		}
	}
	return kept
}

// keepOnly removes the files of dir that are not among keep
// (workspace-relative paths).
func keepOnly(dir string, keep []string, root string) error {
	set := make(map[string]bool, len(keep))
	for _, k := range keep {
		set[filepath.Join(root, filepath.FromSlash(k))] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if p := filepath.Join(dir, e.Name()); !set[p] {
			if err := robustio.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// plural says "1 image" or "3 images".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// settingFields are the item fields that describe how an image was made
// (generate's, below): numbers in them (a LoRA's strength, a size) are not
// scores.
var settingFields = []string{"lora", "loras", "sampler", "size", "negative", "server"}

func (g *Generate) item(j genJob, path string, m genMeta) (Item, error) {
	fields := map[string]any{"prompt": j.prompt, "seed": j.seed, "prompt_id": m.PromptID, "server": m.Server}
	if g.Negative != "" {
		fields["negative"] = g.Negative
	}
	if l := g.loras(); len(l) == 1 {
		fields["lora"] = l[0]
	} else if len(l) > 1 {
		fields["loras"] = l
	}
	if g.Sampler != nil {
		fields["sampler"] = g.Sampler
	}
	if g.Size != nil {
		fields["size"] = g.Size
	}
	return Item{Path: path, SHA256: m.SHA256, Width: m.Width, Height: m.Height}.WithFields(fields)
}

// imageName is where job j's k-th image goes: named by index and seed, never
// by the server's file name, with the extension of the image's real format
// (a JPEG body is no PNG because the server called it one).
func (g *Generate) imageName(j genJob, k int, format string) string {
	ext := map[string]string{"jpeg": ".jpg", "gif": ".gif", "webp": ".webp"}[format]
	if ext == "" {
		ext = ".png"
	}
	if k == 0 {
		return fmt.Sprintf("%04d_seed%d%s", j.index, j.seed, ext)
	}
	return fmt.Sprintf("%04d_seed%d_%d%s", j.index, j.seed, k, ext)
}

// The per-image cache's keys: a generated image and what is known of it.
const (
	imageKey = "comfyui image v1 "
	metaKey  = "comfyui meta v1 "
)

// fromCache restores a job's image from the per-image cache.
func (g *Generate) fromCache(env *Env, out string, j genJob) (Item, bool) {
	if env.Cache == nil {
		return Item{}, false
	}
	metaData, ok := env.Cache.Get(metaKey + j.key)
	if !ok {
		return Item{}, false
	}
	var m genMeta
	if json.Unmarshal(metaData, &m) != nil {
		return Item{}, false
	}
	img, ok := env.Cache.Get(imageKey + j.key)
	if !ok {
		return Item{}, false
	}
	sum := sha256.Sum256(img)
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		return Item{}, false
	}
	name := g.imageName(j, 0, m.Format)
	if err := atomicfile.WriteFile(filepath.Join(out, name), img, 0o666); err != nil {
		return Item{}, false
	}
	it, err := g.item(j, g.Output+"/"+name, m)
	return it, err == nil // a failure is the fresh image's too, and says why
}

// generate makes one job's image: it adopts the prompt when the server
// already has it under the job's id (an earlier run queued it and did not
// collect it), else submits it; then waits, downloads and caches it.
func (g *Generate) generate(ctx context.Context, env *Env, c *comfyClient, earlier map[string]*comfyClient, out string, j genJob) (Item, error) {
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no image after %s", timeout))
	defer cancel()
	id := promptID(j.key)
	adopted := false
	if on := earlier[id]; on != nil && !on.isOut() {
		c, adopted = on, true
	} else if e, err := c.history(ctx, id, false); err == nil && e != nil {
		if e.Status.StatusStr == "success" {
			adopted = true
		} else {
			id = uuid.NewString() // the failed entry would answer for the new prompt
		}
	} else if ctx.Err() != nil {
		return Item{}, context.Cause(ctx)
	}
	if adopted {
		fmt.Fprintf(env.Log, "%s: prompt %s (seed %d) is already on the server from an earlier run: not submitted again\n", c.shown, id, j.seed)
	} else if err := c.submitAs(ctx, j.wf, &id); err != nil {
		return Item{}, err
	}
	// A prompt stays tracked until its wait ends on its own: one left by
	// a cancellation or a timeout is cancelled on the server (see Run).
	collect := func() ([]byte, string, int, int, error) {
		c.track(id, true)
		data, format, w, h, err := c.collect(ctx, id, adopted)
		if ctx.Err() == nil {
			c.track(id, false)
		}
		return data, format, w, h, err
	}
	data, format, w, h, err := collect()
	if err != nil && adopted && ctx.Err() == nil {
		// The earlier prompt failed or its image is gone: made anew.
		fmt.Fprintf(env.Log, "%s: the earlier prompt %s gave no image (%v): submitting it anew\n", c.shown, id, err)
		id = uuid.NewString()
		if err := c.submitAs(ctx, j.wf, &id); err != nil {
			return Item{}, err
		}
		data, format, w, h, err = collect()
	}
	if err != nil {
		return Item{}, err
	}
	sum := sha256.Sum256(data)
	m := genMeta{SHA256: hex.EncodeToString(sum[:]), Width: w, Height: h, PromptID: id, Server: c.shown, Format: format}
	name := g.imageName(j, 0, format)
	if err := atomicfile.WriteFile(filepath.Join(out, name), data, 0o666); err != nil {
		return Item{}, err
	}
	if env.Cache != nil {
		mb, _ := json.Marshal(m)
		if err := env.Cache.Put(imageKey+j.key, data); err == nil {
			env.Cache.Put(metaKey+j.key, mb)
		}
	}
	fmt.Fprintf(env.Log, "%s: seed %d -> %s (%dx%d, prompt %s)\n", c.shown, j.seed, name, w, h, id)
	return g.item(j, g.Output+"/"+name, m)
}
