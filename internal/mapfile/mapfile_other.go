//go:build !unix

package mapfile

import "os"

// mmap never maps here: on Windows a mapped file cannot be replaced by a
// rename, which is how its writers update it.
func mmap(*os.File, int) ([]byte, bool) { return nil, false }
