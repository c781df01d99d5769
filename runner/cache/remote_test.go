package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"
)

// memRemote is a Remote in memory, with create-only puts honoured; it
// records the order of puts.
type memRemote struct {
	mu      sync.Mutex
	objs    map[string][]byte
	puts    []string
	gets    int
	blockOn string        // a key whose put waits for release
	release chan struct{} // closed to let it go
}

func newMemRemote() *memRemote { return &memRemote{objs: map[string][]byte{}} }

func (m *memRemote) String() string { return "mem://test/" }

func (m *memRemote) Get(_ context.Context, key string, w io.Writer) (int64, error) {
	m.mu.Lock()
	m.gets++
	b, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (m *memRemote) Put(ctx context.Context, key string, r io.ReadSeeker, size int64, ifAbsent bool) error {
	if m.blockOn != "" && strings.HasPrefix(key, m.blockOn) {
		select {
		case <-m.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %s: %d bytes, said %d", key, len(b), size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; ok && ifAbsent {
		return fmt.Errorf("put %s: %w", key, fs.ErrExist)
	}
	m.objs[key] = b
	m.puts = append(m.puts, key)
	return nil
}

func (m *memRemote) Stat(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return 0, fs.ErrNotExist
	}
	return int64(len(b)), nil
}

func (m *memRemote) List(_ context.Context, prefix string, fn func(string, int64) error) error {
	m.mu.Lock()
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, int64(len(m.objs[k]))); err != nil {
			return err
		}
	}
	return nil
}

func (m *memRemote) set(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
}

func remoteCache(t *testing.T, r Remote) *Cache {
	t.Helper()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.SetRemote(r, func(msg string) { t.Log(msg) })
	t.Cleanup(func() { c.FlushRemote(context.Background()); c.Close() })
	return c
}

func TestRemoteSharesResults(t *testing.T) {
	r := newMemRemote()
	a := remoteCache(t, r)
	small, large := []byte(`{"score":0.9}`), bytes.Repeat([]byte("x"), inlineMax+1)
	if _, err := a.PutBytes(action("small"), small); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutBytes(action("large"), large); err != nil {
		t.Fatal(err)
	}
	st := a.FlushRemote(context.Background())
	if st.Uploaded != 3 || st.Failed != 0 { // two entries, one object
		t.Fatalf("uploaded %d (failed %d), want 3 and 0: %v", st.Uploaded, st.Failed, st.FirstError)
	}

	b := remoteCache(t, r)
	for name, want := range map[string][]byte{"small": small, "large": large} {
		got, _, err := b.GetBytes(action(name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: got %d bytes, %v", name, len(got), err)
		}
	}
	gets := r.gets
	if _, _, err := b.GetBytes(action("large")); err != nil {
		t.Fatal(err)
	}
	if r.gets != gets {
		t.Errorf("a second lookup asked the remote again: fetched results are kept locally")
	}
	if _, _, err := b.GetBytes(action("never stored")); !IsMiss(err) {
		t.Errorf("unknown action: %v, want a miss", err)
	}
}

func TestRemoteDamagedObjectIsAMissAndIsReplaced(t *testing.T) {
	r := newMemRemote()
	a := remoteCache(t, r)
	large := bytes.Repeat([]byte("y"), inlineMax+100)
	out, err := a.PutBytes(action("large"), large)
	if err != nil {
		t.Fatal(err)
	}
	a.FlushRemote(context.Background())
	key := remoteKey(RemoteObjects, out)
	damaged := bytes.Clone(large)
	damaged[10] = 'z'
	r.set(key, damaged)

	b := remoteCache(t, r)
	if data, _, err := b.GetBytes(action("large")); !IsMiss(err) || data != nil {
		t.Fatalf("damaged remote object: %d bytes, %v; want a miss", len(data), err)
	}
	if _, err := b.PutBytes(action("large"), large); err != nil { // b ran the step again
		t.Fatal(err)
	}
	if st := b.FlushRemote(context.Background()); st.Damaged != 1 {
		t.Errorf("damaged count %d, want 1", st.Damaged)
	}
	if got := r.objs[key]; !bytes.Equal(got, large) {
		t.Fatal("the damaged remote object was not replaced by the good one")
	}
	c := remoteCache(t, r)
	if got, _, err := c.GetBytes(action("large")); err != nil || !bytes.Equal(got, large) {
		t.Fatalf("after repair: %v", err)
	}
}

func TestRemoteDamagedEntryIsAMiss(t *testing.T) {
	r := newMemRemote()
	a := remoteCache(t, r)
	if _, err := a.PutBytes(action("small"), []byte("result")); err != nil {
		t.Fatal(err)
	}
	a.FlushRemote(context.Background())
	key := remoteKey(RemoteEntries, action("small"))
	for name, data := range map[string][]byte{
		"truncated":        r.objs[key][:20],
		"other result":     append(bytes.Clone(r.objs[key][:entrySize]), "RESULT"...),
		"for other action": bytes.Replace(r.objs[key], []byte(action("small").String()), []byte(action("other").String()), 1),
	} {
		r.set(key, data)
		b := remoteCache(t, r)
		if _, _, err := b.GetBytes(action("small")); !IsMiss(err) {
			t.Errorf("%s entry: %v, want a miss", name, err)
		}
	}
}

func TestRemoteEntryWaitsForItsObjects(t *testing.T) {
	r := newMemRemote()
	r.blockOn, r.release = RemoteObjects, make(chan struct{})
	a := remoteCache(t, r)
	large := bytes.Repeat([]byte("z"), inlineMax+1)
	done := make(chan error)
	go func() { _, err := a.PutBytes(action("large"), large); done <- err }()
	if err := <-done; err != nil { // stored locally; the upload waits
		t.Fatal(err)
	}
	// Nothing can reach the remote while the object's upload is held: the
	// entry must not go ahead of it.
	r.mu.Lock()
	puts := len(r.puts)
	r.mu.Unlock()
	if puts != 0 {
		t.Fatalf("puts before the object's: %v", r.puts)
	}
	close(r.release)
	a.FlushRemote(context.Background())
	if len(r.puts) != 2 || !strings.HasPrefix(r.puts[0], RemoteObjects) || !strings.HasPrefix(r.puts[1], RemoteEntries) {
		t.Fatalf("put order %v, want the object then the entry", r.puts)
	}
}

func TestRemoteEntriesAreCreateOnly(t *testing.T) {
	r := newMemRemote()
	a := remoteCache(t, r)
	if _, err := a.PutBytes(action("x"), []byte("first")); err != nil {
		t.Fatal(err)
	}
	a.FlushRemote(context.Background())
	b := remoteCache(t, r)
	if _, err := b.PutBytes(action("x"), []byte("second")); err != nil { // a racing writer
		t.Fatal(err)
	}
	if st := b.FlushRemote(context.Background()); st.Uploaded != 0 || st.Failed != 0 {
		t.Errorf("second writer: %+v, want nothing uploaded and no failure", st)
	}
	c := remoteCache(t, r)
	if got, _, err := c.GetBytes(action("x")); err != nil || string(got) != "first" {
		t.Fatalf("got %q, %v; want the first writer's", got, err)
	}
}

func TestRemotePackedResultsAreSharedOneByOne(t *testing.T) {
	r := newMemRemote()
	a := remoteCache(t, r)
	ids := []ActionID{action("1"), action("2"), action("3")}
	data := [][]byte{[]byte("one"), []byte("two"), bytes.Repeat([]byte("3"), inlineMax+1)}
	if err := a.PutPack(ids, data); err != nil {
		t.Fatal(err)
	}
	a.FlushRemote(context.Background())
	b := remoteCache(t, r)
	for i, id := range ids {
		if got, _, err := b.GetBytes(id); err != nil || !bytes.Equal(got, data[i]) {
			t.Fatalf("packed result %d: %v", i, err)
		}
	}
}

func TestRemoteFlushAbandonsUploadsWhenCancelled(t *testing.T) {
	r := newMemRemote()
	r.blockOn, r.release = RemoteObjects, make(chan struct{})
	defer close(r.release)
	a := remoteCache(t, r)
	if _, err := a.PutBytes(action("large"), bytes.Repeat([]byte("q"), inlineMax+1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := a.FlushRemote(ctx)
	if st.Uploaded > 1 {
		t.Errorf("uploaded %d after cancellation", st.Uploaded)
	}
	if _, ok := r.objs[remoteKey(RemoteEntries, action("large"))]; ok {
		t.Error("the entry was uploaded after cancellation")
	}
}

func TestPushThenPull(t *testing.T) {
	// a ran without a shared cache; it pushes everything afterwards.
	a, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	large := bytes.Repeat([]byte("L"), inlineMax+5)
	if _, err := a.PutBytes(action("small"), []byte("small")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutBytes(action("large"), large); err != nil {
		t.Fatal(err)
	}
	if err := a.PutPack([]ActionID{action("p1"), action("p2")}, [][]byte{[]byte("one"), []byte("two")}); err != nil {
		t.Fatal(err)
	}
	r := newMemRemote()
	a.SetRemote(r, nil)
	st, err := a.Push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploaded != 5 { // one object, four entries
		t.Fatalf("push uploaded %d, want 5", st.Uploaded)
	}
	if st, err := a.Push(context.Background()); err != nil || st.Uploaded != 0 {
		t.Fatalf("second push: %d uploaded, %v; want nothing", st.Uploaded, err)
	}

	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetRemote(r, nil)
	if st, err := b.Pull(context.Background()); err != nil || st.Fetched != 5 {
		t.Fatalf("pull fetched %d, %v; want 5", st.Fetched, err)
	}
	b.FlushRemote(context.Background())
	b.remote = nil // from here on, b is on its own
	for name, want := range map[string][]byte{"small": []byte("small"), "large": large, "p1": []byte("one"), "p2": []byte("two")} {
		if got, _, err := b.GetBytes(action(name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after pull: %q, %v", name, got, err)
		}
	}
}

func TestOfflineRemoteIsSkipped(t *testing.T) {
	r := &deadRemote{}
	var warned []string
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRemote(r, func(msg string) { warned = append(warned, msg) })
	for i := range 10 {
		if _, _, err := c.GetBytes(action(fmt.Sprint(i))); !IsMiss(err) {
			t.Fatalf("lookup %d: %v, want a miss", i, err)
		}
	}
	if r.calls != offlineAfter {
		t.Errorf("%d requests to an unreachable remote, want %d", r.calls, offlineAfter)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "unreachable") {
		t.Errorf("warnings %q, want one saying it is unreachable", warned)
	}
	if _, err := c.PutBytes(action("x"), []byte("x")); err != nil {
		t.Fatalf("a store must work without its remote: %v", err)
	}
	if st := c.FlushRemote(context.Background()); st.Failed != 1 || r.calls != offlineAfter {
		t.Errorf("after going offline: %d failed uploads and %d requests", st.Failed, r.calls)
	}
}

// deadRemote fails every request as an unreachable service does.
type deadRemote struct {
	mu    sync.Mutex
	calls int
}

func (d *deadRemote) fail() error {
	d.mu.Lock()
	d.calls++
	d.mu.Unlock()
	return errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
}
func (d *deadRemote) String() string { return "dead://" }
func (d *deadRemote) Get(context.Context, string, io.Writer) (int64, error) {
	return 0, d.fail()
}
func (d *deadRemote) Put(context.Context, string, io.ReadSeeker, int64, bool) error {
	return d.fail()
}
func (d *deadRemote) Stat(context.Context, string) (int64, error) { return 0, d.fail() }
func (d *deadRemote) List(context.Context, string, func(string, int64) error) error {
	return d.fail()
}

func TestPrefetchCopiesIn(t *testing.T) {
	r := newMemRemote()
	a := remoteCache(t, r)
	ids := []ActionID{action("1"), action("2"), action("3")}
	for _, id := range ids {
		if _, err := a.PutBytes(id, id[:]); err != nil {
			t.Fatal(err)
		}
	}
	a.FlushRemote(context.Background())
	b := remoteCache(t, r)
	b.Prefetch(append(ids, action("not there")))
	gets := r.gets
	for _, id := range ids {
		if got, _, err := b.GetBytes(id); err != nil || !bytes.Equal(got, id[:]) {
			t.Fatalf("%s after prefetch: %v", id.Short(), err)
		}
	}
	if r.gets != gets {
		t.Errorf("lookups after a prefetch asked the remote %d times", r.gets-gets)
	}
}
