package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/memstore"
	"github.com/lifeos/lifeos/internal/testdir"
)

func remoteCache(t *testing.T, r Remote) *Cache {
	t.Helper()
	c, err := Open(testdir.New(t))
	if err != nil {
		t.Fatal(err)
	}
	c.SetRemote(r, func(msg string) { t.Log(msg) })
	t.Cleanup(func() { c.FlushRemote(context.Background()); c.Close() })
	return c
}

func TestRemoteSharesResults(t *testing.T) {
	r := memstore.New()
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
	gets := r.Gets
	if _, _, err := b.GetBytes(action("large")); err != nil {
		t.Fatal(err)
	}
	if r.Gets != gets {
		t.Errorf("a second lookup asked the remote again: fetched results are kept locally")
	}
	if _, _, err := b.GetBytes(action("never stored")); !IsMiss(err) {
		t.Errorf("unknown action: %v, want a miss", err)
	}
}

func TestRemoteDamagedObjectIsAMissAndIsReplaced(t *testing.T) {
	r := memstore.New()
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
	r.Set(key, damaged)

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
	if got := r.Objs[key]; !bytes.Equal(got, large) {
		t.Fatal("the damaged remote object was not replaced by the good one")
	}
	c := remoteCache(t, r)
	if got, _, err := c.GetBytes(action("large")); err != nil || !bytes.Equal(got, large) {
		t.Fatalf("after repair: %v", err)
	}
}

func TestRemoteDamagedEntryIsAMiss(t *testing.T) {
	r := memstore.New()
	a := remoteCache(t, r)
	if _, err := a.PutBytes(action("small"), []byte("result")); err != nil {
		t.Fatal(err)
	}
	a.FlushRemote(context.Background())
	key := remoteKey(RemoteEntries, action("small"))
	for name, data := range map[string][]byte{
		"truncated":        r.Objs[key][:20],
		"other result":     append(bytes.Clone(r.Objs[key][:entrySize]), "RESULT"...),
		"for other action": bytes.Replace(r.Objs[key], []byte(action("small").String()), []byte(action("other").String()), 1),
	} {
		r.Set(key, data)
		b := remoteCache(t, r)
		if _, _, err := b.GetBytes(action("small")); !IsMiss(err) {
			t.Errorf("%s entry: %v, want a miss", name, err)
		}
	}
}

func TestRemoteEntryWaitsForItsObjects(t *testing.T) {
	r := memstore.New()
	r.BlockOn, r.Release = RemoteObjects, make(chan struct{})
	a := remoteCache(t, r)
	large := bytes.Repeat([]byte("z"), inlineMax+1)
	done := make(chan error)
	go func() { _, err := a.PutBytes(action("large"), large); done <- err }()
	if err := <-done; err != nil { // stored locally; the upload waits
		t.Fatal(err)
	}
	// Nothing can reach the remote while the object's upload is held: the
	// entry must not go ahead of it.
	r.Mu.Lock()
	puts := len(r.Puts)
	r.Mu.Unlock()
	if puts != 0 {
		t.Fatalf("puts before the object's: %v", r.Puts)
	}
	close(r.Release)
	a.FlushRemote(context.Background())
	if len(r.Puts) != 2 || !strings.HasPrefix(r.Puts[0], RemoteObjects) || !strings.HasPrefix(r.Puts[1], RemoteEntries) {
		t.Fatalf("put order %v, want the object then the entry", r.Puts)
	}
}

func TestRemoteEntriesAreCreateOnly(t *testing.T) {
	r := memstore.New()
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
	r := memstore.New()
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
	r := memstore.New()
	r.BlockOn, r.Release = RemoteObjects, make(chan struct{})
	defer close(r.Release)
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
	if _, ok := r.Objs[remoteKey(RemoteEntries, action("large"))]; ok {
		t.Error("the entry was uploaded after cancellation")
	}
}

func TestPushThenPull(t *testing.T) {
	// a ran without a shared cache; it pushes everything afterwards.
	a, err := Open(testdir.New(t))
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
	r := memstore.New()
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

	b, err := Open(testdir.New(t))
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

// Sending the cache or fetching what it lacks is not using its entries:
// neither renews them for Trim.
func TestPushAndPullDoNotRenewEntries(t *testing.T) {
	c := remoteCache(t, memstore.New())
	id := action("idle")
	if _, err := c.PutBytes(id, []byte("result")); err != nil {
		t.Fatal(err)
	}
	if err := c.PutPack([]ActionID{action("p")}, [][]byte{[]byte("packed")}); err != nil {
		t.Fatal(err)
	}
	c.FlushRemote(context.Background())
	packs, _ := filepath.Glob(filepath.Join(c.Dir(), packsDir, "*.pack"))
	files := append(packs, c.fileName(id, "a"))
	past := time.Now().Add(-20 * 24 * time.Hour).Truncate(time.Second)
	for _, f := range files {
		os.Chtimes(f, past, past)
	}
	c2, err := Open(c.Dir()) // a later process
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetRemote(memstore.New(), nil) // an empty remote: everything is sent
	if st, err := c2.Push(context.Background()); err != nil || st.Uploaded != 2 {
		t.Fatalf("push: %d uploaded, %v; want 2", st.Uploaded, err)
	}
	if _, err := c2.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || !st.ModTime().Equal(past) {
			t.Errorf("%s: mtime %v after push and pull, want %v (%v)", filepath.Base(f), st.ModTime(), past, err)
		}
	}
}

func TestOfflineRemoteIsSkipped(t *testing.T) {
	r := &deadRemote{}
	var warned []string
	c, err := Open(testdir.New(t))
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
	r := memstore.New()
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
	gets := r.Gets
	for _, id := range ids {
		if got, _, err := b.GetBytes(id); err != nil || !bytes.Equal(got, id[:]) {
			t.Fatalf("%s after prefetch: %v", id.Short(), err)
		}
	}
	if r.Gets != gets {
		t.Errorf("lookups after a prefetch asked the remote %d times", r.Gets-gets)
	}
}

// A cold batch is prefetched, then each element looked up to run it: the
// store is asked once per element, not twice.
func TestPrefetchedMissIsNotAskedAgain(t *testing.T) {
	r := memstore.New()
	c := remoteCache(t, r)
	now := time.Now()
	c.Now = func() time.Time { return now }
	a, b := action("a"), action("b")
	c.Prefetch([]ActionID{a, b})
	gets := r.Gets
	if _, _, err := c.GetBytes(a); !IsMiss(err) {
		t.Fatalf("after prefetch: %v, want a miss", err)
	}
	if r.Gets != gets {
		t.Errorf("the lookup after a prefetch that missed asked the store again")
	}
	// The answer serves one lookup; a later one asks.
	if _, _, err := c.GetBytes(a); !IsMiss(err) || r.Gets != gets+1 {
		t.Errorf("second lookup: %v, %d requests, want a miss and 1", err, r.Gets-gets)
	}
	// An answer older than missFresh is not taken: another machine may
	// have stored the entry since.
	other := remoteCache(t, r)
	if _, err := other.PutBytes(b, []byte("b")); err != nil {
		t.Fatal(err)
	}
	other.FlushRemote(context.Background())
	now = now.Add(missFresh + time.Second)
	if got, _, err := c.GetBytes(b); err != nil || string(got) != "b" {
		t.Errorf("a stale miss was taken: %q, %v", got, err)
	}
}

func TestWaitUploadsKeepsTheRemote(t *testing.T) {
	r := memstore.New()
	c := remoteCache(t, r)
	if _, err := c.PutBytes(action("one"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	first := c.WaitUploads(context.Background())
	if first.Uploaded != 1 {
		t.Fatalf("after the first wait: %d uploaded", first.Uploaded)
	}
	if _, err := c.PutBytes(action("two"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if d := RemoteStatsSince(c.WaitUploads(context.Background()), first); d.Uploaded != 1 {
		t.Errorf("the second run uploaded %d, want 1: waiting must not stop the uploads", d.Uploaded)
	}
}

// A result this cache holds and its remote lacks (made before the remote
// was attached) is put there by Share, with the objects it refers to, and
// found by another cache on the same remote; a result the process already
// put or found is not sent again.
func TestShareSendsWhatTheRemoteLacks(t *testing.T) {
	dir := testdir.New(t)
	local, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("image "), 2000) // an object, not inline
	obj, err := local.PutData(big)
	if err != nil {
		t.Fatal(err)
	}
	res := Result{Outputs: []byte(`{"n":1}`), Files: []File{
		{Path: "out/big.png", Object: obj, Size: int64(len(big)), Mode: 0o644},
		{Path: "out/small.txt", Object: Sum([]byte("s")), Size: 1, Mode: 0o644, Data: []byte("s")},
	}}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	id := action("made before the remote")
	if _, err := local.PutBytes(id, data); err != nil {
		t.Fatal(err)
	}
	local.Close()

	r := memstore.New()
	worker, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	worker.SetRemote(r, func(msg string) { t.Log(msg) })
	t.Cleanup(func() { worker.FlushRemote(context.Background()); worker.Close() })
	if worker.Shared(id) {
		t.Fatal("Shared before anything was put or found")
	}
	worker.Share(id, &res)
	if st := worker.WaitUploads(context.Background()); st.Failed != 0 || st.Uploaded != 2 { // the entry, the big object
		t.Fatalf("Share uploaded %d (failed %d: %v), want the entry and one object", st.Uploaded, st.Failed, st.FirstError)
	}
	if !worker.Shared(id) {
		t.Error("not Shared after Share")
	}
	puts := len(r.Puts)
	worker.Share(id, &res)
	worker.WaitUploads(context.Background())
	if len(r.Puts) != puts {
		t.Errorf("a second Share sent %v again", r.Puts[puts:])
	}

	other := remoteCache(t, r)
	got, _, err := other.GetBytes(id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("another cache on the remote: %v", err)
	}
	if b, err := other.ReadObject(obj, int64(len(big))); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("the result's object from the remote: %v", err)
	}
	if !other.Shared(id) {
		t.Error("an entry found in the remote is not Shared")
	}
}

// Sessions of one cache (the steps a worker carries out at once) wait for
// their own uploads and count their own: a step does not wait for the
// images another is still sending, nor report them as its own. An entry
// still waits for an object it refers to that another session queued.
func TestSessionsWaitForTheirOwnUploads(t *testing.T) {
	r := memstore.New()
	r.BlockOn, r.Release = "cas/", make(chan struct{})
	release := sync.OnceFunc(func() { close(r.Release) })
	c := remoteCache(t, r) // its cleanup waits for the uploads...
	t.Cleanup(release)     // ...which go on once released, even on a failure
	a, b := c.Session(), c.Session()
	large := bytes.Repeat([]byte("x"), inlineMax+1)
	if _, err := b.PutBytes(action("large"), large); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutBytes(action("small"), []byte(`{"score":1}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st := a.WaitUploads(ctx); ctx.Err() != nil || st.Uploaded != 1 {
		t.Fatalf("session a: %+v (%v); want its one entry uploaded without waiting for b's object", st, ctx.Err())
	}

	// The same large result under another action, through a: its entry
	// waits for the object b is still sending.
	if _, err := a.PutBytes(action("large too"), large); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelShort()
	a.WaitUploads(short)
	key := remoteKey(RemoteEntries, action("large too"))
	r.Mu.Lock()
	_, early := r.Objs[key]
	r.Mu.Unlock()
	if early {
		t.Fatal("an entry reached the store before the object it refers to")
	}
	release()
	if st := a.WaitUploads(context.Background()); st.Uploaded != 2 {
		t.Errorf("session a: %+v, want its 2 entries (b sent the object)", st)
	}
	if st := b.WaitUploads(context.Background()); st.Uploaded != 2 {
		t.Errorf("session b: %+v, want its object and entry", st)
	}
	if st := c.FlushRemote(context.Background()); st.Uploaded != 4 {
		t.Errorf("the whole cache: %+v, want the 4 uploads", st)
	}
}

// remoteOnly puts data in r as an object and returns its id.
func remoteOnly(r *memstore.Store, data []byte) OutputID {
	id := OutputID(Sum(data))
	r.Set(remoteKey(RemoteObjects, id), data)
	return id
}

// remoteDamaged puts data in r as an object with one bit flipped, and
// returns the id of data.
func remoteDamaged(r *memstore.Store, data []byte) OutputID {
	id := OutputID(Sum(data))
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 1
	r.Set(remoteKey(RemoteObjects, id), bad)
	return id
}

// An object only the remote holds is fetched, verified and kept, and
// what asked for it gets it exactly, whether restoring a file (CopyObject)
// or reading it (ReadObject, which keeps what arrives rather than reading
// it back); a damaged one gives nothing and is not kept.
func TestFetchFromRemote(t *testing.T) {
	for name, get := range map[string]func(t *testing.T, c *Cache, id OutputID) ([]byte, error){
		"CopyObject": func(t *testing.T, c *Cache, id OutputID) ([]byte, error) {
			dst := filepath.Join(testdir.New(t), "out", "a.png")
			if err := c.CopyObject(id, dst, 0o640, false); err != nil {
				if _, serr := os.Stat(dst); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("a failed restore left %s (%v)", dst, serr)
				}
				return nil, err
			}
			if fi, err := os.Stat(dst); err != nil {
				t.Error(err)
			} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 { // Windows keeps only a read-only bit
				t.Errorf("restored mode %v, want 0640", fi.Mode().Perm())
			}
			return os.ReadFile(dst)
		},
		"ReadObject": func(t *testing.T, c *Cache, id OutputID) ([]byte, error) {
			return c.ReadObject(id, -1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := memstore.New()
			c := remoteCache(t, r)
			data := bytes.Repeat([]byte("image "), 100_000)
			id := remoteOnly(r, data)
			if got, err := get(t, c, id); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes (%v), want the object's %d", len(got), err, len(data))
			}
			if got, err := os.ReadFile(c.ObjectPath(id)); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the fetched object is not kept as it was: %d bytes, %v", len(got), err)
			}

			bad := remoteDamaged(r, bytes.Repeat([]byte("other "), 100_000))
			if got, err := get(t, c, bad); err == nil {
				t.Fatalf("a damaged remote object was taken: %d bytes", len(got))
			}
			if _, err := os.Stat(c.ObjectPath(bad)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a damaged remote object was kept (%v)", err)
			}
		})
	}
}

// benchFetched measures get on an object of data the local cache lacks and
// the remote (in memory here) holds.
func benchFetched(b *testing.B, data []byte, get func(c *Cache, id OutputID) error) {
	r := memstore.New()
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c.SetRemote(r, func(string) {})
	defer c.Close()
	id := remoteOnly(r, data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		if err := os.Remove(c.ObjectPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := get(c, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyFetchedObject restores a 2 MB output from the remote: what
// a run's end on the submitting side of a Temporal run, or a second
// workspace sharing a bucket, does for each generated image.
func BenchmarkCopyFetchedObject(b *testing.B) {
	dst := filepath.Join(b.TempDir(), "a.png")
	benchFetched(b, bytes.Repeat([]byte("pixels, "), 2<<20/8), func(c *Cache, id OutputID) error {
		return c.CopyObject(id, dst, 0o644, false)
	})
}

// BenchmarkReadFetchedObject reads a 32 MiB object from the remote: a
// workspace snapshot's pack of small files, which every worker fetches.
func BenchmarkReadFetchedObject(b *testing.B) {
	benchFetched(b, bytes.Repeat([]byte("caption "), 32<<20/8), func(c *Cache, id OutputID) error {
		_, err := c.ReadObject(id, -1)
		return err
	})
}
