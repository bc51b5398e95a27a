package wal

import (
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
