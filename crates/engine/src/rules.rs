//! Rule ids and severities: the stable vocabulary of every verdict.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A note users see; never changes the verdict.
    Info,
    Warn,
    Deny,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Deny => "deny",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    KonvoyUnsupported,
    KonvoyNearingEnd,
    KubernetesOutOfRange,
    KbaKubernetesMismatch,
    KommanderMismatch,
    ExperimentalComponent,
    Prerelease,
    AddonKubernetesIncompatible,
    VersionInvalid,
    /// A KBA or Kommander ref that does not follow the tag grammar (`master`, legacy tags): its
    /// Kubernetes minor cannot be checked.
    RefUnrecognized,
    SecondarySupport,
    /// A targeted object that names no product version, or no Kubernetes version where its
    /// target says one lives: nothing about its support can be checked.
    VersionMissing,
    /// An UPDATE that moves the product or the Kubernetes minor up by more than the policy's
    /// `upgrades.maxMinorStep`.
    UpgradeSkipsMinor,
    /// An UPDATE that lowers the product or the Kubernetes version, unless the policy's
    /// `upgrades.allowDowngrade`.
    Downgrade,
    /// Two places that must name the same product version do not: a KonvoyCluster's
    /// `spec.cluster.version` and `spec.provisioner.version`, or (offline) a ClusterConfiguration
    /// and the ClusterProvisioner of the same name.
    KonvoyVersionMismatch,
    /// An UPDATE that removes the product or the Kubernetes version the old object named: the
    /// upgrade rules would have nothing to compare the next version with (unset, then set two
    /// minors up, would walk around them).
    VersionRemoved,
    /// In a production cluster, an addons entry whose repository the policy cannot identify as
    /// Kubernetes Base Addons or Kommander, or whose ref it cannot tell (none, or a different
    /// one in the repository URL): its ref is checked by nothing. Severity:
    /// `spec.unidentifiedRefs`.
    RefUnidentified,
}

impl Rule {
    pub const ALL: [Rule; 17] = [
        Rule::KonvoyUnsupported,
        Rule::KonvoyNearingEnd,
        Rule::KubernetesOutOfRange,
        Rule::KbaKubernetesMismatch,
        Rule::KommanderMismatch,
        Rule::ExperimentalComponent,
        Rule::Prerelease,
        Rule::AddonKubernetesIncompatible,
        Rule::VersionInvalid,
        Rule::RefUnrecognized,
        Rule::SecondarySupport,
        Rule::VersionMissing,
        Rule::UpgradeSkipsMinor,
        Rule::Downgrade,
        Rule::KonvoyVersionMismatch,
        Rule::VersionRemoved,
        Rule::RefUnidentified,
    ];

    /// The stable id (`konvoy-unsupported`).
    pub fn id(self) -> &'static str {
        match self {
            Rule::KonvoyUnsupported => "konvoy-unsupported",
            Rule::KonvoyNearingEnd => "konvoy-nearing-end",
            Rule::KubernetesOutOfRange => "kubernetes-out-of-range",
            Rule::KbaKubernetesMismatch => "kba-kubernetes-mismatch",
            Rule::KommanderMismatch => "kommander-mismatch",
            Rule::ExperimentalComponent => "experimental-component",
            Rule::Prerelease => "prerelease",
            Rule::AddonKubernetesIncompatible => "addon-kubernetes-incompatible",
            Rule::VersionInvalid => "version-invalid",
            Rule::RefUnrecognized => "ref-unrecognized",
            Rule::SecondarySupport => "secondary-support",
            Rule::VersionMissing => "version-missing",
            Rule::UpgradeSkipsMinor => "upgrade-skips-minor",
            Rule::Downgrade => "downgrade",
            Rule::KonvoyVersionMismatch => "konvoy-version-mismatch",
            Rule::VersionRemoved => "version-removed",
            Rule::RefUnidentified => "ref-unidentified",
        }
    }

    /// The id as a Kubernetes condition reason (`KonvoyUnsupported`).
    pub fn reason(self) -> &'static str {
        match self {
            Rule::KonvoyUnsupported => "KonvoyUnsupported",
            Rule::KonvoyNearingEnd => "KonvoyNearingEnd",
            Rule::KubernetesOutOfRange => "KubernetesOutOfRange",
            Rule::KbaKubernetesMismatch => "KbaKubernetesMismatch",
            Rule::KommanderMismatch => "KommanderMismatch",
            Rule::ExperimentalComponent => "ExperimentalComponent",
            Rule::Prerelease => "Prerelease",
            Rule::AddonKubernetesIncompatible => "AddonKubernetesIncompatible",
            Rule::VersionInvalid => "VersionInvalid",
            Rule::RefUnrecognized => "RefUnrecognized",
            Rule::SecondarySupport => "SecondarySupport",
            Rule::VersionMissing => "VersionMissing",
            Rule::UpgradeSkipsMinor => "UpgradeSkipsMinor",
            Rule::Downgrade => "Downgrade",
            Rule::KonvoyVersionMismatch => "KonvoyVersionMismatch",
            Rule::VersionRemoved => "VersionRemoved",
            Rule::RefUnidentified => "RefUnidentified",
        }
    }

    /// Rules judged on the change from the old object to the new one: the old object alone can
    /// never carry them, so ratcheting (which forgives what the old object already had) must
    /// never touch them.
    pub fn compares_revisions(self) -> bool {
        matches!(
            self,
            Rule::UpgradeSkipsMinor | Rule::Downgrade | Rule::VersionRemoved
        )
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reasons_and_serde_agree() {
        for r in Rule::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.id()));
            let camel: String = r
                .id()
                .split('-')
                .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                .collect();
            assert_eq!(camel, r.reason());
        }
    }
}
