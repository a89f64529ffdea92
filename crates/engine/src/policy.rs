//! A `SupportPolicy` spec, validated and parsed into typed values once.
//!
//! Everything the CRD schema cannot check (a bound that is not a version, min above max,
//! duplicate releases, a JSONPath that does not parse, an unparseable date) is caught here and
//! reported all at once, so the controller can put the whole list in the policy's `Ready`
//! condition.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use thiserror::Error;

use crate::problems::{parse_field, parse_or_note};
use crate::rules::Severity;
use crate::selector::{LabelSelector, Selector};
use crate::spec::{
    KubernetesRange, MissingVersion, PolicyDocument, PolicyResource, ProductRelease,
    SupportPolicySpec, TARGET_FIELDS_MESSAGE, UnidentifiedRefs,
};
use crate::targets::{CompiledTarget, presets};
use crate::version::{Bound, Minor, Version};

mod window;

pub use window::ReleaseSupport;

/// The embedded default policy: the Konvoy support policy as published for Konvoy 1.8.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../examples/policies/default.yaml");

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("the policy is not valid YAML/JSON for SupportPolicy: {0}")]
    Decode(String),
    #[error("the policy is invalid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// One product release with its support facts parsed.
#[derive(Debug, Clone)]
pub struct Release {
    pub minor: Minor,
    pub release_date: Option<Date>,
    pub end_of_support: Option<Date>,
    pub kubernetes_min: Bound,
    pub kubernetes_max: Bound,
    pub kubernetes_default: Option<Version>,
    /// The newest patch the policy knows, named by upgrade messages.
    pub latest_patch: Option<Version>,
    pub kommander: Option<Minor>,
    pub experimental_addons: BTreeSet<String>,
}

impl Release {
    pub fn is_released(&self, today: Date) -> bool {
        self.release_date.is_none_or(|d| d <= today)
    }

    pub fn kubernetes_range(&self) -> String {
        format!("{} to {}", self.kubernetes_min, self.kubernetes_max)
    }
}

/// A validated policy, ready for the engine.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub product_name: String,
    /// Newest first.
    releases: Vec<Release>,
    pub support_window: usize,
    pub nearing_end_days: i32,
    pub max_exception_days: i32,
    production: Selector,
    production_text: String,
    pub secondary_addons: bool,
    pub secondary_kudo_operators: BTreeSet<String>,
    targets: Vec<CompiledTarget>,
    pub always_write_policy_reports: bool,
    /// The severity of `version-missing`.
    pub missing_version: Severity,
    /// The severity of `ref-unidentified`.
    pub unidentified_refs: Severity,
    /// The upgrade path an UPDATE must follow.
    pub upgrades: UpgradePath,
}

/// `spec.upgrades`, compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradePath {
    /// How many minors a version may move up in one UPDATE; at least 1.
    pub max_minor_step: u64,
    pub allow_downgrade: bool,
}

impl Policy {
    /// The embedded default policy.
    pub fn embedded_default() -> Policy {
        // The embedded YAML is part of the binary and covered by tests; failing here is a build
        // defect, not bad input.
        Policy::from_yaml(DEFAULT_POLICY_YAML).expect("embedded default policy is valid")
    }

    /// Parses a `SupportPolicy` document (YAML or JSON).
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let sp: PolicyDocument =
            serde_norway::from_str(text).map_err(|e| PolicyError::Decode(e.to_string()))?;
        Policy::compile(&sp)
    }

    /// Compiles a SupportPolicy: the main crate's `api::SupportPolicy`, or a [`PolicyDocument`].
    pub fn compile(sp: &impl PolicyResource) -> Result<Policy, PolicyError> {
        let name = sp.policy_name().unwrap_or_default().to_string();
        Policy::compile_spec(name, sp.policy_spec())
    }

    pub fn compile_spec(name: String, spec: &SupportPolicySpec) -> Result<Policy, PolicyError> {
        let mut problems = Vec::new();
        let mut releases = Vec::new();
        let mut seen = BTreeMap::new();
        for (i, r) in spec.product.iter().enumerate() {
            if let Some(release) = Self::compile_release(i, r, &mut seen, &mut problems) {
                releases.push(release);
            }
        }
        if spec.product.is_empty() {
            problems.push("spec.product: at least one release is required".to_string());
        }
        if spec.support_window < 1 {
            problems.push("spec.supportWindow: must be at least 1".to_string());
        }
        if spec.nearing_end_days < 0 {
            problems.push("spec.nearingEndDays: must not be negative".to_string());
        }
        if spec.upgrades.max_minor_step < 1 {
            problems.push("spec.upgrades.maxMinorStep: must be at least 1".to_string());
        }

        let production = Self::compile_selector(spec, &mut problems);
        let targets = Self::compile_targets(spec, &mut problems);
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        releases.sort_by_key(|r| std::cmp::Reverse(r.minor));
        Ok(Policy {
            name,
            product_name: spec.product_name.clone(),
            releases,
            support_window: spec.support_window.max(1) as usize,
            nearing_end_days: spec.nearing_end_days.max(0),
            max_exception_days: spec.max_exception_days.max(1),
            production_text: production.to_string(),
            production,
            secondary_addons: spec.secondary_support.addons,
            secondary_kudo_operators: spec
                .secondary_support
                .kudo_operators
                .iter()
                .map(|o| o.trim().to_ascii_lowercase())
                .collect(),
            targets,
            always_write_policy_reports: spec.always_write_policy_reports,
            missing_version: match spec.missing_version {
                MissingVersion::Warn => Severity::Warn,
                MissingVersion::Deny => Severity::Deny,
            },
            unidentified_refs: match spec.unidentified_refs {
                UnidentifiedRefs::Warn => Severity::Warn,
                UnidentifiedRefs::Deny => Severity::Deny,
            },
            upgrades: UpgradePath {
                max_minor_step: spec.upgrades.max_minor_step.max(1) as u64,
                allow_downgrade: spec.upgrades.allow_downgrade,
            },
        })
    }

    /// One release entry, or `None` with its problems recorded.
    fn compile_release(
        i: usize,
        r: &ProductRelease,
        seen: &mut BTreeMap<Minor, usize>,
        problems: &mut Vec<String>,
    ) -> Option<Release> {
        let at = format!("spec.product[{i}]");
        let minor = match r.version.parse::<Minor>() {
            Ok(m)
                if r.version
                    .trim()
                    .trim_start_matches(['v', 'V'])
                    .split('.')
                    .count()
                    == 2 =>
            {
                m
            }
            Ok(_) | Err(_) => {
                problems.push(format!(
                    "{at}.version: `{}` is not a MAJOR.MINOR version such as 1.8",
                    r.version
                ));
                return None;
            }
        };
        if let Some(prev) = seen.insert(minor, i) {
            problems.push(format!(
                "{at}.version: {minor} is listed twice (also spec.product[{prev}])"
            ));
        }
        let mut date = |field: &str, v: &Option<String>| {
            parse_or_note::<Date>(v.as_deref(), problems, |s, _| {
                format!("{at}.{field}: `{s}` is not a date (YYYY-MM-DD)")
            })
        };
        let release_date = date("releaseDate", &r.release_date);
        let end_of_support = date("endOfSupport", &r.end_of_support);
        let kommander = parse_field(
            r.kommander.as_deref(),
            format_args!("{at}.kommander"),
            problems,
        );
        if let (Some(a), Some(b)) = (release_date, end_of_support)
            && b <= a
        {
            problems.push(format!(
                "{at}: endOfSupport {b} is not after releaseDate {a}"
            ));
        }
        let latest_patch = Self::compile_latest_patch(&at, minor, r, problems);
        let (min, max, default) = Self::compile_kubernetes(&at, &r.kubernetes, problems)?;
        Some(Release {
            minor,
            release_date,
            end_of_support,
            kubernetes_min: min,
            kubernetes_max: max,
            kubernetes_default: default,
            latest_patch,
            kommander,
            experimental_addons: r
                .experimental_addons
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
        })
    }

    /// A release's `latestPatch`: a version of the release's own minor.
    fn compile_latest_patch(
        at: &str,
        minor: Minor,
        r: &ProductRelease,
        problems: &mut Vec<String>,
    ) -> Option<Version> {
        let field = format!("{at}.latestPatch");
        let v: Version = parse_field(r.latest_patch.as_deref(), &field, problems)?;
        if v.minor() == minor {
            Some(v)
        } else {
            problems.push(format!("{field}: {v} is not a patch of {minor}"));
            None
        }
    }

    /// A release's Kubernetes range: min, max and the default inside them.
    fn compile_kubernetes(
        at: &str,
        k: &KubernetesRange,
        problems: &mut Vec<String>,
    ) -> Option<(Bound, Bound, Option<Version>)> {
        let mut bound = |field: &str, s: &str| {
            parse_field::<Bound>(Some(s), format_args!("{at}.kubernetes.{field}"), problems)
        };
        let min = bound("min", &k.min);
        let max = bound("max", &k.max);
        let default = parse_field::<Version>(
            k.default.as_deref(),
            format_args!("{at}.kubernetes.default"),
            problems,
        );
        let (Some(min), Some(max)) = (min, max) else {
            return None;
        };
        if !min.le_as_range(&max) {
            problems.push(format!("{at}.kubernetes: min {min} is above max {max}"));
        }
        if let Some(d) = &default
            && !(min.admits_as_min(d) && max.admits_as_max(d))
        {
            problems.push(format!(
                "{at}.kubernetes.default: {d} is outside {min} to {max}"
            ));
        }
        Some((min, max, default))
    }

    /// The production selector; default `environment=production`, never empty.
    fn compile_selector(spec: &SupportPolicySpec, problems: &mut Vec<String>) -> Selector {
        let selector_spec = spec
            .production_selector
            .clone()
            .unwrap_or_else(|| LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "environment".to_string(),
                    "production".to_string(),
                )])),
                match_expressions: None,
            });
        let production = match Selector::try_from(selector_spec) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("spec.productionSelector: {e}"));
                Selector::default()
            }
        };
        if production.selects_all() {
            // An empty selector would make every cluster production; that is never what a
            // platform team means by leaving it blank.
            problems.push(
                "spec.productionSelector: an empty selector would mark every cluster as production"
                    .into(),
            );
        }

        production
    }

    /// The targets: the policy's own, or the presets when it names none.
    fn compile_targets(
        spec: &SupportPolicySpec,
        problems: &mut Vec<String>,
    ) -> Vec<CompiledTarget> {
        let target_specs = if spec.targets.is_empty() {
            presets()
        } else {
            spec.targets.clone()
        };
        let mut targets = Vec::with_capacity(target_specs.len());
        for (i, t) in target_specs.iter().enumerate() {
            // The schema refuses such a target too; a policy read from a file never met it.
            if !t.fields.checks_something() {
                problems.push(format!(
                    "spec.targets[{i}] ({}).fields: {TARGET_FIELDS_MESSAGE}",
                    t.kind
                ));
            }
            match CompiledTarget::compile(t) {
                Ok(c) => targets.push(c),
                Err(e) => problems.push(e.to_string()),
            }
        }
        targets
    }

    /// Releases, newest first.
    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    pub fn targets(&self) -> &[CompiledTarget] {
        &self.targets
    }

    pub fn target_for(&self, api_version: &str, kind: &str) -> Option<&CompiledTarget> {
        self.targets.iter().find(|t| t.matches(api_version, kind))
    }

    pub fn release(&self, minor: Minor) -> Option<&Release> {
        self.releases.iter().find(|r| r.minor == minor)
    }

    pub fn is_production(&self, labels: &BTreeMap<String, String>) -> bool {
        self.production.matches(labels)
    }

    /// The production selector as users write it (`environment=production`).
    pub fn production_text(&self) -> &str {
        &self.production_text
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
