//! The container image recipe: the Dockerfile passes hadolint, builds a locked release and runs
//! only the binary as non-root, and the build context (`.dockerignore`) holds every file the
//! build reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{repo, stderr, stdout};

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).unwrap()
}

fn hadolint(args: &[&Path]) -> Output {
    Command::new(repo().join("hack/hadolint.sh"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run hack/hadolint.sh")
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let o = hadolint(&[Path::new("Dockerfile")]);
    assert!(
        o.status.success(),
        "hadolint:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    // The linter does lint: a floating tag and a root user are reported.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nUSER root\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    let o = hadolint(&[&bad]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("DL3007") && out.contains("DL3002"), "{out}");
}

#[test]
fn the_image_is_built_release_locked_and_runs_only_the_binary_as_non_root() {
    let text = dockerfile();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(
        froms,
        [
            "FROM rust:1-bookworm AS build",
            "FROM gcr.io/distroless/cc-debian12:nonroot"
        ]
    );
    assert!(text.contains("cargo build --release --locked"), "{text}");
    let final_stage: Vec<&str> = instructions
        .iter()
        .copied()
        .skip_while(|l| !l.starts_with("FROM gcr.io/distroless"))
        .collect();
    let copies: Vec<&str> = final_stage
        .iter()
        .copied()
        .filter(|l| l.starts_with("COPY") || l.starts_with("ADD"))
        .collect();
    assert_eq!(copies, ["COPY --from=build /out/supportgate /supportgate"]);
    assert!(final_stage.contains(&"USER 65532:65532"), "{final_stage:?}");
    assert!(
        final_stage.contains(&"ENTRYPOINT [\"/supportgate\"]"),
        "{final_stage:?}"
    );
    assert!(
        !final_stage.iter().any(|l| l.starts_with("RUN")),
        "distroless has no shell: {final_stage:?}"
    );
}

/// `.dockerignore` excludes everything and lets the build's inputs back in; every file the
/// release build reads must be among them (the manifest targets, include_str! sources).
#[test]
fn the_docker_build_context_holds_everything_the_build_reads() {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.first(), Some(&"*"), "exclude everything first");
    let allowed: Vec<String> = rules[1..]
        .iter()
        .map(|r| {
            r.strip_prefix('!')
                .unwrap_or_else(|| panic!("only !PATH lines after '*': {r}"))
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let admitted = |path: &str| {
        allowed
            .iter()
            .any(|a| path == a || path.starts_with(&format!("{a}/")))
    };
    for needed in ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"] {
        assert!(admitted(needed), "{needed} is not in the build context");
    }
    assert!(
        !repo().join("build.rs").exists() || admitted("build.rs"),
        "build.rs is not in the build context"
    );
    // Targets declared in Cargo.toml must exist for any cargo build.
    let manifest: toml_lite::Table =
        toml_lite::parse(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap());
    for path in manifest.target_paths() {
        assert!(
            admitted(&path),
            "{path} (a Cargo.toml target) is not in the build context"
        );
    }
    // The workspace's other crates (the engine), whole.
    let members = manifest.workspace_members();
    for member in &members {
        for needed in ["Cargo.toml", "src/lib.rs"] {
            let path = format!("{member}/{needed}");
            assert!(
                admitted(&path),
                "{path} (workspace member {member}) is not in the build context"
            );
        }
    }
    // Every file the crates include at compile time.
    let included = compile_time_includes(&members);
    for (source, inside) in &included {
        assert!(
            admitted(inside),
            "{} includes {inside}, which .dockerignore leaves out",
            source.display()
        );
    }
    assert!(
        !included.is_empty(),
        "the default policy is included from examples/"
    );
}

/// Every `include_str!`/`include_bytes!` under src/ and the workspace members' src/: (the
/// including file, the included one relative to the checkout).
fn compile_time_includes(members: &[String]) -> Vec<(PathBuf, String)> {
    let mut out = vec![];
    let mut stack = vec![repo().join("src")];
    stack.extend(members.iter().map(|m| repo().join(m).join("src")));
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for macro_ in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in source.match_indices(macro_) {
                    let rest = &source[at + macro_.len()..];
                    let rel = &rest[..rest.find('"').unwrap()];
                    let file = path.parent().unwrap().join(rel);
                    let file = file
                        .canonicalize()
                        .unwrap_or_else(|e| panic!("{} includes {rel}: {e}", path.display()));
                    let inside = file
                        .strip_prefix(repo().canonicalize().unwrap())
                        .expect("inside the repository")
                        .to_string_lossy()
                        .into_owned();
                    out.push((path.clone(), inside));
                }
            }
        }
    }
    out
}

/// Just enough of Cargo.toml to find the paths of its declared targets.
mod toml_lite {
    pub struct Table {
        sections: Vec<(String, Vec<(String, String)>)>,
    }

    pub fn parse(text: &str) -> Table {
        let mut sections = vec![(String::new(), vec![])];
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                sections.push((line.trim_matches(['[', ']']).to_string(), vec![]));
            } else if let Some((k, v)) = line.split_once('=') {
                sections
                    .last_mut()
                    .unwrap()
                    .1
                    .push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
            }
        }
        Table { sections }
    }

    impl Table {
        /// `path` of [lib]/[[bin]]/[[bench]]/[[test]]/[[example]], or the default path of a
        /// bench or test declared by name only.
        pub fn target_paths(&self) -> Vec<String> {
            let mut out = vec![];
            for (name, kv) in &self.sections {
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                let dir = match name.as_str() {
                    "lib" | "bin" => "src",
                    "bench" => "benches",
                    "test" => "tests",
                    "example" => "examples",
                    // [workspace] members are checked by `workspace_members`.
                    _ => continue,
                };
                match (get("path"), get("name")) {
                    (Some(p), _) => out.push(p),
                    (None, Some(n)) if dir != "src" => out.push(format!("{dir}/{n}.rs")),
                    _ => {}
                }
            }
            out
        }

        /// The `members` of [workspace], but the root package (`.`).
        pub fn workspace_members(&self) -> Vec<String> {
            let Some((_, kv)) = self.sections.iter().find(|(n, _)| n == "workspace") else {
                return vec![];
            };
            let Some((_, members)) = kv.iter().find(|(k, _)| k == "members") else {
                return vec![];
            };
            members
                .trim_matches(['[', ']'])
                .split(',')
                .map(|m| m.trim().trim_matches('"').to_string())
                .filter(|m| !m.is_empty() && m != ".")
                .collect()
        }
    }
}
