// Package proxy is Tollgate's HTTP front: the Anthropic-compatible client API
// and the admin API on fasthttp, authentication, rate and spend limits, the
// upstream clients (Anthropic and Bedrock) with routing and failover, and the
// per-call orchestration that turns a call into money:
//
//	authenticate → frozen? → read the body (bounded) → inspect (meter) →
//	model and route → limits → hold (ledger) → forward while the hold syncs →
//	stream through, metering every chunk → settle (or void) exactly once
//
// # The streaming path
//
// A call is a pooled object that is itself the io.Reader fasthttp copies to
// the client (Response.SetBodyStream): each Read takes what the upstream sent,
// feeds it to the meter's observer and returns it, so every byte is metered in
// the goroutine that forwards it, with no pipe, no extra goroutine and no copy
// beyond fasthttp's own buffer. When a chunk carries the final event
// (message_stop or error), the bytes before it go out at once, the call is
// settled and synced, and only then the final event: the client never sees
// the end of a reply whose money is not recorded. A stream that the upstream
// breaks off, or that falls silent past a timeout, is settled at what was
// seen and closed with an appended `event: error`. When the client leaves,
// fasthttp's CloseWithError tells the call, which drains the upstream to its
// final usage in a bounded pool (ants) or, when the pool is full or the policy
// says abort, stops it and estimates the output (capped at max_tokens).
//
// # The upstream client
//
// The upstream connection pool and response-body reader are ours
// (upstream.go), on fasthttp's protocol code: fasthttp's HostClient sets one
// read deadline before the headers, which cannot express the first-byte,
// between-events and whole-call timeouts a stream needs, and its streamed
// responses cost four allocations per call. Bedrock replies are AWS
// event-stream frames, decoded as they arrive and re-emitted as the SSE
// Anthropic's API would send (bedrock_stream.go). Routing (route.go) orders
// upstreams by priority and weight, fails over only before the first byte
// reached the client, and takes failing upstreams out for a backoff.
//
// # Limits
//
// Requests and tokens per minute are GCRA token buckets, one atomic int64
// each, per key and per account, in sharded maps (limits.go); tokens are
// debited by the estimate at admission and corrected at settlement; a call
// keeps its concurrency slot until it settles. Spend limits per key and
// period are enforced by the ledger atomically with the hold.
//
// Alternatives rejected: SetBodyStreamWriter (a pipe and a goroutine per
// stream, and client disconnects seen late), hijacking connections (no
// keep-alive afterwards), net/http for the upstream (the design fixes
// fasthttp, and its reverse proxy costs twice the CPU per call).
package proxy
