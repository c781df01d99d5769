package runner

import (
	"fmt"
	"sync"
	"testing"
)

// TestSeenStamps: a stamp kept is found until the next clear; one confirmed
// before a clear is not kept after it; a clear lets the maps go.
func TestSeenStamps(t *testing.T) {
	var s seenStamps
	s.reserve(100)
	a := stamp{path: "out/a.size", size: 2, mtime: 7, ino: 9}
	gen := s.generation()
	s.putAll([]stamp{a, {path: "out/b.size", size: 3}}, gen)
	if st, ok := s.get("out/a.size"); !ok || st != a {
		t.Fatalf("get after putAll: %v %v", st, ok)
	}
	if _, ok := s.get("out/c.size"); ok {
		t.Fatal("a stamp never kept is found")
	}
	s.clear()
	if _, ok := s.get("out/a.size"); ok {
		t.Fatal("a stamp is found after a clear")
	}
	for i := range s.shards {
		if s.shards[i].m != nil {
			t.Fatalf("shard %d keeps its map after a clear", i)
		}
	}
	s.putAll([]stamp{a}, gen) // confirmed before the clear
	if _, ok := s.get("out/a.size"); ok {
		t.Fatal("a stamp confirmed before a clear is kept after it")
	}
	s.putAll([]stamp{a}, s.generation())
	if _, ok := s.get("out/a.size"); !ok {
		t.Fatal("a stamp confirmed after the clear is not kept")
	}
}

// TestSeenStampsConcurrent is for the race detector: workers keeping and
// looking up stamps while elements that run clear them.
func TestSeenStampsConcurrent(t *testing.T) {
	var s seenStamps
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < 50; b++ {
				gen := s.generation()
				batch := make([]stamp, 20)
				for i := range batch {
					batch[i] = stamp{path: fmt.Sprintf("out/%d-%d-%d", w, b, i), size: int64(i)}
				}
				s.putAll(batch, gen)
				for _, want := range batch { // kept, or cleared by another worker
					if st, ok := s.get(want.path); ok && st != want {
						t.Errorf("%s: %v, want %v", want.path, st, want)
					}
				}
				if w == 0 && b%10 == 0 {
					s.clear()
				}
			}
		}()
	}
	wg.Wait()
}
