package cache

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/memstore"
)

// A worker bundles the entries of its elements; another machine adopts
// them with one request and then finds each without asking the store.
func TestEntryBundlesSaveRequests(t *testing.T) {
	ctx := context.Background()
	r := memstore.New()
	worker := remoteCache(t, r)
	var ids []ActionID
	for i := range 3 {
		id := action(fmt.Sprint("small ", i))
		if _, err := worker.PutBytes(id, []byte(fmt.Sprintf(`{"score":%d}`, i))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	large := bytes.Repeat([]byte("x"), inlineMax+1)
	if _, err := worker.PutBytes(action("large"), large); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, action("large"), action("never stored"))
	// Two chunks' bundles: the first two results, and the third.
	bundle, n, err := worker.BundleEntries(ctx, ids[:2])
	if err != nil || n != 2 {
		t.Fatalf("bundle: %d entries, %v; want 2", n, err)
	}
	bundle2, n, err := worker.BundleEntries(ctx, ids[2:])
	if err != nil || n != 1 {
		t.Fatalf("second bundle: %d entries, %v; want the 1 with its result inside", n, err)
	}
	worker.FlushRemote(ctx)
	if got, err := worker.AdoptEntries(bundle, bundle2); err != nil || got != 0 {
		t.Errorf("the worker adopted %d of its own bundles (%v): it has them", got, err)
	}

	here := remoteCache(t, r)
	gets, tries := r.Gets, r.Tries
	if got, err := here.AdoptEntries(bundle, bundle2); err != nil || got != 3 {
		t.Fatalf("adopted %d, %v; want 3", got, err)
	}
	here.FlushRemote(ctx)
	if r.Tries != tries {
		t.Errorf("adopting asked the store to put %d things, which it has", r.Tries-tries)
	}
	// One file for the bundles' entries, not one each, nor one a bundle.
	if st, err := here.Stats(); err != nil || st.Entries != 3 || st.Packs != 1 || st.Packed != 3 {
		t.Errorf("after adopting: %+v, %v; want 3 entries, in 1 pack", st, err)
	}
	for i, id := range ids[:3] {
		got, _, err := here.GetBytes(id)
		if want := fmt.Sprintf(`{"score":%d}`, i); err != nil || string(got) != want {
			t.Errorf("entry %d: %q, %v; want %q", i, got, err, want)
		}
		if !here.Shared(id) {
			t.Errorf("entry %d adopted but not known to be in the shared store", i)
		}
	}
	if r.Gets != gets+2 {
		t.Errorf("%d requests, want 2 (the bundles)", r.Gets-gets)
	}
	if got, _, err := here.GetBytes(action("large")); err != nil || !bytes.Equal(got, large) {
		t.Errorf("the large result, not bundled, is still found: %d bytes, %v", len(got), err)
	}
}

// A bundle is checked as entries fetched one by one are: a damaged one,
// or one whose entry is not what its action says, adopts nothing.
func TestEntryBundlesAreChecked(t *testing.T) {
	ctx := context.Background()
	r := memstore.New()
	worker := remoteCache(t, r)
	id := action("small")
	bundle := bundleOne(t, worker, id, `{"score":1}`)
	key := "cas/" + bundle.String()[:2] + "/" + bundle.String()
	r.Mu.Lock()
	b := bytes.Clone(r.Objs[key])
	r.Mu.Unlock()

	damaged := bytes.Replace(b, []byte(`"score":1`), []byte(`"score":9`), 1)
	r.Set(key, damaged)
	here := remoteCache(t, r)
	if n, err := here.AdoptEntries(bundle); err == nil || n != 0 {
		t.Errorf("damaged bundle: adopted %d, %v", n, err)
	}
	// Beside a good one, the good one is adopted.
	goodBundle := bundleOne(t, worker, action("good"), `{"score":2}`)
	worker.FlushRemote(ctx)
	if n, err := here.AdoptEntries(bundle, goodBundle); err == nil || n != 1 {
		t.Errorf("a damaged bundle and a good one: adopted %d, %v; want 1 and the error", n, err)
	}
	if st, err := here.Stats(); err != nil || st.Packed != 1 {
		t.Errorf("after adopting: %+v, %v; want the good bundle's entry alone", st, err)
	}

	// Well formed, but its entry is filed under another action.
	other := action("other")
	lying := bytes.Replace(b, id[:], other[:], 1)
	lid, err := worker.UploadData(ctx, lying)
	if err != nil || !lid {
		t.Fatal(err)
	}
	here = remoteCache(t, r)
	if n, err := here.AdoptEntries(Sum(lying)); err == nil || n != 0 || !strings.Contains(err.Error(), "entry") {
		t.Errorf("an entry filed under another action: adopted %d, %v", n, err)
	}
	if _, _, err := here.GetBytes(other); !IsMiss(err) {
		t.Errorf("the lying entry is served: %v", err)
	}
}

// bundleOne stores result under id in c and bundles that one entry.
func bundleOne(t *testing.T, c *Cache, id ActionID, result string) OutputID {
	t.Helper()
	if _, err := c.PutBytes(id, []byte(result)); err != nil {
		t.Fatal(err)
	}
	bundle, _, err := c.BundleEntries(context.Background(), []ActionID{id})
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}
