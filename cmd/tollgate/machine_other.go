//go:build !linux

package main

// bodyBytesInFlight is the default bound on request-body bytes read at once
// where the machine's memory is not read: 256 MiB.
func bodyBytesInFlight() int64 { return 256 << 20 }
