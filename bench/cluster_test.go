package bench

import (
	"errors"
	"testing"
)

// TestCheckClusterDSN: a benchmark's PostgreSQL is on loopback (every host
// of a multi-host URL), named by a postgres:// URL without a password.
func TestCheckClusterDSN(t *testing.T) {
	for _, ok := range []string{
		"postgres://tollgate@127.0.0.1:5432/tollgate?sslmode=disable",
		"postgresql://localhost/tollgate",
		"postgres://u@127.0.0.1:5432,127.0.0.1:5433/db?target_session_attrs=read-write",
		"postgres://[::1]:5432/db",
	} {
		if err := CheckClusterDSN(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "host=127.0.0.1 dbname=tollgate", "mysql://127.0.0.1/db", "postgres:///db",
		"postgres://u:secret@127.0.0.1/db",
		"postgres://db.example.com/tollgate",
		"postgres://127.0.0.1:5432,10.0.0.5:5432/db",
		"postgres://127.0.0.1/db?host=db.example.com",
		"postgres://127.0.0.1/db?hostaddr=10.0.0.5",
		"postgres://127.0.0.1/db?password=x",
	} {
		if err := CheckClusterDSN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := CheckClusterDSN("postgres://10.1.2.3/db"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("a remote host: %v, want ErrNotLoopback", err)
	}
}

// TestTargetsSpreadEveryKey: with several targets, every key's calls reach
// every target, also when keys and targets are in step (16 and 2).
func TestTargetsSpreadEveryKey(t *testing.T) {
	l := &loader{cfg: LoadConfig{Keys: make([]string, 16)}, targets: make([]target, 2)}
	seen := map[[2]int64]bool{}
	for seq := range int64(64) {
		seen[[2]int64{seq % 16, l.targetOf(seq)}] = true
	}
	if len(seen) != 32 {
		t.Fatalf("%d of the 32 key and target pairs were used", len(seen))
	}
}
