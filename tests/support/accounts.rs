//! Who acts in a test besides the admin: a namespace user, a ServiceAccount whose Role grants
//! some kinds in its own namespace and nothing else, as `kubectl` sees it through a kubeconfig.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{ControlPlane, stderr};

/// A ServiceAccount `ns/name` granted `verbs` on `resources` of `group` in `ns` alone.
pub struct NamespaceUser<'a> {
    pub ns: &'a str,
    pub name: &'a str,
    pub group: &'a str,
    pub resources: &'a [&'a str],
    pub verbs: &'a [&'a str],
}

impl NamespaceUser<'_> {
    /// Creates the account, its Role and RoleBinding, and writes its kubeconfig (a one-hour
    /// token) to `path`. Asserts that it is not the admin: cluster-scoped reads are refused.
    pub fn create<'c>(&self, cp: &'c ControlPlane, path: &Path) -> AsUser<'c> {
        let (ns, name) = (self.ns, self.name);
        let list = |items: &[&str]| items.join(", ");
        let rbac = format!(
            "apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {name}, namespace: {ns}}}
rules:
- apiGroups: [{group}]
  resources: [{resources}]
  verbs: [{verbs}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: {ns}}}]
",
            group = self.group,
            resources = list(self.resources),
            verbs = list(self.verbs),
        );
        cp.kubectl_ok(&["apply", "-f", "-"], Some(&rbac));
        cp.service_account_kubeconfig(ns, name, path);
        let user = AsUser {
            cp,
            kubeconfig: path.to_path_buf(),
        };
        let o = user.kubectl(&["get", "supportpolicies"], None);
        assert!(
            !o.status.success() && stderr(&o).contains("Forbidden"),
            "{name} must not be an admin: {}",
            stderr(&o)
        );
        user
    }
}

/// `kubectl` with a user's kubeconfig.
pub struct AsUser<'a> {
    pub cp: &'a ControlPlane,
    pub kubeconfig: PathBuf,
}

impl AsUser<'_> {
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.cp.kubectl_as(&self.kubeconfig, args, stdin)
    }

    /// `kubectl apply -f -` of `doc` (which names its namespace).
    pub fn apply(&self, doc: &str) -> Output {
        self.kubectl(&["apply", "-f", "-"], Some(doc))
    }

    /// `kubectl -n NS apply -f -` of `doc`.
    pub fn apply_in(&self, ns: &str, doc: &str) -> Output {
        self.kubectl(&["-n", ns, "apply", "-f", "-"], Some(doc))
    }
}
