// Package openai is the translation behind Tollgate's OpenAI-compatible
// front, POST /v1/chat/completions: an OpenAI chat-completions request
// becomes an Anthropic Messages request (TranslateRequest), and the
// Messages reply becomes OpenAI's, whole (AppendCompletion) or streamed
// (Stream). It does no HTTP and no I/O: the gateway runs the call through
// the same path as /v1/messages, so the meter reads the upstream's own
// Anthropic events before they are translated, and the price is exactly
// the native price. Errors go out in OpenAI's shape (AppendError) with the
// contract's statuses and error type names.
//
// # Design
//
// A request is decoded once, strictly, into typed structs that declare
// every parameter of openai-go v3.102.0's ChatCompletionNewParams (and
// stream): an unknown key, or a key of the wrong type, fails the decode,
// and only then is the body walked again (decode.go's locate) to name the
// parameter, path and all ("messages[2].content[1].image_url"). So no
// parameter is ever dropped unseen, and the common path pays one decode
// of the body (and one of each message's content, a string or parts). A
// test holds the declared parameters equal to the SDK's.
// Each known parameter is then translated, refused with a *RequestError
// naming it, or accepted at its neutral value; the steps run in a fixed
// order, so the parameter a refusal names does not depend on the order of
// the body's keys. The Anthropic request is built as typed structs and
// encoded once with sonic.
//
// Replies are written by hand with append, since their field order and
// nulls are part of what clients see. Stream frames SSE itself over
// caller buffers (LF, CRLF or CR line ends; the `event:` name decides, else
// the JSON type, as in the meter and the SDKs), decodes each event with
// sonic, and writes each chunk from a prefix ("id" to "choices":[) built
// once at message_start. Its output does not depend on how the input is
// split, which a test checks for every split size.
//
// The translation is a Messages request for API version 2023-06-01, the
// version the gateway sends for this front (see temperature below).
//
// # Limits
//
// TranslateRequest's work and memory are linear in the body, which the
// gateway bounds before calling it; the JSON decoder bounds nesting. A
// Stream holds one event at most (maxEventBytes, the meter's bound), the
// block index of each tool call (maxToolCalls) and one chunk prefix; an
// event or a reply past a bound ends the stream with an error, never with
// growth. Neither allocates much: a few small objects per request part or
// per event (the benchmarks say how many).
//
// Rejected: translating with generic maps (map[string]any), which loses
// key order in the schemas and tool inputs it passes on and makes every
// refusal a special case; and decoding with DisallowUnknownFields off and
// checking keys by hand, which doubles the decoding on the common path.
//
// # Parameters (openai-go v3.102.0's ChatCompletionNewParams, plus stream)
//
// Translated:
//   - model: passed as is; Options.Model.
//   - messages: system and developer messages go to the top-level system
//     prompt as text blocks, in order, wherever they stand (Anthropic has
//     no system turns). User content: text; image_url with a base64 data
//     URL (image/jpeg, png, gif, webp; "image/jpg" read as image/jpeg) as
//     a base64 image source, with an http(s) URL as a URL source that the
//     upstream fetches (the gateway never does). Assistant content: text,
//     refusal parts and the refusal field as text, then tool_calls as
//     tool_use blocks (input: the parsed arguments; empty arguments are
//     {}). Tool messages become tool_result blocks (tool_use_id:
//     tool_call_id) of a user turn. Consecutive messages of one Anthropic
//     role merge into one turn (tool results and a following user message
//     share it). Empty text is left out; a turn left empty is refused.
//   - max_completion_tokens, max_tokens (either; both only when equal) →
//     max_tokens; neither → the gateway's default.
//   - stop (a string or at most 4) → stop_sequences.
//   - temperature (0 to 1) and top_p → the same. Anthropic API version
//     2026-10-21 refuses both (400 even at their defaults): the gateway
//     sends this front's requests as 2023-06-01, which takes them (though
//     some newer models refuse temperature under any version).
//   - tools (type "function") → tools: name, description, input_schema
//     (parameters, with "type":"object" added when it has no type;
//     {"type":"object"} when absent), strict: true → strict: true.
//   - tool_choice: "none" → none, "auto" → auto, "required" → any,
//     {"type":"function","function":{"name"}} → tool. Without tools,
//     "none" and "auto" are left out (they mean what no tools mean).
//   - parallel_tool_calls: false → disable_parallel_tool_use on tool_choice
//     (auto when unset); true, the default, changes nothing.
//   - response_format: {"type":"text"} → nothing; json_schema →
//     output_config.format {"type":"json_schema","schema"}. Anthropic's
//     structured outputs are always strict, so strict false gets the
//     stronger guarantee; name, an identifier only, is not sent.
//   - reasoning_effort: low, medium, high, xhigh, max → output_config.effort
//     (the same value; both APIs define all five); minimal → low; none →
//     left out.
//   - user, safety_identifier (its successor) → metadata.user_id.
//   - stream → Options.Stream and stream; stream_options.include_usage →
//     Options.IncludeUsage.
//
// Refused, with a 400 naming the parameter:
//   - n other than 1; seed; logit_bias (unless empty); logprobs true;
//     top_logprobs other than 0; frequency_penalty and presence_penalty
//     other than 0; audio; modalities other than ["text"]; prediction;
//     web_search_options; moderation; service_tier other than auto or
//     default; store true; metadata (unless empty: Anthropic's metadata
//     holds only a user ID); verbosity other than medium;
//     prompt_cache_options other than its defaults (mode implicit, ttl
//     30m); prompt_cache_retention other than in_memory or 24h.
//   - temperature above 1 (Anthropic's range is 0 to 1).
//   - response_format json_object (no JSON mode: use json_schema); a
//     json_schema description (structured outputs take a schema alone).
//   - reasoning_effort values neither API defines.
//   - functions, function_call, role "function", and an assistant's
//     function_call: deprecated, use tools.
//   - tools and tool_choice of type custom; tool_choice allowed_tools.
//   - content parts input_audio and file; image_url detail low or original
//     (Anthropic reads each image at its own resolution; auto and high
//     pass); data URLs that are not base64 or not one of the four image
//     types; URLs that are neither data nor http(s); prompt_cache_breakpoint
//     on parts (OpenAI's 30-minute breakpoints match neither of Anthropic's
//     cache lifetimes); an assistant's audio.
//   - tool call arguments that are not a JSON object.
//   - a name that differs from an earlier name of the same role (below).
//   - any key the API does not define, at any depth (Anthropic extensions
//     some gateways take, such as top_k, thinking or cache_control, too).
//
// Ignored, with the reason:
//   - messages[].name, while each role has at most one name: Anthropic's
//     messages carry no names, and a name that tells no participants apart
//     tells the model nothing. A second name for a role is refused.
//   - prompt_cache_key: a routing hint for OpenAI's cache; it changes no
//     reply. Anthropic caches only where a request asks (cache_control),
//     which this front never does.
//   - prompt_cache_retention in_memory or 24h: a maximum retention, met
//     since nothing is cached for the request.
//   - stream_options.include_obfuscation: chunks carry no obfuscation
//     field; it pads payload sizes against a network side channel, and
//     clients read nothing from it.
//   - stream_options without stream: a reply that is not streamed always
//     carries its usage.
//   - an assistant message's reasoning_content (what this front writes for
//     thinking, resent by clients): Anthropic drops earlier turns' thinking
//     anyway, and without its signature it could not be passed back.
//   - tool_calls[].index (left by clients that rebuild calls from stream
//     deltas): the order of tool_use blocks keeps it.
//   - json_schema name (above).
//
// # Replies
//
// A chat.completion has id "chatcmpl-" + the message ID, the message's
// model (the dated ID the upstream reports), one choice whose content is
// the text blocks joined (null when none), refusal null, tool_calls from
// tool_use blocks (arguments: compact JSON of the input), and thinking in
// the non-standard reasoning_content field (present only when the reply
// thought; never mixed into content). Redacted thinking, server tools and
// their results, and citations have no OpenAI form and are left out.
// finish_reason: end_turn, stop_sequence, pause_turn → stop; max_tokens,
// model_context_window_exceeded → length; tool_use → tool_calls; refusal →
// content_filter. usage: prompt_tokens = input + cache writes + cache
// reads, completion_tokens = output, prompt_tokens_details.cached_tokens =
// cache reads and cache_write_tokens = cache writes,
// completion_tokens_details.reasoning_tokens = thinking tokens (0 when the
// upstream does not report them). These are the reply's top-level counts;
// the charge is the meter's, which also prices iterations (advisor,
// fallback) that the top-level counts may leave out.
//
// A stream sends a first chunk {"role":"assistant","content":""} at
// message_start, one chunk per text, thinking (reasoning_content) and tool
// argument fragment, a tool call's id and name when its block starts
// (index: the count of tool calls before it), an empty delta with the
// finish reason at the stop reason, then at message_stop the usage chunk
// (choices [], usage folded as the meter folds it) when include_usage
// asked for it, and `data: [DONE]`. With include_usage every other chunk
// carries "usage": null. An `event: error`, the upstream's or the one the
// gateway appends when it ends a stream itself, becomes
// `data: {"error":{...}}` and ends the stream without [DONE].
package openai
