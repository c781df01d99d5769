//go:build !linux

package pathglob

import (
	"io/fs"
	"os"
)

// dent is a directory entry: its name and type.
type dent struct {
	name string
	typ  fs.FileMode
}

// readDir lists a folder, unsorted.
func readDir(dir string) ([]dent, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]dent, len(ents))
	for i, e := range ents {
		out[i] = dent{name: e.Name(), typ: e.Type()}
		if t := e.Type(); t != 0 && t != fs.ModeDir && t != fs.ModeSymlink {
			out[i].typ = fs.ModeIrregular
		}
	}
	return out, nil
}
