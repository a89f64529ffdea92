//! Rule ids and severities: the stable vocabulary of every verdict.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use strum::{
    AsRefStr, Display, EnumIter, EnumString, IntoEnumIterator, IntoStaticStr, VariantArray,
};

/// `info`, `warn`, `deny`: the same strings in JSON, in messages (`Display`) and as
/// `&'static str` (`IntoStaticStr`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Display,
    IntoStaticStr,
    AsRefStr,
    EnumString,
    EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    /// A note users see; never changes the verdict.
    Info,
    Warn,
    Deny,
}

/// A rule's stable id is its kebab-case name (`konvoy-unsupported`): in JSON, in messages
/// (`Display`), as `&'static str` ([`Rule::id`], `IntoStaticStr`) and parsed back (`FromStr`).
/// Every rule in order: [`Rule::ALL`] (`VariantArray`), `Rule::iter()` (`EnumIter`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Display,
    IntoStaticStr,
    AsRefStr,
    EnumString,
    EnumIter,
    VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
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
    pub const ALL: &'static [Rule] = Rule::VARIANTS;

    /// The stable id (`konvoy-unsupported`).
    pub fn id(self) -> &'static str {
        self.into()
    }

    /// The id as a Kubernetes condition reason (`KonvoyUnsupported`): the id in PascalCase.
    pub fn reason(self) -> &'static str {
        // Derived from the ids once, so the two spellings cannot drift apart.
        static REASONS: LazyLock<Vec<String>> =
            LazyLock::new(|| Rule::iter().map(|r| pascal_case(r.id())).collect());
        &REASONS[self as usize]
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

/// `konvoy-unsupported` -> `KonvoyUnsupported`.
fn pascal_case(kebab: &str) -> String {
    kebab
        .split('-')
        .flat_map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reasons_and_serde_agree() {
        for r in Rule::iter() {
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
