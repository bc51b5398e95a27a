package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: `getconf CLK_TCK`, or 100 (its value on every Linux platform
// Go supports) when getconf is missing.
var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
})

// ProcCPU is the CPU time (user + system) process pid has used so far,
// from /proc/<pid>/stat. Its resolution is one clock tick (10 ms), so
// figures per call need runs of thousands of calls.
func ProcCPU(pid int) (time.Duration, error) {
	return readProcCPU(fmt.Sprintf("/proc/%d/stat", pid))
}

// selfCPU is ProcCPU of this process.
func selfCPU() (time.Duration, error) { return readProcCPU("/proc/self/stat") }

func readProcCPU(path string) (time.Duration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read process CPU time: %w", err)
	}
	ticks, err := parseProcStatTicks(data)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks()), nil
}

// parseProcStatTicks returns utime + stime (fields 14 and 15 of proc(5)'s
// stat line) in clock ticks. The command name (field 2) is in parentheses
// and may itself hold spaces and parentheses, so fields are counted after
// the last ')'.
func parseProcStatTicks(data []byte) (int64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", data)
	}
	// After ") " come field 3 (state) onwards: utime is the 12th of them.
	fields := bytes.Fields(data[i+1:])
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, fmt.Errorf("only %d fields after the command name", len(fields))
	}
	utime, err1 := strconv.ParseInt(string(fields[utimeIdx]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[stimeIdx]), 10, 64)
	if err1 != nil || err2 != nil || utime < 0 || stime < 0 {
		return 0, fmt.Errorf("bad utime %q or stime %q", fields[utimeIdx], fields[stimeIdx])
	}
	return utime + stime, nil
}

// ProcRSS is process pid's resident memory in bytes, from the second field
// of /proc/<pid>/statm (pages).
func ProcRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read process memory: %w", err)
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, fmt.Errorf("cannot parse /proc/%d/statm: %q", pid, data)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse /proc/%d/statm: %q", pid, data)
	}
	return pages * int64(os.Getpagesize()), nil
}

// peakRSS samples pid's resident memory every rssSampleInterval until
// stopped, keeping the highest.
type peakRSS struct {
	stop chan struct{}
	done chan int64
}

const rssSampleInterval = 100 * time.Millisecond

func watchRSS(pid int) *peakRSS {
	w := &peakRSS{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(rssSampleInterval)
		defer t.Stop()
		for {
			if rss, err := ProcRSS(pid); err == nil {
				peak = max(peak, rss)
			}
			select {
			case <-w.stop:
				w.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// end stops the sampling and returns the peak (0 when nothing could be read).
func (w *peakRSS) end() int64 {
	close(w.stop)
	return <-w.done
}
