//go:build !unix

package steps

import "errors"

func freeDisk(string) (uint64, error) {
	return 0, errors.New("free disk space is not measured on this system")
}
