package atomicfile

import (
	"fmt"
	"os"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// SyncsFS says a Batch flushes file systems whole: its writers write
// unsynced and Add what they wrote.
const SyncsFS = true

// syncFS flushes, once each, the file systems the folders are on.
func syncFS(dirs map[string]bool) error {
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names) // the same order, and so the same error, each time
	done := map[uint64]bool{}
	for _, d := range names {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
		var dev uint64
		if info, err := f.Stat(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				dev = st.Dev
			}
		}
		if dev == 0 || !done[dev] {
			err = unix.Syncfs(int(f.Fd()))
			done[dev] = err == nil && dev != 0
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
	}
	return nil
}
