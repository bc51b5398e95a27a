package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// The floor: a gateway is read against a bare proxy hop doing the same
// forwarding and nothing else (no authentication, metering or money), so
// that its cost per call can be judged against what any proxy pays, not
// only against calling the upstream directly. The hop is Go's standard
// httputil.ReverseProxy, flushing every write as a streaming proxy must,
// in its own process so that its CPU is measured the way the gateway's is.

// hopMaxIdleConns bounds the hop's idle upstream connections: above any
// benchmark's concurrency, so it never dials per call.
const hopMaxIdleConns = 16384

// ServeHop serves the floor hop on ln, forwarding everything to upstream,
// until ctx ends.
func ServeHop(ctx context.Context, ln net.Listener, upstream string) error {
	if _, err := CheckLoopbackURL(upstream); err != nil {
		return err
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // every write reaches the client at once, as SSE needs
	rp.Transport = &http.Transport{MaxIdleConns: hopMaxIdleConns, MaxIdleConnsPerHost: hopMaxIdleConns, DisableCompression: true}
	// A client that leaves mid-stream is logged by ReverseProxy as a copy
	// error: not the benchmark's output.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, ErrorLog: rp.ErrorLog}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Hop is the floor hop running as a child process (StartHop).
type Hop struct {
	cmd  *exec.Cmd
	addr string
}

// StartHop starts the floor hop as `<exe> hop -listen ADDR -upstream URL`
// (tollbench's hidden hop command) on a free loopback port and waits until
// it accepts connections.
func StartHop(ctx context.Context, exe, upstream string) (*Hop, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	h := &Hop{addr: addr, cmd: exec.Command(exe, "hop", "-listen", addr, "-upstream", upstream)}
	h.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, RuntimeEnv()...)
	h.cmd.Stderr = os.Stderr
	setDeathSignal(h.cmd)
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the floor hop: %w", err)
	}
	for deadline := time.Now().Add(DefaultReadyTimeout); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return h, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			h.Close()
			return nil, fmt.Errorf("the floor hop did not listen on %s within %s", addr, DefaultReadyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the hop's base URL.
func (h *Hop) URL() string { return "http://" + h.addr }

// Probe reads the hop's CPU time (it has no metrics of its own).
func (h *Hop) Probe() *GatewayProbe { return &GatewayProbe{Pid: h.cmd.Process.Pid} }

// Close stops the hop.
func (h *Hop) Close() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	_ = h.cmd.Wait()
}

// RuntimeEnv is the part of this process's environment the processes it
// measures get: the Go runtime's tuning knobs, so that `GOMAXPROCS=1
// tollbench run` measures one-core processes; nothing else (no
// credentials).
func RuntimeEnv() []string {
	var env []string
	for _, k := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
