//! A `SupportPolicy` spec, validated and parsed into typed values once.
//!
//! Everything the CRD schema cannot check (a bound that is not a version, min above max,
//! duplicate releases, a JSONPath that does not parse, an unparseable date) is caught here and
//! reported all at once, so the controller can put the whole list in the policy's `Ready`
//! condition.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::ToSpan;
use jiff::civil::Date;
use thiserror::Error;

use crate::rules::Severity;
use crate::selector::{LabelSelector, Selector};
use crate::spec::{
    KubernetesRange, MissingVersion, PolicyDocument, PolicySource, ProductRelease,
    SupportPolicySpec, TARGET_FIELDS_MESSAGE, UnidentifiedRefs,
};
use crate::targets::{CompiledTarget, presets};
use crate::version::{Bound, Minor, Version};

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

/// Why a release is, or is not, supported on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseSupport {
    Supported,
    /// Supported, but the oldest minor in the window: it leaves support at the next release.
    OldestInWindow,
    /// Supported until an explicit end-of-support date that is near.
    EndingOn(Date),
    /// Released, but older than the window.
    OutOfWindow,
    /// Its explicit end-of-support date has passed.
    EndedOn(Date),
    /// Its release date lies ahead.
    NotYetReleased(Date),
}

impl ReleaseSupport {
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            ReleaseSupport::Supported
                | ReleaseSupport::OldestInWindow
                | ReleaseSupport::EndingOn(_)
        )
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
    pub fn compile(sp: &impl PolicySource) -> Result<Policy, PolicyError> {
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
        let mut date = |field: &str, v: &Option<String>| -> Option<Date> {
            let s = v.as_deref()?;
            match s.parse::<Date>() {
                Ok(d) => Some(d),
                Err(_) => {
                    problems.push(format!("{at}.{field}: `{s}` is not a date (YYYY-MM-DD)"));
                    None
                }
            }
        };
        let release_date = date("releaseDate", &r.release_date);
        let end_of_support = date("endOfSupport", &r.end_of_support);
        let kommander = match r.kommander.as_deref().map(str::parse::<Minor>) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                problems.push(format!("{at}.kommander: {e}"));
                None
            }
        };
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
        let s = r.latest_patch.as_deref()?;
        match s.parse::<Version>() {
            Ok(v) if v.minor() == minor => Some(v),
            Ok(v) => {
                problems.push(format!("{at}.latestPatch: {v} is not a patch of {minor}"));
                None
            }
            Err(e) => {
                problems.push(format!("{at}.latestPatch: {e}"));
                None
            }
        }
    }

    /// A release's Kubernetes range: min, max and the default inside them.
    fn compile_kubernetes(
        at: &str,
        k: &KubernetesRange,
        problems: &mut Vec<String>,
    ) -> Option<(Bound, Bound, Option<Version>)> {
        let mut bound = |field: &str, s: &str| match s.parse::<Bound>() {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push(format!("{at}.kubernetes.{field}: {e}"));
                None
            }
        };
        let min = bound("min", &k.min);
        let max = bound("max", &k.max);
        let default = match k.default.as_deref().map(str::parse::<Version>) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                problems.push(format!("{at}.kubernetes.default: {e}"));
                None
            }
        };
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

    /// The newest released minor on `today`.
    pub fn latest(&self, today: Date) -> Option<&Release> {
        self.releases.iter().find(|r| r.is_released(today))
    }

    pub fn support_of(&self, release: &Release, today: Date) -> ReleaseSupport {
        if let Some(d) = release.release_date
            && d > today
        {
            return ReleaseSupport::NotYetReleased(d);
        }
        if let Some(eos) = release.end_of_support {
            if today >= eos {
                return ReleaseSupport::EndedOn(eos);
            }
            let warn_from = eos
                .checked_sub((self.nearing_end_days as i64).days())
                .unwrap_or(eos);
            return if today >= warn_from {
                ReleaseSupport::EndingOn(eos)
            } else {
                ReleaseSupport::Supported
            };
        }
        let rank = self
            .releases
            .iter()
            .filter(|r| r.is_released(today))
            .position(|r| r.minor == release.minor)
            .unwrap_or(usize::MAX);
        if rank >= self.support_window {
            ReleaseSupport::OutOfWindow
        } else if rank + 1 == self.support_window && self.support_window > 1 {
            ReleaseSupport::OldestInWindow
        } else {
            ReleaseSupport::Supported
        }
    }

    /// The supported minors on `today`, newest first.
    pub fn supported(&self, today: Date) -> Vec<Minor> {
        self.releases
            .iter()
            .filter(|r| self.support_of(r, today).is_supported())
            .map(|r| r.minor)
            .collect()
    }

    /// `N-2 of latest 1.8`, for messages.
    pub fn window_text(&self, today: Date) -> String {
        let n = match self.support_window {
            1 => "N".to_string(),
            w => format!("N-{}", w - 1),
        };
        match self.latest(today) {
            Some(l) => format!("{n} of latest {}", l.minor),
            None => n,
        }
    }

    /// The first day after `today` on which some release's support can change: a release date,
    /// an end-of-support date, or the start of its nearing-end warning. The controller requeues
    /// for it instead of polling.
    pub fn next_transition(&self, today: Date) -> Option<Date> {
        self.releases
            .iter()
            .flat_map(|r| {
                let warn = r
                    .end_of_support
                    .and_then(|e| e.checked_sub((self.nearing_end_days as i64).days()).ok());
                [r.release_date, r.end_of_support, warn]
            })
            .flatten()
            .filter(|d| *d > today)
            .min()
    }

    pub fn is_production(&self, labels: &BTreeMap<String, String>) -> bool {
        self.production.matches(labels)
    }

    /// The production selector as users write it (`environment=production`).
    pub fn production_text(&self) -> &str {
        &self.production_text
    }
}

impl fmt::Display for ReleaseSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseSupport::Supported => f.write_str("supported"),
            ReleaseSupport::OldestInWindow => f.write_str("supported (oldest in window)"),
            ReleaseSupport::EndingOn(d) => write!(f, "supported until {d}"),
            ReleaseSupport::OutOfWindow => f.write_str("out of the support window"),
            ReleaseSupport::EndedOn(d) => write!(f, "support ended on {d}"),
            ReleaseSupport::NotYetReleased(d) => write!(f, "not released until {d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn today() -> Date {
        date(2026, 11, 24)
    }

    #[test]
    fn embedded_default_matches_the_seed() {
        let p = Policy::embedded_default();
        assert_eq!(p.name, "default");
        assert_eq!(
            p.supported(today()),
            vec![Minor::new(1, 8), Minor::new(1, 7), Minor::new(1, 6)]
        );
        assert_eq!(p.latest(today()).unwrap().minor, Minor::new(1, 8));
        let r18 = p.release(Minor::new(1, 8)).unwrap();
        assert_eq!(r18.kubernetes_range(), "1.18.x to 1.20.x");
        assert_eq!(
            r18.kubernetes_default.as_ref().unwrap().to_string(),
            "1.20.6"
        );
        assert_eq!(r18.kommander, Some(Minor::new(1, 4)));
        assert_eq!(
            p.release(Minor::new(1, 7)).unwrap().kommander,
            Some(Minor::new(1, 3))
        );
        assert_eq!(
            p.release(Minor::new(1, 6)).unwrap().kommander,
            Some(Minor::new(1, 2))
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 6)).unwrap(), today()),
            ReleaseSupport::OldestInWindow
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 5)).unwrap(), today()),
            ReleaseSupport::OutOfWindow
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 4)).unwrap(), today()),
            ReleaseSupport::OutOfWindow
        );
        for m in [(1, 8), (1, 7), (1, 6)] {
            let exp = &p.release(Minor::new(m.0, m.1)).unwrap().experimental_addons;
            assert_eq!(
                exp.iter().map(String::as_str).collect::<Vec<_>>(),
                ["ambassador", "istio", "jaeger", "kiali"]
            );
        }
        assert_eq!(p.window_text(today()), "N-2 of latest 1.8");
        assert!(p.is_production(&BTreeMap::from([(
            "environment".into(),
            "production".into()
        )])));
        assert!(!p.is_production(&BTreeMap::from([("environment".into(), "staging".into())])));
        assert_eq!(p.targets().len(), 6, "no targets named: the presets apply");
    }

    #[test]
    fn history_example_compiles() {
        let p = Policy::from_yaml(include_str!(
            "../../../examples/policies/konvoy-1x-history.yaml"
        ))
        .unwrap();
        // 1.8 carries an explicit end of support that overrides the window.
        let r18 = p.release(Minor::new(1, 8)).unwrap();
        assert_eq!(
            p.support_of(r18, date(2022, 12, 30)),
            ReleaseSupport::EndingOn(date(2022, 12, 31))
        );
        assert_eq!(
            p.support_of(r18, date(2022, 12, 31)),
            ReleaseSupport::EndedOn(date(2022, 12, 31))
        );
        assert_eq!(
            p.support_of(r18, date(2022, 1, 1)),
            ReleaseSupport::Supported
        );
    }

    fn with_release(extra: &str) -> Policy {
        let yaml = DEFAULT_POLICY_YAML.replace("  product:\n", &format!("  product:\n{extra}"));
        Policy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_new_minor_pushes_the_oldest_out() {
        let p = with_release(
            "  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n    kommander: \"1.5\"\n",
        );
        assert_eq!(
            p.supported(today()),
            vec![Minor::new(1, 9), Minor::new(1, 8), Minor::new(1, 7)]
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 6)).unwrap(), today()),
            ReleaseSupport::OutOfWindow
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 7)).unwrap(), today()),
            ReleaseSupport::OldestInWindow
        );
    }

    #[test]
    fn a_future_release_moves_the_window_on_its_day() {
        let p = with_release(
            "  - version: \"1.9\"\n    releaseDate: \"2027-01-15\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n",
        );
        assert_eq!(
            p.supported(today()),
            vec![Minor::new(1, 8), Minor::new(1, 7), Minor::new(1, 6)]
        );
        assert_eq!(p.next_transition(today()), Some(date(2027, 1, 15)));
        assert_eq!(
            p.supported(date(2027, 1, 15)),
            vec![Minor::new(1, 9), Minor::new(1, 8), Minor::new(1, 7)]
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 9)).unwrap(), date(2027, 1, 14)),
            ReleaseSupport::NotYetReleased(date(2027, 1, 15))
        );
    }

    #[test]
    fn end_of_support_overrides_the_window_both_ways() {
        let yaml = DEFAULT_POLICY_YAML
            .replace(
                "kommander: \"1.1\"",
                "kommander: \"1.1\"\n    endOfSupport: \"2027-06-01\"",
            )
            .replace(
                "kommander: \"1.4\"\n",
                "kommander: \"1.4\"\n    endOfSupport: \"2026-01-01\"\n",
            );
        let p = Policy::from_yaml(&yaml).unwrap();
        let r15 = p.release(Minor::new(1, 5)).unwrap();
        assert_eq!(
            p.support_of(r15, today()),
            ReleaseSupport::Supported,
            "extended past the window"
        );
        assert_eq!(
            p.support_of(r15, date(2027, 3, 3)),
            ReleaseSupport::EndingOn(date(2027, 6, 1)),
            "90 days before"
        );
        assert_eq!(
            p.support_of(r15, date(2027, 3, 2)),
            ReleaseSupport::Supported
        );
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 8)).unwrap(), today()),
            ReleaseSupport::EndedOn(date(2026, 1, 1))
        );
        assert_eq!(p.next_transition(today()), Some(date(2027, 3, 3)));
    }

    #[test]
    fn invalid_specs_list_every_problem() {
        let yaml = DEFAULT_POLICY_YAML
            .replace(
                "{min: 1.18.x, max: 1.20.x, default: 1.20.6}",
                "{min: 1.21.x, max: 1.20.x, default: 1.19.1}",
            )
            .replace("version: \"1.7\"", "version: \"1.8\"")
            .replace("releaseDate: \"2020-11-16\"", "releaseDate: \"16.11.2020\"")
            .replace("min: 1.15.4, max: 1.17.x", "min: latest, max: 1.17.x")
            .replace("kommander: \"1.0\"", "kommander: \"one\"");
        let Err(PolicyError::Invalid(problems)) = Policy::from_yaml(&yaml) else {
            panic!("accepted")
        };
        let all = problems.join("\n");
        for needle in [
            "spec.product[0].kubernetes: min 1.21.x is above max 1.20.x",
            "spec.product[0].kubernetes.default: 1.19.1 is outside",
            "spec.product[1].version: 1.8 is listed twice",
            "spec.product[2].releaseDate: `16.11.2020` is not a date",
            "spec.product[3].kubernetes.min",
            "spec.product[4].kommander",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn decode_errors_are_reported() {
        assert!(matches!(
            Policy::from_yaml("spec: [1, 2"),
            Err(PolicyError::Decode(_))
        ));
        let unknown = DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: three");
        assert!(matches!(
            Policy::from_yaml(&unknown),
            Err(PolicyError::Decode(_))
        ));
    }

    #[test]
    fn window_of_one_never_warns_nearing_end() {
        let p =
            Policy::from_yaml(&DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: 1"))
                .unwrap();
        assert_eq!(
            p.support_of(p.release(Minor::new(1, 8)).unwrap(), today()),
            ReleaseSupport::Supported
        );
        assert_eq!(p.supported(today()), vec![Minor::new(1, 8)]);
        assert_eq!(p.window_text(today()), "N of latest 1.8");
    }

    fn with_target_fields(fields: &str) -> Result<Policy, PolicyError> {
        Policy::from_yaml(&format!(
            "{DEFAULT_POLICY_YAML}  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields: {fields}\n"
        ))
    }

    #[test]
    fn a_target_that_checks_nothing_is_refused() {
        for fields in [
            "{}",
            "{kubernetesVersion: $.spec.k8s}",
            "{kommanderRef: $.spec.k}",
        ] {
            let Err(PolicyError::Invalid(p)) = with_target_fields(fields) else {
                panic!("{fields}: accepted")
            };
            assert!(
                p.iter().any(|m| m.starts_with(
                    "spec.targets[0] (KonvoyCluster).fields: a target must name productVersion"
                )),
                "{fields}: {p:?}"
            );
        }
        for fields in [
            "{productVersion: $.spec.v}",
            "{kudoOperator: $.metadata.name}",
            "{kbaRef: $.spec.kba}",
        ] {
            with_target_fields(fields).unwrap_or_else(|e| panic!("{fields}: {e}"));
        }
        let Err(PolicyError::Decode(e)) = with_target_fields("{productVersoin: $.spec.v}") else {
            panic!("a misspelled key is accepted")
        };
        assert!(e.contains("unknown field `productVersoin`"), "{e}");
    }

    #[test]
    fn missing_version_is_warn_unless_the_policy_says_deny() {
        assert_eq!(Policy::embedded_default().missing_version, Severity::Warn);
        let deny =
            Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  missingVersion: Deny\n")).unwrap();
        assert_eq!(deny.missing_version, Severity::Deny);
        assert!(matches!(
            Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  missingVersion: Maybe\n")),
            Err(PolicyError::Decode(_))
        ));
    }

    #[test]
    fn unidentified_refs_is_warn_unless_the_policy_says_deny() {
        assert_eq!(Policy::embedded_default().unidentified_refs, Severity::Warn);
        let deny =
            Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  unidentifiedRefs: Deny\n")).unwrap();
        assert_eq!(deny.unidentified_refs, Severity::Deny);
        assert!(matches!(
            Policy::from_yaml(&format!(
                "{DEFAULT_POLICY_YAML}  unidentifiedRefs: Ignore\n"
            )),
            Err(PolicyError::Decode(_))
        ));
    }

    #[test]
    fn empty_production_selector_is_refused() {
        let yaml = DEFAULT_POLICY_YAML.replace(
            "    matchLabels:\n      environment: production\n",
            "    {}\n",
        );
        let Err(PolicyError::Invalid(p)) = Policy::from_yaml(&yaml) else {
            panic!("accepted")
        };
        assert!(
            p.iter().any(|m| m.contains("every cluster as production")),
            "{p:?}"
        );
    }
}
