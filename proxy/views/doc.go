// Package views holds the JSON shapes both fronts answer with (the client
// API and the admin API), so that a call record, an entry or a statement
// reads the same to a customer and to an operator: amounts as exact decimal
// strings, times as RFC 3339 in UTC, lists in one envelope, errors in one
// body. It also reads the query parameters both fronts share (periods,
// pages, cursors) and writes an account's calls as CSV.
//
// It knows neither HTTP library: each front reads its own request and
// passes strings in, and writes what views returns.
package views
