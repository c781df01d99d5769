// Package decnum reads the decimal numbers of lifeos's line formats (the
// key state, the stat cache) by hand: a no-op run over 1,000 files reads
// thousands of them, and strconv's generality was half their cost.
package decnum

import "math"

// CutUint parses the unsigned decimal number before the first space of s
// and returns what follows the space; ok is false when there is no
// space, no digit, anything else, or more than a uint64 holds.
func CutUint[S ~string | ~[]byte](s S) (n uint64, rest S, ok bool) {
	j := 0
	for ; j < len(s) && s[j] != ' '; j++ {
		c := uint64(s[j] - '0')
		if c > 9 || n > (math.MaxUint64-c)/10 {
			return 0, rest, false
		}
		n = n*10 + c
	}
	if j == 0 || j == len(s) {
		return 0, rest, false
	}
	return n, s[j+1:], true
}

// CutInt is CutUint for a number strconv.AppendInt wrote: perhaps
// negative (an mtime before 1970), at most math.MaxInt64 in magnitude.
func CutInt[S ~string | ~[]byte](s S) (int64, S, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	u, rest, ok := CutUint(s)
	if !ok || u > math.MaxInt64 {
		return 0, rest, false
	}
	if neg {
		return -int64(u), rest, true
	}
	return int64(u), rest, true
}
