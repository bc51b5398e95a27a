//go:build !testclock

package testclock

import "time"

// Now is time.Now.
func Now() time.Time { return time.Now() }

// Seam is the clock to give components that default to a faster one of
// their own (the ledger's coarse clock): nil, so they keep it.
var Seam func() time.Time
