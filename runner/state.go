package runner

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/runner/cache"
)

// keyState remembers, per pipeline, the ActionID each step (and foreach
// element) last had, so that plan can compare today's key lines with the
// previous ones (stored in the cache by PutKey) and say what changed.
type keyState struct {
	path  string
	mu    sync.Mutex
	ids   map[string]cache.ActionID // "<step>\x00<element label>"
	dirty bool
}

const stateHeader = "lifeos keystate v1\n"

// stateFile is where the key state of a pipeline lives: one file per
// pipeline path under .lifeos/state.
func stateFile(root, pipelineFile string) string {
	sum := sha256.Sum256([]byte(filepath.ToSlash(filepath.Clean(pipelineFile))))
	base := strings.TrimSuffix(filepath.Base(pipelineFile), filepath.Ext(pipelineFile))
	return filepath.Join(root, ".lifeos", "state", base+"-"+hex.EncodeToString(sum[:4])+".ids")
}

func loadKeyState(path string) *keyState {
	ks := &keyState{path: path, ids: map[string]cache.ActionID{}}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte(stateHeader)) {
		return ks
	}
	// One line per element: <action hex> <step>\x00<label>
	for _, line := range strings.Split(string(data[len(stateHeader):]), "\n") {
		id, key, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		a, err := cache.ParseActionID(id)
		if err != nil {
			continue
		}
		ks.ids[strings.ReplaceAll(key, `\n`, "\n")] = a
	}
	return ks
}

func (ks *keyState) get(step, label string) (cache.ActionID, bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	id, ok := ks.ids[step+"\x00"+label]
	return id, ok
}

func (ks *keyState) set(step, label string, id cache.ActionID) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k := step + "\x00" + label
	if ks.ids[k] != id {
		ks.ids[k] = id
		ks.dirty = true
	}
}

func (ks *keyState) save() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if !ks.dirty {
		return nil
	}
	keys := make([]string, 0, len(ks.ids))
	for k := range ks.ids {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return atomicfile.Write(ks.path, 0o666, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		bw.WriteString(stateHeader)
		for _, k := range keys {
			fmt.Fprintf(bw, "%s %s\n", ks.ids[k], strings.ReplaceAll(k, "\n", `\n`))
		}
		return bw.Flush()
	})
}

// diffKeys explains the difference between two sets of key lines:
// "with.count 20 -> 30", "file data/a.txt changed".
func diffKeys(old, cur []string) string {
	split := func(lines []string) (map[string]string, []string) {
		m := map[string]string{}
		var order []string
		for _, l := range lines {
			kind, rest, _ := strings.Cut(l, " ")
			name, val := rest, ""
			switch kind {
			case "param", "file":
				name, val, _ = strings.Cut(rest, " ")
				name = kind + " " + name
			default:
				name, val = kind, rest
			}
			if _, dup := m[name]; !dup {
				order = append(order, name)
			}
			m[name] = val
		}
		return m, order
	}
	om, oorder := split(old)
	cm, corder := split(cur)
	var changes []string
	describe := func(name string) string {
		if p, ok := strings.CutPrefix(name, "param "); ok {
			return p
		}
		return name
	}
	for _, name := range corder {
		ov, had := om[name]
		nv := cm[name]
		switch {
		case !had:
			changes = append(changes, describe(name)+" added")
		case ov == nv:
		case strings.HasPrefix(name, "file "):
			changes = append(changes, name+" changed")
		case name == "stepversion":
			changes = append(changes, "step type version "+ov+" -> "+nv)
		default:
			changes = append(changes, fmt.Sprintf("%s %s -> %s", describe(name), short(ov), short(nv)))
		}
	}
	for _, name := range oorder {
		if _, ok := cm[name]; !ok {
			changes = append(changes, describe(name)+" removed")
		}
	}
	if len(changes) == 0 {
		return "cached result missing or damaged"
	}
	if len(changes) > 3 {
		changes = append(changes[:3], fmt.Sprintf("and %d more changes", len(changes)-3))
	}
	return strings.Join(changes, "; ")
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
