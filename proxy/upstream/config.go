package upstream

import (
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Config is one upstream provider account.
type Config struct {
	// Name identifies the upstream in call records and metrics.
	Name string
	// Kind is "anthropic" (Anthropic's Messages API; the default) or
	// "bedrock" (Claude on AWS Bedrock's InvokeModel API).
	Kind string
	// BaseURL is the API's base, e.g. https://api.anthropic.com. For bedrock
	// it overrides the endpoint (tests, VPC endpoints); empty means
	// https://bedrock-runtime.{Region}.amazonaws.com.
	BaseURL string
	// APIKey is the platform's credential for an anthropic upstream.
	APIKey string
	// MaxConns bounds the connections to it, so the calls in flight on it
	// (a stream holds one for its life); as many more may queue. Default
	// 4096.
	MaxConns int

	// Region is a bedrock upstream's AWS region: the default endpoint's and
	// the SigV4 credential scope's. Required for bedrock.
	Region string
	// AWSCredentials sign a bedrock upstream's requests with SigV4 (service
	// "bedrock"); a caching provider (aws.CredentialsCache) is expected,
	// since it is asked on every call. Either it or BearerToken is required
	// for bedrock.
	AWSCredentials aws.CredentialsProvider
	// BearerToken is a Bedrock API key, sent as Authorization: Bearer
	// instead of a SigV4 signature when set.
	BearerToken string

	// Priority orders the upstreams serving a model: lower values are tried
	// first. Default 0.
	Priority int
	// Weight shares calls among upstreams of equal priority, in proportion.
	// Default (and zero) 1.
	Weight int

	// Dial opens a connection to addr (host:port); nil dials TCP. Tests
	// and benchmarks route connections to an in-memory upstream with it.
	Dial func(addr string) (net.Conn, error)
}

// Upstream kinds.
const (
	KindAnthropic = "anthropic"
	KindBedrock   = "bedrock"
)

// SetDefaults fills c's defaults (kind anthropic, weight 1, 4,096
// connections, Bedrock's regional endpoint) and checks what has none.
func (c *Config) SetDefaults() error {
	if c.Kind == "" {
		c.Kind = KindAnthropic
	}
	switch c.Kind {
	case KindAnthropic:
	case KindBedrock:
		if c.Region == "" {
			return fmt.Errorf("upstream %q: a bedrock upstream needs a region", c.Name)
		}
		if c.AWSCredentials == nil && c.BearerToken == "" {
			return fmt.Errorf("upstream %q: a bedrock upstream needs AWS credentials or a bearer token", c.Name)
		}
		if c.BaseURL == "" {
			c.BaseURL = "https://bedrock-runtime." + c.Region + ".amazonaws.com"
		}
	default:
		return fmt.Errorf("upstream %q: unknown kind %q (want anthropic or bedrock)", c.Name, c.Kind)
	}
	if c.Weight < 0 {
		return fmt.Errorf("upstream %q: weight %d is negative", c.Name, c.Weight)
	}
	if c.Weight == 0 {
		c.Weight = 1
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 4096
	}
	return nil
}
