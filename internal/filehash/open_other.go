//go:build !unix

package filehash

import "os"

func open(path string) (file, error) { return os.Open(path) }
