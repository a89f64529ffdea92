//! The walk against serde_json_path: the same nodes, values and locations, in the same order, for
//! every built-in query over every example and fuzz-corpus object, a table of edge cases, and
//! generated objects.

use std::ops::ControlFlow;
use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::engine::policy::Policy;
use crate::engine::targets::{FieldKind, presets};

type Seen<'v> = Vec<(*const Value, String, String)>;

fn run<'v>(q: &Query, v: &'v Value, full: bool) -> Seen<'v> {
    let mut out = Vec::new();
    let mut f = |l: Located<'v>| {
        out.push((l.value as *const Value, l.field(), l.pointer()));
        ControlFlow::Continue(())
    };
    let _ = if full {
        q.visit_full(v, &mut f)
    } else {
        q.visit(v, &mut f)
    };
    out
}

fn agree(text: &str, q: &Query, v: &Value) {
    assert_eq!(
        run(q, v, false),
        run(q, v, true),
        "`{text}` over {}",
        serde_json::to_string(v).unwrap_or_default()
    );
    // Stopping early gives the first of the same list.
    let first = q.first_where(v, |_| true).map(|l| l.value as *const Value);
    assert_eq!(
        first,
        run(q, v, true).first().map(|s| s.0),
        "`{text}` first"
    );
}

/// Every query the built-in targets and the shipped policies use.
fn builtin_queries() -> Vec<String> {
    let history = Policy::from_yaml(include_str!(
        "../../examples/policies/konvoy-1x-history.yaml"
    ))
    .expect("history policy");
    let mut qs: Vec<String> = presets()
        .iter()
        .chain(history.targets().iter().map(|t| &t.spec))
        .flat_map(|t| {
            let c = crate::engine::targets::CompiledTarget::compile(t).expect("compiles");
            FieldKind::ALL
                .iter()
                .filter_map(|k| c.query(*k).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    qs.sort();
    qs.dedup();
    qs
}

/// Every example and fuzz-corpus object (and the reviews themselves), plus edge cases: also
/// what the projection is checked against.
pub(crate) fn corpus() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut objects = Vec::new();
    for f in ["addons.yaml", "cluster.yaml", "konvoyclusters.yaml"] {
        let p = root.join("examples/clusters").join(f);
        let text = std::fs::read_to_string(&p).expect("example");
        let (objs, _) = crate::cli::input::parse_objects(f, &text);
        objects.extend(objs.into_iter().map(|o| o.object));
    }
    let dir = root.join("fuzz/corpus/admission_review");
    for e in std::fs::read_dir(&dir).expect("fuzz corpus") {
        let bytes = std::fs::read(e.expect("entry").path()).expect("read");
        if let Ok(review) = serde_json::from_slice::<Value>(&bytes) {
            for k in ["object", "oldObject"] {
                if let Some(o) = review.pointer(&format!("/request/{k}")) {
                    objects.push(o.clone());
                }
            }
            objects.push(review);
        }
    }
    objects.extend(edge_objects());
    objects
}

fn edge_objects() -> Vec<Value> {
    vec![
        json!(null),
        json!([]),
        json!("spec"),
        json!({"spec": []}),
        json!({"spec": {"cluster": {"addons": {"x": {"configRepository": "github.com/mesosphere/kubernetes-base-addons.git/", "configVersion": 3, "addonsList": {"b": {"name": "n", "enabled": true}}}}}}}),
        json!({"spec": {"addons": [null, 1, "s", [], {"configRepository": 5}, {"configRepository": "kubernetes-base-addons", "configVersion": null},
            {"configRepository": "a/kubeaddons-kommander/", "configVersion": "stable-1.20-1.4.4"},
            {"configRepository": "kubernetes-base-addons.gitx"},
            {"configRepository": "Kubernetes-Base-Addons"},
            {"configRepository": "x\nkubernetes-base-addons", "configVersion": "v"},
            {"configRepository": "git@GitHub.com:Mesosphere/Kubernetes-Base-Addons.git#stable-1.18-3.0.0"},
            {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander?ref=stable-1.20-1.4.4", "configVersion": "stable-1.20-1.4.4"},
            {"addonsList": [{"name": "a", "enabled": "true"}, {"name": "b", "enabled": 1}, {"name": "c", "enabled": true}, {"enabled": true}, {"name": null, "enabled": true}, 7]}]}}),
        json!({"metadata": {"labels": {"kubeaddons.mesosphere.io/name": "x", "kudo.dev/operator": ["k"]},
            "annotations": {"catalog.kubeaddons.mesosphere.io/origin-repository-version": "stable-1.20-4.4.0"}}}),
        json!({"a": {"": 1, "b c": 2, "x/y~z": 3, "it's": 4, "é": 5, "b": [{"b": "x"}, {"b": "y"}, {"b": true}, {"b": null}, {"c": 1}, {"b": ["x"]}, {"b": 1.0}, {"b": 1}]}}),
        json!({"a": [{"r": "https://x/base-addons"}, {"r": "base-addons-fork"}, {"r": 5}, {"r": {"x": 1}}, []]}),
        json!({"a": [[0, 1, 2], {"0": "zero"}, "abc"]}),
    ]
}

/// Queries beyond the built-in ones: what compiles into a walk, and what is left to the library.
const EDGE_QUERIES: &[(&str, bool)] = &[
    ("$", true),
    ("$.a", true),
    ("$['a']", true),
    ("$[\"a\"]", true),
    ("$.a['b c']", true),
    ("$.a['x/y~z']", true),
    ("$.a[\"it's\"]", true),
    ("$.a['']", true),
    ("$.a.b[0]", true),
    ("$.a.b[7].b", true),
    ("$.a.b[99]", true),
    ("$.a[ 0 ]", true),
    ("$.a[0][1]", true),
    ("$.a[*]", true),
    ("$.a.*", true),
    ("$.*", true),
    ("$[*].b", true),
    ("$.a.b[?@.b == 'x']", true),
    ("$.a.b[?@.b == \"y\"]", true),
    ("$.a.b[?@.b == true]", true),
    ("$.a.b[?@.b == null]", true),
    ("$.a.b[?@.b]", true),
    ("$.a.b[?@.b[0] == 'x']", true),
    ("$.a.b[?@['b'] == 'x']", true),
    ("$.a.b[? @.b == 'x' ]", true),
    ("$.a.*[?@.b == 'x']", true),
    ("$.a[?search(@.r, 'base-addons$')]", true),
    ("$.a[?search(@.r, 'base-addons')].r", true),
    ("$.a[?match(@.r, 'base-addons-.*')]", true),
    ("$.a[?match(@.r, 'base-addons')]", true),
    ("$.a[?search(@.r, '[unclosed')]", true),
    ("$.a[?search( @.r , 'x' )]", true),
    ("$.a[?repository(@.r, 'base-addons')]", true),
    ("$.a[?repository( @.r , \"X/Base-Addons.git\" )].r", true),
    ("$.a[?repository(@.r, '')]", true),
    ("$.a[?repository(@.r, 5)]", false),
    ("$.spec.addons[*].addonsList[?@.enabled == true].name", true),
    (
        "$.spec.cluster.addons.*.addonsList.*[?@.enabled == true].name",
        true,
    ),
    ("$..a", false),
    ("$.a[-1]", false),
    ("$.a.b[0:2]", false),
    ("$.a.b[?@.b == 1]", false),
    ("$.a['b','c']", true),
    ("$.a[ 'b c' , '' ,'b c']", true),
    ("$.a['b', 0]", false),
    ("$.a['missing','b'][1]", true),
    ("$.a.b[?@.b == 'x' && @.c]", false),
    ("$.a.b[?@.b == 'x' || @.c]", false),
    ("$.a.b[?!@.b]", false),
    ("$.a.b[?@.b > 'x']", false),
    ("$.a.b[?length(@.b) == 1]", false),
    ("$['it\\'s']", false),
    ("$.é", false),
    ("$.a.b[?'x' == @.b]", false),
    ("$.a.b[?@.b == $.a.b[0].b]", false),
];

#[test]
fn every_builtin_query_is_a_walk() {
    for q in builtin_queries() {
        assert!(Query::parse(&q).expect("parses").is_plain(), "`{q}`");
    }
}

#[test]
fn the_walk_agrees_with_serde_json_path_on_every_builtin_query_and_object() {
    let objects = corpus();
    assert!(objects.len() > 100, "the corpus is there");
    let mut selected = 0;
    for text in builtin_queries() {
        let q = Query::parse(&text).unwrap();
        for o in &objects {
            agree(&text, &q, o);
            selected += run(&q, o, true).len();
        }
    }
    assert!(selected > 50, "the corpus selects something: {selected}");
}

#[test]
fn edge_cases_agree_and_only_the_plain_subset_is_a_walk() {
    let objects = corpus();
    for (text, plain) in EDGE_QUERIES {
        let q = Query::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
        assert_eq!(q.is_plain(), *plain, "`{text}`");
        for o in &objects {
            agree(text, &q, o);
        }
    }
}

/// A small deterministic generator (xorshift), biased towards the names the queries use.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }

    fn value(&mut self, depth: u32) -> Value {
        const KEYS: &[&str] = &[
            "spec",
            "cluster",
            "addons",
            "addonsList",
            "configRepository",
            "configVersion",
            "enabled",
            "name",
            "provisioner",
            "version",
            "kubernetes",
            "metadata",
            "labels",
            "a",
            "b",
            "r",
            "x/y",
        ];
        const STRINGS: &[&str] = &[
            "https://github.com/mesosphere/kubernetes-base-addons",
            "https://github.com/mesosphere/kubeaddons-kommander.git/",
            "kubernetes-base-addons.git",
            "stable-1.20-4.4.0",
            "x",
            "",
            "true",
        ];
        let leaf = depth == 0 || self.next().is_multiple_of(4);
        match (leaf, self.next() % 8) {
            (true, 0) => Value::Null,
            (true, 1) => json!(true),
            (true, 2) => json!(false),
            (true, 3) => json!(self.next() % 3),
            (true, _) => json!(self.pick(STRINGS)),
            (false, 0..=2) => {
                let n = self.next() % 4;
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
            (false, _) => {
                let n = self.next() % 5;
                Value::Object(
                    (0..n)
                        .map(|_| (self.pick(KEYS).to_string(), self.value(depth - 1)))
                        .collect(),
                )
            }
        }
    }
}

#[test]
fn generated_objects_agree() {
    let mut queries: Vec<String> = builtin_queries();
    queries.extend(EDGE_QUERIES.iter().map(|(q, _)| q.to_string()));
    queries.extend(
        [
            "$.spec.addons[*].addonsList[?@.enabled == true].name",
            "$.a[?@.b == 'x'].r",
            "$.*.*[?@.enabled]",
            "$.spec[?search(@.configRepository, 'kubernetes-base-addons([.]git)?/?$')].configVersion",
            "$.spec[?repository(@.configRepository, 'kubernetes-base-addons')].configVersion",
        ]
        .map(String::from),
    );
    let compiled: Vec<(String, Query)> = queries
        .into_iter()
        .map(|t| {
            let q = Query::parse(&t).unwrap();
            (t, q)
        })
        .collect();
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let mut selected = 0;
    for _ in 0..3_000 {
        let root = json!({"spec": g.value(6), "metadata": g.value(3), "a": g.value(4)});
        for (t, q) in &compiled {
            agree(t, q, &root);
            selected += run(q, &root, true).len();
        }
    }
    assert!(
        selected > 1_000,
        "generated objects select something: {selected}"
    );
}

#[test]
fn indices_render_as_format_would() {
    for n in [0, 1, 9, 10, 99, 100, 12_345, usize::MAX] {
        let mut out = String::from("x");
        super::push_decimal(&mut out, n);
        assert_eq!(out, format!("x{n}"));
    }
}
