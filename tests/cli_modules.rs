//! The modules of `src/cli` import one another in one direction only: each names (as
//! `crate::cli::NAME`) only modules before it in [`ORDER`]. A file's `*_tests.rs` counts as
//! the file. Comment lines are not read: a doc link is not an import.

/// The CLI modules, lowest first.
const ORDER: &[&str] = &[
    "yaml11",
    "fix_spans",
    "input",
    "identity",
    "pairs",
    "policy_file",
    "default_policy",
    "check",
    "junit",
    "fix",
    "previous",
    "check_command",
    "webhook_config",
];

/// The `crate::cli::NAME`s that the code (not the comments) of `text` names.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::cli::") {
            let name: String = line[at + "crate::cli::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn cli_modules_import_only_lower_ones() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut problems = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = file.strip_suffix(".rs") else {
            continue;
        };
        if stem == "mod" {
            continue; // the parent: it declares every module
        }
        let module = stem.strip_suffix("_tests").unwrap_or(stem);
        let Some(rank) = ORDER.iter().position(|m| *m == module) else {
            problems.push(format!("{file}: module {module} is not in ORDER"));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for name in imports(&text) {
            match ORDER.iter().position(|m| *m == name) {
                Some(r) if r < rank || name == module => {}
                Some(_) => problems.push(format!("{file}: imports {name}, which is not below it")),
                None => problems.push(format!("{file}: imports {name}, which is not in ORDER")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
