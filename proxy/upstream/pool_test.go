package upstream

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestPoolQueueIsBounded: with every connection in use a call queues for
// one; once as many calls queue as the pool holds, the next is refused at
// once with ErrPoolFull; a released connection goes to the queued call.
func TestPoolQueueIsBounded(t *testing.T) {
	dial := func(string) (net.Conn, error) {
		c, s := net.Pipe()
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, nil
	}
	stopping := make(chan struct{})
	defer close(stopping)
	u, err := New(Config{Name: "pool", BaseURL: "http://127.0.0.1:1", MaxConns: 1, Dial: dial}, time.Minute, stopping)
	if err != nil {
		t.Fatal(err)
	}
	held, err := u.acquire()
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan error, 1)
	go func() {
		c, err := u.acquire()
		if err == nil {
			u.release(c, false)
		}
		queued <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); u.queued.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second call did not queue")
		}
	}
	if _, err := u.acquire(); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("unexpected acquire with the queue full: %v; want ErrPoolFull at once", err)
	}
	if u.queued.Load() != 1 {
		t.Fatalf("the queued call left the queue before a connection was released")
	}
	u.release(held, true)
	if err := <-queued; err != nil {
		t.Fatalf("the queued call did not get the released connection: %s", err)
	}
}
