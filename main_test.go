package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeos/lifeos/internal/alter"
	"github.com/lifeos/lifeos/internal/comfytest"
	"github.com/lifeos/lifeos/internal/githubtest"
)

func TestMain(m *testing.M) {
	// Under -race every command a scenario runs is this test binary, and
	// the race runtime sleeps a second as each process exits
	// (atexit_sleep_ms): most of the race pass's time. testscript passes
	// GORACE on to the commands.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	cmds := map[string]func(){
		"lifeos": func() { os.Exit(lifeos()) },
		// fakescorer is an external scorer (or, with -embed, a face
		// embedder) speaking lifeos's JSON protocol on stdin and stdout.
		"fakescorer": func() { os.Exit(fakeScorer(os.Args[1:], os.Stdin, os.Stdout, "scorer.calls")) },
	}
	if lifeosTemporal != nil {
		cmds["lifeos-temporal"] = lifeosTemporal
	}
	testscript.Main(m, cmds)
}

// The Temporal parts (main_temporal_test.go) are left out of race and
// Windows test builds: the race pass skips their scenarios (-short), the
// Windows pass has no Temporal server, and compiling the Temporal SDK for
// either would only cost CI minutes.
var (
	lifeosTemporal    func()
	cmdTemporalServer = func(ts *testscript.TestScript, _ bool, _ []string) {
		ts.Fatalf("temporalserver: not in this test build (race or Windows)")
	}
	hasTemporal = func() bool { return false }
)

// TestScript runs the CLI scenarios in testdata/*.txtar, one behaviour per
// file. LIFEOS_UPDATE=1 rewrites their expected output.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("LIFEOS_UPDATE") != "",
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "mount": // tmpfs can be mounted: root on Linux with the capability
				return canMount(), nil
			case "race": // built with the race detector (slow for image work)
				return raceBuild, nil
			case "s3": // a real S3-compatible server can be started (s3server)
				return hasS3Server(), nil
			case "temporal": // Temporal's dev server can be started (temporalserver)
				return hasTemporal(), nil
			case "wine": // Windows test binaries under Wine (.ci/wine/run)
				return os.Getenv("LIFEOS_UNDER_WINE") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			skipWithoutShell(env)
			// Scenarios use the workspace's own .lifeos/cache, never one
			// from the developer's environment.
			env.Setenv("LIFEOS_CACHE", "")
			env.Setenv("LIFEOS_DEBUG", "")
			// A workspace is never looked for above the scenario's folder.
			env.Setenv("LIFEOS_CEILING_DIRECTORIES", filepath.Dir(env.WorkDir))
			// REPO lets a scenario copy the project's own pipelines and
			// sample data, so the shipped demo is tested as shipped.
			repo, err := os.Getwd()
			env.Setenv("REPO", repo)
			return err
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": cmdWaitFile,
			"screen":   cmdScreen,
			"setenvfile": func(ts *testscript.TestScript, neg bool, args []string) {
				// setenvfile VAR FILE REGEXP: VAR is REGEXP's first group in
				// FILE (a URL a server printed, say).
				if neg || len(args) != 3 {
					ts.Fatalf("usage: setenvfile VAR FILE REGEXP")
				}
				m := regexp.MustCompile(args[2]).FindStringSubmatch(ts.ReadFile(args[1]))
				if len(m) < 2 {
					ts.Fatalf("%s: no match for %s", args[1], args[2])
				}
				ts.Setenv(args[0], m[1])
			},
			"pty":        cmdPty,
			"json":       cmdJSON,
			"fulldisk":   cmdFullDisk,
			"fakehealth": cmdFakeHealth,
			"fakewebhook": func(ts *testscript.TestScript, neg bool, args []string) {
				// A chat webhook at $WEBHOOK_URL/hook/secret: each body it
				// receives is a line of webhook.log.
				log := ts.MkAbs("webhook.log")
				var mu sync.Mutex
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					mu.Lock()
					defer mu.Unlock()
					f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
					if err == nil {
						fmt.Fprintf(f, "%s %s\n", r.URL.Path, body)
						f.Close()
					}
				}))
				ts.Setenv("WEBHOOK_URL", srv.URL+"/hook/secret")
				ts.Defer(srv.Close)
			},
			"fakecomfy":      cmdFakeComfy,
			"fakegithub":     cmdFakeGitHub,
			"s3server":       cmdS3Server,
			"temporalserver": cmdTemporalServer,
			"damage":         cmdDamage,
			"cprepo":         cmdCpRepo,
			"alter":          cmdAlter,
			"fakescorehttp": func(ts *testscript.TestScript, neg bool, args []string) {
				// The fakescorer protocol over HTTP, at $SCORER_URL; the
				// first request fails with 503 to exercise retries.
				var mu sync.Mutex
				first := true
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					defer mu.Unlock()
					if first {
						first = false
						w.Header().Set("Retry-After", "0")
						http.Error(w, "warming up", http.StatusServiceUnavailable)
						return
					}
					fakeScorer(nil, r.Body, w, ts.MkAbs("scorer.calls"))
				}))
				ts.Setenv("SCORER_URL", srv.URL)
				ts.Defer(srv.Close)
			},
		},
	})
}

// cmdFakeHealth starts a stand-in for ComfyUI's GET /system_stats (the
// shape of comfyui-api.md) and sets HEALTH_URL to its base URL. With
// -fail N -status S, the first N requests get status S with Retry-After: 0.
// Every request appends a line to health.requests.
func cmdFakeHealth(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("fakehealth", flag.ContinueOnError)
	fail := fs.Int("fail", 0, "")
	status := fs.Int("status", http.StatusServiceUnavailable, "")
	if neg || fs.Parse(args) != nil {
		ts.Fatalf("usage: fakehealth [-fail N] [-status S]")
	}
	var mu sync.Mutex
	n := 0
	log := ts.MkAbs("health.requests")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		count := n
		f, _ := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
		fmt.Fprintf(f, "%s %s auth=%q\n", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		f.Close()
		mu.Unlock()
		if r.URL.Path != "/system_stats" {
			http.NotFound(w, r)
			return
		}
		if count <= *fail {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "500 Internal Server Error\n\nServer got itself in trouble", *status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"system": {"os": "posix", "comfyui_version": "0.3.40", "python_version": "3.12"},
 "devices": [{"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type": "cuda", "index": 0,
  "vram_total": 25393692672, "vram_free": 24739905536, "torch_vram_total": 0, "torch_vram_free": 0}]}`)
	}))
	ts.Setenv("HEALTH_URL", srv.URL)
	ts.Defer(srv.Close)
}

// cmdFakeComfy starts a ComfyUI stand-in (internal/comfytest) and sets
// $COMFY_URL (or the variable named by -env) to it. Every request appends
// "METHOD /path" to <env>.requests, so scenarios count submissions, and
// every queued prompt appends one line per literal input to <env>.prompts,
// "<prompt number> <node id> <class> <input>=<JSON value>", so scenarios
// check what was patched.
// cmdCpRepo copies files and folders of the project into the scenario, so
// that the shipped pipelines and sample data are tested as shipped, with
// no shell (the scenario then runs on Windows too): "cprepo PATH... DIR",
// PATHs relative to $REPO (globs allowed), DIR relative to $WORK (made if
// missing); a folder is copied whole into DIR.
func cmdCpRepo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: cprepo PATH... DIR")
	}
	repo := ts.Getenv("REPO")
	dst := ts.MkAbs(args[len(args)-1])
	ts.Check(os.MkdirAll(dst, 0o777))
	for _, pat := range args[:len(args)-1] {
		matches, err := filepath.Glob(filepath.Join(repo, filepath.FromSlash(pat)))
		ts.Check(err)
		if len(matches) == 0 {
			ts.Fatalf("cprepo: %s matches nothing in the project", pat)
		}
		for _, m := range matches {
			base := filepath.Dir(m)
			ts.Check(filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(base, p)
				to := filepath.Join(dst, rel)
				if d.IsDir() {
					return os.MkdirAll(to, 0o777)
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				return os.WriteFile(to, data, 0o666)
			}))
		}
	}
}

// usesShell matches what in a scenario needs a Unix shell or its tools:
// exec sh, a run: [sh|echo|touch..., ...] or a shell: step (sh -c on Unix,
// cmd /C on Windows, and the scenarios' scripts are sh).
var usesShell = regexp.MustCompile(`(?m)\bexec (sh|ls)\b|(run|argv): \["?(sh|echo|true|false|touch|cat|sleep|printf)\b|^\s+shell:|\bshell: ['"|]`)

// skipWithoutShell skips, where there is no sh (Windows, Wine), the
// scenarios that need one, saying so: the rest run there as anywhere.
func skipWithoutShell(env *testscript.Env) {
	if _, err := exec.LookPath("sh"); err == nil {
		return
	}
	named, ok := env.T().(interface{ Name() string })
	if !ok {
		return
	}
	_, script, _ := strings.Cut(named.Name(), "/")
	data, err := os.ReadFile(filepath.Join("testdata", script+".txtar"))
	if err == nil && usesShell.Match(data) {
		env.T().Skip("uses a Unix shell, and there is no sh here")
	}
}

// cmdFakeGitHub starts a GitHub REST API stand-in (internal/githubtest)
// holding the repositories named, empty, at $GITHUB_API_URL; it accepts the
// token ghp_fake. Each request is a line of github.log ("POST
// /repos/acme/loras/issues 201"), and each issue, once opened or edited,
// is the file github/<owner>/<repo>/<number>.md: its title, a blank line,
// its body.
func cmdFakeGitHub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: fakegithub owner/repo...")
	}
	log, err := os.Create(ts.MkAbs("github.log"))
	ts.Check(err)
	s := githubtest.New(args...)
	s.Token = "ghp_fake"
	s.Log = log
	s.Changed = func(repo string, is githubtest.Issue) {
		name := ts.MkAbs(filepath.Join("github", filepath.FromSlash(repo), fmt.Sprintf("%d.md", is.Number)))
		os.MkdirAll(filepath.Dir(name), 0o777)
		os.WriteFile(name, []byte(is.Title+"\n\n"+is.Body), 0o666)
	}
	srv := s.Start()
	ts.Setenv("GITHUB_API_URL", srv.URL)
	ts.Defer(func() { srv.Close(); log.Close() })
}

func cmdFakeComfy(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("fakecomfy", flag.ContinueOnError)
	env := fs.String("env", "COMFY_URL", "")
	loras := fs.String("loras", "amiranoor_v3.safetensors", "")
	fail := fs.Int("fail", 0, "")
	status := fs.Int("status", 500, "")
	pending := fs.Int("pending", 1, "")
	hostile := fs.String("hostile", "", "")
	jpegs := fs.Bool("jpeg", false, "")
	failQueued := fs.Int("failqueued", 0, "")
	truncate := fs.Int("truncate", 0, "")
	failView := fs.Int("failview", 0, "")
	dieAfter := fs.Int("dieafter", 0, "")
	hold := fs.Bool("hold", false, "")
	noWS := fs.Bool("nows", false, "")
	if neg || fs.Parse(args) != nil {
		ts.Fatalf("usage: fakecomfy [-env NAME] [-loras a,b] [-fail N -status S] [-failqueued N] [-truncate N] [-failview N] [-dieafter N] [-hold] [-nows] [-pending K] [-hostile path|junk|huge|bomb|redirect|other] [-jpeg]")
	}
	log := ts.MkAbs(*env + ".requests")
	prompts := ts.MkAbs(*env + ".prompts")
	var mu sync.Mutex
	srv := comfytest.New(comfytest.Options{Loras: strings.Split(*loras, ","), Fail: *fail, FailStatus: *status, Pending: *pending, Hostile: *hostile, JPEG: *jpegs, FailQueued: *failQueued, Truncate: *truncate, FailView: *failView, DieAfter: *dieAfter, Hold: *hold, NoWS: *noWS,
		Log: func(line string) {
			mu.Lock()
			defer mu.Unlock()
			f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
			if err == nil {
				fmt.Fprintln(f, line)
				f.Close()
			}
		},
		Queued: func(n int, prompt map[string]any) {
			var lines []string
			for id, v := range prompt {
				node, _ := v.(map[string]any)
				inputs, _ := node["inputs"].(map[string]any)
				for k, in := range inputs {
					if _, linked := in.([]any); !linked {
						b, _ := json.Marshal(in)
						lines = append(lines, fmt.Sprintf("%d %s %s %s=%s", n, id, node["class_type"], k, b))
					}
				}
			}
			slices.Sort(lines)
			mu.Lock()
			defer mu.Unlock()
			f, err := os.OpenFile(prompts, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
			if err == nil {
				fmt.Fprintln(f, strings.Join(lines, "\n"))
				f.Close()
			}
		}})
	ts.Setenv(*env, srv.URL)
	ts.Defer(srv.Close)
}

// fakeScorer answers one protocol request. Without -embed it returns a
// "realism" metric derived from the image digest; with -embed, one
// embedding per face: images whose name contains "amira" get vectors near
// one point, "noface" images none, others vectors far away. Each call
// appends its item count to scorer.calls, so scenarios see what was sent.
func fakeScorer(args []string, in io.Reader, out io.Writer, calls string) int {
	var req struct {
		Params map[string]any `json:"params"`
		Items  []struct {
			Path, SHA256 string
		} `json:"items"`
	}
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "fakescorer:", err)
		return 1
	}
	f, _ := os.OpenFile(calls, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	fmt.Fprintln(f, len(req.Items))
	f.Close()
	embed := len(args) > 0 && args[0] == "-embed"
	var results []any
	for _, it := range req.Items {
		if _, err := os.Stat(it.Path); err != nil {
			results = append(results, map[string]any{"error": "cannot read " + it.Path})
			continue
		}
		if strings.Contains(filepath.Base(it.Path), "unreadable") {
			results = append(results, map[string]any{"error": "unreadable"})
			continue
		}
		b, _ := hex.DecodeString(it.SHA256)
		if !embed {
			scale, _ := req.Params["scale"].(float64)
			results = append(results, map[string]any{"metrics": map[string]any{"realism": float64(b[0]) / 255 * max(scale, 1)}})
			continue
		}
		name := filepath.Base(it.Path)
		vec := make([]float64, 8)
		switch {
		case strings.Contains(name, "noface"):
			results = append(results, map[string]any{"embeddings": []any{}})
			continue
		case strings.Contains(name, "amira"):
			vec[0] = 1
			vec[1] = float64(b[1]) / 255 * 0.2 // the same face, another photo
		default:
			vec[2] = 1
			vec[3] = float64(b[1]) / 255
		}
		results = append(results, map[string]any{"embeddings": []any{vec}})
	}
	json.NewEncoder(out).Encode(map[string]any{"results": results})
	return 0
}

// cmdWaitFile waits until a file exists, and with a regexp until it
// matches the file's content: how a scenario knows a background step has
// started (or a background run is waiting) before going on. It gives up
// after 30 s so a broken scenario fails instead of hanging.
// cmdJSON checks a JSON document: json FILE PATH REGEXP. FILE (stdout for
// the last command's) must parse as JSON; PATH (keys and indexes joined by
// dots, "." for the whole) must lead to a value whose compact JSON matches
// REGEXP. With !, the path must be missing or its value must not match.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: json FILE PATH REGEXP")
	}
	var doc any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &doc); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	v, found := doc, true
	if args[1] != "." {
		for _, k := range strings.Split(args[1], ".") {
			switch x := v.(type) {
			case map[string]any:
				v, found = x[k]
			case []any:
				i, err := strconv.Atoi(k)
				found = err == nil && i >= 0 && i < len(x)
				if found {
					v = x[i]
				}
			default:
				found = false
			}
			if !found {
				break
			}
		}
	}
	b, _ := json.Marshal(v)
	ok := found && regexp.MustCompile(args[2]).Match(b)
	if ok == neg {
		ts.Fatalf("json %s %s: %s, want a match for %s (negated: %v)", args[0], args[1], b, args[2], neg)
	}
}

// cmdScreen compares what a run printed (stdout, stderr or a file) with a
// golden file, after masking what differs from run to run: run ids become
// <run> and durations <t>. "screen stdout want.txt".
func cmdScreen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: screen stdout|stderr|file want")
	}
	got := screenMask(ts.ReadFile(args[0]))
	if want := ts.ReadFile(args[1]); got != want {
		ts.Logf("got:\n%s", got)
		ts.Fatalf("%s differs from %s", args[0], args[1])
	}
}

var (
	screenRunID    = regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{6}\b`)
	screenDuration = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m\d+(\.\d+)?s|h\d+m(\d+(\.\d+)?s)?)\b`)
)

func screenMask(s string) string {
	return screenDuration.ReplaceAllString(screenRunID.ReplaceAllString(s, "<run>"), "<t>")
}

func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile path [regexp]")
	}
	var re *regexp.Regexp
	if len(args) == 2 {
		re = regexp.MustCompile(args[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && (re == nil || re.Match(b)) {
			return
		}
		select {
		case <-ctx.Done():
			ts.Fatalf("%s did not appear: %v", args[0], fmt.Errorf("waited 30s"))
		case <-tick.C:
		}
	}
}

// canMount reports whether this process may mount a tmpfs (root with
// CAP_SYS_ADMIN, as on CI), for the disk-full scenarios.
var canMount = sync.OnceValue(func() bool {
	dir, err := os.MkdirTemp("", "lifeos-mount")
	if err != nil {
		return false
	}
	defer os.Remove(dir)
	if exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).Run() != nil {
		return false
	}
	exec.Command("umount", dir).Run()
	return true
})

// cmdFullDisk mounts a small tmpfs at DIR and fills it, so that the next
// write there fails with "no space left on device", as on a full disk.
func cmdFullDisk(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fulldisk DIR")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o777))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		ts.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	ts.Defer(func() { exec.Command("umount", "-l", dir).Run() })
	f, err := os.Create(filepath.Join(dir, "filler"))
	ts.Check(err)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return // full
		}
	}
}

// cmdAlter writes altered copies of an image, as internal/alter makes
// them for the evaluation benchmarks:
//
//	alter IN.png OUT.png VARIANT
//
// VARIANT is one of alter.Variants' names ("noise sigma 8", "bilateral
// 4/40", "jpeg q90", "-1.5 stops", ...).
func cmdAlter(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: alter IN.png OUT.png VARIANT")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	img, _, err := image.Decode(f)
	f.Close()
	ts.Check(err)
	for _, v := range alter.Variants() {
		if v.Name == args[2] {
			out, err := os.Create(ts.MkAbs(args[1]))
			ts.Check(err)
			ts.Check(png.Encode(out, v.Make(img)))
			ts.Check(out.Close())
			return
		}
	}
	ts.Fatalf("alter: no variant %q", args[2])
}
