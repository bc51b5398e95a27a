package proxy

import (
	"errors"
	"io"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/openai"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// The OpenAI-compatible front, POST /v1/chat/completions, is the Messages
// call under another shape: its request is translated into a Messages
// request (package openai) before the meter inspects it, and everything
// after that is the Messages call's (limits, hold, routing, metering of
// the upstream's Anthropic events, settlement, record), so a call costs
// what the same Messages call costs, to the nano-credit. Only the bytes
// the client sees are translated back: a streamed reply through chatStream,
// after the call has metered them; a JSON reply after its settlement;
// errors in OpenAI's shape (writeError knows the front by the path).

const chatCompletionsPath = "/v1/chat/completions"

// messagesPath is where the OpenAI front's translated calls go upstream.
var messagesPath = []byte("/v1/messages")

// chatAnthropicVersion is the anthropic-version of the Messages requests
// the OpenAI front sends (its clients send none).
const chatAnthropicVersion = "2023-06-01"

// defaultChatMaxTokens is max_tokens for a chat request that sets neither
// max_tokens nor max_completion_tokens (OpenAI makes them optional; the
// Messages API does not, and the hold is priced from it).
const defaultChatMaxTokens = 4096

// isChatCompletions reports whether ctx is a request of the OpenAI front.
func isChatCompletions(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.Path()) == chatCompletionsPath
}

// translateChatRequest replaces the call's request body, a chat
// completions request, by its Messages translation; a request the
// translation cannot express is refused with 400 naming the parameter.
func translateChatRequest(c *call) refusal {
	translated, opts, err := openai.TranslateRequest(c.bufs.chat[:0], c.bufs.request, defaultChatMaxTokens)
	c.bufs.chat, c.bufs.request = c.bufs.request, translated // both buffers kept for the next call
	if err != nil {
		r := refuse(fasthttp.StatusBadRequest, views.InvalidRequestError, err.Error())
		var re *openai.RequestError
		if errors.As(err, &re) {
			r.msg, r.param = re.Message, re.Param
		}
		return r
	}
	c.chat = opts
	return refusal{}
}

// replyChat sends a settled JSON reply (an Anthropic Message) as a
// chat.completion.
func (g *Gateway) replyChat(ctx *fasthttp.RequestCtx, c *call, message []byte) {
	out, err := openai.AppendCompletion(c.bufs.pending[:0], message, c.start.Unix())
	c.bufs.pending = out
	if err != nil {
		// The meter read the message, so this is a bug of the translation;
		// the call is settled: the client gets an error, the operator a log.
		g.logger.Printf("request %s: cannot translate the reply: %s", c.requestID, err)
		writeError(ctx, fasthttp.StatusBadGateway, views.APIError, "the reply could not be translated")
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// chatStream is the body fasthttp streams to an OpenAI-front client: the
// call's Anthropic SSE (metered, final event held back for the settlement,
// as for the Messages front) translated into chat.completion.chunk lines.
// It forwards CloseWithError to the call, so a client leaving is seen.
type chatStream struct {
	c      *call
	stream openai.Stream
	in     []byte // Anthropic SSE read from the call
	out    []byte // translated, not yet returned
	off    int
	err    error
}

// chatStreamBuffer is how much Anthropic SSE one Read takes from the call.
const chatStreamBuffer = 16 << 10

func (s *chatStream) reset(c *call) {
	s.c, s.err, s.off = c, nil, 0
	s.out = s.out[:0]
	if s.in == nil {
		s.in = make([]byte, chatStreamBuffer)
	}
	s.stream.Reset(c.chat, c.start.Unix())
}

// Read returns translated chunks. A panic in the translation (a bug) ends
// the stream: the call then settles as a client that left, charged what
// the upstream did.
func (s *chatStream) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.c.g.logPanic("the chat completions translation", s.c.requestID, r)
			n, err = 0, errors.New("proxy: the reply could not be translated")
		}
	}()
	for s.off == len(s.out) {
		if s.err != nil {
			return 0, s.err
		}
		m, err := s.c.Read(s.in)
		s.out, s.off = s.stream.Append(s.out[:0], s.in[:m]), 0
		s.err = err
	}
	n = copy(p, s.out[s.off:])
	s.off += n
	return n, nil
}

// CloseWithError ends the call as the Messages front's stream does.
func (s *chatStream) CloseWithError(err error) error { return s.c.CloseWithError(err) }

// bodyStream is what fasthttp streams to the client: the call itself, or
// its translation for the OpenAI front.
func (c *call) bodyStream() io.Reader {
	if c.front != ledger.FrontOpenAI {
		return c
	}
	c.chatStream.reset(c)
	return &c.chatStream
}
