//go:build !linux

package cache

import (
	"io"
	"time"

	"github.com/lifeos/lifeos/internal/robustio"
)

func readSmall(name string, buf []byte) (int, time.Time, error) {
	f, err := robustio.Open(name)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, time.Time{}, err
	}
	n, err := io.ReadFull(f, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, st.ModTime(), err
}
