//go:build testclock

package testclock

import (
	"os"
	"strings"
	"sync"
	"time"
)

// Now is time.Now plus the offset written in the file TOLLGATE_TEST_CLOCK
// names (a Go duration such as "264h"; none or unreadable: no offset),
// read again at most every 20 ms.
func Now() time.Time {
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	if now.Sub(readAt) > 20*time.Millisecond {
		readAt, offset = now, 0
		if b, err := os.ReadFile(os.Getenv("TOLLGATE_TEST_CLOCK")); err == nil {
			offset, _ = time.ParseDuration(strings.TrimSpace(string(b)))
		}
	}
	return now.Add(offset)
}

// Seam is Now: in a testclock build every component follows the file.
var Seam = Now

var (
	mu     sync.Mutex
	readAt time.Time
	offset time.Duration
)
