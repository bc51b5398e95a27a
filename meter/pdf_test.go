package meter

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// pdfWithPages is a minimal PDF-shaped file with n page objects, padded so
// that its markers fall across the decoder's blocks.
func pdfWithPages(n int, pad int) []byte {
	var b strings.Builder
	b.WriteString("%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Count ")
	fmt.Fprintf(&b, "%d >> endobj\n", n)
	for i := range n {
		b.WriteString(strings.Repeat("x", pad))
		fmt.Fprintf(&b, "%d 0 obj << /Type /Page /Parent 2 0 R >> endobj\n", i+3)
	}
	b.WriteString("%%EOF\n")
	return []byte(b.String())
}

// TestCountPDFPages: a PDF is held at its page count times PDFPageTokens; a
// PDF whose pages cannot be seen, at MaxPDFPages. The estimate was once one
// token per decoded byte plus a single image, whatever the page count.
func TestCountPDFPages(t *testing.T) {
	f := func(pdf []byte, want int64) {
		t.Helper()
		raw := []byte(base64.StdEncoding.EncodeToString(pdf))
		if got := countPDFPages(raw, false); got != want {
			t.Fatalf("unexpected page count of a %d-byte PDF; got %d; want %d", len(pdf), got, want)
		}
	}
	f(pdfWithPages(1, 0), 1)
	f(pdfWithPages(7, 0), 7)
	for pad := range 40 {
		f(pdfWithPages(30, 1000+pad*97), 30) // markers across block boundaries
	}
	f(pdfWithPages(250, 0), MaxPDFPages)
	f([]byte("%PDF-1.7\n1 0 obj << /Type /ObjStm /N 40 >> stream\nx\x9c... endstream\n%%EOF"), MaxPDFPages)
	if got := countPDFPages([]byte("not base64!"), false); got != MaxPDFPages {
		t.Fatalf("unexpected page count of garbage; got %d; want %d", got, MaxPDFPages)
	}
}

// TestInspectRequestDocuments: documents the gateway cannot see (a URL, a
// Files API file) are held beyond any context window (the hold caps them at
// the model's), not at a fixed 100,000 tokens.
func TestInspectRequestDocuments(t *testing.T) {
	estimate := func(source string) int64 {
		t.Helper()
		body := `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":` + source + `}]}]}`
		var r Request
		if err := InspectRequest([]byte(body), &r); err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		return r.EstimatedInputTokens
	}
	// The source's own keys are not text: every source costs the same text.
	base := estimate(`{"type":"text","media_type":"text/plain","data":""}`)
	f := func(source string, wantTokens int64) {
		t.Helper()
		if got := estimate(source) - base; got != wantTokens {
			t.Fatalf("unexpected estimate for %.80s; got %d; want %d", source, got, wantTokens)
		}
	}
	pdf := base64.StdEncoding.EncodeToString(pdfWithPages(3, 100))
	f(`{"type":"base64","media_type":"application/pdf","data":"`+pdf+`"}`, 3*PDFPageTokens)
	f(`{"type":"url","url":"https://example.com/a.pdf"}`, UnboundedDocumentTokens)
	f(`{"type":"file","file_id":"file_01"}`, UnboundedDocumentTokens)
}
