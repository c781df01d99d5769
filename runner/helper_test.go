package runner

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gofrs/flock"
	"github.com/lifeos/lifeos/steps"
)

// The tests' exec steps run this test binary with -lifeos-helper instead of
// sh scripts, so that they run the same on Windows (.ci/wine/run).
const helperFlag = "-lifeos-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperFlag {
		if err := helper(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// A race-enabled helper would sleep a second at exit (the race
	// runtime's atexit_sleep_ms) each time it is run.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// helperRun is the run: of an exec step calling helper cmd with args, as
// YAML (the binary's path single-quoted: Windows paths have backslashes).
func helperRun(cmd string, args ...string) string {
	q := []string{"'" + strings.ReplaceAll(os.Args[0], "'", "''") + "'", `"` + helperFlag + `"`, `"` + cmd + `"`}
	for _, a := range args {
		q = append(q, `"`+a+`"`)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// helper runs one helper command in the working directory:
//
//	each SRC DST TAG  logs "each", copies SRC to DST, prints {"tag": TAG}
//	all MIN...        logs "all", writes out/*.txt then MIN to all.txt
//	list [BAD]        logs "list", prints in/*.txt as items {path, sha256, n}
//	                  (item BAD without its sha256)
func helper(cmd string, args []string) error {
	// Under a lock: two helpers appending at once lose a line under Wine,
	// whose O_APPEND is a seek to the end, then a write.
	lock := flock.New("calls.log.lock")
	if err := lock.Lock(); err != nil {
		return err
	}
	logf, err := os.OpenFile("calls.log", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		lock.Unlock()
		return err
	}
	fmt.Fprintln(logf, cmd)
	logf.Close()
	lock.Unlock()
	switch cmd {
	case "each":
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		os.MkdirAll(filepath.Dir(args[1]), 0o777)
		if err := os.WriteFile(args[1], data, 0o666); err != nil {
			return err
		}
		fmt.Printf("{\"tag\": %q}\n", args[2])
	case "all":
		files, _ := filepath.Glob("out/*.txt")
		sort.Strings(files)
		var b strings.Builder
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		b.WriteString(args[0] + "\n")
		return os.WriteFile("all.txt", []byte(b.String()), 0o666)
	case "list":
		files, _ := filepath.Glob("in/*.txt")
		sort.Strings(files)
		var items []map[string]any
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			var n int
			fmt.Sscan(string(data), &n)
			items = append(items, map[string]any{"path": filepath.ToSlash(f), "sha256": fmt.Sprintf("%x", sha256.Sum256(data)), "n": n})
		}
		if len(args) > 0 {
			var bad int
			fmt.Sscan(args[0], &bad)
			delete(items[bad], "sha256")
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"summary": fmt.Sprintf("%d items", len(items)), "items": items})
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

// withFields is it with fields set, for tests.
func withFields(t testing.TB, it steps.Item, fields map[string]any) steps.Item {
	t.Helper()
	it, err := it.WithFields(fields)
	if err != nil {
		t.Fatal(err)
	}
	return it
}
