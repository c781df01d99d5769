//go:build !linux

package pathglob

import (
	"io/fs"
	"os"
)

// readDir lists a folder, unsorted.
func readDir(dir string) ([]Entry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(ents))
	for i, e := range ents {
		out[i] = Entry{Name: e.Name(), Type: e.Type()}
		if t := e.Type(); t != 0 && t != fs.ModeDir && t != fs.ModeSymlink {
			out[i].Type = fs.ModeIrregular
		}
	}
	return out, nil
}
