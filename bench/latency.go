package bench

import (
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range and precision: 1 µs to maxLatency at 3 significant
// digits (an error of at most 0.1%), about 200 KB per histogram.
const (
	minLatency         = time.Microsecond
	maxLatency         = 2 * time.Hour
	latencySigFigures  = 3
	recorderShardCount = 16
)

// latencyHistogram is an HDR histogram of durations in nanoseconds. It is
// not safe for concurrent use.
type latencyHistogram struct {
	h *hdr.Histogram
}

func newLatencyHistogram() latencyHistogram {
	return latencyHistogram{h: hdr.New(int64(minLatency), int64(maxLatency), latencySigFigures)}
}

// record adds one duration, clamped into the histogram's range (a value
// beyond maxLatency cannot happen within a bounded run; clamping keeps the
// count honest if it ever does).
func (lh latencyHistogram) record(d time.Duration) {
	_ = lh.h.RecordValue(int64(min(max(d, minLatency), maxLatency)))
}

func (lh latencyHistogram) merge(from latencyHistogram) {
	lh.h.Merge(from.h)
}

func (lh latencyHistogram) count() int64 { return lh.h.TotalCount() }

// Percentiles summarises a latency distribution in milliseconds. Values
// come from an HDR histogram and are within 0.1% of the exact ones (each
// is the highest value equivalent to the true percentile at that
// precision). All are zero when nothing was recorded.
type Percentiles struct {
	P50Ms  float64 `json:"p50_ms"`  // median
	P90Ms  float64 `json:"p90_ms"`  // 90th percentile
	P99Ms  float64 `json:"p99_ms"`  // 99th percentile
	P999Ms float64 `json:"p999_ms"` // 99.9th percentile
	MaxMs  float64 `json:"max_ms"`  // largest value
	MeanMs float64 `json:"mean_ms"` // arithmetic mean
}

func (lh latencyHistogram) percentiles() Percentiles {
	if lh.h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Percentiles{
		P50Ms:  ms(lh.h.ValueAtPercentile(50)),
		P90Ms:  ms(lh.h.ValueAtPercentile(90)),
		P99Ms:  ms(lh.h.ValueAtPercentile(99)),
		P999Ms: ms(lh.h.ValueAtPercentile(99.9)),
		MaxMs:  ms(lh.h.Max()),
		MeanMs: lh.h.Mean() / 1e6,
	}
}

// recorder collects the latencies of successful calls and the errors of
// failed ones from many workers. It is sharded so that workers rarely
// contend: worker i records into shard i % recorderShardCount under that
// shard's mutex. One histogram per worker would avoid the mutex but cost
// 200 KB per worker, 800 MB at the maximum concurrency.
type recorder struct {
	shards [recorderShardCount]recorderShard
}

type recorderShard struct {
	mu struct {
		sync.Mutex
		ttfb, total latencyHistogram
		ok          int64
		bytes       int64
		errors      map[string]int64
		left        int64 // calls whose client left on purpose
	}
	_ [64]byte // keeps neighbouring shards' mutexes off one cache line
}

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.ttfb, s.mu.total = newLatencyHistogram(), newLatencyHistogram()
		s.mu.errors = make(map[string]int64)
	}
	return r
}

// ok records a successful call.
func (r *recorder) ok(worker int, ttfb, total time.Duration, bytes int64) {
	s := &r.shards[worker%recorderShardCount]
	s.mu.Lock()
	s.mu.ttfb.record(ttfb)
	s.mu.total.record(total)
	s.mu.ok++
	s.mu.bytes += bytes
	s.mu.Unlock()
}

// fail records a failed call by its kind (see ErrorKind). The set of kinds
// is bounded: the fixed kinds plus one per HTTP status code.
func (r *recorder) fail(worker int, kind string) {
	s := &r.shards[worker%recorderShardCount]
	s.mu.Lock()
	s.mu.errors[kind]++
	s.mu.Unlock()
}

// disconnected records a call whose client left mid-stream on purpose.
func (r *recorder) disconnected(worker int) {
	s := &r.shards[worker%recorderShardCount]
	s.mu.Lock()
	s.mu.left++
	s.mu.Unlock()
}

// collect merges the shards; call it after every worker has stopped.
func (r *recorder) collect() (ttfb, total latencyHistogram, ok, bytes int64, errs map[string]int64, left int64) {
	ttfb, total = newLatencyHistogram(), newLatencyHistogram()
	errs = make(map[string]int64)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		ttfb.merge(s.mu.ttfb)
		total.merge(s.mu.total)
		ok += s.mu.ok
		bytes += s.mu.bytes
		left += s.mu.left
		for k, v := range s.mu.errors {
			errs[k] += v
		}
		s.mu.Unlock()
	}
	return ttfb, total, ok, bytes, errs, left
}
