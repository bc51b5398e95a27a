package bench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ErrNotLoopback is returned for a target or listen address beyond
// loopback: tollbench generates load only on the machine it runs on, so it
// can never be pointed at someone else's service by mistake.
var ErrNotLoopback = errors.New("bench: only loopback targets are allowed")

// CheckLoopbackURL checks that rawURL is http://HOST[:PORT][/path] with HOST
// a loopback IP address or "localhost", and returns the host:port to dial.
func CheckLoopbackURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("bench: cannot parse target %q: %w", rawURL, err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("bench: target %q: only http:// is supported", rawURL)
	}
	if u.User != nil || u.Host == "" {
		return "", fmt.Errorf("bench: target %q must be http://host:port", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	if err := checkLoopbackHostPort(host); err != nil {
		return "", fmt.Errorf("%w: %q", err, rawURL)
	}
	return host, nil
}

// checkLoopbackHostPort checks a host:port whose host is a loopback IP or
// "localhost" (which resolves to loopback by RFC 6761; it is not resolved
// here, so no resolver can redirect the load).
func checkLoopbackHostPort(hostPort string) error {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("bench: %q is not host:port: %w", hostPort, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return ErrNotLoopback
	}
	return nil
}
