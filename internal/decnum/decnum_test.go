package decnum

import (
	"math"
	"strconv"
	"testing"
)

// What strconv writes reads back, with what follows; anything else does not.
func TestCut(t *testing.T) {
	for _, n := range []int64{0, 7, -1, -86400e9, 1796040832810958289, math.MaxInt64} {
		got, rest, ok := CutInt(strconv.FormatInt(n, 10) + " tail x")
		if !ok || got != n || rest != "tail x" {
			t.Errorf("CutInt(%d) = %d, %q, %v", n, got, rest, ok)
		}
	}
	if got, rest, ok := CutUint([]byte("18446744073709551615 p")); !ok || got != math.MaxUint64 || string(rest) != "p" {
		t.Errorf("CutUint(max) = %d, %q, %v", got, rest, ok)
	}
	for _, bad := range []string{"", "1", " 1", "-", "- 1", "x 1", "1x 2", "--1 2", "9223372036854775808 p", "-9223372036854775809 p"} {
		if n, _, ok := CutInt(bad); ok {
			t.Errorf("CutInt(%q) = %d, want no number", bad, n)
		}
	}
	if n, _, ok := CutUint("18446744073709551616 p"); ok {
		t.Errorf("CutUint(2^64) = %d, want no number", n)
	}
}
