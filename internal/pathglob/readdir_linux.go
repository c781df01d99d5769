package pathglob

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// readDir lists a folder with getdents and the entries' types as the
// file system gives them, unsorted: os.File.ReadDir allocates a DirEntry
// per file, which for a folder of 10,000 images was most of the listing's
// cost. An entry whose type the file system does not give is stat'ed.
func readDir(dir string) ([]Entry, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var out []Entry
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		for b := buf[:n]; len(b) >= 19; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			typ, name := b[18], b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			b = b[reclen:]
			if s := string(name); s != "." && s != ".." {
				d := Entry{Name: s}
				switch typ {
				case unix.DT_REG:
				case unix.DT_DIR:
					d.Type = fs.ModeDir
				case unix.DT_LNK:
					d.Type = fs.ModeSymlink
				case unix.DT_UNKNOWN:
					info, err := os.Lstat(filepath.Join(dir, s))
					if err != nil {
						continue // gone meanwhile
					}
					d.Type = info.Mode().Type()
				default:
					d.Type = fs.ModeIrregular
				}
				out = append(out, d)
			}
		}
	}
}
