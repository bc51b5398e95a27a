package bench

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
)

// Machine describes the computer a comparison ran on, for the published
// figures: its size, and how busy it was with other work, the main source
// of noise on a shared machine.
type Machine struct {
	CPUs       int    `json:"cpus"`       // runtime.NumCPU
	MemoryMiB  int64  `json:"memory_mib"` // MemTotal of /proc/meminfo; 0 if unknown
	GoVersion  string `json:"go_version"` // of tollbench
	GOMAXPROCS int    `json:"gomaxprocs"` // of tollbench
	// LoadBefore and LoadAfter are the 1-minute load averages when the
	// comparison started and ended (/proc/loadavg; 0 if unknown). A load
	// well above what tollbench and the gateway account for means other
	// work shared the cores.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

func currentMachine() Machine {
	return Machine{
		CPUs:       runtime.NumCPU(),
		MemoryMiB:  memTotalMiB(),
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadBefore: loadAverage(),
	}
}

// loadAverage is the 1-minute load average, or 0.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := bytes.Fields(data)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(string(f[0]), 64)
	return v
}

// memTotalMiB is MemTotal from /proc/meminfo in MiB, or 0.
func memTotalMiB() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb / 1024
			}
		}
	}
	return 0
}
