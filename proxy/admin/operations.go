package admin

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/proxy/views"
)

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok\n") }

// readyz is GET /readyz: 200 while the gateway can take holds, 503 with
// the reason (the disk short of space, the WAL failed, a sync stalled)
// while it cannot.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", err)
			return
		}
	}
	fmt.Fprint(w, "ready\n")
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	metrics.WritePrometheus(w, true)
}

// profile serves Go's profiles (for profiling a gateway under load with
// tollbench): profile?seconds=N (CPU), trace, and the named ones (heap,
// allocs, goroutine, block, mutex, threadcreate).
func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	switch name := r.PathValue("profile"); name {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}

// backupBody is the body of POST /admin/v1/backup.
type backupBody struct {
	Dir                string `json:"dir"`
	IncludeIPDigestKey bool   `json:"include_ip_digest_key"`
}

// backup writes a copy of the data directory to dir. The IP digest key
// stays out unless asked for, so that a backup alone cannot be used to
// test guesses of client addresses against the digests.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	var b backupBody
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	if b.Dir == "" || len(b.Dir) > 4096 || strings.ContainsRune(b.Dir, 0) {
		badRequest(w, fmt.Errorf("dir: required, a path of at most 4096 bytes"))
		return
	}
	if s.cfg.Backup == nil {
		writeError(w, http.StatusNotImplemented, views.APIError, "backups are not configured")
		return
	}
	if err := s.cfg.Backup(b.Dir, b.IncludeIPDigestKey); err != nil {
		writeError(w, http.StatusConflict, views.ConflictError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, b)
}
