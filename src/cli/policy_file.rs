//! `--policy FILE`: one SupportPolicy and any number of SupportExceptions, as multi-document
//! YAML or JSON. Offline every exception in the file counts, whatever its namespace: the file's
//! author is the one granting them.

use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::api::{SupportException, SupportPolicy};
use crate::cli::input::{parse_objects, read_input};
use crate::engine::exceptions::{CompiledException, ExceptionSet};
use crate::engine::policy::Policy;

/// The policy of `path` (the embedded default when absent or when the file holds only
/// exceptions) and its exceptions. Any document that is neither, or does not compile, is an
/// error: a policy file is never half-applied.
pub fn load(path: Option<&str>) -> anyhow::Result<(Policy, ExceptionSet)> {
    let Some(path) = path else {
        return Ok((Policy::embedded_default(), ExceptionSet::default()));
    };
    let (mut policies, exceptions) = load_all(&[path.to_string()])?;
    let policy = match policies.len() {
        0 => Policy::embedded_default(),
        1 => policies.remove(0),
        n => bail!("{path}: {n} SupportPolicies; only one is expected here"),
    };
    Ok((policy, exceptions))
}

/// Every `--policy` file: the SupportPolicies they hold (none means the embedded default, as in
/// a cluster without SupportPolicies) and all their SupportExceptions.
pub fn load_all(paths: &[String]) -> anyhow::Result<(Vec<Policy>, ExceptionSet)> {
    let mut policies = Vec::new();
    let mut exceptions = Vec::new();
    for path in paths {
        let text = read_input(path)?;
        let (docs, errors) = parse_objects(path, &text);
        if let Some(e) = errors.into_iter().next() {
            return Err(e).with_context(|| format!("loading the policy from {path}"));
        }
        for d in docs {
            let at = format!("{path} document {}", d.document);
            match d.object.get("kind").and_then(|k| k.as_str()) {
                Some("SupportPolicy") => {
                    let sp: SupportPolicy = serde_json::from_value(d.object)
                        .with_context(|| format!("{at}: not a valid SupportPolicy"))?;
                    policies.push(Policy::compile(&sp).with_context(|| at.clone())?);
                }
                Some("SupportException") => {
                    let x: SupportException = serde_json::from_value(d.object)
                        .with_context(|| format!("{at}: not a valid SupportException"))?;
                    exceptions.push(Arc::new(
                        CompiledException::compile(&x).with_context(|| at.clone())?,
                    ));
                }
                other => bail!(
                    "{at}: kind {} is neither SupportPolicy nor SupportException",
                    other.unwrap_or("<none>")
                ),
            }
        }
    }
    Ok((policies, ExceptionSet::new(exceptions)))
}
