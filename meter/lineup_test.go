package meter

import (
	"fmt"
	"testing"
	"time"
)

// TestLineupGolden bills every model of today's lineup from a streamed and
// a non-streamed reply carrying the same usage, against prices worked out
// by hand from the published per-million rates ($X per million is X*1000
// nano-credits per token): plain, cached (5-minute and 1-hour writes,
// reads), Haiku 5.5 on both sides of its 100,000-token band, fast mode and
// US data residency, and Sonnet 5.5 before and after its cache-read cut.
func TestLineupGolden(t *testing.T) {
	cat := shippedCatalogue(t)
	dec := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	type usage struct {
		in, out, w5m, w1h, read int64
		speed, geo              string
	}
	// stream and body are the same reply as SSE and as JSON.
	usageJSON := func(u usage) string {
		s := fmt.Sprintf(`"input_tokens":%d,"output_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d}`,
			u.in, u.out, u.w5m+u.w1h, u.read, u.w5m, u.w1h)
		if u.speed != "" {
			s += `,"speed":"` + u.speed + `"`
		}
		if u.geo != "" {
			s += `,"inference_geo":"` + u.geo + `"`
		}
		return "{" + s + "}"
	}
	stream := func(model string, u usage) []byte {
		start := u
		start.out = 1
		return []byte(`event: message_start
data: {"type":"message_start","message":{"model":"` + model + `","id":"msg_1","type":"message","role":"assistant","content":[],"usage":` + usageJSON(start) + `}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":` + fmt.Sprint(u.out) + `}}

event: message_stop
data: {"type":"message_stop"}

`)
	}
	body := func(model string, u usage) []byte {
		return []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"` + model + `","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":` + usageJSON(u) + `}`)
	}
	f := func(model string, at time.Time, u usage, want int64) {
		t.Helper()
		m := mustModel(t, cat, model)
		var o Observer
		for _, whole := range []bool{false, true} {
			o.Reset(0)
			if whole {
				if err := o.ObserveMessage(body(model, u)); err != nil {
					t.Fatalf("%s: cannot observe the reply: %s", model, err)
				}
			} else {
				o.Write(stream(model, u))
			}
			r := o.Result()
			ch, err := cat.Charge(m, r.Usage, &r, at, MultiplierOne)
			if err != nil || ch.Price != want {
				t.Fatalf("%s (whole reply %v) %+v: unexpected price; got %d, %v; want %d", model, whole, u, ch.Price, err, want)
			}
		}
	}
	// nano converts tokens at $x per million (x in thousandths of a dollar)
	// to nano-credits: tokens * x.
	cached := usage{in: 1000, out: 500, w5m: 2000, w1h: 3000, read: 10000}
	f("claude-opus-5-5", dec, cached, 1000*4000+500*20000+2000*5000+3000*8000+10000*200)
	f("claude-sonnet-5-5", dec, cached, 1000*2000+500*10000+2000*2500+3000*4000+10000*100)
	f("claude-sonnet-5-5", time.Date(2026, 10, 6, 23, 59, 0, 0, time.UTC), cached, 1000*2000+500*10000+2000*2500+3000*4000+10000*200)
	f("claude-haiku-5-5", dec, cached, 1000*100+500*500+2000*125+3000*200+10000*10)
	f("claude-fable-5-2", dec, cached, 1000*8000+500*40000+2000*10000+3000*16000+10000*200)
	f("claude-fable-5-1", dec, cached, 1000*10000+500*50000+2000*12500+3000*20000+10000*250)
	f("claude-opus-5", dec, cached, 1000*5000+500*25000+2000*6250+3000*10000+10000*500)
	f("claude-sonnet-5", dec, cached, 1000*2000+500*10000+2000*2500+3000*4000+10000*200)
	f("claude-fable-5", dec, cached, 1000*10000+500*50000+2000*12500+3000*20000+10000*1000)
	f("claude-opus-4-8", dec, cached, 1000*5000+500*25000+2000*6250+3000*10000+10000*500)
	f("claude-sonnet-4-6", dec, cached, 1000*3000+500*15000+2000*3750+3000*6000+10000*300)
	f("claude-haiku-4-5", dec, cached, 1000*1000+500*5000+2000*1250+3000*2000+10000*100)

	// Haiku 5.5's band: the prompt (input + cache writes + cache reads) at
	// exactly 100,000 is the low band; one more token, and every token,
	// output included, is at the high card.
	f("claude-haiku-5-5", dec, usage{in: 40000, w5m: 30000, read: 30000, out: 1000}, 40000*100+30000*125+30000*10+1000*500)
	f("claude-haiku-5-5", dec, usage{in: 40001, w5m: 30000, read: 30000, out: 1000}, 40001*500+30000*625+30000*50+1000*2500)

	// Fast mode (2x, caching included) and US residency (1.1x), stacking.
	f("claude-opus-5-5", dec, usage{in: 1000, out: 500, read: 1000, speed: "fast"}, 2*(1000*4000+500*20000+1000*200))
	f("claude-fable-5-2", dec, usage{in: 1000, out: 500, speed: "fast", geo: "us"}, 2*(1000*8000+500*40000)*11/10)
	f("claude-sonnet-5-5", dec, usage{in: 1000, out: 500, geo: "us"}, (1000*2000+500*10000)*11/10)
	// Opus 4.6's fast requests bill at the standard price.
	f("claude-opus-4-6", dec, usage{in: 1000, out: 500, speed: "fast"}, 1000*5000+500*25000)
}
