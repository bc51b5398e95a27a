package access

import "time"

// Attempts counts the consoles' failed sign-ins per key (a digest of the
// user's email) in a fixed window, refusing a key that has its limit until
// the window ends: each process's own count (proxy/console), or one count
// all of a cluster's nodes share (pgusers.Attempts).
type Attempts interface {
	// Take counts an attempt of key if key may make one now (ok false:
	// refused); the ticket gives it back (Refund). An error is the
	// store's: nothing was counted.
	Take(key string) (t Ticket, ok bool, err error)
	Refund(t Ticket)
	// Forget clears key's attempts (a successful sign-in).
	Forget(key string)
}

// Ticket is one counted attempt: its key and the end of its window.
type Ticket struct {
	Key   string
	Until time.Time
}
