//go:build tools

// Package kyverno pins Kyverno's admission controller (cmd/kyverno), built by
// build.sh as a test and benchmark peer only (issue #19: tests/e2e_kyverno.rs,
// benches/apiserver.rs). It is never compiled on its own and never a dependency
// of the product; the blank import only makes `go mod tidy` record the main
// package and its dependencies in go.mod/go.sum.
package kyverno

import (
	_ "github.com/kyverno/kyverno/cmd/kyverno"
)
