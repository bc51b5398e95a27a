package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/wal"
)

func TestVerify(t *testing.T) {
	dataDir := t.TempDir()
	log, err := wal.Open(walDir(dataDir), wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(log, ledger.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ledger.AccountSpec{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.TopUp(ledger.TopUpRequest{Account: "acme", Amount: 5 * money.NanosPerCredit, OrderID: "o1", Credit: ledger.CreditPaid}); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Hold("acme", "req_1", "k", money.NanosPerCredit); err != nil || c.Wait() != nil {
		t.Fatal(err)
	}
	if c, err := l.Settle("req_1", 300_000_000, nil); err != nil || c.Wait() != nil {
		t.Fatal(err)
	}
	if c, err := l.Hold("acme", "req_2", "k", money.NanosPerCredit); err != nil || c.Wait() != nil {
		t.Fatal(err)
	}
	log.Close()

	var out bytes.Buffer
	if err := runVerify([]string{"--data-dir", dataDir}, &out); err != nil {
		t.Fatalf("verify failed on a sound directory: %s\n%s", err, out.String())
	}
	for _, want := range []string{"accounts   1", "entries    4", "open holds 1", "charged    0.3", "held       1\n", "available  3.7", "OK"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, out.String())
		}
	}

	// A record that contradicts the state: a settlement of a hold that is not open.
	log, err = wal.Open(walDir(dataDir), wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	seq := log.Append(&wal.Record{Kind: 7, Entry: true, Account: "acme", Body: []byte{5, 'n', 'o', 'p', 'e', '!', 2, 2, 0, 0}})
	if err := log.Wait(seq); err != nil {
		t.Fatal(err)
	}
	log.Close()
	out.Reset()
	if err := runVerify([]string{"--data-dir", dataDir}, &out); err == nil {
		t.Fatalf("verify passed a contradictory log:\n%s", out.String())
	}
	if err := runVerify([]string{"--data-dir", t.TempDir() + "/missing"}, &out); err == nil {
		t.Fatalf("verify passed a missing directory")
	}
}
