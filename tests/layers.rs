//! The layer check (ARCHITECTURE.md): a lower layer never imports a higher one, the faces never
//! import each other, `runtime` is imported by `main.rs` alone, sibling files of a module import
//! each other in one direction only, and the engine crate stays pure (no Kubernetes client, no
//! I/O, no clock). It reads the sources as text, so it fails on the import itself, before anyone
//! builds on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each layer of the main crate and the layers it may import. `engine` is the
/// `supportgate-engine` crate, re-exported as `crate::engine`.
const LAYERS: &[(&str, &[&str])] = &[
    ("api", &["engine"]),
    ("base", &["engine", "api"]),
    ("webhook", &["engine", "api", "base"]),
    ("controller", &["engine", "api", "base"]),
    ("cli", &["engine", "api", "base"]),
    (
        "runtime",
        &["engine", "api", "base", "webhook", "controller", "cli"],
    ),
];

/// Dependencies the engine crate must never have: a client, a runtime, a server, the API types.
const IMPURE_CRATES: &[&str] = &[
    "kube",
    "kube-core",
    "kube-client",
    "kube-runtime",
    "k8s-openapi",
    "tokio",
    "hyper",
    "reqwest",
    "rustls",
];

/// Text that means I/O or a clock in engine code.
const IMPURE_CALLS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::io::stdin",
    "SystemTime",
    "Instant::now",
    "Timestamp::now",
    "Zoned::now",
    "::now()",
    "tokio::",
];

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments and string literals, so that prose naming a path is no import.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_str && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level items a brace group names: `{a::b, c, d::{e, f}}` gives a, c, d.
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                expecting = depth == 1;
            }
            '}' => {
                if depth == 1 {
                    break;
                }
                depth -= 1;
            }
            ',' if depth == 1 => expecting = true,
            c if expecting && depth == 1 && (c.is_ascii_alphabetic() || c == '_') => {
                heads.push(ident_at(&s[i..]).to_string());
                expecting = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every module path a file names through `crate::`, as its first two segments
/// (`crate::controller::status::Seen` gives ["controller", "status"]).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        // `supportgate_engine::` or `$crate::` are not this crate's paths.
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if rest.starts_with('{') {
            for head in group_heads(rest) {
                let after = rest
                    .find(&format!("{head}::"))
                    .map(|p| &rest[p + head.len() + 2..]);
                let second = after.map(ident_at).unwrap_or("").to_string();
                paths.push(vec![head, second]);
            }
        } else {
            let first = ident_at(rest).to_string();
            let second = rest[first.len()..]
                .strip_prefix("::")
                .map(ident_at)
                .unwrap_or("")
                .to_string();
            paths.push(vec![first, second]);
        }
    }
    paths
}

/// The layer and file-module a source file belongs to: src/controller/status.rs gives
/// ("controller", "status"); a `*_tests.rs` file belongs to the module it tests.
fn place(src: &Path, file: &Path) -> Option<(String, String)> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts = rel.iter().map(|p| p.to_string_lossy().to_string());
    let layer = parts.next()?;
    let module = parts.next()?;
    let module = module
        .trim_end_matches(".rs")
        .trim_end_matches("_tests")
        .to_string();
    Some((layer, module))
}

fn super_targets(code: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for (at, _) in code.match_indices("super::") {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + "super::".len()..];
        if rest.starts_with("super::") {
            targets.push("..".to_string());
        } else if rest.starts_with('{') {
            targets.extend(group_heads(rest));
        } else {
            targets.push(ident_at(rest).to_string());
        }
    }
    targets
}

#[test]
fn no_layer_imports_a_layer_above_it_and_runtime_is_imported_by_main_alone() {
    let src = checkout().join("src");
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some((layer, _)) = place(&src, file) else {
            continue; // main.rs and lib.rs: the crate root wires everything
        };
        let Some(may) = allowed.get(layer.as_str()) else {
            wrong.push(format!(
                "{}: layer {layer} is not in ARCHITECTURE.md's table",
                file.display()
            ));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        for path in crate_paths(&code) {
            let target = path[0].as_str();
            if target != layer && !may.contains(&target) {
                wrong.push(format!(
                    "{}: {layer} imports crate::{target}",
                    file.display()
                ));
            }
        }
        for head in super_targets(&code) {
            if head == ".." && file.parent() != Some(src.join(&layer).as_path()) {
                continue; // a nested module's grandparent is still inside the layer
            }
            if head == ".." {
                wrong.push(format!(
                    "{}: super::super:: leaves the {layer} layer",
                    file.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layer violations (ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
}

/// An edge between two sibling files of one module, in non-test code (`mod.rs`, the module's
/// root, which declares and wires its children, is left out: its children may use the types it
/// defines).
fn sibling_edges(src: &Path, files: &[PathBuf]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some((layer, module)) = place(src, file) else {
            continue;
        };
        if module == "mod"
            || file.parent() != Some(src.join(&layer).as_path())
            || file.to_string_lossy().ends_with("_tests.rs")
        {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        // Tests may reach across siblings; the circle that matters is in the shipped code.
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        let mut names: Vec<String> = crate_paths(code)
            .into_iter()
            .filter(|p| p[0] == layer)
            .map(|p| p[1].clone())
            .collect();
        names.extend(super_targets(code));
        for name in names {
            if name != module && src.join(&layer).join(format!("{name}.rs")).exists() {
                edges
                    .entry((layer.clone(), module.clone()))
                    .or_default()
                    .insert(name);
            }
        }
    }
    edges
}

fn find_cycle(
    layer: &str,
    edges: &BTreeMap<(String, String), BTreeSet<String>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in edges
            .get(&(layer.to_string(), node.clone()))
            .into_iter()
            .flatten()
        {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn sibling_files_import_each_other_in_one_direction_only() {
    let src = checkout().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let edges = sibling_edges(&src, &files);
    let mut cycles = BTreeSet::new();
    for (layer, module) in edges.keys() {
        if let Some(mut cycle) = find_cycle(layer, &edges, module) {
            cycle.pop();
            // One report per circle, whichever file it is found from.
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| *m)
                .map(|(i, _)| i)
                .unwrap_or(0);
            cycle.rotate_left(min);
            cycles.insert(format!("{layer}: {}", cycle.join(" -> ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "import circles between sibling files:\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_engine_crate_has_no_client_no_io_and_no_clock() {
    let engine = checkout().join("crates/engine");
    let manifest = std::fs::read_to_string(engine.join("Cargo.toml"))
        .expect("crates/engine/Cargo.toml: the engine is a crate of its own");
    let table: toml_like::Deps = toml_like::dependencies(&manifest);
    for dep in IMPURE_CRATES {
        assert!(
            !table.iter().any(|d| d == dep),
            "crates/engine depends on {dep}: the engine must stay pure"
        );
    }
    let mut files = Vec::new();
    rust_files(&engine.join("src"), &mut files);
    assert!(
        files.len() > 10,
        "the engine's sources are under crates/engine/src"
    );
    let mut impure = Vec::new();
    for file in files
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with("_tests.rs"))
    {
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        for call in IMPURE_CALLS {
            if code.contains(call) {
                impure.push(format!("{}: {call}", file.display()));
            }
        }
    }
    assert!(
        impure.is_empty(),
        "I/O or a clock in the engine:\n{}",
        impure.join("\n")
    );
}

/// Just enough of a Cargo manifest to list the normal dependencies' names.
mod toml_like {
    pub type Deps = Vec<String>;

    pub fn dependencies(manifest: &str) -> Deps {
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_deps = line == "[dependencies]" || line.starts_with("[dependencies.");
                if let Some(name) = line.strip_prefix("[dependencies.") {
                    deps.push(name.trim_end_matches(']').to_string());
                }
                continue;
            }
            if in_deps && let Some((name, _)) = line.split_once('=') {
                let name = name.trim();
                if !name.is_empty() && !name.starts_with('#') {
                    deps.push(name.trim_matches('"').to_string());
                }
            }
        }
        deps
    }
}

#[test]
fn the_checker_sees_imports_in_every_spelling() {
    let code = code_only(
        "use crate::{engine::policy::Policy, base::state};\n\
         // use crate::runtime::run;\n\
         let x = crate::webhook::server::bind;\n\
         let s = \"crate::cli\";\n\
         use supportgate_engine::crate_like;\n",
    );
    let heads: Vec<String> = crate_paths(&code)
        .into_iter()
        .map(|p| p[0].clone())
        .collect();
    assert_eq!(heads, ["engine", "base", "webhook"]);
    assert_eq!(
        super_targets("use super::{status::Seen, plan};"),
        ["status", "plan"]
    );
    assert_eq!(
        toml_like::dependencies(
            "[dependencies]\nserde = \"1\"\n[dev-dependencies]\nkube = \"5\"\n"
        ),
        ["serde"]
    );
}

/// Counts a file's lines up to its first `#[cfg(test)]`: an inline test module counts as test.
fn non_test_lines(text: &str) -> usize {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .count()
}

#[test]
fn no_source_file_is_over_500_lines_of_non_test_code() {
    let mut files = Vec::new();
    rust_files(&checkout().join("src"), &mut files);
    rust_files(&checkout().join("crates/engine/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with("_tests.rs"))
        .filter_map(|f| {
            let n = non_test_lines(&std::fs::read_to_string(f).expect("read source"));
            (n > 500).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by what they do (ARCHITECTURE.md):\n{}",
        long.join("\n")
    );
    assert_eq!(non_test_lines("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
}
