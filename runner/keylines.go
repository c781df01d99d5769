package runner

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/runner/cache"
)

// # Key lines
//
// The lines an element's key was made from are kept so that the next run
// can say what changed ("file images/a.png changed", "with.steps 20 ->
// 30"). They used to be a file of their own in the cache beside each
// entry: a file created per element, a third of what a cold run of a
// 1,000-image foreach created. They are now written once per run, all in
// one pack (.lifeos/state/keys/<random name>), and each element's record in
// the key state says where its lines are (a K line: pack, offset,
// length). They are advisory: a pack that is gone only makes the
// explanation vaguer ("inputs changed"). Packs no record refers to are
// removed with old run records (pruneKeyPacks).

// keyPacksDir is where the packs of key lines are.
func keyPacksDir(root string) string { return filepath.Join(root, ".lifeos", "state", "keys") }

// keyLines gathers the elements a run stores, whose key lines (el.hash)
// saveKeyLines writes.
type keyLines struct {
	mu    sync.Mutex
	elems []*element
}

func (k *keyLines) add(el *element) {
	k.mu.Lock()
	k.elems = append(k.elems, el)
	k.mu.Unlock()
}

// saveKeyLines writes the run's key lines as one pack and tells the key
// state where each element's are.
func (e *engine) saveKeyLines() error {
	k := &e.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.elems) == 0 {
		return nil
	}
	// A name of its own: a worker's chunks of one run share its id.
	var r [8]byte
	rand.Read(r[:])
	name := hex.EncodeToString(r[:])
	// Through the key state's folder, which every run sweeps of what a
	// killed one left (a sweep of the packs' own would cost each no-op
	// a millisecond). Not synced: advisory, as the state that refers to it.
	p, err := atomicfile.Create(filepath.Join(keyPacksDir(e.plan.Root), name), filepath.Dir(e.state.path), 0o666)
	if err != nil {
		return err
	}
	// Streamed: 100,000 elements' lines are some 50 MB.
	refs := make([][2]int, len(k.elems))
	err = p.Commit(func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		off := 0
		for i, el := range k.elems {
			n := 0
			for _, l := range el.hash.Lines() {
				bw.WriteString(l)
				bw.WriteByte('\n')
				n += len(l) + 1
			}
			refs[i] = [2]int{off, n}
			off += n
		}
		return bw.Flush()
	}, false)
	if err != nil {
		return err
	}
	for i, el := range k.elems {
		e.state.setKeys(el.n.s.ID, el.label, el.action, name+" "+strconv.Itoa(refs[i][0])+" "+strconv.Itoa(refs[i][1]))
	}
	k.elems = nil
	return nil
}

// keyLinesOf returns the key lines of an element's record in the key
// state (from the cache, where a record made before the packs kept them).
func (e *engine) keyLinesOf(step, label string, action cache.ActionID) ([]string, error) {
	es := e.state.elem(step, label)
	if es == nil || es.keys == "" {
		return e.cache.Key(action)
	}
	f := strings.Fields(es.keys)
	if len(f) != 3 || strings.ContainsAny(f[0], `/\.`) {
		return nil, errors.New("malformed key lines reference")
	}
	off, err1 := strconv.ParseInt(f[1], 10, 64)
	n, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || off < 0 || n <= 0 {
		return nil, errors.New("malformed key lines reference")
	}
	pf, err := os.Open(filepath.Join(keyPacksDir(e.plan.Root), f[0]))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	if st, err := pf.Stat(); err != nil || off+int64(n) > st.Size() {
		return nil, errors.New("key lines reference beyond its pack")
	}
	b := make([]byte, n)
	if _, err := pf.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("key lines: %w", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// pruneKeyPacks removes the packs of key lines that no record of the
// workspace's key states refers to, once older than a day (a run of
// another pipeline may have written one its state does not name yet).
func pruneKeyPacks(root string, now time.Time) error {
	ents, err := os.ReadDir(keyPacksDir(root))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	used := map[string]bool{}
	states, err := filepath.Glob(filepath.Join(root, ".lifeos", "state", "*.ids"))
	if err != nil {
		return err
	}
	for _, s := range states {
		if err := keyPacksUsed(s, used); err != nil {
			return err
		}
	}
	for _, ent := range ents {
		if used[ent.Name()] {
			continue
		}
		if info, err := ent.Info(); err != nil || now.Sub(info.ModTime()) < 24*time.Hour {
			continue
		}
		if err := os.Remove(filepath.Join(keyPacksDir(root), ent.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// keyPacksUsed adds the packs a key state file refers to.
func keyPacksUsed(path string, used map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "K ") {
			if name, _, ok := strings.Cut(line[2:], " "); ok {
				used[name] = true
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
