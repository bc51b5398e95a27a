// Package meter turns the bytes of Anthropic Messages API calls into money,
// without slowing the bytes down. It is pure code: no I/O but LoadCatalogue,
// no goroutines, no imports of the rest of Tollgate.
//
// # Pieces
//
//   - Observer watches an SSE stream as the proxy forwards it: it frames lines
//     and events over whatever chunks arrive, folds the usage that
//     message_start and message_delta carry exactly as the official SDKs do,
//     notes how the stream ended (message_stop, an error event and its type,
//     or cut off), and counts content bytes per kind so a cut-off stream can
//     be estimated (EstimateOutputTokens). WriteEvent takes events that
//     arrive already framed (Bedrock's event stream).
//   - Observer.ObserveMessage reads a non-streaming JSON response the way
//     the Observer reads a stream, so both end in the same StreamResult.
//   - InspectRequest validates what the gateway relies on in a request body and
//     estimates an upper bound of its input tokens for the hold.
//   - The gateway's wire JSON: AppendJSONString is its one string encoder;
//     AppendRewriteModel and AppendBedrockBody rewrite a body InspectRequest
//     accepted (the upstream's model ID; Bedrock's form of the request);
//     AppendBedrockChunk, BedrockEventType and AppendWithoutInvocationMetrics
//     read the chunks of Bedrock's event stream. All walk with the scanner
//     the inspection and the Observer use, so no two parsers of one body or
//     event can disagree.
//   - Catalogue (configs/models.yaml) maps model names to models with their
//     upstream IDs, price versions, long-context rates, modifiers and
//     retirement dates. Model.Price prices a call's usage, Model.Hold sizes the
//     hold for a request, Model.Supports refuses what cannot be priced.
//
// # Design
//
// Framing. The Observer is a byte-level state machine in the shape of
// VictoriaMetrics' ReadLinesBlock: the caller owns the chunks, the Observer
// carries only the unfinished event across calls. Field values are streamed
// straight into the one buffer that needs them (event data, bounded by
// maxEventBytes; the event name, 24 bytes), so there is no separate line
// buffer and no line-length limit to tune: unknown fields and comment lines are
// skipped as they pass, whatever their length. An event whose data exceeds the
// bound is dropped as it arrives and counted (StreamResult.OversizedEvents).
// LF, CR and CRLF all end lines, including a CRLF split between two chunks.
//
// JSON. A small hand-written scanner (json.go) walks only the paths the meter
// needs (message.usage, usage, error.type, delta.text, ...) and skips the rest
// with full validation, so a usage-shaped string inside a text delta, padding
// spaces, reordered keys and escaped keys change nothing. It never allocates:
// numbers are parsed in place, strings are compared or measured without being
// copied, and the few strings kept (the response model, error types) go to
// fixed buffers or interned constants. An event of a known type whose JSON is
// malformed changes nothing and is counted (StreamResult.MalformedEvents).
//
// Money. Prices are exact decimals in the catalogue and integers in memory:
// nano-credits per million tokens (per 1,000 web searches), multipliers in
// parts per 1e9. A call's price is the exact sum of its products, times its
// multipliers, computed in a 384-bit accumulator (math/bits) and divided with
// a single rounding up, so no call is ever off by a nano-credit and no order
// of operations matters. Limits on catalogue values keep the accumulator from
// overflowing for any int64 usage; a price beyond int64 is ErrOverflow.
//
// Holds. The hold is an upper bound by construction: the input estimate
// counts every string, key and number of the prompt at one token per two UTF-8
// bytes plus fixed costs per image, document, tool and MCP server, is capped by
// the model's context window, and is priced at the highest input-side rate the
// request can trigger; output is max_tokens (optionally capped) at the output
// rate; web searches at max_uses. Server-tool loops can still grow a call's
// input beyond its request; the settlement's overrun rule covers that.
//
// # Alternatives rejected
//
//   - encoding/json or sonic into structs per event: allocations on every
//     event, and a full decode of content the meter does not need (the
//     encoding/json baseline in sse_timing_test.go is about 10 times slower
//     with 10 allocations per event). For non-streaming bodies sonic's
//     searcher was measured too (BENCHMARKS-meter.md): it skips a 100 KB body
//     about 4 times faster but allocates on every call, validates nothing it
//     skips, and is 2 times slower on typical bodies of a few KB; the scanner
//     stays, one JSON path for the whole package.
//   - Substring matching on compact JSON ("usage":{"output_tokens":): the
//     official fixtures pad JSON with spaces, and content can contain the very
//     bytes being searched for.
//   - Buffering whole lines or whole streams: memory would grow with the
//     upstream's output, not with the bound.
//   - Floats, or rounding per category: rounding drift across millions of
//     calls, and prices that depend on the order of the sum.
//   - math/big: exact, but it allocates on every call; a fixed-size
//     accumulator is exact within documented limits and allocation-free.
//   - Pricing modifiers from the request only: the response says what the
//     upstream actually applied (fast mode, data residency, tier), so Usage
//     carries it; the request's modifiers size the hold and decide refusals.
package meter
