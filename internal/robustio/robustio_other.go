//go:build !windows

package robustio

import "os"

// Rename is os.Rename: on Unix a rename over an open file succeeds.
func Rename(from, to string) error { return os.Rename(from, to) }

// ReadFile is os.ReadFile.
func ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Open is os.Open.
func Open(name string) (*os.File, error) { return os.Open(name) }
