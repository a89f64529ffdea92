//go:build tools

// Package helm pins the helm CLI built by ../build.sh. It is a separate module
// from ../ because helm v3 requires newer k8s.io/* modules than the ones
// Kubernetes v1.36 pins (and the parent module replaces them to v0.36.x).
package helm

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
