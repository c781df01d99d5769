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
	bundle, n, err := worker.BundleEntries(ctx, ids)
	if err != nil || n != 3 {
		t.Fatalf("bundle: %d entries, %v; want the 3 with their results inside", n, err)
	}
	worker.FlushRemote(ctx)
	if got, err := worker.AdoptEntries(bundle); err != nil || got != 0 {
		t.Errorf("the worker adopted %d of its own bundle (%v): it has them", got, err)
	}

	here := remoteCache(t, r)
	gets, tries := r.Gets, r.Tries
	if got, err := here.AdoptEntries(bundle); err != nil || got != 3 {
		t.Fatalf("adopted %d, %v; want 3", got, err)
	}
	here.FlushRemote(ctx)
	if r.Tries != tries {
		t.Errorf("adopting asked the store to put %d things, which it has", r.Tries-tries)
	}
	// One file for the bundle's entries, not one each.
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
	if r.Gets != gets+1 {
		t.Errorf("%d requests, want 1 (the bundle)", r.Gets-gets)
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
	if _, err := worker.PutBytes(id, []byte(`{"score":1}`)); err != nil {
		t.Fatal(err)
	}
	bundle, _, err := worker.BundleEntries(ctx, []ActionID{id})
	if err != nil {
		t.Fatal(err)
	}
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
