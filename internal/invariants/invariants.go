// Package invariants switches the expensive self-checks: code guards them
// with `if invariants.Enabled { ... }`, and the compiler drops the guarded
// code from ordinary builds. `make test` builds with `-tags invariants`, so
// every test runs with the checks on (TigerBeetle's and Pebble's way: cheap
// assertions always, costly ones in tests).
package invariants
