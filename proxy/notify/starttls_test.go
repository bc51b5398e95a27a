package notify

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testcert"

	"github.com/emersion/go-smtp"
)

// tlsOnlySession takes mail only once the connection is TLS.
type tlsOnlySession struct {
	mailSession
	conn *smtp.Conn
}

func (s *tlsOnlySession) Mail(string, *smtp.MailOptions) error {
	if _, ok := s.conn.TLSConnectionState(); !ok {
		return &smtp.SMTPError{Code: 530, Message: "TLS first"}
	}
	return nil
}

// TestEmailOverSTARTTLS: with tls starttls the mailer upgrades the
// connection before sending (the server refuses mail in clear); a
// certificate nobody trusts, or a server without STARTTLS, gets nothing.
func TestEmailOverSTARTTLS(t *testing.T) {
	cert, pool, err := testcert.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &tlsOnlySession{mailSession{box}, c}, nil
	}))
	srv.Domain, srv.TLSConfig = "localhost", &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	send := func(cfg SMTP) error {
		m := &mailer{cfg: cfg}
		e := &Event{ID: "evt_1", Type: TopUpReceived, Time: time.Now(), Account: "acme", Data: map[string]string{"amount": "10", "credit": "paid", "order_id": "o1", "available": "10"}}
		return m.send(context.Background(), e, "", []string{"ada@acme.test"})
	}
	if err := send(SMTP{Host: "127.0.0.1", Port: p, TLS: "starttls", From: "billing@platform.test", TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}); err != nil {
		t.Fatalf("over STARTTLS: %s", err)
	}
	box.mu.Lock()
	got := len(box.msgs)
	box.mu.Unlock()
	if got != 1 {
		t.Fatalf("%d messages over STARTTLS", got)
	}
	if err := send(SMTP{Host: "127.0.0.1", Port: p, TLS: "starttls", From: "billing@platform.test"}); err == nil {
		t.Fatal("a certificate nobody trusts was accepted")
	}
	plain := newMailbox(t)
	host, port2, _ := net.SplitHostPort(plain.addr)
	p2, _ := strconv.Atoi(port2)
	if err := send(SMTP{Host: host, Port: p2, TLS: "starttls", From: "billing@platform.test"}); err == nil || len(plain.subjects()) != 0 {
		t.Fatalf("a server without STARTTLS got the mail in clear: %v", err)
	}
}
