//go:build linux

package main

import "syscall"

// bodyBytesInFlight is the default bound on request-body bytes read at once
// (limits.request_body_bytes_in_flight: 0): a sixteenth of the machine's
// memory, at least 128 MiB (four bodies of the 32 MiB limit) and at most
// 1 GiB. The bound must sit well below the memory: it is what a burst of
// large uploads can take before they are refused.
func bodyBytesInFlight() int64 {
	const lo, hi = 128 << 20, 1 << 30
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return lo
	}
	return min(max(int64(si.Totalram)*int64(si.Unit)/16, lo), hi)
}
