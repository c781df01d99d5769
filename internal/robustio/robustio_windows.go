package robustio

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// Windows errors that a rename over a file another handle has open gives
// for a moment (a reader, an antivirus scan, another writer renaming the
// same name): cmd/go's internal/robustio retries them the same way.
const (
	errorAccessDenied     syscall.Errno = 5
	errorSharingViolation syscall.Errno = 32
)

// retry calls f until it succeeds, fails otherwise than with a file in
// use, or two seconds have passed.
func retry(f func() error) error {
	delay := time.Millisecond
	for deadline := time.Now().Add(2 * time.Second); ; {
		err := f()
		if err == nil || !(errors.Is(err, errorAccessDenied) || errors.Is(err, errorSharingViolation)) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Rename is os.Rename, retried for up to two seconds while Windows says the
// target is in use.
func Rename(from, to string) error {
	return retry(func() error { return os.Rename(from, to) })
}

// ReadFile is os.ReadFile through Open.
func ReadFile(name string) ([]byte, error) {
	f, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Open is os.Open with FILE_SHARE_DELETE, so that another process (or
// this one) may rename over the file or delete it while it is read, as on
// Unix; retried for up to two seconds while Windows says it is in use.
func Open(name string) (f *os.File, err error) {
	err = retry(func() error {
		f, err = openShareDelete(name)
		return err
	})
	return f, err
}

func openShareDelete(name string) (*os.File, error) {
	p, err := syscall.UTF16PtrFromString(name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	h, err := syscall.CreateFile(p, syscall.GENERIC_READ,
		syscall.FILE_SHARE_READ|syscall.FILE_SHARE_WRITE|syscall.FILE_SHARE_DELETE,
		nil, syscall.OPEN_EXISTING, syscall.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}
