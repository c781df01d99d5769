package temporalcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/lifeos/lifeos/internal/temporalrun"
)

// devConfig are the dynamic-config values that bring the dev server's
// latency per activity from about 100 ms to 12-25 ms (task queue
// partitions and the history queues' polling), measured on the project's
// 2-core machines.
var devConfig = []string{
	"matching.numTaskqueueReadPartitions=1",
	"matching.numTaskqueueWritePartitions=1",
	"history.transferProcessorMaxPollRPS=1000",
	"history.timerProcessorMaxPollRPS=1000",
	`history.timerProcessorMaxTimeShift="100ms"`,
}

// DevServer is a running Temporal development server.
type DevServer struct {
	Address string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartDevServer starts `temporal server start-dev` on 127.0.0.1:port
// (state in db, or in memory when db is ""), and waits until it serves.
// Port 0 is any free port. One free when chosen can be taken before the
// server binds it (tests start servers side by side), so a server that
// exits before it serves is started again on another, twice at most.
func StartDevServer(bin string, port int, db string, headless bool, logw io.Writer, config ...string) (*DevServer, error) {
	if port != 0 {
		return startDevServer(bin, port, db, headless, logw, config...)
	}
	var err error
	for range 3 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		var s *DevServer
		if s, err = startDevServer(bin, port, db, headless, logw, config...); !errors.Is(err, errExited) {
			return s, err
		}
	}
	return nil, err
}

// errExited is a dev server's exit before it served.
var errExited = errors.New("the Temporal dev server exited")

func startDevServer(bin string, port int, db string, headless bool, logw io.Writer, config ...string) (*DevServer, error) {
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--log-level", "warn"}
	if headless {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(port+1000))
	}
	if db != "" {
		args = append(args, "--db-filename", db)
	}
	for _, v := range append(slices.Clone(devConfig), config...) {
		args = append(args, "--dynamic-config-value", v)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the Temporal dev server: %w", err)
	}
	s := &DevServer{Address: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	// Serving in 0.2-0.6 s; a minute is for a loaded machine.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl, err := temporalrun.Dial(ctx, temporalrun.Conn{Address: s.Address, Namespace: "default"}, io.Discard)
		cancel()
		if err == nil {
			cl.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%w: %v", errExited, cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("the Temporal dev server did not serve within a minute: %v", err)
		}
	}
}

// Stop ends the server and waits for it.
func (s *DevServer) Stop() {
	s.cmd.Process.Kill()
	<-s.done
}
