package proxy

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream is one provider account calls are forwarded to, with its pooled
// connections.
type upstream struct {
	name   string
	kind   string
	scheme string
	host   string
	// pathPrefix is the base URL's path, prepended to the client's path.
	pathPrefix string
	apiKey     string
	client     *fasthttp.HostClient
}

func newUpstream(uc UpstreamConfig, cfg *Config) (*upstream, error) {
	u, err := url.Parse(uc.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: base URL %q must be http(s)://host[:port][/path]", uc.Name, uc.BaseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	connectTimeout := cfg.ConnectTimeout
	up := &upstream{
		name:       uc.Name,
		kind:       uc.Kind,
		scheme:     u.Scheme,
		host:       u.Host,
		pathPrefix: strings.TrimSuffix(u.Path, "/"),
		apiKey:     uc.APIKey,
	}
	up.client = &fasthttp.HostClient{
		Addr:                     addr,
		Name:                     "tollgate",
		NoDefaultUserAgentHeader: true,
		IsTLS:                    u.Scheme == "https",
		MaxConns:                 uc.MaxConns,
		MaxIdleConnDuration:      90 * time.Second,
		MaxConnWaitTimeout:       connectTimeout,
		StreamResponseBody:       true,
		MaxResponseBodySize:      cfg.MaxResponseBodyBytes,
		// A call is forwarded at most once: a retry after the upstream may
		// have started work could bill the customer twice.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		DisablePathNormalizing:    true,
		Dial: func(addr string) (net.Conn, error) {
			c, err := fasthttp.DialTimeout(addr, connectTimeout)
			if err != nil {
				return nil, err
			}
			return newUpstreamConn(c), nil
		},
	}
	return up, nil
}

// Request headers forwarded to the upstream (CONTRACT §2); anthropic-beta
// lines are joined, x-stainless-* forwarded by prefix. Everything else, the
// client's credentials and hop-by-hop headers included, stays behind.
var forwardedRequestHeaders = [...]string{"anthropic-version", "content-type", "accept", "user-agent"}

// prepareRequest fills ureq for forwarding the client's request in ctx with
// body to u.
func (u *upstream) prepareRequest(ureq *fasthttp.Request, ctx *fasthttp.RequestCtx, body []byte, betas []byte) {
	ureq.Header.SetMethod(fasthttp.MethodPost)
	uri := ureq.URI()
	uri.SetScheme(u.scheme)
	uri.SetHost(u.host)
	path := ureq.Header.RequestURI()[:0]
	path = append(path, u.pathPrefix...)
	path = append(path, ctx.Path()...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		path = append(path, '?')
		path = append(path, q...)
	}
	ureq.SetRequestURIBytes(path)
	ureq.Header.SetHost(u.host)
	for _, h := range forwardedRequestHeaders {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			ureq.Header.SetBytesV(h, v)
		}
	}
	if len(betas) > 0 {
		ureq.Header.SetBytesV("anthropic-beta", betas)
	}
	for k, v := range ctx.Request.Header.All() {
		if len(k) > len("x-stainless-") && bytes.EqualFold(k[:len("x-stainless-")], []byte("x-stainless-")) {
			ureq.Header.SetBytesKV(k, v)
		}
	}
	ureq.Header.Set("x-api-key", u.apiKey)
	ureq.SetBodyRaw(body)
}

// appendBetas appends every anthropic-beta line of the request joined with
// ", " and returns the first value that is in denied, if any.
func appendBetas(dst []byte, h *fasthttp.RequestHeader, denied []string) ([]byte, string) {
	var refused string
	for k, v := range h.All() {
		if !bytes.EqualFold(k, []byte("anthropic-beta")) {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
		if refused == "" && len(denied) > 0 {
			for part := range bytes.SplitSeq(v, []byte(",")) {
				part = bytes.TrimSpace(part)
				for _, d := range denied {
					if string(part) == d {
						refused = d
					}
				}
			}
		}
	}
	return dst, refused
}
