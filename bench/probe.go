package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Metric names read from the gateway's /metrics. go_memstats_mallocs_total
// is written by VictoriaMetrics' WritePrometheus(w, true) from
// runtime.MemStats; process_cpu_seconds_total stands in for /proc when the
// gateway's pid is not known.
const (
	metricMallocs    = "go_memstats_mallocs_total"
	metricProcessCPU = "process_cpu_seconds_total"
	metricLedgerOps  = "tollgate_ledger_operations_total"
	metricWALRecords = "tollgate_wal_records_total"
	metricWALSyncs   = "tollgate_wal_syncs_total"
	// The ledger's holds by how they end, and those still open: a series
	// name with its label set is matched whole by metricSum.
	metricHolds       = `tollgate_ledger_operations_total{op="hold"}`
	metricSettlements = `tollgate_ledger_operations_total{op="settle"}`
	metricVoids       = `tollgate_ledger_operations_total{op="void"}`
	metricOpenHolds   = "tollgate_ledger_open_holds"
	// Calls whose client left mid-stream: drained in the pool, or aborted
	// because every drain worker was busy.
	metricDrainsStarted = "tollgate_drains_started_total"
	metricDrainsRefused = "tollgate_drains_refused_total"
	// maxMetricsBytes bounds the /metrics body read.
	maxMetricsBytes = 8 << 20
	probeTimeout    = 10 * time.Second
	// settledPoll is how often WaitSettled scrapes while holds are open.
	settledPoll = 50 * time.Millisecond
)

// GatewayProbe reads a running gateway's cost counters: CPU time from
// /proc/<pid>/stat, the rest from GET /metrics on its admin listener.
// It is safe for concurrent use.
type GatewayProbe struct {
	// AdminURL is the admin API's base URL (loopback only); empty reads
	// only the CPU time of Pid (a process without metrics: the floor hop).
	AdminURL string
	// Token is the admin (or metrics) bearer token.
	Token string
	// Pid is the gateway's process ID. Zero reads CPU time from the
	// gateway's process_cpu_seconds_total instead (same source, coarser
	// by the exposition's rounding).
	Pid int
	// Others are the other nodes of a cluster (tollbench run -nodes):
	// their counters are added to this one's, so a cost per call is the
	// cluster's (resident memory stays this node's).
	Others []*GatewayProbe
}

// GatewaySample is one reading of the gateway's counters. Counters are
// float64 as the exposition writes them; they are exact below 2^53.
type GatewaySample struct {
	At         time.Time     // when the scrape ended
	CPU        time.Duration // user + system CPU time since the gateway started
	Mallocs    float64       // go_memstats_mallocs_total
	LedgerOps  float64       // tollgate_ledger_operations_total, all ops
	WALRecords float64       // tollgate_wal_records_total
	WALSyncs   float64       // tollgate_wal_syncs_total
	// Holds, Settlements and Voids count the ledger operations of those
	// kinds, OpenHolds the holds not yet ended; DrainsStarted and
	// DrainsRefused the calls whose client left (see GatewayCost).
	Holds, Settlements, Voids    float64
	OpenHolds                    float64
	DrainsStarted, DrainsRefused float64
}

// Sample takes one reading, of every node of a cluster added up.
func (p *GatewayProbe) Sample(ctx context.Context) (GatewaySample, error) {
	s, err := p.sampleOne(ctx)
	for _, o := range p.Others {
		if err != nil {
			break
		}
		var os GatewaySample
		os, err = o.sampleOne(ctx)
		s.add(os)
	}
	return s, err
}

// add adds o's counters to s's (its time stays s's).
func (s *GatewaySample) add(o GatewaySample) {
	s.CPU += o.CPU
	s.Mallocs += o.Mallocs
	s.LedgerOps += o.LedgerOps
	s.WALRecords += o.WALRecords
	s.WALSyncs += o.WALSyncs
	s.Holds += o.Holds
	s.Settlements += o.Settlements
	s.Voids += o.Voids
	s.OpenHolds += o.OpenHolds
	s.DrainsStarted += o.DrainsStarted
	s.DrainsRefused += o.DrainsRefused
}

// sampleOne reads one process.
func (p *GatewayProbe) sampleOne(ctx context.Context) (GatewaySample, error) {
	if p.AdminURL == "" {
		cpu, err := ProcCPU(p.Pid)
		return GatewaySample{At: time.Now(), CPU: cpu}, err
	}
	if _, err := CheckLoopbackURL(p.AdminURL); err != nil {
		return GatewaySample{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.AdminURL+"/metrics", nil)
	if err != nil {
		return GatewaySample{}, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return GatewaySample{}, fmt.Errorf("cannot read the gateway's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return GatewaySample{}, fmt.Errorf("cannot read the gateway's metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return GatewaySample{}, fmt.Errorf("cannot read the gateway's metrics: status %d: %.200s", resp.StatusCode, body)
	}
	s := GatewaySample{At: time.Now()}
	var ok bool
	if s.Mallocs, ok = metricSum(body, metricMallocs); !ok {
		return s, fmt.Errorf("the gateway's metrics have no %s", metricMallocs)
	}
	s.LedgerOps, _ = metricSum(body, metricLedgerOps)
	s.WALRecords, _ = metricSum(body, metricWALRecords)
	s.WALSyncs, _ = metricSum(body, metricWALSyncs)
	s.Holds, _ = metricSum(body, metricHolds)
	s.Settlements, _ = metricSum(body, metricSettlements)
	s.Voids, _ = metricSum(body, metricVoids)
	s.OpenHolds, _ = metricSum(body, metricOpenHolds)
	s.DrainsStarted, _ = metricSum(body, metricDrainsStarted)
	s.DrainsRefused, _ = metricSum(body, metricDrainsRefused)
	if p.Pid > 0 {
		if s.CPU, err = ProcCPU(p.Pid); err != nil {
			return s, err
		}
	} else {
		cpu, ok := metricSum(body, metricProcessCPU)
		if !ok {
			return s, fmt.Errorf("the gateway's metrics have no %s and no pid was given", metricProcessCPU)
		}
		s.CPU = time.Duration(cpu * float64(time.Second))
	}
	return s, nil
}

// WaitSettled samples the gateway until no hold is open, or until bound
// has passed, and returns the last sample and how many scrapes it took
// beyond the first. A client that leaves mid-stream ends its call on the
// client's side at once, while the gateway drains the upstream for as long
// as the stream lasts: waiting for those holds to end puts the drains'
// CPU and ledger work into the segment whose calls caused them, and lets
// the report show whether every hold ended. The extra scrapes' own
// allocations are the caller's to take out (costMeter.add).
func (p *GatewayProbe) WaitSettled(ctx context.Context, bound time.Duration) (GatewaySample, int, error) {
	deadline := time.Now().Add(bound)
	t := time.NewTimer(0)
	defer t.Stop()
	for extra := 0; ; extra++ {
		s, err := p.Sample(ctx)
		// Without metrics (the floor hop) there are no holds to wait for.
		if err != nil || p.AdminURL == "" || s.OpenHolds <= 0 || !time.Now().Before(deadline) {
			return s, extra, err
		}
		t.Reset(settledPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			return s, extra, ctx.Err()
		}
	}
}

// Profile writes one of the gateway's profiles (Go's pprof format) to w:
// "profile", the CPU profile over the next d; "heap", the heap as it is
// after d (half a segment in: under full load).
func (p *GatewayProbe) Profile(ctx context.Context, kind string, d time.Duration, w io.Writer) error {
	if _, err := CheckLoopbackURL(p.AdminURL); err != nil {
		return err
	}
	path := "/debug/pprof/" + kind
	switch kind {
	case "profile":
		path += "?seconds=" + strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	case "heap":
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	default:
		return fmt.Errorf("bench: unknown profile %q", kind)
	}
	ctx, cancel := context.WithTimeout(ctx, d+probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.AdminURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot profile the gateway: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("cannot profile the gateway: status %d: %.200s", resp.StatusCode, body)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// metricSum adds the values of every series of the metric name in a
// Prometheus text exposition, whatever their labels, and reports whether
// there was any. Comment lines and other metrics, including those whose
// name merely starts with name, are skipped.
func metricSum(text []byte, name string) (float64, bool) {
	var sum float64
	found := false
	// Bounded by the exposition's size (maxMetricsBytes).
	for len(text) > 0 {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		if len(line) <= len(name) || line[0] == '#' || !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		rest := line[len(name):]
		switch rest[0] {
		case '{':
			i := bytes.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		case ' ', '\t':
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// GatewayCost is what the gateway spent on a set of calls, from samples
// taken around each measured segment.
type GatewayCost struct {
	// Calls is the number of calls the figures are divided by (every call
	// that reached the gateway, failed ones included).
	Calls int64 `json:"calls"`
	// ElapsedSec is the measured segments' wall time, CPUSeconds the
	// gateway's CPU time over them.
	ElapsedSec float64 `json:"elapsed_sec"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUSecondsPer1000Calls is the gateway's CPU time per 1,000 calls;
	// CPUMsPerCall the same figure per call in milliseconds.
	CPUSecondsPer1000Calls float64 `json:"cpu_seconds_per_1000_calls"`
	CPUMsPerCall           float64 `json:"cpu_ms_per_call"`
	// CPUCores is the mean number of cores the gateway kept busy.
	CPUCores float64 `json:"cpu_cores"`
	// AllocsPerCall is heap allocations per call, with the cost of the
	// /metrics scrapes taken out; background work (timers, Pebble) is in.
	AllocsPerCall float64 `json:"allocs_per_call"`
	// LedgerOpsPerSec is the rate of tollgate_ledger_operations_total.
	LedgerOpsPerSec float64 `json:"ledger_ops_per_sec"`
	// WALRecordsPerSync is the group commit's mean batch size; zero
	// without syncs (wal.mode none).
	WALRecordsPerSync float64 `json:"wal_records_per_sync"`
	// WALSyncs is the number of syncs over the segments.
	WALSyncs float64 `json:"wal_syncs"`
	// IdleCPUCores and IdleAllocsPerSec are the gateway's cost with no
	// calls at all (timers, background jobs), measured over an idle
	// window before the first round; zero when no window was measured.
	IdleCPUCores     float64 `json:"idle_cpu_cores"`
	IdleAllocsPerSec float64 `json:"idle_allocs_per_sec"`
	// Holds, Settlements and Voids are the ledger operations of those
	// kinds over the segments: each call that reached the ledger is one
	// hold, ended by one settlement (or a void) once its reply, or its
	// drain, is done. OpenHolds is the most holds left open at the end of
	// a segment after waiting for them (WaitSettled, up to one call's
	// timeout): zero when every hold ended.
	Holds       float64 `json:"holds"`
	Settlements float64 `json:"settlements"`
	Voids       float64 `json:"voids"`
	OpenHolds   float64 `json:"open_holds"`
	// DrainsStarted counts the calls whose client left mid-stream and
	// which the gateway drained to their final usage in its pool
	// (policies.drain_workers); DrainsRefused those it stopped and charged
	// by estimate instead, every drain worker being busy. A client that
	// leaves after the gateway has written its whole reply causes
	// neither.
	DrainsStarted float64 `json:"drains_started"`
	DrainsRefused float64 `json:"drains_refused"`
	// IdleRSSMiB is the process's resident memory before any load;
	// PeakRSSMiB the highest sampled during the measured segments (both
	// zero without a pid). PeakRSSPerCallKiB is (peak - idle) / the
	// concurrency: the memory of one call in flight, with a closed loop's
	// every client in a call.
	IdleRSSMiB        float64 `json:"idle_rss_mib,omitempty"`
	PeakRSSMiB        float64 `json:"peak_rss_mib,omitempty"`
	PeakRSSPerCallKiB float64 `json:"peak_rss_per_call_kib,omitempty"`
	// CPUMsPerCallNet and AllocsPerCallNet are CPUMsPerCall and
	// AllocsPerCall less the idle cost over the same time: what the calls
	// themselves cost.
	CPUMsPerCallNet  float64 `json:"cpu_ms_per_call_net"`
	AllocsPerCallNet float64 `json:"allocs_per_call_net"`
}

// costMeter accumulates GatewayCost over segments.
type costMeter struct {
	calls                        int64
	elapsed, cpu                 time.Duration
	allocs, ops, records, syncs  float64
	holds, settlements, voids    float64
	openHolds                    float64 // the most left open after a segment
	drainsStarted, drainsRefused float64
	// The idle window's figures; idleElapsed is zero without one.
	idleElapsed, idleCPU time.Duration
	idleAllocs           float64
	// Resident memory: before the rounds, and the highest during them.
	idleRSS, peakRSS int64
}

// idle accounts for a window without calls, sampled like a segment.
func (m *costMeter) idle(base0, base1, after GatewaySample) {
	m.idleElapsed = after.At.Sub(base1.At)
	m.idleCPU = after.CPU - base1.CPU
	scrape := max(0, base1.Mallocs-base0.Mallocs)
	m.idleAllocs = max(0, after.Mallocs-base1.Mallocs-scrape)
}

// add accounts for one segment of calls. base0 and base1 are two samples
// taken back to back before it, after one taken after it, following
// extraScrapes more while waiting for open holds (WaitSettled): the
// mallocs between base0 and base1 are one scrape's own, taken out of the
// segment's once for the after-sample and once per extra scrape.
func (m *costMeter) add(base0, base1, after GatewaySample, calls int64, extraScrapes int) {
	m.calls += calls
	m.elapsed += after.At.Sub(base1.At)
	m.cpu += after.CPU - base1.CPU
	scrape := max(0, base1.Mallocs-base0.Mallocs)
	m.allocs += max(0, after.Mallocs-base1.Mallocs-scrape*float64(1+extraScrapes))
	m.ops += after.LedgerOps - base1.LedgerOps
	m.records += after.WALRecords - base1.WALRecords
	m.syncs += after.WALSyncs - base1.WALSyncs
	m.holds += after.Holds - base1.Holds
	m.settlements += after.Settlements - base1.Settlements
	m.voids += after.Voids - base1.Voids
	m.openHolds = max(m.openHolds, after.OpenHolds)
	m.drainsStarted += after.DrainsStarted - base1.DrainsStarted
	m.drainsRefused += after.DrainsRefused - base1.DrainsRefused
}

func (m *costMeter) cost() GatewayCost {
	c := GatewayCost{
		Calls:      m.calls,
		ElapsedSec: m.elapsed.Seconds(),
		CPUSeconds: m.cpu.Seconds(),
		WALSyncs:   m.syncs,
		Holds:      m.holds, Settlements: m.settlements, Voids: m.voids, OpenHolds: m.openHolds,
		DrainsStarted: m.drainsStarted, DrainsRefused: m.drainsRefused,
	}
	if m.calls > 0 {
		c.CPUMsPerCall = c.CPUSeconds * 1000 / float64(m.calls)
		c.CPUSecondsPer1000Calls = c.CPUSeconds * 1000 / float64(m.calls)
		c.AllocsPerCall = m.allocs / float64(m.calls)
	}
	if m.elapsed > 0 {
		c.CPUCores = c.CPUSeconds / c.ElapsedSec
		c.LedgerOpsPerSec = m.ops / c.ElapsedSec
	}
	if m.syncs > 0 {
		c.WALRecordsPerSync = m.records / m.syncs
	}
	c.IdleRSSMiB, c.PeakRSSMiB = float64(m.idleRSS)/(1<<20), float64(m.peakRSS)/(1<<20)
	c.CPUMsPerCallNet, c.AllocsPerCallNet = c.CPUMsPerCall, c.AllocsPerCall
	if m.idleElapsed > 0 {
		c.IdleCPUCores = m.idleCPU.Seconds() / m.idleElapsed.Seconds()
		c.IdleAllocsPerSec = m.idleAllocs / m.idleElapsed.Seconds()
		if m.calls > 0 {
			c.CPUMsPerCallNet = max(0, c.CPUSeconds-c.IdleCPUCores*c.ElapsedSec) * 1000 / float64(m.calls)
			c.AllocsPerCallNet = max(0, m.allocs-c.IdleAllocsPerSec*c.ElapsedSec) / float64(m.calls)
		}
	}
	return c
}
