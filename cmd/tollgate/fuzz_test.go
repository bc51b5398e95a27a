package main

import (
	"os"
	"testing"
)

// FuzzParseConfig: no configuration text panics the loader.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../../configs/tollgate.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("listen: a:1\nadmin_listen: b:2\nupstreams: [{name: x, base_url: 'http://x'}]\n"))
	f.Add([]byte("timeouts: {total: -5s}\n"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseConfig(b)
	})
}
