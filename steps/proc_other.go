//go:build !unix

package steps

import "os/exec"

func setProcessGroup(*exec.Cmd) {}
