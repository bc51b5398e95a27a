// Package bench is the library of tollbench, Tollgate's benchmark and
// tuning tool: a fast built-in upstream, a load generator, the comparison
// of a gateway run with a direct run, the sweep of gateway settings, and
// the reports (Markdown, JSON, SVG charts). cmd/tollbench holds the flags
// and wiring; everything here takes Config structs and has no globals.
//
// # What a run measures
//
// RunCompare drives one load twice: through the gateway (GatewayURL) and
// with the same client, requests and keys straight to the upstream the
// gateway forwards to (DirectURL). The two sides run in interleaved
// segments (gateway, direct, direct, gateway, ...), so that a drift of the
// machine's speed, which on a shared two-core box is the rule, hits both
// sides alike; every figure is then also a ratio (Ratios). Around each
// gateway segment a GatewayProbe reads the gateway's CPU time from
// /proc/<pid>/stat (utime + stime, in clock ticks of 10 ms) and its
// allocation, ledger and WAL counters from /metrics; the cost of the
// scrape itself is measured by a second scrape and taken out. After each
// gateway segment the probe waits (GatewayProbe.WaitSettled) until no hold
// is open: the calls whose clients left are still being drained by the
// gateway when the client side is done with them. Between segments no call
// is in flight, then, so the counters cover exactly the segment's calls,
// drains included, and the ledger's counts of holds, settlements and voids
// show whether every hold ended.
//
// # The upstream
//
// Upstream frames one reply at start (ReplyEvents) and serves it to every
// POST /v1/messages as fasthttp chunked body, one chunk per SSE event,
// flushed after each, optionally with a pause before each event. That is
// the shape of the real API's stream, and the work the gateway does per
// event (one read, one write) is the work being measured. It parses
// nothing. A direct run measures the upstream and the client together; its
// throughput, several times the gateway's, is the evidence that the
// upstream is not the bottleneck of a gateway run, and LoadResult's
// ClientCPUMsPerCall shows what the tollbench process (client and
// upstream) itself spends per call on the shared cores.
//
// # The load generator
//
// Closed loop (LoadConfig.Rate zero): Concurrency workers, each starting
// its next call when the last one ends; this finds the throughput ceiling.
// Open loop (Rate > 0): calls are due at start + seq/Rate whatever the
// target does (pacer); a dispatcher hands each due call, with its intended
// start, to one of Concurrency workers, and latency counts from the
// intended start. A target that stalls therefore shows the stall in every
// call that should have started during it, instead of slowing the sends
// and hiding (coordinated omission). Calls still undispatched when the
// segment ends are reported as ErrKindNotStarted.
//
// Each call reads its streamed reply to the end: time to first byte is the
// first body byte, total time the last. Only complete 200 replies ending
// in message_stop count as successes and go into the latency histograms;
// everything else is counted by kind (status code, timeout, connect,
// connection, stream_error, truncated). A share of the calls
// (LoadConfig.DisconnectShare, chosen evenly by sequence number) leave
// instead: they read until the first content_block_delta and close the
// connection, as a person closing a chat window does, so that the gateway
// has to finish calls without their clients (drain the upstream, or abort
// when its drain pool is full); they count as disconnected, neither
// successes nor errors, and stay out of the latencies. Every load is
// bounded in time (LoadConfig.Duration, at most MaxDuration, plus one
// call's Timeout), optionally in calls, and in concurrency
// (MaxConcurrency); targets must be loopback (CheckLoopbackURL).
//
// # Alternatives rejected
//
//   - net/http for the load generator: its client allocates several
//     objects per call and costs more CPU than fasthttp's on the cores the
//     gateway is measured on; fasthttp's HostClient with
//     StreamResponseBody shows each body byte as it arrives.
//   - Reading the whole reply with Do and timing only the end: that loses
//     time to first byte, which is where the hold's sync shows.
//   - A histogram per worker: lock-free, but 200 KB each, 4 GB at
//     MaxConcurrency; instead 16 mutex-guarded shards (recorder).
//   - Coordinated-omission correction after the fact
//     (RecordCorrectedValue): it guesses the missing samples from an
//     expected interval; the open loop measures them instead.
//   - Parsing the SSE stream in the client: it would spend client CPU on
//     the shared cores; the gateway's own tests check the bytes. The client
//     only looks for the message_stop and error event lines (eventScanner).
//   - An upstream that coalesces a reply into one write: cheaper, but the
//     gateway would then read one large chunk per call instead of one per
//     event, which is not the work it does against the real API.
//   - Running the gateway in-process: its CPU time and allocations would
//     mix with the load generator's; a child process has its own
//     /proc/<pid>/stat and /metrics.
//   - Allocations from runtime/metrics of our own process, or pprof: the
//     gateway's /metrics already exposes go_memstats_mallocs_total.
//   - A plotting library for the sweep's charts: hand-written SVG is two
//     hundred lines and no dependency.
//   - A sweep over every combination of its settings (a grid): its size
//     is the product of the axes' lengths, and each setting's effect is
//     still seen only against one value of the others. The sweep varies
//     one setting at a time from a baseline measured first, the base
//     configuration's, which every chart marks as the default.
//
// # Noise
//
// CPU time has a resolution of one clock tick per process (10 ms), so CPU
// per call needs thousands of calls to be meaningful. Allocations per call
// include the gateway's background work (timers, Pebble's own goroutines)
// during the segment. On a machine shared with other work, throughput and
// tail latencies move by tens of percent between runs; the ratios, from
// interleaved segments, move less.
package bench
