package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"
	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/views"
)

// BedrockStream turns a Bedrock event stream (AWS event-stream frames) into the SSE of
// Anthropic's API as it arrives, and meters it: it is what call.Read reads
// from instead of the upstream body when a bedrock upstream streams.
//
// Each Read that finds nothing buffered decodes exactly one frame (its CRCs
// checked by the AWS SDK's decoder) and returns the SSE of that one event,
// over several Reads if p is small. The observer is fed each event's
// original JSON (invocationMetrics included) when the frame is decoded, so
// the Read that carries an event's first bytes is the one after which the
// observer has seen it: call.Read's hold-back of the final event works as
// for Anthropic's SSE. The client gets the event without
// amazon-bedrock-invocationMetrics, as Anthropic's API would send it.
//
// A chunk frame becomes `event: <type>\ndata: <json>\n\n`; an exception
// frame (or an unmodelled error frame) becomes an error event, which ends
// the stream as stream_error; unknown event types are skipped. A frame that
// fails its CRC, is cut short, or does not parse ends the stream with an
// error, which the call turns into stream_error and an appended api_error.
//
// JSON is read with the meter's scanner only: the chunk's base64 is decoded
// into a buffer kept across frames (meter.AppendBedrockChunk), the event's
// type read and its metrics dropped as the Observer reads them.
//
// Memory: one frame payload (the SDK's decoder refuses frames above 16 MiB),
// the event it carries and that event's SSE, the buffers kept across calls
// unless they grew past retainBedrockBytes. Not safe for concurrent use.
type BedrockStream struct {
	src io.Reader
	obs *meter.Observer
	// n counts the bytes of the frame being decoded, to tell a clean end of
	// the stream (nothing read) from a truncated frame.
	n       int
	dec     eventstream.Decoder
	payload []byte
	decoded []byte // the event JSON a chunk carries, base64-decoded
	event   []byte // an event as the client gets it, when it differs
	out     []byte // SSE not yet returned
	off     int
	// err ends the stream once out is drained.
	err error
}

// bedrockMetricsDisagreements counts Bedrock streams whose
// amazon-bedrock-invocationMetrics disagreed with the usage in their events;
// the metrics won, since they are what Bedrock bills.
var bedrockMetricsDisagreements = metrics.NewCounter(`tollgate_bedrock_metrics_disagreements_total`)

// CountMetricsDisagreement counts a stream whose Bedrock metrics disagreed
// with its events.
func CountMetricsDisagreement(r *meter.StreamResult) {
	if r.MetricsDisagreed {
		bedrockMetricsDisagreements.Inc()
	}
}

// retainBedrockBytes bounds the buffers a pooled call keeps.
const retainBedrockBytes = 256 << 10

// errBedrockFrame is a frame that decoded but is not what Bedrock sends.
var errBedrockFrame = errors.New("upstream: malformed bedrock event-stream frame")

// Reset readies s for a new stream from src, metered by obs.
func (s *BedrockStream) Reset(src io.Reader, obs *meter.Observer) {
	s.src, s.obs, s.off, s.err = src, obs, 0, nil
	s.out = s.out[:0]
	if cap(s.payload) > retainBedrockBytes {
		s.payload = nil
	}
	if cap(s.decoded) > retainBedrockBytes {
		s.decoded = nil
	}
	if cap(s.event) > retainBedrockBytes {
		s.event = nil
	}
	if cap(s.out) > retainBedrockBytes {
		s.out = nil
	}
}

// Release drops the references to the call's body and observer.
func (s *BedrockStream) Release() {
	s.src, s.obs = nil, nil
	s.out, s.off = s.out[:0], 0
}

// Read returns the SSE of the stream's events; io.EOF after the last frame,
// or the error that ended the stream.
func (s *BedrockStream) Read(p []byte) (int, error) {
	for s.off == len(s.out) {
		if s.err != nil {
			return 0, s.err
		}
		s.out, s.off = s.out[:0], 0
		s.err = s.next()
	}
	n := copy(p, s.out[s.off:])
	s.off += n
	return n, nil
}

// bedrockFrameReader is the stream's source as the decoder reads it: it
// counts the bytes of the frame being decoded.
type bedrockFrameReader BedrockStream

func (r *bedrockFrameReader) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	r.n += n
	return n, err
}

// next decodes one frame and appends its SSE, if any, to s.out.
func (s *BedrockStream) next() error {
	msg, err := s.decode()
	if err != nil {
		switch {
		case err == io.EOF && s.n == 0:
			return io.EOF
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return io.ErrUnexpectedEOF // a frame cut short
		case IsTimeout(err) || errors.Is(err, ErrAborted):
			return err
		}
		return fmt.Errorf("cannot decode a bedrock event-stream frame: %w", err)
	}
	if cap(msg.Payload) > cap(s.payload) {
		s.payload = msg.Payload[:0]
	}
	mt := msg.Headers.Get(eventstreamapi.MessageTypeHeader)
	if mt == nil {
		return errBedrockFrame
	}
	switch mt.String() {
	case eventstreamapi.EventMessageType:
		if et := msg.Headers.Get(eventstreamapi.EventTypeHeader); et == nil || et.String() != "chunk" {
			return nil // an event type Claude's streams do not have: skipped
		}
		return s.chunk(msg.Payload)
	case eventstreamapi.ExceptionMessageType:
		var exception string
		if h := msg.Headers.Get(eventstreamapi.ExceptionTypeHeader); h != nil {
			exception = h.String()
		}
		var e struct {
			Message string `json:"message"`
		}
		_ = sonic.Unmarshal(msg.Payload, &e)
		if e.Message == "" {
			e.Message = exception
		}
		s.error(bedrockExceptionErrorType([]byte(exception)), e.Message)
		return nil
	case eventstreamapi.ErrorMessageType:
		message := "bedrock stream error"
		if h := msg.Headers.Get(eventstreamapi.ErrorMessageHeader); h != nil {
			message = h.String()
		}
		s.error(views.APIError, message)
		return nil
	}
	return errBedrockFrame
}

// decode reads one frame. The SDK's decoder panics on a header of unknown
// value type, which it reads before it checks the frame's CRC: a corrupted
// or hostile upstream must end its own call, never the gateway, so the
// panic becomes a malformed-frame error.
func (s *BedrockStream) decode() (msg eventstream.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = eventstream.Message{}, fmt.Errorf("%w: %v", errBedrockFrame, p)
		}
	}()
	s.n = 0
	return s.dec.Decode((*bedrockFrameReader)(s), s.payload[:0])
}

// chunk handles a chunk frame: {"bytes":"<base64 of the event JSON>","p":"..."}.
func (s *BedrockStream) chunk(payload []byte) error {
	event, ok := meter.AppendBedrockChunk(s.decoded[:0], payload)
	s.decoded = event
	if !ok {
		return errBedrockFrame
	}
	typ, hasMetrics, ok := meter.BedrockEventType(event)
	if !ok {
		return errBedrockFrame
	}
	s.obs.WriteEvent(event)
	data := event
	if hasMetrics {
		// The client gets the event as Anthropic's API sends it; the meter
		// has just seen the metrics.
		s.event = meter.AppendWithoutInvocationMetrics(s.event[:0], event)
		data = s.event
	}
	s.out = appendSSEEvent(s.out, typ, data)
	return nil
}

// error emits an error event (the one an exception frame stands for) and
// feeds it to the observer, which ends the stream as stream_error.
func (s *BedrockStream) error(typ, message string) {
	s.event = append(s.event[:0], `{"type":"error","error":{"type":`...)
	s.event = meter.AppendJSONString(s.event, typ)
	s.event = append(s.event, `,"message":`...)
	s.event = meter.AppendJSONString(s.event, message)
	s.event = append(s.event, "}}"...)
	s.obs.WriteEvent(s.event)
	s.out = appendSSEEvent(s.out, []byte("error"), s.event)
}

// appendSSEEvent appends `event: name\ndata: data\n\n`, one data line per
// line of data (compact JSON has a single one).
func appendSSEEvent(dst, name, data []byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, '\n')
	for {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line = data[:i]
		}
		dst = append(dst, "data: "...)
		dst = append(dst, bytes.TrimSuffix(line, []byte("\r"))...)
		dst = append(dst, '\n')
		if i < 0 {
			break
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}
