//! The controller's modules import each other in one direction only (the order in `mod.rs`),
//! and the pure ones (deciding, counting, recording) touch no session, client or runtime.

use std::collections::{BTreeMap, BTreeSet};

/// Per module of `src/controller`, the controller modules its non-test code imports (`mod` for
/// `mod.rs`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/controller");
    let files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| !m.ends_with("_tests"))
        .map(|m| {
            let text = std::fs::read_to_string(format!("{dir}/{m}.rs")).unwrap();
            (m, text)
        })
        .collect();
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();
    files
        .iter()
        .map(|(m, text)| {
            // Inline test modules sit at the end of their file.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut deps = BTreeSet::new();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                let mut tail = line;
                while let Some(at) = tail.find("crate::controller::") {
                    tail = &tail[at + "crate::controller::".len()..];
                    let names: Vec<&str> = match tail.strip_prefix('{') {
                        Some(group) => group
                            .split('}')
                            .next()
                            .unwrap_or_default()
                            .split(',')
                            .collect(),
                        None => vec![tail],
                    };
                    for name in names {
                        let name: String = name
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        let dep = if modules.contains(name.as_str()) {
                            name
                        } else {
                            "mod".into()
                        };
                        if dep != *m {
                            deps.insert(dep);
                        }
                    }
                }
            }
            (m.clone(), deps)
        })
        .collect()
}

#[test]
fn no_import_circle_among_the_controller_modules() {
    let mut left = imports();
    let mut done: BTreeSet<String> = BTreeSet::new();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.is_subset(&done))
            .map(|(m, _)| m.clone())
            .collect();
        assert!(!ready.is_empty(), "an import circle among {left:#?}");
        for m in ready {
            left.remove(&m);
            done.insert(m);
        }
    }
}

#[test]
fn the_pure_modules_import_no_session_client_or_runtime() {
    let imports = imports();
    for pure in [
        "condition",
        "ledger",
        "plan",
        "summary",
        "tally",
        "status_plan",
    ] {
        let deps = &imports[pure];
        let allowed: BTreeSet<String> = ["condition", "ledger", "summary", "tally"]
            .map(String::from)
            .into();
        assert!(deps.is_subset(&allowed), "{pure} imports {deps:?}");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/controller");
        let text = std::fs::read_to_string(format!("{dir}/{pure}.rs")).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for banned in [
            "tokio",
            "kube::Api",
            "kube::Client",
            "kube::api::",
            "async fn",
            ".await",
        ] {
            assert!(!code.contains(banned), "{pure} uses {banned}");
        }
    }
}

/// `mod.rs` lists the modules from the bottom up; each imports only modules listed before it.
#[test]
fn each_module_imports_only_those_listed_before_it_in_mod_rs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/controller");
    let text = std::fs::read_to_string(format!("{dir}/mod.rs")).unwrap();
    let order: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("//! - `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect();
    let imports = imports();
    for (module, deps) in &imports {
        if module == "mod" {
            continue;
        }
        let at = order
            .iter()
            .position(|m| m == module)
            .unwrap_or_else(|| panic!("{module} is not listed in mod.rs"));
        for dep in deps {
            assert!(
                order[..at].contains(dep),
                "{module} imports {dep}, listed after it (or not at all) in mod.rs"
            );
        }
    }
}
