// Package lint holds the repository's structural checks, as tests (Pebble
// keeps its lint rules the same way): the import graph between Tollgate's
// packages, the allow-list of third-party dependencies in go.mod, and where
// unsafe may appear. It has no code of its own.
package lint
