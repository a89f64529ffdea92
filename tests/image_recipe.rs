//! The Dockerfile (the published recipe) and `make image` (hack/image.sh, no Docker, no
//! registry) must build the same image: same user, entrypoint, cmd, ports and binary path, no
//! shell, a glibc + libgcc + CA certificates base. This builds the local recipe's OCI archive
//! (with a stand-in binary: only the layout is under test) and compares it with the Dockerfile.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The final stage of the Dockerfile, as far as the image's contract goes.
#[derive(Debug, Default)]
struct Stage {
    user: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    ports: BTreeSet<String>,
    copied_to: Vec<String>,
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not an exec-form JSON list: {s}: {e}"))
}

fn final_stage(dockerfile: &str) -> Stage {
    let mut stage = Stage::default();
    for line in dockerfile.lines().map(str::trim) {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "FROM" => stage = Stage::default(),
            "USER" => stage.user = rest.to_string(),
            "ENTRYPOINT" => stage.entrypoint = json_list(rest),
            "CMD" => stage.cmd = json_list(rest),
            "EXPOSE" => stage.ports.extend(rest.split_whitespace().map(|p| {
                if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                }
            })),
            "COPY" => stage
                .copied_to
                .extend(rest.split_whitespace().last().map(String::from)),
            _ => {}
        }
    }
    stage
}

fn build_local_image(dir: &Path) -> Value {
    let repo = env!("CARGO_MANIFEST_DIR");
    let fake = dir.join("supportgate");
    std::fs::write(&fake, "stand-in for the release binary\n").expect("write stand-in");
    Command::new("chmod")
        .arg("0755")
        .arg(&fake)
        .status()
        .expect("chmod");
    let out = dir.join("image.oci.tar");
    let built = Command::new(format!("{repo}/hack/image.sh"))
        .arg("--bin")
        .arg(&fake)
        .arg("--out")
        .arg(&out)
        .arg("--name")
        .arg("supportgate:recipe-test")
        .output()
        .expect("run hack/image.sh");
    assert!(
        built.status.success(),
        "hack/image.sh failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let inspected = Command::new("python3")
        .arg(format!("{repo}/hack/oci.py"))
        .arg("inspect")
        .arg(&out)
        .output()
        .expect("run hack/oci.py inspect");
    assert!(
        inspected.status.success(),
        "oci.py inspect: {}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    serde_json::from_slice(&inspected.stdout).expect("inspect prints JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_local_recipe_builds_the_dockerfiles_image() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let dockerfile = std::fs::read_to_string(format!("{repo}/Dockerfile")).expect("Dockerfile");
    let want = final_stage(&dockerfile);
    assert!(
        !want.user.is_empty() && !want.entrypoint.is_empty(),
        "{want:?}"
    );

    let tmp = tempfile::tempdir().expect("temp dir");
    let image = build_local_image(tmp.path());
    let config = &image["config"]["config"];
    let files = &image["files"];

    assert_eq!(config["User"].as_str(), Some(want.user.as_str()), "USER");
    assert_eq!(
        strings(&config["Entrypoint"]),
        want.entrypoint,
        "ENTRYPOINT"
    );
    assert_eq!(strings(&config["Cmd"]), want.cmd, "CMD");
    let ports: BTreeSet<String> = config["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(ports, want.ports, "EXPOSE");

    // The binary is where the Dockerfile copies it, and the entrypoint runs it.
    let binary = want.copied_to.last().expect("a COPY in the final stage");
    assert_eq!(
        &want.entrypoint[0], binary,
        "the entrypoint is the copied binary"
    );
    let entry = &files[binary.as_str()];
    assert_eq!(entry["type"], "file", "{binary} in the image: {entry}");
    assert_eq!(entry["mode"].as_u64(), Some(0o755), "{binary} mode");

    // Same user and group as the Dockerfile, numerically (no passwd lookup needed).
    let (uid, gid) = want.user.split_once(':').expect("USER uid:gid");
    assert_eq!((uid, gid), ("65532", "65532"));

    // No shell, and the base distroless/cc gives: glibc, libgcc, CA certificates.
    for shell in [
        "/bin/sh",
        "/bin/bash",
        "/bin/dash",
        "/usr/bin/sh",
        "/usr/bin/bash",
        "/usr/bin/dash",
        "/bin/busybox",
    ] {
        assert!(files.get(shell).is_none(), "{shell} is in the image");
    }
    for needed in [
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
        "/usr/lib64/ld-linux-x86-64.so.2",
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/passwd",
        "/tmp",
    ] {
        assert!(
            files.get(needed).is_some(),
            "{needed} missing from the image"
        );
    }
    assert_eq!(
        files["/lib64"]["target"], "usr/lib64",
        "the binary's interpreter path"
    );
}

#[test]
fn the_dockerfile_parser_sees_a_changed_user() {
    // The comparison above is only as good as this parser: a Dockerfile that changes the
    // user must read differently.
    let changed = "FROM a AS build\nUSER 1\nFROM b\nCOPY --from=build /x /supportgate\nUSER 1000:1000\nEXPOSE 8443 9090/udp\nENTRYPOINT [\"/supportgate\"]\nCMD [\"run\"]\n";
    let s = final_stage(changed);
    assert_eq!(s.user, "1000:1000");
    assert_eq!(
        s.ports,
        BTreeSet::from(["8443/tcp".to_string(), "9090/udp".to_string()])
    );
    assert_eq!(s.copied_to, vec!["/supportgate".to_string()]);
}
