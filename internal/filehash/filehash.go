// Package filehash computes the SHA-256 of files, with pooled read buffers:
// hashing thousands of small dataset files is otherwise dominated by
// allocating and clearing a fresh 32 KiB io.Copy buffer per file.
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"
)

var bufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// Sum returns the SHA-256 of the file at path and the number of bytes read.
func Sum(path string) (sum [sha256.Size]byte, n int64, err error) {
	return SumLook(path, nil)
}

// SumLook is Sum that first lets look read the file from its start, when
// look is not nil: what look reads is hashed, then the rest of the file is.
// A caller that needs a file's header (an image's dimensions) or all of a
// small file (a caption) as well as its digest so reads it once. An error
// from look ends the hashing and is returned as it is.
func SumLook(path string, look func(io.Reader) error) (sum [sha256.Size]byte, n int64, err error) {
	return SumLookSize(path, -1, look)
}

// SumLookSize is SumLook for a file the caller has just stat'ed: it reads
// size bytes (when size >= 0) and stops there, as git does, without asking
// for the end of the file: on 10,000 small files, that read is a fifth of
// the system calls. A file that grew since is hashed as it was; the caller
// compares the stat again before trusting the digest later.
func SumLookSize(path string, size int64, look func(io.Reader) error) (sum [sha256.Size]byte, n int64, err error) {
	f, err := open(path)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	return sumFile(f, path, size, look)
}

// SumLookStat is SumLookSize for a file not stat'ed yet: it is opened
// first and stat'ed through its descriptor on Linux (no second lookup of
// its path: 7% of a cold manifest of 10,000 tiny images), then read to the
// size it had. st is that stamp; a folder is not read (dir).
func SumLookStat(path string, look func(io.Reader) error) (sum [sha256.Size]byte, st Stamp, dir bool, n int64, err error) {
	f, err := open(path)
	if err != nil {
		return sum, st, false, 0, err
	}
	defer f.Close()
	if st, dir, err = statOpen(f, path); err != nil || dir {
		return sum, st, dir, 0, err
	}
	sum, n, err = sumFile(f, path, st.Size, look)
	return sum, st, false, n, err
}

// sumFile hashes the open file f (SumLookSize).
func sumFile(f file, path string, size int64, look func(io.Reader) error) (sum [sha256.Size]byte, n int64, err error) {
	r := &hashingReader{f: f, h: sha256.New(), limit: size}
	if look != nil {
		if err := look(r); err != nil {
			return sum, r.n, err
		}
	}
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	for {
		_, rerr := r.Read(*bp)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sum, r.n, fmt.Errorf("hash %s: %w", path, rerr)
		}
	}
	r.h.Sum(sum[:0])
	return sum, r.n, nil
}

// hashingReader hashes and counts every byte read through it, up to
// limit when limit >= 0.
type hashingReader struct {
	f     file
	h     hash.Hash
	n     int64
	limit int64
}

func (r *hashingReader) Read(p []byte) (int, error) {
	if r.limit >= 0 {
		if r.n >= r.limit {
			return 0, io.EOF
		}
		p = p[:min(int64(len(p)), r.limit-r.n)]
	}
	k, err := r.f.Read(p)
	r.h.Write(p[:k])
	r.n += int64(k)
	return k, err
}

// file is the little of *os.File hashing needs.
type file interface {
	io.Reader
	Close() error
}

// Hex is Sum as a hex string, as sha256sum prints it.
func Hex(path string) (string, error) {
	sum, _, err := Sum(path)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}
