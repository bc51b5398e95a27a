// Package upstream is the gateway's client of the providers it resells:
// one Upstream per configured provider account (Anthropic's API, or Claude
// on AWS Bedrock), with its pool of connections, the reader of its reply
// bodies, its health, the order a call tries them in (Routes), the Bedrock
// adapter (request rewrite and signing, event stream to SSE) and the
// judging of error answers into what a customer may see. It knows nothing
// of calls, keys or money: package proxy drives it.
//
// # Connections
//
// The HTTP/1.1 protocol work is fasthttp's (Request.Write,
// ResponseHeader.Read); the connection pool and the body reader are ours,
// because fasthttp's HostClient sets one read deadline before the headers,
// which cannot express the first-byte, between-events and whole-call
// timeouts a stream needs, and its streamed responses cost four
// allocations per call. The pool is a bounded stack of idle connections
// and a semaphore of Config.MaxConns; a call that finds every connection
// busy for the connect timeout gets ErrPoolFull, the gateway's own
// saturation, never counted against the upstream's health.
//
// # Routing and health
//
// route.go: candidates by priority, then weighted rendezvous hashing on a
// key (the account for sticky routing); an upstream failing several times
// in a row is taken out for a backoff.
//
// # Bedrock
//
// bedrock.go rewrites a Messages request as the official SDKs do for
// Bedrock and signs it (SigV4 by the AWS SDK's signer, or a Bedrock API
// key); bedrock_stream.go turns the reply's event-stream frames into the
// SSE Anthropic's API sends, so a client cannot tell the upstreams apart.
//
// # Errors
//
// errors.go decides from status, error type, error code and exact known
// messages (never a search of a body that can echo customer text) whether
// an error is about the customer's request or the platform's own account,
// and words rate limits and server errors in Tollgate's own terms, so that
// nothing of the platform's account reaches a customer.
package upstream
