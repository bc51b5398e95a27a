package simulator

import (
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestShutdownEndsWaits starts one request in each kind of wait, shuts the
// simulator down, and checks that Shutdown returns at once, every client
// sees its request end, and no goroutine is left behind.
func TestShutdownEndsWaits(t *testing.T) {
	before := countGoroutines()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{MaxHang: time.Hour})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/v1/messages"
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}

	// Stream-only directives apply to the streaming request only; the
	// non-streaming one waits on the delay.
	texts := []string{
		"a [[sim:hang=headers]]",
		"a b c [[sim:hang_after=1,delay=1h]]",
		"a b c [[sim:delay=1h]]",
		"a b c [[sim:ttfb=1h]]",
		"a b c [[sim:split=odd,delay=1h]]",
		"a b c [[sim:truncate_after=2,delay=1h]]",
	}
	done := make(chan error, 2*len(texts))
	for _, text := range texts {
		for _, stream := range []bool{true, false} {
			go func() {
				resp, err := c.Post(url, "application/json", strings.NewReader(string(messagesBody(text, 50, stream))))
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
		}
	}
	count := int64(2 * len(texts))
	waitFor(t, "every request to be in flight", func() bool { return s.Stats().InFlight == count })

	start := time.Now()
	if err := s.Shutdown(); err != nil {
		t.Fatalf("unexpected Shutdown error: %s", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
	if err := <-served; err != nil {
		t.Fatalf("unexpected Serve error: %s", err)
	}
	for range count {
		select {
		case <-done: // an error, a 503 or a stream without message_stop: each ends the request
		case <-time.After(5 * time.Second):
			t.Fatalf("a request did not end after Shutdown")
		}
	}
	if st := s.Stats(); st.InFlight != 0 {
		t.Fatalf("unexpected stats after Shutdown %+v", st)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatalf("unexpected second Shutdown error: %s", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln2); !errors.Is(err, ErrShutdown) {
		t.Fatalf("unexpected Serve error after Shutdown: %v", err)
	}

	tr.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for countGoroutines() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines leaked: %d before, %d after\n%s", before, countGoroutines(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countGoroutines counts the running goroutines but fasthttp's process-wide
// date updater, which starts with the first server and never stops.
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "fasthttp.updateServerDate") {
			count++
		}
	}
	return count
}

// TestHandlerAfterShutdown checks that the handler refuses work once Shutdown began.
func TestHandlerAfterShutdown(t *testing.T) {
	s, url := startSim(t, Config{})
	c := newClient(t)
	if resp, _ := post(t, c, url+"/v1/messages", messagesBody("hi", 5, false), nil); resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d", resp.StatusCode)
	}
	// Shut down the simulator's state but keep its server answering with
	// the handler: requests get 503 and start nothing.
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	resp, raw := post(t, c, url+"/v1/messages", messagesBody("hi", 5, true), nil)
	checkErrorBody(t, resp, raw, 503, "overloaded_error")
	if st := s.Stats(); st.InFlight != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
}

// TestShutdownBeforeServe checks that a Shutdown racing a Serve that has
// not started accepting still makes Serve return.
func TestShutdownBeforeServe(t *testing.T) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(Config{})
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		if err := s.Shutdown(); err != nil {
			t.Fatalf("unexpected Shutdown error: %s", err)
		}
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, ErrShutdown) {
				t.Fatalf("unexpected Serve error: %s", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Serve did not return after Shutdown")
		}
	}
}
