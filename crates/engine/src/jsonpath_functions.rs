//! RFC 9535's `match()` and `search()` with compiled regexes cached.
//!
//! serde_json_path compiles the regex of `search()` on every call, which cost ~30 µs per addons
//! entry and made `search()` 95% of an evaluation. Queries are fixed per policy, so the patterns
//! are too: compile each once. Semantics are the crate's own (I-Regexp via `regex`, CRLF mode,
//! `match` anchored, an invalid pattern matches nothing). Functions registered this way take
//! precedence over the crate's built-ins, whose `regex` feature is off.
//!
//! One function is supportgate's own: `repository(@.configRepository, 'kubernetes-base-addons')`
//! holds when the value is a git repository URL that names that repository however it is spelled
//! (case, `.git`, slashes, a ref after `#` or in `?ref=`: see [`crate::repository`]). The
//! built-in targets find the KBA and Kommander entries with it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use regex::Regex;
use serde_json::Value;
use serde_json_path::functions::{LogicalType, ValueType};

/// Distinct patterns kept; policies use a handful, so this bounds memory against hostile ones.
const MAX_CACHED: usize = 512;

static CACHE: LazyLock<RwLock<HashMap<String, Option<Arc<Regex>>>>> =
    LazyLock::new(Default::default);

/// Shared, not cloned: a cloned `Regex` starts with an empty match cache, which costs more to
/// build than the match itself.
fn compiled(pattern: String) -> Option<Arc<Regex>> {
    if let Ok(cache) = CACHE.read()
        && let Some(r) = cache.get(&pattern)
    {
        return r.clone();
    }
    let re = Regex::new(&pattern).ok().map(Arc::new);
    if let Ok(mut cache) = CACHE.write() {
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(pattern, re.clone());
    }
    re
}

fn string_pair<'a>(value: &'a ValueType, rgx: &'a ValueType) -> Option<(&'a str, &'a str)> {
    match (value.as_value(), rgx.as_value()) {
        (Some(Value::String(s)), Some(Value::String(r))) => Some((s.as_str(), r.as_str())),
        _ => None,
    }
}

/// The regex `match(_, r)` tests with; also what a compiled filter uses, so both agree.
pub(crate) fn match_regex(r: &str) -> Option<Arc<Regex>> {
    compiled(format!("(?R)^({r})$"))
}

/// The regex `search(_, r)` tests with.
pub(crate) fn search_regex(r: &str) -> Option<Arc<Regex>> {
    compiled(format!("(?R)({r})"))
}

#[serde_json_path::function(name = "match")]
fn match_func(value: ValueType, rgx: ValueType) -> LogicalType {
    string_pair(&value, &rgx)
        .and_then(|(s, r)| match_regex(r).map(|re| re.is_match(s)))
        .unwrap_or(false)
        .into()
}

#[serde_json_path::function]
fn search(value: ValueType, rgx: ValueType) -> LogicalType {
    string_pair(&value, &rgx)
        .and_then(|(s, r)| search_regex(r).map(|re| re.is_match(s)))
        .unwrap_or(false)
        .into()
}

#[serde_json_path::function]
fn repository(value: ValueType, name: ValueType) -> LogicalType {
    string_pair(&value, &name)
        .is_some_and(|(s, n)| crate::repository::names(s, n))
        .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serde_json_path::JsonPath;

    #[test]
    fn rfc9535_semantics() {
        let v = json!([{"r": "https://github.com/mesosphere/kubernetes-base-addons"}, {"r": "kubernetes-base-addons-fork"}, {"r": 5}]);
        let q = |s: &str| JsonPath::parse(s).unwrap().query(&v).len();
        assert_eq!(q("$[?search(@.r, 'base-addons$')]"), 1);
        assert_eq!(q("$[?search(@.r, 'base-addons')]"), 2);
        assert_eq!(q("$[?match(@.r, 'base-addons')]"), 0, "match is anchored");
        assert_eq!(q("$[?match(@.r, 'kubernetes-base-addons-.*')]"), 1);
        assert_eq!(
            q("$[?search(@.r, '[unclosed')]"),
            0,
            "an invalid pattern matches nothing"
        );
        assert_eq!(q("$[?search(@.r, 'base') && search(@.r, 'github')]"), 1);
        assert_eq!(q("$[?repository(@.r, 'Kubernetes-Base-Addons.git')]"), 1);
        assert_eq!(
            q("$[?repository(@.r, 'mesosphere/kubernetes-base-addons')]"),
            1
        );
        assert_eq!(
            q("$[?repository(@.r, 5)]"),
            0,
            "a name that is not a string"
        );
    }
}
