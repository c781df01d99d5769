// Package s3test starts a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw) serving a folder on a loopback port. Its
// buckets are folders, so a test can damage an object on disk.
//
// The binary is $LIFEOS_VERSITYGW, else versitygw on PATH, else the
// project's .tools/bin/versitygw, where .ci/run builds it.
package s3test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Credentials of every server started here: test values, not secrets.
const (
	AccessKey = "lifeos-test"
	SecretKey = "lifeos-test-secret"
)

// ErrNoServer says versitygw is not installed.
var ErrNoServer = errors.New("versitygw not found (set LIFEOS_VERSITYGW, or build it: see .ci/run)")

// Required reports whether tests must have the server rather than skip:
// in CI (CI set), which builds it, except under Wine, where it is a Linux
// binary the Windows tests cannot start.
func Required() bool {
	return os.Getenv("CI") != "" && os.Getenv("LIFEOS_UNDER_WINE") == ""
}

// Server is a running versitygw.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Dir  string // where its buckets are folders
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of versitygw; ErrNoServer when there is none.
// repo is the project's root, for its .tools folder.
func Binary(repo string) (string, error) {
	if runtime.GOOS == "windows" {
		// The tests under Wine see the Linux build's path: not for them.
		return "", ErrNoServer
	}
	if p := os.Getenv("LIFEOS_VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	p := filepath.Join(repo, ".tools", "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", ErrNoServer
}

// Start runs the server at bin over dir, with the given buckets made, and
// waits until it answers its health check. Options go to the posix
// backend (-nometa makes it ignore conditional writes).
func Start(bin, dir string, buckets []string, opts ...string) (*Server, error) {
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(dir, b), 0o777); err != nil {
			return nil, err
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"--port", addr, "--health", "/health", "--quiet", "--keep-alive", "posix"}, opts...)
	cmd := exec.Command(bin, append(args, dir)...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	s := &Server{URL: "http://" + addr, Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	// Ready in about 0.1 s; ten seconds is for a loaded machine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("versitygw exited before it was ready")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw not ready after 10 s: %v", err)
		}
	}
}

// Env is what a client needs to reach the server.
func (s *Server) Env() []string {
	return []string{"AWS_ENDPOINT_URL=" + s.URL, "AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=us-east-1"}
}

// Stop ends the server and waits for it.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// FreePort returns a loopback TCP port free at the moment.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
