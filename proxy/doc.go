// Package proxy is Tollgate's client API: the Anthropic-compatible front on
// fasthttp, authentication, rate and spend limits, and the per-call
// orchestration that turns a call into money:
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
// # Beside it
//
// proxy/upstream is the client of the providers (connection pool, body
// reader, routing and health, the Bedrock adapter, error judging);
// forward.go tries a call's upstreams in order, failing over only before
// the client has seen a byte. proxy/admin is the operator's API, which
// needs only the ledger and the catalogue; proxy/views holds the JSON
// shapes both APIs answer with; proxy/ids makes request IDs and keys.
// Rejected: one package for all of it (5,300 lines with four jobs, where
// the admin API's cold-path code sat beside the hot path's).
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
