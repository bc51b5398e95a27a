package simulator

import "github.com/valyala/fasthttp"

// protocol is the wire form of one of the APIs the simulator serves
// (anthropicProtocol, bedrockProtocol): how responses are identified, and
// how errors, replies and streams are written. Which answer a request gets,
// which fault and when, is decided once for both (answer, in fault.go), so
// that the two modes cannot drift apart; each mode keeps only its own
// request checks (acceptAnthropic, acceptBedrock).
type protocol interface {
	// newRequestID returns a new request ID.
	newRequestID() string
	// headers are the headers every response carries besides content-type.
	headers(reqID string) [][2]string
	// streamHeaders are the headers of a streamed reply, content-type included.
	streamHeaders() [][2]string
	// messageHeaders are the headers of a non-streaming reply r, besides
	// content-type.
	messageHeaders(r *reply) [][2]string
	// newMessageID returns a new message ID.
	newMessageID() string
	// newFramer returns the framer of r's stream.
	newFramer(r *reply, d *directives) framer

	// writeStatus answers with the error status=NNN asks for.
	writeStatus(ctx *fasthttp.RequestCtx, reqID string, d *directives)
	// writeTooLarge answers a body over Config.MaxBodySize with 413.
	writeTooLarge(ctx *fasthttp.RequestCtx, reqID string)
	// writeMalformed answers a request fasthttp cannot parse with 400.
	writeMalformed(ctx *fasthttp.RequestCtx, reqID string)
	// writeUnavailable answers with 503 once Shutdown began.
	writeUnavailable(ctx *fasthttp.RequestCtx, reqID string)
}

// protocolOf returns the protocol of a Config.Mode.
func protocolOf(mode string) protocol {
	if mode == ModeBedrock {
		return bedrockProtocol{}
	}
	return anthropicProtocol{}
}

// setHeaders sets each key-value pair of kvs on h.
func setHeaders(h *fasthttp.ResponseHeader, kvs [][2]string) {
	for _, kv := range kvs {
		h.Set(kv[0], kv[1])
	}
}
