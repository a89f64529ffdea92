//! End to end: the Helm chart (`charts/supportgate`), the plain manifests (`manifests/`) and the
//! container image recipe (`Dockerfile`), checked with the real `helm`, the real `kubectl` and a
//! real kube-apiserver (tests/support). Pods never run there: the objects are what is tested.
//!
//! One test binary (one control plane), one module per thing proven; `render`, `cluster` and
//! `rbac` hold the steps they share.

#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod rbac;
mod render;

mod cert_manager_install;
mod generated_files;
mod image;
mod plain_manifests;
mod self_managed_install;
mod server_side_validation;
mod service_account_rbac;
mod users_policy;
mod values_schema;
