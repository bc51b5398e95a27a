package wal

import (
	"strings"
	"testing"
)

// TestStateSurvivesReopen: states are kept across a close and an open, a
// nil value deletes one, and States sees only its prefix.
func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"op/alice": "1", "op/bob": "2", "tok/x": "3"} {
		if err := l.SetState(name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SetState("op/bob", nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(dir, Config{}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []string
	if err := l.States("op/", func(name string, v []byte) error { got = append(got, name+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "op/alice=1" {
		t.Fatalf("unexpected states: %v", got)
	}
	if err := l.SetState("big", make([]byte, MaxStateBytes+1)); err == nil {
		t.Fatalf("an oversized state was stored")
	}
}

// TestSetStatesAndRetention: SetStates writes all its states at once; a
// checkpoint keeps the records a reader (SetRetention) has not read yet.
func TestSetStatesAndRetention(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	if err := l.SetStates(State{Name: "n/a", Value: []byte("1")}, State{Name: "n/b", Value: []byte("2")}, State{Name: "n/a"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	l.States("n/", func(name string, v []byte) error { got = append(got, name+"="+string(v)); return nil })
	if strings.Join(got, ",") != "n/b=2" {
		t.Fatalf("states: %v", got)
	}
	if err := l.SetStates(State{Name: "n/c", Value: []byte("3")}, State{Name: "n/d", Value: make([]byte, MaxStateBytes+1)}); err == nil {
		t.Fatal("an oversized state was stored")
	}
	l.States("n/c", func(string, []byte) error { t.Fatal("a refused batch stored part of itself"); return nil })

	l.SetRetention(func() uint64 { return 3 })
	var last uint64
	for i := range 6 {
		last = l.Append(&Record{Kind: 1, Entry: true, Account: "x", Body: []byte{byte(i)}})
	}
	if err := l.WriteCheckpoint(last, []byte("state")); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	if err := l.Replay(0, func(v RecordView) error { seqs = append(seqs, v.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 3 || seqs[0] != 4 || seqs[2] != last {
		t.Fatalf("records kept after the checkpoint: %v", seqs)
	}
}
