// Package admin is the operator's HTTP API: accounts, top-ups, keys,
// adjustments, entries, calls, statements, the catalogue, backups, health,
// readiness, metrics and Go's profiles. docs/openapi.yaml describes every
// route; a test keeps the two in step.
//
// It stands alone: it reaches the gateway's state only through the ledger,
// the catalogue in force, its configuration and a logger, so the consoles
// and a cluster node can serve it beside any front.
//
// It is a cold path (operators and their scripts, not customers' calls), so
// it is written for reading, not speed: net/http's pattern router, request
// bodies decoded into typed structs (decodeBody), answers marshalled by
// sonic. Rejected: fasthttp with a hand-written matcher and a field map
// (what it replaced: more code, and the hot path's library buys nothing
// here), a third-party router (net/http's patterns cover these routes).
//
// Every answer carries a request-id header; errors have the client API's
// shape (package views) with that ID; a panic in a handler is logged with
// it and answered 500, and the listener keeps serving.
package admin
