package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy"
)

type disputeView struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	State     string `json:"state"`
	Refund    string `json:"refund"`
	Call      *struct {
		Charged string `json:"charged"`
	} `json:"call"`
}

// fileDispute posts a dispute with key and returns the status and the
// answer.
func (h *harness) fileDispute(key, requestID, disputeID string) (int, disputeView) {
	h.t.Helper()
	body := fmt.Sprintf(`{"request_id":%q,"reason":"the answer was cut off","dispute_id":%q}`, requestID, disputeID)
	resp, b := h.post("/v1/disputes", key, []byte(body), nil)
	var d disputeView
	json.Unmarshal(b, &d)
	return resp.StatusCode, d
}

// TestDisputesEndToEnd: a customer disputes a call with its key, once (a
// repeat under the same ID answers the first, another dispute of the call
// is 409, another account's call 404); the operator finds it in the open
// queue with its call, accepts it, and the customer sees it accepted and
// the charge credited back to the nano-credit.
func TestDisputesEndToEnd(t *testing.T) {
	h := newHarness(t)
	a, other := h.newAccount("10"), h.newAccount("10")
	_, _, call := h.streamCall(a, messagesBody("one two three", 100, true))
	before := h.balance(a)

	status, d := h.fileDispute(a.Key, call.RequestID, "dsp_e2e")
	if status != http.StatusCreated || d.State != "open" || d.RequestID != call.RequestID {
		t.Fatalf("unexpected filing: %d %+v", status, d)
	}
	if status, again := h.fileDispute(a.Key, call.RequestID, "dsp_e2e"); status != http.StatusOK || again.ID != "dsp_e2e" {
		t.Fatalf("unexpected repeat: %d %+v", status, again)
	}
	if status, _ := h.fileDispute(a.Key, call.RequestID, "dsp_other"); status != http.StatusConflict {
		t.Fatalf("a second dispute of one call: status %d; want 409", status)
	}
	if status, _ := h.fileDispute(other.Key, call.RequestID, "dsp_x"); status != http.StatusNotFound {
		t.Fatalf("a dispute of another account's call: status %d; want 404", status)
	}

	var queue struct{ Data []disputeView }
	h.admin(http.MethodGet, "/admin/v1/disputes?state=open", nil, http.StatusOK, &queue)
	if len(queue.Data) != 1 || queue.Data[0].ID != "dsp_e2e" || queue.Data[0].Call == nil || queue.Data[0].Call.Charged != call.Charged {
		t.Fatalf("unexpected open queue: %+v", queue.Data)
	}
	var accepted disputeView
	h.admin(http.MethodPost, "/admin/v1/disputes/dsp_e2e/accept", map[string]any{}, http.StatusOK, &accepted)
	h.admin(http.MethodPost, "/admin/v1/disputes/dsp_e2e/reject", map[string]any{"reason": "no"}, http.StatusConflict, nil)
	if accepted.State != "accepted" || accepted.Refund != call.Charged {
		t.Fatalf("unexpected acceptance: %+v", accepted)
	}
	after := h.balance(a)
	if after.Available-before.Available != mustAmount(t, call.Charged) {
		t.Fatalf("the refund was not the charge: available %d -> %d, charged %s", before.Available, after.Available, call.Charged)
	}
	resp, b := h.get("/v1/disputes", a.Key)
	var mine struct{ Data []disputeView }
	if json.Unmarshal(b, &mine); resp.StatusCode != http.StatusOK || len(mine.Data) != 1 || mine.Data[0].State != "accepted" {
		t.Fatalf("unexpected disputes seen by the customer: %d %s", resp.StatusCode, b)
	}
}

// TestDisputeWindow: a call older than the dispute window cannot be
// disputed (409), checked when the dispute is filed.
func TestDisputeWindow(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) { c.DisputeWindow = 200 * time.Millisecond }))
	a := h.newAccount("10")
	_, _, call := h.streamCall(a, messagesBody("one two three", 100, true))
	time.Sleep(300 * time.Millisecond)
	if status, _ := h.fileDispute(a.Key, call.RequestID, "dsp_late"); status != http.StatusConflict {
		t.Fatalf("a dispute past the window: status %d; want 409", status)
	}
}
