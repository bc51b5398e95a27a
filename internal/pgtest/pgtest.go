// Package pgtest runs real PostgreSQL servers for tests: a primary, and a
// synchronous standby streaming from it, each from a temporary directory on
// a loopback port, stopped when the test ends. It uses Debian's PostgreSQL
// binaries (/usr/lib/postgresql/N/bin); when the process runs as root it
// runs them as the postgres user (initdb refuses root).
//
// Tests skip when PostgreSQL is not installed, unless
// TOLLGATE_REQUIRE_POSTGRES=1 (CI sets it after `make postgres`).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Password is the password of the role tollgate; tests hand it to the
// gateway through PGPASSWORD, as operators do.
const Password = "tollgate-test-password"

// Server is one PostgreSQL server.
type Server struct {
	Dir  string
	Port int
	bin  string
	t    testing.TB
	cmd  *exec.Cmd
}

// Bin returns the directory of PostgreSQL's binaries, or "" when none is
// installed.
func Bin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Need skips t when PostgreSQL is not installed (fails it when
// TOLLGATE_REQUIRE_POSTGRES=1) and returns the binaries' directory.
func Need(t testing.TB) string {
	t.Helper()
	bin := Bin()
	if bin == "" {
		if os.Getenv("TOLLGATE_REQUIRE_POSTGRES") == "1" {
			t.Fatal("PostgreSQL is required (TOLLGATE_REQUIRE_POSTGRES=1) but not installed: make postgres")
		}
		t.Skip("PostgreSQL is not installed (make postgres installs it)")
	}
	return bin
}

// StartPrimary initialises and starts a primary with the role and database
// tollgate (password Password, scram over TCP).
func StartPrimary(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Need(t), t: t, Dir: tempDir(t)}
	s.run("initdb", "-D", s.Dir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
	s.appendConf("wal_level = replica\nmax_wal_senders = 4\n")
	s.Start()
	s.Psql("postgres", "CREATE ROLE tollgate LOGIN PASSWORD '"+Password+"'")
	s.Psql("postgres", "CREATE DATABASE tollgate OWNER tollgate")
	return s
}

// StartStandby makes a streaming standby of primary named name, starts it
// and makes it synchronous: from then on every commit on the primary
// waits for it.
func (primary *Server) StartStandby(name string) *Server {
	t := primary.t
	t.Helper()
	s := &Server{bin: primary.bin, t: t, Dir: tempDir(t)}
	s.run("pg_basebackup", "-h", primary.Dir, "-p", strconv.Itoa(primary.Port), "-U", "postgres", "-D", s.Dir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	// After the primary_conninfo pg_basebackup -R wrote, so this one wins.
	s.appendFile("postgresql.auto.conf", fmt.Sprintf("primary_conninfo = 'host=%s port=%d user=postgres application_name=%s'\n", primary.Dir, primary.Port, name))
	s.Start()
	primary.Psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '"+name+"'")
	primary.Psql("postgres", "SELECT pg_reload_conf()")
	return s
}

// Start starts the server on a free loopback port, or again on its port
// after Kill.
func (s *Server) Start() {
	s.t.Helper()
	if s.Port == 0 {
		s.Port = freePort(s.t)
	}
	s.cmd = s.command("postgres", "-D", s.Dir, "-p", strconv.Itoa(s.Port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.Dir, "-c", "fsync=off", "-c", "full_page_writes=off")
	logFile, err := os.Create(filepath.Join(s.Dir, "server.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Kill stops runuser and postgres together
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(s.Kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exec.Command(filepath.Join(s.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port)).Run() == nil {
			return
		}
		if time.Now().After(deadline) || s.cmd.ProcessState != nil {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
			s.t.Fatalf("PostgreSQL did not start:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server at once, as a crash would: pg_ctl's immediate
// mode (every server process quits, nothing is written; the next start
// recovers from the WAL), then SIGKILL for whatever is left.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.command("pg_ctl", "stop", "-m", "immediate", "-w", "-t", "10", "-D", s.Dir).Run()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Promote makes a standby the primary.
func (s *Server) Promote() {
	s.t.Helper()
	s.run("pg_ctl", "promote", "-w", "-D", s.Dir)
}

// DSN returns a URL for the database tollgate as the role tollgate, without
// its password (PGPASSWORD carries it).
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://tollgate@127.0.0.1:%d/tollgate?sslmode=disable", s.Port)
}

// Psql runs sql in database db as the superuser (over the server's Unix
// socket, trusted) and returns its output.
func (s *Server) Psql(db, sql string) string {
	s.t.Helper()
	return s.run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", s.Dir, "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", db, "-c", sql)
}

func (s *Server) run(name string, args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := s.command(name, args...)
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// command runs a PostgreSQL binary, as the postgres user when this process
// is root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (s *Server) appendConf(text string) { s.appendFile("postgresql.conf", text) }

func (s *Server) appendFile(name, text string) {
	f, err := os.OpenFile(filepath.Join(s.Dir, name), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(text)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// tempDir is an empty directory the postgres user owns, mode 0700 (as
// PostgreSQL requires of a data directory).
func tempDir(t testing.TB) string {
	// As root the servers run as postgres, who must reach the directory:
	// /tmp, whatever TMPDIR says (it may lie under root's home).
	parent := ""
	if os.Geteuid() == 0 {
		parent = "/tmp"
	}
	base, err := os.MkdirTemp(parent, "tollgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
