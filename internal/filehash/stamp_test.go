package filehash

import (
	"math"
	"testing"
)

// A stamp written as text reads back, with what follows it; a line that
// does not start with one does not.
func TestStampText(t *testing.T) {
	for _, s := range []Stamp{{}, {Size: 7, Mtime: -5, Ino: 42}, {Size: math.MaxInt64, Mtime: 1796040832810958289, Ino: math.MaxUint64}} {
		got, rest, ok := CutStamp(string(s.AppendText(nil)) + "a b.png")
		if !ok || got != s || rest != "a b.png" {
			t.Errorf("CutStamp(AppendText(%+v)) = %+v, %q, %v", s, got, rest, ok)
		}
	}
	for _, bad := range []string{"", "1 2", "1 2 3", "x 2 3 p", "1 -2 -3 p"} {
		if _, _, ok := CutStamp(bad); ok {
			t.Errorf("CutStamp(%q) read a stamp", bad)
		}
	}
}
