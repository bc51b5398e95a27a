// Package configs holds Tollgate's default configuration files. They are
// embedded so that the binary starts with its defaults when run outside the
// repository; the files themselves are the documentation of every knob.
package configs

import _ "embed"

// Gateway is configs/tollgate.yaml.
//
//go:embed tollgate.yaml
var Gateway []byte

// Models is configs/models.yaml, the model catalogue.
//
//go:embed models.yaml
var Models []byte
