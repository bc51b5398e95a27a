package ledger

import (
	"reflect"
	"testing"

	"github.com/tollgate/tollgate/internal/tokens"
)

// fullCallRecord has every field set.
func fullCallRecord() CallRecord {
	return CallRecord{
		RequestID: "req_1", AccountID: "acme", KeyID: "key_1", TimeNanos: 1_700_000_000_000_000_000,
		Model: "claude-haiku-4-5", ModelTruncated: true, Status: 200, Outcome: OutcomeClientDisconnected,
		ModelID: "claude-haiku-4-5-20251001", Front: FrontOpenAI,
		Counts: tokens.Counts{InputTokens: 1, OutputTokens: 2, CacheCreationInputTokens: 3, CacheCreation5mInputTokens: 4, CacheCreation1hInputTokens: 5, CacheReadInputTokens: 6, WebSearchRequests: 7},
		Held:   1000, Charged: 700, UsageEstimated: true, SourceIPDigest: "ab12", DurationMs: 9, TTFBMs: 3,
		Upstream: "anthropic", UpstreamRequestID: "req_up", UpstreamCost: 600,
		Attempts: []Attempt{{Upstream: "bedrock", Status: 529, ErrorType: "overloaded_error", DurationMs: 2}, {Upstream: "anthropic", Status: 200}},
	}
}

// TestCallRecordVersions: a call record reads back whole, and records
// written by earlier versions (without the front; without the model ID
// and truncation flag) still read, with those fields at zero.
func TestCallRecordVersions(t *testing.T) {
	want := fullCallRecord()
	enc := appendCallRecord(nil, &want)
	decode := func(b []byte) CallRecord {
		t.Helper()
		var got CallRecord
		d := decoder{b: b}
		d.callRecord(&got)
		if err := d.done(); err != nil {
			t.Fatalf("cannot decode %x: %s", b, err)
		}
		return got
	}
	if got := decode(enc); !reflect.DeepEqual(got, want) {
		t.Fatalf("unexpected round trip:\ngot  %+v\nwant %+v", got, want)
	}
	v2 := append([]byte{2}, enc[1:len(enc)-1]...) // without the front
	want2 := want
	want2.Front = FrontAnthropic
	if got := decode(v2); !reflect.DeepEqual(got, want2) {
		t.Fatalf("unexpected version 2 record:\ngot  %+v\nwant %+v", got, want2)
	}
	tail := 1 + 1 + len(want.ModelID) + 1 // truncated flag, model ID, front
	v1 := append([]byte{1}, enc[1:len(enc)-tail]...)
	want1 := want2
	want1.ModelTruncated, want1.ModelID = false, ""
	if got := decode(v1); !reflect.DeepEqual(got, want1) {
		t.Fatalf("unexpected version 1 record:\ngot  %+v\nwant %+v", got, want1)
	}
}

// FuzzCallRecordDecode: no bytes make the decoder panic or allocate
// without bound, and a record that decodes encodes back to its bytes.
func FuzzCallRecordDecode(f *testing.F) {
	full := fullCallRecord()
	f.Add(appendCallRecord(nil, &full))
	f.Add(appendCallRecord(nil, &CallRecord{}))
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c CallRecord
		d := decoder{b: b}
		d.callRecord(&c)
		if d.done() != nil || len(b) == 0 || b[0] != callRecordVersion {
			return
		}
		// A varint written longer than it needs re-encodes shorter; an
		// encoding of the same length must be the same bytes.
		if again := appendCallRecord(nil, &c); len(again) == len(b) && string(again) != string(b) {
			t.Fatalf("a decoded record encodes differently:\n%x\n%x", b, again)
		}
	})
}
