//go:build tools

// Package controlplane pins the test control-plane binaries (kube-apiserver,
// kubectl, etcd, and for `up --node` kube-controller-manager, kube-scheduler,
// kubelet, kube-proxy) built by build.sh. It is never compiled on its own; the blank
// imports only make `go mod tidy` record these main packages and their
// dependencies in go.mod/go.sum. helm lives in ./helm (its own module),
// because helm v3 requires newer k8s.io/* modules than Kubernetes v1.36.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
