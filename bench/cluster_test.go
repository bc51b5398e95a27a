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
	} {
		if err := CheckClusterDSN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := CheckClusterDSN("postgres://10.1.2.3/db"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("a remote host: %v, want ErrNotLoopback", err)
	}
}
