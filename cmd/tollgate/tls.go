package main

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certificate is a listener's TLS certificate, loaded from its files at start
// and again on SIGHUP: handshakes after a reload use the new one, and a
// reload that fails keeps the old.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// newCertificate loads the pair; it returns nil when both files are unset
// (the listener serves plain HTTP).
func newCertificate(c tlsConfig) (*certificate, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert := &certificate{certFile: c.CertFile, keyFile: c.KeyFile}
	return cert, cert.load()
}

func (c *certificate) load() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("cannot load the TLS certificate %s: %w", c.certFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

// config is the listener's TLS configuration, or nil for plain HTTP.
// scheme is the URL scheme of a listener served with c (nil: plain HTTP).
func (c *certificate) scheme() string {
	if c == nil {
		return "http://"
	}
	return "https://"
}

func (c *certificate) config() *tls.Config {
	if c == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// reload loads the files again (SIGHUP); nil does nothing.
func (c *certificate) reload() error {
	if c == nil {
		return nil
	}
	return c.load()
}
