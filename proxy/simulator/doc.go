// Package simulator is Tollgate's upstream simulator: Anthropic's Messages
// API on fasthttp, with replies and usage that follow from the request by a
// fixed, documented rule, and failures that the request itself selects. The
// gateway's `make run` demo serves from it, `tollgate simulator` runs it
// alone, and every end-to-end test streams from it.
//
// # Routes
//
//   - POST /v1/messages: with "stream": true, an SSE stream
//     (content-type: text/event-stream; charset=utf-8, cache-control:
//     no-cache), flushed after every event; otherwise the Message JSON.
//   - POST /v1/messages/count_tokens: {"input_tokens":N}, N by the input rule below.
//   - anything else: 404 not_found_error.
//
// Every response carries request-id: req_sim_..., an anthropic-organization-id
// and a fixed anthropic-ratelimit-* set (as the real API does, so a gateway
// can be tested for replacing or dropping them). Errors have Anthropic's shape
// {"type":"error","error":{"type":T,"message":M},"request_id":ID}. Checks, in
// order: 401 authentication_error when Config.APIKey is set and the request's
// x-api-key or Bearer token differs; 404; 413 request_too_large above
// Config.MaxBodySize; 400 invalid_request_error for a body that is not a
// JSON object, a missing or non-string model, a missing, non-integer or
// non-positive max_tokens (count_tokens has none), a missing or malformed
// messages list, a non-boolean stream, a bad directive, or (with
// Config.RequireVersion) a missing anthropic-version header.
//
// # The stream
//
// message_start (a full Message with content [] and the full usage:
// input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
// cache_creation {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens},
// output_tokens 1 as the placeholder, service_tier, inference_geo); then for
// each content block content_block_start, its deltas and content_block_stop,
// with a ping ({"type": "ping"}, spaced like the API's) after the first
// content_block_start; then message_delta with the stop_reason and the
// cumulative usage (input, cache and output counts, and server_tool_use
// when searches ran); then message_stop. This is Anthropic's stream byte
// for byte in layout: "event: NAME\ndata: JSON\n\n", compact JSON, LF only.
//
// Blocks, in this order, each only when asked for: a thinking block
// (thinking_delta pieces, then one signature_delta) or a redacted_thinking
// block (whole in its start event); per web search, a server_tool_use block
// (name web_search, input {"query":...} streamed as input_json_delta) and a
// web_search_tool_result block (whole in its start event); the text block
// (text_delta pieces); a tool_use block (input {"query":...} streamed as
// input_json_delta). stop_reason is max_tokens when the reply was cut,
// otherwise tool_use with a tool_use block, otherwise end_turn.
//
// The response's model is the request's, except that a first-party alias
// with a dated ID is answered with that ID (claude-haiku-4-5 gives
// claude-haiku-4-5-20251001; see DefaultModelAliases and Config.ModelAliases).
// Message IDs (msg_sim_...) are random; tool block IDs (toolu_sim_...,
// srvtoolu_sim_...) derive from the last user message, so a streamed and a
// non-streamed reply to the same request differ only in their id.
//
// # The usage rule
//
// A word is a maximal run of non-space characters (strings.Fields).
//
//   - Input. W_in = the number of words in every JSON string value anywhere
//     under the request's system, messages and tools (object keys are not
//     counted; role strings, tool names, directive tokens and everything
//     else are), or N when the request says input=N. message_start and
//     count_tokens report input_tokens = W_in. The final input_tokens
//     (message_delta, non-streaming usage) is W_in + WebSearchInputTokens
//     (1000) per web search performed.
//   - Cache. cache_creation_input_tokens = cache_write=N and
//     cache_read_input_tokens = cache_read=N (0 without them). They are
//     reported in addition to input_tokens, not carved out of it. The writes
//     are all 5-minute writes, or all 1-hour writes with cache=1h. The
//     request's own cache_control markers are ignored.
//   - Reply words. The source is the words of the last user message's text
//     (its string content, or its text blocks joined) with directives
//     removed; when it has none, "Hello from the Tollgate upstream
//     simulator." Word i of any generated text is source[i mod len(source)].
//     The text block has R = min(len(source), DefaultReplyWords) words (64),
//     or N with words=N (words=0: no text block). A thinking block has T
//     words (8, or thinking=N / redacted_thinking=N). Each tool_use and each
//     server_tool_use query has Q = min(3, len(source)) words.
//   - Output. Every generated word costs one output token: total = T +
//     searches×Q + R + (Q with tool_use). Signatures, redacted data, result
//     blocks and JSON punctuation cost nothing. If total <= max_tokens,
//     output_tokens = total; otherwise the reply is cut after max_tokens
//     words (a block cut mid-way is still closed properly: its JSON input
//     closed, its signature sent; later blocks are dropped, so are searches
//     whose query was cut or reached the limit exactly),
//     output_tokens = max_tokens and stop_reason = max_tokens.
//
// ExpectedUsage computes the final usage of a request body by this rule and
// ExpectedStartUsage the message_start usage; a stream cut short by a fault
// has reported only the latter.
//
// Example: {"model":"claude-haiku-4-5","max_tokens":100,"messages":
// [{"role":"user","content":"Say hello twice"}]} has W_in = 4 ("user" and
// the three words), replies "Say hello twice" and reports input_tokens 4,
// output_tokens 3.
//
// # Directives
//
// A directive is a token [[sim:KEY=VALUE,KEY,...]] anywhere in the system
// prompt's text or the last user message's text (later items override
// earlier ones; the system prompt is read first). Directives travel inside
// the body, so they survive a gateway unchanged. Items are trimmed of
// spaces; values may contain spaces but not ',' or "]]". An unknown key, a
// missing or bad value, a value on a flag, or an unterminated token is a 400
// invalid_request_error naming the problem.
//
// Reply shape:
//
//   - words=N: text length in words (0..MaxWords).
//   - chunk=N: words per text_delta and thinking_delta (default 1).
//   - input=N: input_tokens base, replacing the word count.
//   - cache=5m|1h, cache_write=N, cache_read=N: cache usage (see above).
//   - thinking[=N], redacted_thinking[=N]: a thinking block of N words (8).
//   - tool_use[=NAME]: a tool_use block named NAME, else the request's first
//     tool, else get_weather; stop_reason tool_use.
//   - web_search=N: N searches (1..MaxWebSearches).
//   - old_usage: message_delta carries only output_tokens (the older and
//     Bedrock shape); message_start then carries the final input_tokens and
//     server_tool_use, so the folded usage is the same.
//   - padded: runs of spaces before the closing brace of each data JSON (and
//     of a non-streaming body), like the official 2026 fixtures.
//
// Timing (each at most Config.MaxHang, else 400):
//
//   - delay=D: pause between consecutive events (Config.EventDelay by
//     default); a non-streaming reply waits D × (events − 1) in total.
//   - ttfb=D: pause before anything is sent.
//
// Failures, checked in this order (the first that applies wins):
//
//   - status=NNN (400..599): that status before any stream, with the
//     matching error type (400 invalid_request_error, 401
//     authentication_error, 402 billing_error, 403 permission_error, 404
//     not_found_error, 409 conflict_error, 413 request_too_large, 429
//     rate_limit_error, 500 api_error, 504 timeout_error, 529
//     overloaded_error; other 4xx invalid_request_error, other 5xx
//     api_error); retry_after=N adds retry-after: N; error_type=T and
//     message=M override type and message.
//   - json_error_200: 200 with a JSON error body (overloaded_error unless
//     overridden).
//   - hang=headers: no response at all until the client leaves, Shutdown,
//     or Config.MaxHang passes; then the connection closes.
//   - garbage: 200 (text/event-stream when streaming) whose body is not SSE
//     and not JSON.
//
// Mid-stream faults (streaming only; at most one per request). N counts
// content_block_delta events of any kind; the fault fires right after the
// Nth (after message_start for N=0), or before message_delta when the reply
// has fewer than N:
//
//   - error_after=N: event: error {"type":"error","error":{"type":
//     "overloaded_error","message":"Overloaded"}} (error_type and message
//     override), then the body ends; no message_delta or message_stop.
//   - hang_after=N: silence with the connection open until the client
//     leaves, Shutdown, or Config.MaxHang; then the connection closes with
//     the chunked body unterminated.
//   - truncate_after=N: the connection closes at once, the chunked body
//     unterminated.
//   - garbage_after=N: non-SSE bytes, then the body ends.
//
// Framing tests:
//
//   - split=odd or split=N: the stream is written in pieces of odd sizes
//     (1, 3, 5, 7, 9, 11, 13, 17, ...) or of N bytes, each sent as its own
//     HTTP chunk, so event and line boundaries fall inside chunks; a piece
//     may straddle two events (before a pause, a fault or the end, the
//     remainder goes out as a shorter piece). The bytes are exactly those of
//     the unsplit stream. The response has Connection: close.
//
// Directives that do not apply are ignored: stream-only keys on a
// non-streaming request, and on count_tokens everything but status,
// retry_after, error_type, message, json_error_200, hang=headers, ttfb and
// input.
//
// # Bedrock mode
//
// With Config.Mode ModeBedrock the simulator is AWS Bedrock's runtime API
// for Claude instead: POST /model/{modelId}/invoke and
// /model/{modelId}/invoke-with-response-stream, the model ID path-escaped
// (an inference profile such as global.anthropic.claude-haiku-4-5-20251001-v1:0,
// or an ARN); anything else is 404 UnknownOperationException. Requests must
// carry a SigV4 signature (service bedrock) by Config.AWSCredentials, checked
// by signing the request as received again with the AWS SDK's signer (the
// scope's region must be Config.AWSRegion when set, X-Amz-Date within five
// minutes), or Authorization: Bearer Config.APIKey (a Bedrock API key);
// refusals are 403 with AWS's exception names. The body is Bedrock's: a JSON
// object with an anthropic_version string, an optional anthropic_beta list,
// and neither model nor stream (400 ValidationException otherwise); it is
// then read as the Messages request it stands for, so the reply, the usage
// rule and the directives are the Anthropic mode's. The reply's model is the
// Anthropic name of the Bedrock ID (claude-haiku-4-5-20251001), message IDs
// are msg_bdrk_sim_..., request IDs (x-amzn-RequestId) UUIDs.
//
// Errors before the stream are Bedrock's: the exception in x-amzn-ErrorType
// ("ThrottlingException:http://internal.amazon.com/coral/...") and
// {"message":...}. status=NNN picks the exception Bedrock pairs with the
// status (400 ValidationException, 401 and 403 AccessDeniedException (403),
// 404 ResourceNotFoundException, 408 and 504 ModelTimeoutException (408),
// 424 ModelErrorException, 429 ThrottlingException, 503 and 529
// ServiceUnavailableException, other 4xx ValidationException, other 5xx
// InternalServerException); error_type= names another.
//
// A stream (content-type application/vnd.amazon.eventstream) is one
// event-stream frame per event, built with the AWS SDK's encoder: headers
// :event-type chunk, :content-type application/json, :message-type event;
// payload {"bytes":"<base64 of the event JSON>","p":"<padding>"}. The
// events are the Anthropic mode's, byte for byte but for padded, which does
// not apply (old_usage gives the 2025 Bedrock shape); message_stop also
// carries amazon-bedrock-invocationMetrics with the final input, output and
// cache counts. Mid-stream faults:
// error_after=N sends an exception frame (:exception-type from error_type,
// lowerCamelCase, default serviceUnavailableException; payload
// {"message":...}, default "Overloaded"); garbage_after=N a frame whose CRC
// is wrong; truncate_after=N half a frame, then the connection closes;
// hang_after and split as in the Anthropic mode, over frames.
//
// # Design
//
// A request is parsed once (sonic, the gateway's library for cold paths, in
// its encoding/json-compatible configuration: the simulator is not on the
// hot path, and the API's strictness matters more) into a request, then into a
// reply: blocks, stop reason and the two usages, computed in full before the
// first byte. The reply knows nothing of framing: reply.events yields each
// event's name and JSON, and appendMessage builds the non-streaming body.
// A framer turns events into bytes: sseFramer into Anthropic's SSE (adding
// padding), bedrockFramer into Bedrock's event-stream frames; it also knows
// what each mid-stream fault sends in its protocol. A streamWriter sends a
// framer's bytes, splitting them for split=.
//
// The two modes differ only in their request checks (acceptAnthropic,
// acceptBedrock) and their wire form (a protocol: request IDs, headers,
// error answers and the framer). Everything after the checks, which failure
// or fault applies and when, is one path for both (answer, in fault.go), so
// a directive cannot behave differently in one mode by accident. server.go
// holds the Simulator and its dispatch, fault.go the waits and the
// directives' effects, hijack.go the responses written on the raw
// connection, anthropic.go and bedrock.go each mode's checks and wire form.
//
// Streams use fasthttp's SetBodyStreamWriter; the closure holds only copies
// (the reply and the directives), never the RequestCtx. hang=headers,
// hang_after, truncate_after and split instead hijack the connection and
// write the status line, headers and HTTP/1.1 chunks themselves: fasthttp's
// stream writer sends through a pipe that another goroutine copies to the
// connection, so it can neither close the connection right after its last
// byte, nor see a silent client leave, nor keep write boundaries. A hijacked
// response reads the connection to notice the client leaving.
//
// Every wait selects on the simulator's done channel, so Shutdown ends
// delays, hangs and streams at once; a counter of running requests (guarded
// by the same mutex as the closed flag, so nothing starts after Shutdown
// begins) lets Shutdown wait for every goroutine it started. Rejected
// alternatives: a fixed canned stream (tests could not tell a gateway that
// replays from one that forwards) and behaviour selected by headers
// (gateways rewrite headers; the body reaches the upstream unchanged).
package simulator
