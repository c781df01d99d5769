// Package mapfile reads a file by mapping it into memory where the system
// allows it, for a process that reads one large file once and exits: the
// pages come from the page cache, many per page fault, instead of being
// copied into fresh heap pages one fault each (on the VMs lifeos is
// measured on, a page fault costs 10-16 µs in a slow hour).
package mapfile

import (
	"bytes"

	"github.com/lifeos/lifeos/internal/robustio"
)

// Read returns the contents of the named file. Where the file is mapped
// (Unix), the mapping lasts for the rest of the process: the bytes must
// never be written, and the file must only ever be replaced (written
// elsewhere and renamed over), never truncated in place, since reading a
// page past a truncated end faults. Elsewhere it is read as robustio
// reads it (on Windows, open to a rename over it meanwhile).
func Read(name string) ([]byte, error) {
	f, err := robustio.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size > 0 && int64(int(size)) == size {
		if b, ok := mmap(f, int(size)); ok {
			return b, nil
		}
	}
	// Read from the handle already open, in one allocation (as
	// os.ReadFile sizes its buffer): the size a stat gave, and room to see
	// the end or a file that grew since.
	var buf bytes.Buffer
	buf.Grow(int(size) + bytes.MinRead)
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}
