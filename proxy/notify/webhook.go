package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sign returns the Standard Webhooks signature header of a delivery:
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each secret, space
// separated (several during a rotation). A secret is "whsec_" and the
// base64 of its key.
func Sign(secrets []string, id string, timestamp int64, body []byte) string {
	var sigs []string
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			continue
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%d.", id, timestamp)
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// Verify is what a receiver does (docs/notifications.md shows it): true
// when one of header's signatures is secret's over id.timestamp.body.
func Verify(secret, id, timestamp, header string, body []byte) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	want := Sign([]string{secret}, id, ts, body)
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// errDenied is a destination the allow-list refuses.
var errDenied = errors.New("destination address not allowed")

// webhookClient posts deliveries: a timeout, no redirects followed, no
// proxies, and a dialer that checks the address it connects to (after DNS,
// so a name cannot point it inside): loopback, private, link-local and
// unspecified addresses are refused unless one of allowed holds them.
func webhookClient(timeout time.Duration, allowed []netip.Prefix) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return errDenied
		}
		return checkAddr(ap.Addr().Unmap(), allowed)
	}}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext, MaxIdleConnsPerHost: 2,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout},
	}
}

func checkAddr(a netip.Addr, allowed []netip.Prefix) error {
	for _, p := range allowed {
		if p.Contains(a) {
			return nil
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() || a.IsMulticast() ||
		slices.ContainsFunc(internalNetworks, func(p netip.Prefix) bool { return p.Contains(a) }) {
		return fmt.Errorf("%w: %s is loopback, private, link-local or otherwise internal (allow it with notifications.webhooks.allow_networks)", errDenied, a)
	}
	return nil
}

// internalNetworks are the special-purpose ranges (RFC 6890 and after)
// netip's predicates leave out that lead inside a network: shared address
// space (carrier-grade NAT, some clouds' metadata services), benchmarking,
// "this network", reserved, IPv4 special purpose, NAT64 and 6to4 (which
// embed IPv4 addresses), deprecated site-local IPv6, discard.
var internalNetworks = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
		"64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "fec0::/10", "100::/64"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// maxWebhookReply bounds what is read of a receiver's reply.
const maxWebhookReply = 4 << 10

// postWebhook delivers body as event id to url; a 2xx answer is a
// delivery, anything else (a redirect included) a failure to retry.
func postWebhook(ctx context.Context, c *http.Client, url, id string, now time.Time, secrets []string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tollgate-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(secrets, id, ts, body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookReply))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
