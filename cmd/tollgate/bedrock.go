package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/tollgate/tollgate/proxy/upstream"
)

// bedrockCredentialTimeout bounds finding AWS credentials at start (the
// chain may ask the instance metadata service, which is absent off AWS).
const bedrockCredentialTimeout = 15 * time.Second

// bedrockAuth gives a bedrock upstream its credential from the standard AWS
// sources: a Bedrock API key from AWS_BEARER_TOKEN_BEDROCK (auth: bearer, or
// no auth and the variable set), else SigV4 credentials from the AWS SDK's
// default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN, the shared config and credentials files with the
// upstream's profile or AWS_PROFILE, SSO, web identity, ECS and EC2 roles).
// The chain is asked once here so that a missing credential stops the start
// with a clear message rather than failing every call; its cache refreshes
// expiring credentials later.
//
// The SDK's config module earns its place because the AWS deployments that
// run a gateway get their credentials from roles and profiles far more often
// than from plain environment variables, and it is already in the module
// graph through the Anthropic SDK.
func bedrockAuth(uc *upstream.Config, u upstreamConfig) error {
	token := os.Getenv("AWS_BEARER_TOKEN_BEDROCK")
	if u.Auth == "bearer" || (u.Auth == "" && token != "") {
		if token == "" {
			return fmt.Errorf("upstream %q: auth is bearer but AWS_BEARER_TOKEN_BEDROCK is not set", u.Name)
		}
		uc.BearerToken = token
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), bedrockCredentialTimeout)
	defer cancel()
	opts := []func(*config.LoadOptions) error{config.WithRegion(u.Region)}
	if u.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(u.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("upstream %q: cannot load the AWS configuration: %w", u.Name, err)
	}
	if cfg.Credentials == nil {
		return fmt.Errorf("upstream %q: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role, or AWS_BEARER_TOKEN_BEDROCK", u.Name)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("upstream %q: cannot get AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role, or AWS_BEARER_TOKEN_BEDROCK): %w", u.Name, err)
	}
	uc.AWSCredentials = cfg.Credentials
	return nil
}
