// Package mapfile reads a file by mapping it into memory where the system
// allows it, for a process that reads one large file once and exits: the
// pages come from the page cache, many per page fault, instead of being
// copied into fresh heap pages one fault each (on the VMs lifeos is
// measured on, a page fault costs 10-16 µs in a slow hour).
package mapfile

import "os"

// Read returns the contents of the named file. Where the file is mapped
// (Unix), the mapping lasts for the rest of the process: the bytes must
// never be written, and the file must only ever be replaced (written
// elsewhere and renamed over), never truncated in place, since reading a
// page past a truncated end faults. An empty file is read as nil.
func Read(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 || int64(int(st.Size())) != st.Size() {
		return os.ReadFile(name)
	}
	if b, ok := mmap(f, int(st.Size())); ok {
		return b, nil
	}
	return os.ReadFile(name)
}
