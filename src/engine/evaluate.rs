//! The policy engine: one object in, a verdict with its violations out.
//!
//! Pure by design — no clock, no client, no I/O. The webhook, the controller and `supportgate
//! check` all call [`evaluate`], so admission, audit and CI can never disagree. The caller passes
//! "today" and, for in-cluster addons, the hosting cluster's Kubernetes version.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use jiff::civil::Date;
use serde::Serialize;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::engine::policy::{Policy, Release, ReleaseSupport};
use crate::engine::rules::{Rule, Severity};
use crate::engine::tag::ReleaseTag;
use crate::engine::targets::{CompiledTarget, select};
use crate::engine::version::{Bound, Version};

/// What the engine needs to know about the world.
#[derive(Debug, Clone)]
pub struct Context {
    pub today: Date,
    /// The Kubernetes version of the cluster the objects live in, for targets that carry no
    /// Kubernetes version of their own (kubeaddons Addons).
    pub hosting_kubernetes: Option<Version>,
    /// The SupportExceptions in force (see [`crate::engine::exceptions`]).
    pub exceptions: std::sync::Arc<crate::engine::exceptions::ExceptionSet>,
}

impl Context {
    pub fn new(today: Date) -> Self {
        Context {
            today,
            hosting_kubernetes: None,
            exceptions: Default::default(),
        }
    }

    pub fn with_exceptions(
        mut self,
        x: std::sync::Arc<crate::engine::exceptions::ExceptionSet>,
    ) -> Self {
        self.exceptions = x;
        self
    }

    pub fn with_hosting_kubernetes(mut self, v: Option<Version>) -> Self {
        self.hosting_kubernetes = v;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    /// Where in the object, e.g. `spec.provisioner.version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The SupportException (`namespace/name`) that turned this denial into a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Warned,
    Denied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
}

impl Evaluation {
    pub fn of(&self, severity: Severity) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(move |v| v.severity == severity)
    }

    /// The first deny rule: the `reason` of a `Supported=False` condition.
    pub fn first_denial(&self) -> Option<&Violation> {
        self.of(Severity::Deny).next()
    }

    /// The distinct rules that deny, for ratcheting an update against the object's old state.
    pub fn denied_rules(&self) -> BTreeSet<Rule> {
        self.of(Severity::Deny).map(|v| v.rule).collect()
    }

    pub fn has_rule(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }
}

/// Evaluates an object whose kind a target of the policy matches; `None` when none does.
pub fn evaluate(policy: &Policy, object: &Value, ctx: &Context) -> Option<Evaluation> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let target = policy.target_for(api_version, kind)?;
    Some(evaluate_target(policy, target, object, ctx))
}

/// Evaluates an object against one target.
pub fn evaluate_target(
    policy: &Policy,
    target: &CompiledTarget,
    object: &Value,
    ctx: &Context,
) -> Evaluation {
    let mut out = Out::default();
    let product = &policy.product_name;

    // Product (Konvoy) version and its release.
    let mut release: Option<&Release> = None;
    if let Some((field, raw)) = first(&target.product_version, object)
        && let Some(v) = out.version(&field, raw, &format!("the {product} version"), "v1.8.5")
    {
        release = check_product(policy, ctx, &mut out, &field, &v);
        if v.is_prerelease() {
            out.push(
                Rule::Prerelease,
                Severity::Warn,
                &field,
                format!("{product} {v} is a pre-release; pre-releases are not supported in production, use a GA release"),
            );
        }
    }

    // The cluster's Kubernetes version: the object's own, or the hosting cluster's for in-cluster
    // objects that do not carry one.
    let kubernetes: Option<(Option<String>, Version)> = match &target.kubernetes_version {
        Some(path) => first_of(path, object).and_then(|(field, raw)| {
            out.version(&field, raw, "the Kubernetes version", "1.20.13")
                .map(|v| (Some(field), v))
        }),
        None => ctx.hosting_kubernetes.clone().map(|v| (None, v)),
    };
    if let Some((Some(field), k)) = &kubernetes {
        if let Some(r) = release {
            check_kubernetes_range(policy, &mut out, field, k, r);
        }
        if k.is_prerelease() {
            out.push(
                Rule::Prerelease,
                Severity::Warn,
                field,
                format!("Kubernetes {k} is a pre-release; use a GA Kubernetes release"),
            );
        }
    }
    let k8s = kubernetes.as_ref().map(|(_, v)| v);

    // KBA refs.
    for (field, raw) in all(&target.kba_ref, object) {
        if let Some(tag) = out.tag(&field, raw, "Kubernetes Base Addons", "stable-1.20-4.4.0") {
            if let Some(k) = k8s
                && tag.kubernetes != k.minor()
            {
                out.push(
                    Rule::KbaKubernetesMismatch,
                    Severity::Deny,
                    &field,
                    format!(
                        "KBA {tag} is built for Kubernetes {}, but the cluster runs Kubernetes {k}; a KBA release deploys only on the Kubernetes minor in its tag: use a KBA release tagged for {} ({}-{}-<kba version>)",
                        tag.kubernetes,
                        k.minor(),
                        tag.channel,
                        k.minor()
                    ),
                );
            }
            check_prerelease_tag(&mut out, &field, "KBA", &tag);
        }
    }

    // Kommander refs: lock-step with the product minor, and deployed on its tag's Kubernetes minor.
    for (field, raw) in all(&target.kommander_ref, object) {
        if let Some(tag) = out.tag(&field, raw, "Kommander", "stable-1.20-1.4.4") {
            let kommander = tag.version.minor();
            if let Some(r) = release
                && let Some(paired) = r.kommander
                && paired != kommander
            {
                let hint_k8s = k8s.map(|k| k.minor()).unwrap_or(tag.kubernetes);
                out.push(
                    Rule::KommanderMismatch,
                    Severity::Deny,
                    &field,
                    format!(
                        "Kommander {} ({tag}) does not pair with {product} {}: {product} {} requires Kommander {paired}.x, and mixing minors is prohibited; set the Kommander configVersion to {}-{hint_k8s}-{paired}.<patch>",
                        tag.version,
                        r.minor,
                        r.minor,
                        tag.channel
                    ),
                );
            }
            if let Some(k) = k8s
                && tag.kubernetes != k.minor()
            {
                out.push(
                    Rule::KommanderMismatch,
                    Severity::Deny,
                    &field,
                    format!(
                        "Kommander {tag} is built for Kubernetes {}, but the cluster runs Kubernetes {k}; use the Kommander {kommander} release tagged for {} ({}-{}-{kommander}.<patch>)",
                        tag.kubernetes,
                        k.minor(),
                        tag.channel,
                        k.minor()
                    ),
                );
            }
            check_prerelease_tag(&mut out, &field, "Kommander", &tag);
        }
    }

    // Enabled addons: experimental ones, and the secondary-support note.
    let addons: Vec<(String, &str)> = all(&target.enabled_addons, object)
        .into_iter()
        .filter_map(|(f, v)| v.as_str().map(|s| (f, s)))
        .collect();
    if !addons.is_empty() {
        check_experimental(policy, ctx, &mut out, release, object, &addons);
        if policy.secondary_addons {
            let names: BTreeSet<&str> = addons.iter().map(|(_, n)| *n).collect();
            let (noun, verb) = if names.len() == 1 {
                ("addon", "is")
            } else {
                ("addons", "are")
            };
            let list = names.into_iter().collect::<Vec<_>>().join(", ");
            out.push(
                Rule::SecondarySupport,
                Severity::Info,
                &addons[0].0,
                format!(
                    "{noun} {list} {verb} under secondary support: configuration guidance and failure assistance for their integration with the platform; base-technology issues go to their upstream"
                ),
            );
        }
    }

    // An in-cluster Addon's own Kubernetes range against the hosting cluster.
    let addon_min = first(&target.addon_min_kubernetes, object);
    let addon_max = first(&target.addon_max_kubernetes, object);
    if addon_min.is_some() || addon_max.is_some() {
        check_addon_range(&mut out, object, k8s, addon_min, addon_max);
    }

    // KUDO operators.
    if let Some((field, raw)) = first(&target.kudo_operator, object)
        && let Some(op) = raw.as_str()
        && policy
            .secondary_kudo_operators
            .contains(&op.trim().to_ascii_lowercase())
    {
        out.push(
            Rule::SecondarySupport,
            Severity::Info,
            &field,
            format!(
                "KUDO {op} is under secondary support: its base technology and its KUDO operator are supported for their integration with the platform"
            ),
        );
    }

    out.finish()
}

/// Ratcheting for updates: a denial that the old object already had, at the same field, with the
/// value unchanged or moved forward (an upgrade of an out-of-support release), is downgraded to a
/// warning. Without this nobody could label an old cluster or start its upgrade; a change that
/// introduces a new violation, or makes one worse, is still denied.
pub fn ratchet(
    old_object: &Value,
    old: &Evaluation,
    new_object: &Value,
    new: Evaluation,
) -> Evaluation {
    let mut violations = new.violations;
    for v in violations
        .iter_mut()
        .filter(|v| v.severity == Severity::Deny)
    {
        let Some(field) = v.field.as_deref() else {
            continue;
        };
        let had = old
            .of(Severity::Deny)
            .any(|o| o.rule == v.rule && o.field.as_deref() == Some(field));
        if !had {
            continue;
        }
        let (before, after) = (value_at(old_object, field), value_at(new_object, field));
        let forward = v.rule == Rule::KonvoyUnsupported
            && matches!(
                (before.and_then(Value::as_str).map(str::parse::<Version>), after.and_then(Value::as_str).map(str::parse::<Version>)),
                (Some(Ok(b)), Some(Ok(a))) if a > b
            );
        if before == after || forward {
            v.severity = Severity::Warn;
            v.message = format!(
                "{} (already so before this update: allowed, so the object can still be edited and upgraded)",
                v.message
            );
        }
    }
    Out::from_violations(violations).finish()
}

/// The value at a field path as [`crate::engine::targets::select`] renders it
/// (`spec.cluster.addons[0].configVersion`, `metadata.labels['a/b']`).
pub fn value_at<'v>(object: &'v Value, field: &str) -> Option<&'v Value> {
    let mut cur = object;
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            cur = cur.get(&r[..end])?;
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            cur = cur.get(r[..end].parse::<usize>().ok()?)?;
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        }
    }
    Some(cur)
}

fn check_product<'p>(
    policy: &'p Policy,
    ctx: &Context,
    out: &mut Out,
    field: &str,
    v: &Version,
) -> Option<&'p Release> {
    let product = &policy.product_name;
    let today = ctx.today;
    let supported = policy.supported(today);
    let supported_text = if supported.is_empty() {
        "none".to_string()
    } else {
        supported
            .iter()
            .map(|m| format!("{m}.x"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let window = policy.window_text(today);
    let Some(release) = policy.release(v.minor()) else {
        let known = policy
            .releases()
            .iter()
            .map(|r| r.minor.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        out.push(
            Rule::KonvoyUnsupported,
            Severity::Deny,
            field,
            format!(
                "{product} {v} is not a release this policy knows (known: {known}); supported are {supported_text} ({window}): use one of those, or add {} to the SupportPolicy if it has been released",
                v.minor()
            ),
        );
        return None;
    };
    let upgrade_to = supported.iter().rev().find(|m| **m > v.minor()).copied();
    let upgrade = match upgrade_to {
        Some(m) => format!("upgrade to {m} or later"),
        None => match supported.first() {
            Some(m) => format!("move to {m}"),
            None => "no release is supported today".to_string(),
        },
    };
    match policy.support_of(release, today) {
        ReleaseSupport::Supported => {}
        ReleaseSupport::OldestInWindow => {
            let next = supported.iter().rev().nth(1).map(|m| format!(" to {m} or later")).unwrap_or_default();
            out.push(
                Rule::KonvoyNearingEnd,
                Severity::Warn,
                field,
                format!(
                    "{product} {v} is the oldest supported minor ({window}) and leaves support when the next minor is released; plan the upgrade{next}"
                ),
            );
        }
        ReleaseSupport::EndingOn(d) => out.push(
            Rule::KonvoyNearingEnd,
            Severity::Warn,
            field,
            format!("{product} {} support ends on {d}; plan the upgrade before then ({upgrade})", release.minor),
        ),
        ReleaseSupport::OutOfWindow => out.push(
            Rule::KonvoyUnsupported,
            Severity::Deny,
            field,
            format!("{product} {v} is out of support: supported are {supported_text} ({window}); {upgrade}"),
        ),
        ReleaseSupport::EndedOn(d) => out.push(
            Rule::KonvoyUnsupported,
            Severity::Deny,
            field,
            format!("{product} {v} is out of support: its support ended on {d}; supported are {supported_text}; {upgrade}"),
        ),
        ReleaseSupport::NotYetReleased(d) => out.push(
            Rule::Prerelease,
            Severity::Warn,
            field,
            format!("{product} {} is not released until {d}; until then it is a pre-release and not supported in production", release.minor),
        ),
    }
    Some(release)
}

fn check_kubernetes_range(policy: &Policy, out: &mut Out, field: &str, k: &Version, r: &Release) {
    if r.kubernetes_min.admits_as_min(k) && r.kubernetes_max.admits_as_max(k) {
        return;
    }
    let suggestion = match &r.kubernetes_default {
        Some(d) => format!("e.g. the default {d}"),
        None => format!("between {} and {}", r.kubernetes_min, r.kubernetes_max),
    };
    out.push(
        Rule::KubernetesOutOfRange,
        Severity::Deny,
        field,
        format!(
            "Kubernetes {k} is outside the range {} {} supports ({}); set {field} to a version in that range, {suggestion}",
            policy.product_name,
            r.minor,
            r.kubernetes_range()
        ),
    );
}

fn check_prerelease_tag(out: &mut Out, field: &str, what: &str, tag: &ReleaseTag) {
    if tag.is_prerelease() {
        out.push(
            Rule::Prerelease,
            Severity::Warn,
            field,
            format!("{what} {tag} is from the `{}` channel or a pre-release; use a `stable` release in production", tag.channel),
        );
    }
}

fn check_experimental(
    policy: &Policy,
    ctx: &Context,
    out: &mut Out,
    release: Option<&Release>,
    object: &Value,
    addons: &[(String, &str)],
) {
    // Without a product version (in-cluster Addons), any supported release's experimental list
    // applies: the addon is experimental in whatever the cluster runs.
    let fallback: BTreeSet<&str>;
    let experimental: Box<dyn Fn(&str) -> bool> = match release {
        Some(r) => Box::new(|name: &str| r.experimental_addons.contains(name)),
        None => {
            fallback = policy
                .releases()
                .iter()
                .filter(|r| policy.support_of(r, ctx.today).is_supported())
                .flat_map(|r| r.experimental_addons.iter().map(String::as_str))
                .collect();
            Box::new(|name: &str| fallback.contains(name))
        }
    };
    let mut labels: Option<BTreeMap<String, String>> = None;
    for (field, name) in addons {
        let key = name.trim().to_ascii_lowercase();
        if !experimental(&key) {
            continue;
        }
        let labels = labels.get_or_insert_with(|| object_labels(object));
        let in_release = release
            .map(|r| format!(" in {} {}", policy.product_name, r.minor))
            .unwrap_or_default();
        if policy.is_production(labels) {
            out.push(
                Rule::ExperimentalComponent,
                Severity::Deny,
                field,
                format!(
                    "addon {name} is Experimental{in_release} and must not be used in production clusters (selected by {}); disable it (enabled: false) or run it only on non-production clusters",
                    policy.production_text()
                ),
            );
        } else {
            out.push(
                Rule::ExperimentalComponent,
                Severity::Warn,
                field,
                format!(
                    "addon {name} is Experimental{in_release}: limited, Severity 4 support only, and it may be discontinued without notice; never enable it on a production cluster"
                ),
            );
        }
    }
}

fn check_addon_range(
    out: &mut Out,
    object: &Value,
    hosting: Option<&Version>,
    min: Option<(String, &Value)>,
    max: Option<(String, &Value)>,
) {
    let mut bound = |side: Option<(String, &Value)>| -> Option<(String, Bound)> {
        let (field, raw) = side?;
        let text = out.string(&field, raw, "a Kubernetes version bound", "1.16.0")?;
        match text.parse::<Bound>() {
            Ok(b) => Some((field, b)),
            Err(e) => {
                out.push(
                    Rule::VersionInvalid,
                    Severity::Deny,
                    &field,
                    format!("{field}: {e}"),
                );
                None
            }
        }
    };
    let min = bound(min);
    let max = bound(max);
    let Some(k) = hosting else { return };
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("this addon");
    if let Some((field, b)) = &min
        && !b.admits_as_min(k)
    {
        out.push(
            Rule::AddonKubernetesIncompatible,
            Severity::Deny,
            field,
            format!("addon {name} needs Kubernetes {b} or newer, but this cluster runs {k}; use the addon revision from the KBA release for Kubernetes {}", k.minor()),
        );
    }
    if let Some((field, b)) = &max
        && !b.admits_as_max(k)
    {
        out.push(
            Rule::AddonKubernetesIncompatible,
            Severity::Deny,
            field,
            format!("addon {name} supports Kubernetes up to {b}, but this cluster runs {k}; use the addon revision from the KBA release for Kubernetes {}", k.minor()),
        );
    }
}

fn object_labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn first<'v>(path: &Option<JsonPath>, object: &'v Value) -> Option<(String, &'v Value)> {
    first_of(path.as_ref()?, object)
}

fn first_of<'v>(path: &JsonPath, object: &'v Value) -> Option<(String, &'v Value)> {
    // `null` is how a YAML key without a value arrives: the field is unset, not invalid.
    select(path, object).into_iter().find(|(_, v)| !v.is_null())
}

fn all<'v>(path: &Option<JsonPath>, object: &'v Value) -> Vec<(String, &'v Value)> {
    match path {
        Some(p) => select(p, object)
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .collect(),
        None => Vec::new(),
    }
}

/// Collects violations, deduplicated, in the order found.
#[derive(Default)]
struct Out {
    violations: Vec<Violation>,
    /// Dedup in O(1): a spec can carry tens of thousands of addons.
    seen: HashSet<Violation>,
    dropped: usize,
    dropped_max: Option<Severity>,
}

/// Bounds what one evaluation reports, so that hostile input (a megabyte version string, 90,000
/// addons) cannot turn into a megabyte answer. The verdict still counts everything.
const MAX_VIOLATIONS: usize = 100;
const MAX_MESSAGE_CHARS: usize = 1024;

fn cut(mut s: String, max_chars: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max_chars) {
        s.truncate(i);
        s.push('…');
    }
    s
}

impl Out {
    fn from_violations(violations: Vec<Violation>) -> Self {
        let mut out = Out::default();
        for v in violations {
            out.add(v);
        }
        out
    }

    fn push(&mut self, rule: Rule, severity: Severity, field: &str, message: String) {
        self.add(Violation {
            rule,
            severity,
            message: cut(message, MAX_MESSAGE_CHARS),
            field: Some(cut(field.to_string(), 256)),
            exception: None,
        });
    }

    fn add(&mut self, v: Violation) {
        if self.seen.contains(&v) {
            return;
        }
        if self.violations.len() >= MAX_VIOLATIONS {
            self.dropped += 1;
            self.dropped_max = self.dropped_max.max(Some(v.severity));
            self.seen.insert(v);
            return;
        }
        self.seen.insert(v.clone());
        self.violations.push(v);
    }

    /// The string at `field`, or a `version-invalid` denial saying what is there instead.
    fn string<'v>(
        &mut self,
        field: &str,
        raw: &'v Value,
        what: &str,
        example: &str,
    ) -> Option<&'v str> {
        let problem = match raw {
            Value::String(s) if s.trim().is_empty() => {
                format!("{field} is empty; set {what}, e.g. {example}")
            }
            Value::String(s) => return Some(s),
            Value::Number(n) => format!(
                "{field} is the number {n}, not a version string; YAML reads an unquoted version such as 1.20 as a number: quote it, e.g. \"{example}\""
            ),
            Value::Bool(b) => format!(
                "{field} is the boolean {b}, not {what}; set it to a version string, e.g. \"{example}\""
            ),
            Value::Array(_) => format!(
                "{field} is a list, not {what}; set it to a version string, e.g. \"{example}\""
            ),
            Value::Object(_) => format!(
                "{field} is an object, not {what}; set it to a version string, e.g. \"{example}\""
            ),
            Value::Null => return None,
        };
        self.push(Rule::VersionInvalid, Severity::Deny, field, problem);
        None
    }

    fn version(&mut self, field: &str, raw: &Value, what: &str, example: &str) -> Option<Version> {
        let s = self.string(field, raw, what, example)?;
        match s.parse::<Version>() {
            Ok(v) => Some(v),
            Err(e) => {
                let mut msg = format!("{field}: {e}");
                let _ = write!(
                    msg,
                    "; set {what} to an exact released version, e.g. {example}"
                );
                self.push(Rule::VersionInvalid, Severity::Deny, field, msg);
                None
            }
        }
    }

    fn tag(&mut self, field: &str, raw: &Value, what: &str, example: &str) -> Option<ReleaseTag> {
        let s = self.string(field, raw, &format!("a {what} release tag"), example)?;
        match s.parse::<ReleaseTag>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(
                    Rule::RefUnrecognized,
                    Severity::Warn,
                    field,
                    format!("{what} ref {e}, so its Kubernetes minor cannot be checked; pin a release tag such as {example}"),
                );
                None
            }
        }
    }

    fn finish(mut self) -> Evaluation {
        let max = self
            .violations
            .iter()
            .map(|v| v.severity)
            .max()
            .max(self.dropped_max);
        if self.dropped > 0
            && let Some(first) = self.violations.iter_mut().max_by_key(|v| v.severity)
        {
            first
                .message
                .push_str(&format!(" ({} more violations not listed)", self.dropped));
        }
        let verdict = match max {
            Some(Severity::Deny) => Verdict::Denied,
            Some(Severity::Warn) => Verdict::Warned,
            _ => Verdict::Allowed,
        };
        Evaluation {
            verdict,
            violations: self.violations,
        }
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
