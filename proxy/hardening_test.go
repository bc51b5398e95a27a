package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy"
)

// rawUpstream is a TCP server on 127.0.0.1 that answers every connection
// with behave: the faults the simulator cannot produce (resets before the
// headers, a 100 MB event line, a one-byte-per-interval trickle).
func rawUpstream(t *testing.T, behave func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				// Read the request head and body before answering.
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err == nil {
					io.Copy(io.Discard, req.Body)
				}
				behave(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

const startEvent = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5-20251001\",\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// settleBaseline waits until goroutines and file descriptors are back to
// (about) their baseline.
func settleBaseline(t *testing.T, what string, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines+3 && f <= fds+3 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%s: goroutines %d (baseline %d), open fds %d (baseline %d) did not return\n%s", what, g, goroutines, f, fds, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUpstreamFaultsLeaveNothingBehind drives each upstream fault through the
// gateway and checks the outcome, that nothing stays held, and that
// goroutines and connections return to their baseline.
func TestUpstreamFaultsLeaveNothingBehind(t *testing.T) {
	faults := []struct {
		name    string
		behave  func(c net.Conn)
		status  int    // status the client gets
		event   string // error type appended to the stream, if any
		outcome string
	}{
		{"reset before headers", func(c net.Conn) {
			c.(*net.TCPConn).SetLinger(0)
		}, 502, "", "upstream_error"},
		{"garbage instead of HTTP", func(c net.Conn) { c.Write([]byte("NOT HTTP AT ALL\r\n\r\n")) }, 502, "", "upstream_error"},
		{"reset mid-stream", func(c net.Conn) {
			c.Write([]byte(sseHead + chunk(startEvent)))
			time.Sleep(50 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0)
		}, 200, "api_error", "stream_error"},
		{"stops without message_stop", func(c net.Conn) {
			c.Write([]byte(sseHead + chunk(startEvent) + "0\r\n\r\n"))
		}, 200, "api_error", "stream_error"},
		{"an event line of 100 MB", func(c net.Conn) {
			c.Write([]byte(sseHead + chunk(startEvent)))
			line := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""
			c.Write([]byte(fmt.Sprintf("%x\r\n%s", len(line)+100<<20+len("\"}}\n\n"), line)))
			blk := bytes.Repeat([]byte("x"), 1<<20)
			for range 100 {
				if _, err := c.Write(blk); err != nil {
					return
				}
			}
			c.Write([]byte("\"}}\n\n\r\n"))
			c.Write([]byte(chunk("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") + "0\r\n\r\n"))
		}, 200, "", "ok"},
		{"hang before headers", func(c net.Conn) { time.Sleep(3 * time.Second) }, 504, "", "timeout"},
		{"hang between events", func(c net.Conn) {
			c.Write([]byte(sseHead + chunk(startEvent)))
			time.Sleep(3 * time.Second)
		}, 200, "timeout_error", "timeout"},
		{"trickle of one byte per 100 ms past the total timeout", func(c net.Conn) {
			c.Write([]byte(sseHead))
			msg := chunk(startEvent)
			for i := 0; i < len(msg); i++ {
				if _, err := c.Write([]byte{msg[i]}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, 200, "timeout_error", "timeout"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			url := rawUpstream(t, f.behave)
			// Short enough for the trickle to run out of it; the 100 MB event
			// needs time to pass, under the race detector on a busy CI
			// machine too (a 1 s idle bound once cut it there).
			total, idle := 2*time.Second, time.Second
			if strings.Contains(f.name, "100 MB") {
				total, idle = time.Minute, 20*time.Second
			}
			h := newHarness(t, withUpstreamURL(url), withShortTimeouts(), withConfig(func(c *proxy.Config) {
				c.TotalTimeout, c.IdleTimeout = total, idle
			}))
			a := h.newAccount("10")
			call := func() {
				t.Helper()
				resp, body := h.post("/v1/messages", a.Key, messagesBody("hello", 100, true), nil)
				if resp.StatusCode != f.status {
					t.Fatalf("unexpected status; got %d; want %d; body %.300s", resp.StatusCode, f.status, body)
				}
				if f.event != "" && (!bytes.Contains(body, []byte(`event: error`)) || !bytes.Contains(body, []byte(`"`+f.event+`"`))) {
					t.Fatalf("no appended %s event; body ends %q", f.event, tail(body))
				}
				c := h.waitCall(resp.Header.Get("request-id"))
				if c.Outcome != f.outcome {
					t.Fatalf("unexpected outcome; got %s; want %s", c.Outcome, f.outcome)
				}
				if open := h.led.OpenHolds(); len(open) != 0 {
					t.Fatalf("holds left open: %+v", open)
				}
				h.client.CloseIdleConnections()
			}
			// The first call starts what lives as long as the gateway (the
			// dialer's DNS cache cleaner); the baseline is taken after it, and
			// more calls of the same fault must not add to it.
			call()
			time.Sleep(100 * time.Millisecond)
			goroutines, fds := runtime.NumGoroutine(), openFDs(t)
			call()
			settleBaseline(t, f.name, goroutines, fds)
		})
	}
}

func tail(b []byte) []byte {
	if len(b) > 300 {
		return b[len(b)-300:]
	}
	return b
}

// TestHostileClients: oversized and malformed HTTP from clients gets the
// contract's error shape, costs nothing, and leaves the gateway serving.
func TestHostileClients(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) {
		c.ClientHeaderTimeout = time.Second
		c.ClientReadTimeout = time.Second
		c.ClientIdleTimeout = time.Second
	}))
	a := h.newAccount("10")
	send := func(raw string) (*http.Response, []byte) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte(raw))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response: %s", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	body := string(messagesBody("hi", 10, false))
	head := "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Api-Key: " + a.Key + "\r\n"
	t.Run("thousands of headers", func(t *testing.T) {
		var b strings.Builder
		for i := range 5000 {
			fmt.Fprintf(&b, "X-Junk-%d: %d\r\n", i, i)
		}
		resp, rb := send(head + b.String() + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
		checkError(t, resp, rb, resp.StatusCode, "invalid_request_error")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
	})
	t.Run("a very long header", func(t *testing.T) {
		resp, rb := send(head + "X-Long: " + strings.Repeat("a", 1<<20) + "\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
		checkError(t, resp, rb, resp.StatusCode, "invalid_request_error")
	})
	t.Run("slowloris headers", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("POST /v1/messages HTTP/1.1\r\nHost: x\r\n"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(conn) // the server gives up and closes after ClientReadTimeout
		if time.Since(start) > 4*time.Second {
			t.Fatalf("a slow client held its connection for %s (err %v)", time.Since(start), err)
		}
	})
	t.Run("pipelined requests", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		one := head + "Anthropic-Version: 2023-06-01\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		conn.Write([]byte(one + one + one))
		br := bufio.NewReader(conn)
		for i := range 3 {
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("pipelined response %d: %v %v", i, resp, err)
			}
			io.Copy(io.Discard, resp.Body)
		}
	})
	t.Run("disconnect before the body ends", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(head + "Content-Length: 5000\r\n\r\n{\"model\":"))
		conn.Close()
	})
	t.Run("many idle connections are closed", func(t *testing.T) {
		var conns []net.Conn
		for range 200 {
			c, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		// The gateway closes a connection that sends nothing within its read
		// timeout (1 s here), whatever it writes first.
		start := time.Now()
		for _, c := range conns {
			c.SetReadDeadline(start.Add(5 * time.Second))
			_, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("an idle connection was still open after %s: %v", time.Since(start), err)
			}
			c.Close()
		}
	})
	// Nothing was charged by any of it, and the gateway still serves.
	if resp, rb := h.post("/v1/messages", a.Key, messagesBody("hi", 10, false), nil); resp.StatusCode != 200 {
		t.Fatalf("the gateway stopped serving: %d %s", resp.StatusCode, rb)
	}
	if open := h.led.OpenHolds(); len(open) != 0 {
		t.Fatalf("holds left open: %+v", open)
	}
}

// TestRevokeAndFreezeDuringStreams: a key revoked and an account frozen while
// their streams run: the running calls finish and settle; new calls are refused.
func TestRevokeAndFreezeDuringStreams(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	b := h.newAccount("10")
	conn1, r1, _ := h.rawStream(a.Key, messagesBody("slow one two three four five [[sim:delay=40ms]]", 100, true))
	defer conn1.Close()
	conn2, r2, _ := h.rawStream(b.Key, messagesBody("slow one two three four five [[sim:delay=40ms]]", 100, true))
	defer conn2.Close()
	readEvents(t, r1, 1)
	readEvents(t, r2, 1)
	h.admin(http.MethodDelete, "/admin/v1/keys/"+a.KeyID, nil, http.StatusNoContent, nil)
	h.admin(http.MethodPost, "/admin/v1/accounts/"+b.ID+"/freeze", nil, http.StatusNoContent, nil)
	rest1, _ := io.ReadAll(r1)
	rest2, _ := io.ReadAll(r2)
	for i, rest := range [][]byte{rest1, rest2} {
		if !bytes.Contains(rest, []byte("event: message_stop")) {
			t.Fatalf("running stream %d was cut off: %q", i, tail(rest))
		}
	}
	for _, acct := range []*account{a, b} {
		cs := h.accountCalls(acct.ID)
		if len(cs) != 1 || cs[0].Outcome != "ok" || cs[0].Charged == "0" {
			t.Fatalf("the running call of %s did not settle normally: %+v", acct.ID, cs)
		}
	}
	if resp, _ := h.post("/v1/messages", a.Key, messagesBody("again", 10, false), nil); resp.StatusCode != 401 {
		t.Fatalf("a revoked key got %d", resp.StatusCode)
	}
	bKey2 := b.Key
	if resp, _ := h.post("/v1/messages", bKey2, messagesBody("again", 10, false), nil); resp.StatusCode != 403 {
		t.Fatalf("a frozen account got %d", resp.StatusCode)
	}
}

// TestInvalidUTF8: a body with invalid UTF-8 is refused with 400 before any
// hold, and recorded as rejected.
func TestInvalidUTF8(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	resp, b := h.post("/v1/messages", a.Key, []byte("{\"model\":\"claude-haiku-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe\"}]}"), nil)
	checkError(t, resp, b, 400, "invalid_request_error")
	if c := h.waitCall(resp.Header.Get("request-id")); c.Outcome != "rejected" || c.Charged != "0" {
		t.Fatalf("unexpected record: %+v", c)
	}
}
