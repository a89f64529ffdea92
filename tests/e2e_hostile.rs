//! Hostile inputs, TLS versions and graceful shutdown, against the real `supportgate run`
//! process (started against the test control plane, as in production).
//!
//! Every hostile request must get a clear answer — an HTTP 4xx naming the problem, or a review
//! that denies with a rule id — within a deadline, and the server must go on answering normal
//! reviews. Only TLS 1.2 and 1.3 handshakes may succeed. SIGTERM must let in-flight reviews
//! finish with 200 before the process exits.
//!
//! Run with `cargo test --test e2e_hostile -- --nocapture` to see the timings.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use support::ControlPlane;
use support::operator::{CertFiles, Operator, connector, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every hostile request must be answered within this.
const DEADLINE: Duration = Duration::from_secs(10);

fn konvoy_cluster(name: &str, konvoy: Value, k8s: Value, kba: &str, addons: Vec<Value>) -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": name, "namespace": "kommander", "labels": {"environment": "production"}},
        "spec": {
            "provisioner": {"provider": "aws", "version": konvoy},
            "cluster": {
                "kubernetes": {"version": k8s},
                "addons": [
                    {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
                     "configVersion": kba, "addonsList": addons},
                    {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander",
                     "configVersion": "stable-1.20-1.4.4",
                     "addonsList": [{"name": "kommander", "enabled": true}]}
                ]
            }
        }
    })
}

fn supported(name: &str) -> Value {
    konvoy_cluster(
        name,
        json!("v1.8.5"),
        json!("1.20.13"),
        "stable-1.20-4.4.0",
        vec![json!({"name": "prometheus", "enabled": true})],
    )
}

fn review_value(uid: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "name": object["metadata"]["name"],
            "namespace": "kommander",
            "operation": "CREATE",
            "userInfo": {"username": "hostile"},
            "object": object
        }
    })
}

fn review(uid: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&review_value(uid, object)).expect("encode")
}

/// What a hostile request must get.
enum Expect {
    /// This HTTP status, and the body contains this text.
    Http(u16, &'static str),
    /// 200, `allowed: false`, and the message names this rule.
    Denied(&'static str),
    /// 200, `allowed: true`, and a warning names this rule (or `""`: no condition on warnings).
    Allowed(&'static str),
}

/// How a request is sent.
enum Send {
    /// An ordinary POST with Content-Length (hyper client).
    Post(Vec<u8>),
    /// A raw request head and a body written while the answer is read concurrently, so an
    /// early answer is seen even though the server stops reading.
    Streamed { head: Vec<u8>, body: Vec<u8> },
}

struct Outcome {
    status: u16,
    body: String,
    elapsed: Duration,
}

async fn send(port: u16, ca: &str, how: Send) -> Outcome {
    let start = Instant::now();
    let (status, body) = match how {
        Send::Post(bytes) => {
            let (status, body, _) = post(port, ca, "/validate", bytes)
                .await
                .expect("the server answers");
            (status, body)
        }
        Send::Streamed { head, body } => {
            let answer = streamed_exchange(port, ca, head, body).await;
            let status = answer
                .strip_prefix("HTTP/1.1 ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no HTTP status line in {answer:?}"));
            (status, answer)
        }
    };
    Outcome {
        status,
        body,
        elapsed: start.elapsed(),
    }
}

/// Writes `head` then `body` on one task while another reads the answer to its end.
async fn streamed_exchange(port: u16, ca: &str, head: Vec<u8>, body: Vec<u8>) -> String {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let tls = connector(ca)
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let (mut r, mut w) = tokio::io::split(tls);
    let writer = tokio::spawn(async move {
        w.write_all(&head).await?;
        for chunk in body.chunks(64 * 1024) {
            w.write_all(chunk).await?;
        }
        w.flush().await?;
        // Keep the write side open: the server answers and closes.
        tokio::time::sleep(DEADLINE).await;
        Ok::<_, std::io::Error>(())
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, r.read_to_end(&mut out)).await;
    writer.abort();
    String::from_utf8_lossy(&out).into_owned()
}

fn check(name: &str, expect: &Expect, o: &Outcome) {
    let answer = || -> Value {
        serde_json::from_str(&o.body).unwrap_or_else(|e| {
            panic!(
                "{name}: the 200 answer is not JSON ({e}): {}",
                &o.body[..o.body.len().min(300)]
            )
        })
    };
    match expect {
        Expect::Http(status, text) => {
            assert_eq!(
                o.status,
                *status,
                "{name}: {}",
                &o.body[..o.body.len().min(300)]
            );
            assert!(
                o.body.contains(text),
                "{name}: {text:?} missing from {}",
                &o.body[..o.body.len().min(500)]
            );
        }
        Expect::Denied(rule) => {
            assert_eq!(
                o.status,
                200,
                "{name}: {}",
                &o.body[..o.body.len().min(300)]
            );
            let a = answer();
            assert_eq!(a["response"]["allowed"], false, "{name}");
            assert_eq!(a["response"]["status"]["code"], 403, "{name}");
            let msg = a["response"]["status"]["message"].as_str().unwrap_or("");
            assert!(
                msg.contains(&format!("[{rule}]")),
                "{name}: [{rule}] missing from {}",
                &msg[..msg.len().min(500)]
            );
        }
        Expect::Allowed(rule) => {
            assert_eq!(
                o.status,
                200,
                "{name}: {}",
                &o.body[..o.body.len().min(300)]
            );
            let a = answer();
            assert_eq!(a["response"]["allowed"], true, "{name}: {a}");
            if !rule.is_empty() {
                let warnings = a["response"]["warnings"].to_string();
                assert!(
                    warnings.contains(&format!("[{rule}]")),
                    "{name}: {warnings}"
                );
            }
        }
    }
    assert!(
        o.elapsed < DEADLINE,
        "{name}: answered after {:?}",
        o.elapsed
    );
}

fn nested(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 2 + 2);
    s.push_str(&"[".repeat(depth));
    s.push_str(&"]".repeat(depth));
    s
}

/// Each hostile input, how it is sent, and the answer it must get.
#[expect(
    clippy::too_many_lines,
    reason = "a data table: one hostile input per entry with the answer it must get, and the few large inputs built for it"
)]
fn hostile_cases() -> Vec<(&'static str, Send, Expect)> {
    let good = review("u-good", supported("good"));
    let ten_mib = 10 * 1024 * 1024;
    let many_addons: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("addon-{i}"), "enabled": true}))
        .collect();
    // About as many as fit under the 3 MiB body limit.
    let many_experimental: Vec<Value> = (0..90_000)
        .map(|_| json!({"name": "jaeger", "enabled": true}))
        .collect();
    let with_konvoy = |v: Value| {
        review(
            "u-v",
            konvoy_cluster(
                "v",
                v,
                json!("1.20.13"),
                "stable-1.20-4.4.0",
                vec![json!({"name": "prometheus", "enabled": true})],
            ),
        )
    };
    let nested_object = {
        let mut r = review_value("u-nested", supported("nested"));
        r["request"]["object"]["spec"]["deep"] = json!("PLACEHOLDER");
        serde_json::to_string(&r)
            .expect("encode")
            .replace("\"PLACEHOLDER\"", &nested(100_000))
            .into_bytes()
    };
    let mut wrong_kind = review_value("u-kind", supported("k"));
    wrong_kind["kind"] = json!("Pod");
    let mut v1beta1 = review_value("u-beta", supported("b"));
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let duplicate = {
        let s = String::from_utf8(good.clone()).expect("utf-8");
        s.replacen("\"request\":", "\"request\":null,\"request\":", 1)
            .into_bytes()
    };

    vec![
        (
            "truncated JSON (first half of a review)",
            Send::Post(good[..good.len() / 2].to_vec()),
            Expect::Http(400, "not a JSON AdmissionReview"),
        ),
        (
            "empty body",
            Send::Post(Vec::new()),
            Expect::Http(400, "not a JSON AdmissionReview"),
        ),
        (
            "binary, invalid UTF-8",
            Send::Post(vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x7b]),
            Expect::Http(400, "not a JSON AdmissionReview"),
        ),
        (
            "10 MiB body, Content-Length declared",
            Send::Streamed {
                head: format!(
                    "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {ten_mib}\r\n\r\n"
                )
                .into_bytes(),
                body: vec![b' '; ten_mib],
            },
            Expect::Http(413, "larger than"),
        ),
        (
            "10 MiB body, chunked (no length declared)",
            Send::Streamed {
                head: b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
                body: {
                    let mut b = Vec::with_capacity(ten_mib + 1024);
                    for _ in 0..160 {
                        b.extend_from_slice(b"10000\r\n");
                        b.extend(std::iter::repeat_n(b' ', 0x10000));
                        b.extend_from_slice(b"\r\n");
                    }
                    b.extend_from_slice(b"0\r\n\r\n");
                    b
                },
            },
            Expect::Http(413, "larger than"),
        ),
        (
            "deeply nested JSON: 100,000 levels as the whole body",
            Send::Post(nested(100_000).into_bytes()),
            Expect::Http(400, "not a JSON AdmissionReview"),
        ),
        (
            "deeply nested JSON: 100,000 levels in an unknown field",
            Send::Post(
                format!(
                    r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","extra":{}}}"#,
                    nested(100_000)
                )
                .into_bytes(),
            ),
            Expect::Http(400, "recursion limit exceeded"),
        ),
        (
            "deeply nested JSON: 100,000 levels inside the object",
            Send::Post(nested_object),
            Expect::Http(400, "recursion limit exceeded"),
        ),
        (
            "wrong review apiVersion (admission.k8s.io/v1beta1)",
            Send::Post(serde_json::to_vec(&v1beta1).expect("encode")),
            Expect::Http(400, "supportgate answers admission.k8s.io/v1 AdmissionReview"),
        ),
        (
            "wrong review kind (Pod)",
            Send::Post(serde_json::to_vec(&wrong_kind).expect("encode")),
            Expect::Http(400, "unsupported review admission.k8s.io/v1/Pod"),
        ),
        (
            "review without a request",
            Send::Post(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec()),
            Expect::Http(400, "has no request"),
        ),
        (
            "duplicate request field",
            Send::Post(duplicate),
            Expect::Http(400, "duplicate field"),
        ),
        (
            "versions as numbers (YAML `version: 1.20`)",
            Send::Post(review(
                "u-num",
                konvoy_cluster(
                    "num",
                    json!(1.8),
                    json!(1.20),
                    "stable-1.20-4.4.0",
                    vec![json!({"name": "prometheus", "enabled": true})],
                ),
            )),
            Expect::Denied("version-invalid"),
        ),
        (
            "number out of range (1e999)",
            Send::Post(
                String::from_utf8(with_konvoy(json!("PLACEHOLDER")))
                    .expect("utf-8")
                    .replace("\"PLACEHOLDER\"", "1e999")
                    .into_bytes(),
            ),
            Expect::Http(400, "not a JSON AdmissionReview"),
        ),
        (
            "fullwidth digits in the version (v１.８.５)",
            Send::Post(with_konvoy(json!("v\u{ff11}.\u{ff18}.\u{ff15}"))),
            Expect::Denied("version-invalid"),
        ),
        (
            "zero-width space and RTL override in the version",
            Send::Post(with_konvoy(json!("1.8.5\u{200b}\u{202e}"))),
            Expect::Denied("version-invalid"),
        ),
        (
            "NUL in the version",
            Send::Post(with_konvoy(json!("1.8.5\u{0}"))),
            Expect::Denied("version-invalid"),
        ),
        (
            "emoji in the KBA tag",
            Send::Post(review(
                "u-tag",
                konvoy_cluster(
                    "tag",
                    json!("v1.8.5"),
                    json!("1.20.13"),
                    "stable-1.20-4.4.0\u{1f680}",
                    vec![json!({"name": "prometheus", "enabled": true})],
                ),
            )),
            Expect::Allowed("ref-unrecognized"),
        ),
        (
            "1 MiB version string",
            Send::Post(with_konvoy(json!("1".repeat(1024 * 1024)))),
            Expect::Denied("version-invalid"),
        ),
        (
            "10,000 addons in one spec",
            Send::Post(review(
                "u-many",
                konvoy_cluster(
                    "many",
                    json!("v1.8.5"),
                    json!("1.20.13"),
                    "stable-1.20-4.4.0",
                    many_addons,
                ),
            )),
            Expect::Allowed(""),
        ),
        (
            "90,000 experimental addons on a production cluster",
            Send::Post(review(
                "u-exp",
                konvoy_cluster(
                    "exp",
                    json!("v1.6.3"),
                    json!("1.18.13"),
                    "stable-1.18-3.3.0",
                    many_experimental,
                ),
            )),
            Expect::Denied("experimental-component"),
        ),
    ]
}

#[tokio::test]
async fn hostile_inputs_get_clear_answers_in_time_and_the_server_keeps_serving() {
    let cp = ControlPlane::shared();
    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &[]);
    op.wait_ready().await;
    let ca = certs.generated.ca_pem.clone();
    let port = op.webhook_port;

    println!(
        "\n{:<55} {:>6} {:>10} {:>11}",
        "hostile input", "status", "time", "answer"
    );
    for (name, how, expect) in hostile_cases() {
        let outcome = tokio::time::timeout(DEADLINE * 2, send(port, &ca, how))
            .await
            .unwrap_or_else(|_| panic!("{name}: no answer within {:?}", DEADLINE * 2));
        println!(
            "{name:<55} {:>6} {:>8.1}ms {:>9}B",
            outcome.status,
            outcome.elapsed.as_secs_f64() * 1e3,
            outcome.body.len()
        );
        check(name, &expect, &outcome);
        // Answers stay small whatever the input: echoed values are cut, violations capped.
        assert!(
            outcome.body.len() < 256 * 1024,
            "{name}: a {} byte answer",
            outcome.body.len()
        );
        assert!(
            outcome.elapsed < DEADLINE,
            "{name}: took {:?}",
            outcome.elapsed
        );
        assert!(
            op.child.try_wait().expect("try_wait").is_none(),
            "{name}: the server exited:\n{}",
            op.logs()
        );
    }

    // Still serving normal reviews, with the right verdicts.
    let (code, body, _) = post(
        port,
        &ca,
        "/validate",
        review("u-after", supported("after")),
    )
    .await
    .expect("answer");
    assert_eq!(code, 200, "{body}");
    let a: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(a["response"]["uid"], "u-after");
    assert_eq!(a["response"]["allowed"], true, "{a}");
    let unsupported = konvoy_cluster(
        "old",
        json!("v1.5.6"),
        json!("1.17.17"),
        "stable-1.17-2.7.0",
        vec![],
    );
    let (code, body, _) = post(port, &ca, "/validate", review("u-old", unsupported))
        .await
        .expect("answer");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[konvoy-unsupported]"), "{body}");
    assert!(body.contains("\"allowed\":false"), "{body}");
}

// ------------------------------------------------------------------------------------------ TLS

/// A TLS ClientHello, built by hand so that it can offer protocol versions no maintained client
/// library will send. Without a `supported_versions` extension the legacy version is the
/// client's highest.
fn client_hello(legacy_version: u16, suites: &[u16]) -> Vec<u8> {
    client_hello_with(legacy_version, suites, true)
}

fn client_hello_with(legacy_version: u16, suites: &[u16], signature_algorithms: bool) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend(kind.to_be_bytes());
        out.extend((data.len() as u16).to_be_bytes());
        out.extend(data);
    }
    let mut body = Vec::new();
    body.extend(legacy_version.to_be_bytes());
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend(s.to_be_bytes());
    }
    body.extend([1, 0]); // compression: null only
    let mut exts = Vec::new();
    // supported_groups: x25519, secp256r1, secp384r1
    ext(&mut exts, 10, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    // ec_point_formats: uncompressed
    ext(&mut exts, 11, &[1, 0]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    // (a TLS 1.2 extension: a genuine TLS 1.0/1.1 client sends none)
    if signature_algorithms {
        ext(&mut exts, 13, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]);
    }
    // extended_master_secret, renegotiation_info (empty)
    ext(&mut exts, 23, &[]);
    ext(&mut exts, 0xff01, &[0]);
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut handshake = vec![1]; // client_hello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// Sends a ClientHello and returns the first bytes the server answers with.
async fn hello_answer(port: u16, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(hello).await.expect("write hello");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < 7 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn describe(answer: &[u8]) -> String {
    match answer {
        [0x15, _, _, _, _, level, description, ..] => {
            format!("alert (level {level}, description {description})")
        }
        [0x16, 0x03, minor, _, _, 2, ..] => format!("ServerHello (record version 3.{minor})"),
        [] => "nothing (connection closed)".into(),
        other => format!("{:02x?}", &other[..other.len().min(8)]),
    }
}

const AES128_GCM_ECDSA: u16 = 0xc02b;
const AES128_GCM_RSA: u16 = 0xc02f;
const AES128_CBC_ECDSA: u16 = 0xc009;
const AES128_CBC_RSA: u16 = 0xc013;
const RSA_AES128_CBC: u16 = 0x002f;
const RSA_3DES: u16 = 0x000a;

/// Negotiates with rustls limited to one protocol version: (version, cipher suite).
async fn negotiate(
    port: u16,
    ca: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> (String, String) {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.expect("CA")).expect("add CA");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .expect("version")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("handshake");
    let c = tls.get_ref().1;
    (
        format!("{:?}", c.protocol_version().expect("version")),
        format!("{:?}", c.negotiated_cipher_suite().expect("suite").suite()),
    )
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_are_offered() {
    let cp = ControlPlane::shared();
    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &[]);
    op.wait_ready().await;
    let port = op.webhook_port;
    ssl_3_and_tls_1_0_and_1_1_hellos_get_a_fatal_alert(port).await;
    tls_1_2_with_only_legacy_suites_gets_a_fatal_alert(port).await;
    openssl_offering_tls_1_1_is_refused(port);
    real_clients_get_tls_1_3_or_1_2_with_an_aead_suite(port, &certs.generated.ca_pem).await;
}

/// Every suite a hand-built hello offers.
const ALL_SUITES: [u16; 6] = [
    AES128_GCM_ECDSA,
    AES128_GCM_RSA,
    AES128_CBC_ECDSA,
    AES128_CBC_RSA,
    RSA_AES128_CBC,
    RSA_3DES,
];

async fn ssl_3_and_tls_1_0_and_1_1_hellos_get_a_fatal_alert(port: u16) {
    let all_suites = ALL_SUITES;
    // The control: the same hand-built hello offering TLS 1.2 gets a ServerHello.
    let answer = hello_answer(port, &client_hello(0x0303, &all_suites)).await;
    println!("TLS 1.2 ClientHello, all suites: {}", describe(&answer));
    assert!(
        matches!(answer.as_slice(), [0x16, 0x03, 0x03, _, _, 2, ..]),
        "a TLS 1.2 hello must get a ServerHello: {}",
        describe(&answer)
    );

    for (name, version) in [
        ("SSL 3.0", 0x0300),
        ("TLS 1.0", 0x0301),
        ("TLS 1.1", 0x0302),
    ] {
        let answer = hello_answer(port, &client_hello(version, &all_suites)).await;
        println!("{name} ClientHello: {}", describe(&answer));
        assert!(
            matches!(answer.as_slice(), [0x15, _, _, _, _, 2, 70, ..]),
            "{name} must be refused with a fatal protocol_version alert, got {}",
            describe(&answer)
        );
    }

    // As a genuine TLS 1.1 client sends it: no signature_algorithms extension. Refused too, with
    // whichever fatal alert rustls's checks reach first.
    let answer = hello_answer(port, &client_hello_with(0x0302, &all_suites, false)).await;
    println!(
        "TLS 1.1 ClientHello without signature_algorithms: {}",
        describe(&answer)
    );
    assert!(
        matches!(answer.as_slice(), [0x15, _, _, _, _, 2, 40 | 70, ..]),
        "TLS 1.1 must be refused with a fatal alert, got {}",
        describe(&answer)
    );
}

async fn tls_1_2_with_only_legacy_suites_gets_a_fatal_alert(port: u16) {
    // TLS 1.2 with only CBC / RSA-key-exchange suites: none is offered by the server.
    let answer = hello_answer(
        port,
        &client_hello(
            0x0303,
            &[AES128_CBC_ECDSA, AES128_CBC_RSA, RSA_AES128_CBC, RSA_3DES],
        ),
    )
    .await;
    println!(
        "TLS 1.2 ClientHello, CBC/RSA-kx suites only: {}",
        describe(&answer)
    );
    assert!(
        matches!(answer.as_slice(), [0x15, _, _, _, _, 2, 40, ..]),
        "legacy suites must be refused with handshake_failure, got {}",
        describe(&answer)
    );
}

fn openssl_offering_tls_1_1_is_refused(port: u16) {
    // A second, independent client: OpenSSL, told to allow TLS 1.1 at its lowest security level.
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl must be installed (hack/install-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "openssl s_client -tls1_1: exit {}, {}",
        out.status,
        text.lines()
            .find(|l| l.contains("alert"))
            .unwrap_or("(no alert line)")
    );
    assert!(
        !out.status.success(),
        "TLS 1.1 handshake succeeded:\n{text}"
    );
    // It did offer TLS 1.1 (and only that), and got nothing but a fatal alert back.
    assert!(text.contains("Protocol  : TLSv1.1"), "{text}");
    assert!(
        text.contains("SSL alert number") && text.contains("Cipher is (NONE)"),
        "OpenSSL's TLS 1.1 hello must be refused with an alert:\n{text}"
    );
}

async fn real_clients_get_tls_1_3_or_1_2_with_an_aead_suite(port: u16, ca: &str) {
    // What a real client gets.
    let (v13, s13) = negotiate(port, ca, &rustls::version::TLS13).await;
    let (v12, s12) = negotiate(port, ca, &rustls::version::TLS12).await;
    println!("rustls TLS 1.3 only: {v13} {s13}; TLS 1.2 only: {v12} {s12}");
    assert_eq!(v13, "TLSv1_3");
    assert_eq!(v12, "TLSv1_2");
    assert!(
        s12.starts_with("TLS_ECDHE_") && (s12.contains("GCM") || s12.contains("CHACHA20")),
        "{s12}"
    );
}

// ------------------------------------------------------------------------------------ shutdown

/// A request whose body is sent in two halves, so that it is provably in flight (the server has
/// its head and is reading its body) when SIGTERM arrives.
struct HalfSent {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    rest: Vec<u8>,
    uid: String,
}

async fn half_send(port: u16, ca: &str, uid: &str) -> HalfSent {
    let body = review(uid, supported(uid));
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut stream = connector(ca)
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let half = body.len() / 2;
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&body[..half]).await.expect("write half");
    stream.flush().await.expect("flush");
    HalfSent {
        stream,
        rest: body[half..].to_vec(),
        uid: uid.to_string(),
    }
}

async fn finish(mut h: HalfSent) -> (String, String) {
    h.stream.write_all(&h.rest).await.expect("write the rest");
    h.stream.flush().await.expect("flush");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, h.stream.read_to_end(&mut out)).await;
    (h.uid, String::from_utf8_lossy(&out).into_owned())
}

#[derive(Default)]
struct Stream {
    ok: AtomicU64,
    ok_after_term: AtomicU64,
    bad_status: AtomicU64,
    truncated: AtomicU64,
    refused_before_term: AtomicU64,
    /// Not sent: the connection was already closed (the server ends keep-alive on shutdown).
    unsent_after_term: AtomicU64,
    /// Written, then the connection closed without an answer: the server had not read it yet
    /// when it closed an idle connection (a race every HTTP/1.1 keep-alive client has).
    unanswered_after_term: AtomicU64,
}

/// Sends reviews back to back on one keep-alive connection until the connection goes away.
async fn stream_reviews(
    port: u16,
    ca: String,
    id: usize,
    stats: Arc<Stream>,
    termed: Arc<AtomicBool>,
) {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let tls = connector(&ca)
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1");
    tokio::spawn(conn);
    for i in 0.. {
        if sender.ready().await.is_err() {
            break;
        }
        let uid = format!("s{id}-{i}");
        let req = http::Request::post("/validate")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(review(&uid, supported(&uid)))))
            .expect("request");
        let was_termed = termed.load(Ordering::SeqCst);
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                let counter = if !termed.load(Ordering::SeqCst) {
                    &stats.refused_before_term
                } else if e.is_canceled() || e.is_closed() {
                    &stats.unsent_after_term
                } else {
                    &stats.unanswered_after_term
                };
                counter.fetch_add(1, Ordering::SeqCst);
                break;
            }
        };
        let status = resp.status();
        match resp.into_body().collect().await.map(|b| b.to_bytes()) {
            Ok(b) if status == 200 && String::from_utf8_lossy(&b).contains(&uid) => {
                stats.ok.fetch_add(1, Ordering::SeqCst);
                if was_termed {
                    stats.ok_after_term.fetch_add(1, Ordering::SeqCst);
                }
            }
            Ok(_) => {
                stats.bad_status.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                stats.truncated.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_reviews_finish_before_exit() {
    let cp = ControlPlane::shared();
    let certs = CertFiles::new();
    // A short drain: the listener must close well within the wait below even on a loaded machine
    // (the drain itself is covered by the chaos suite's replica restarts).
    let mut op = Operator::start(
        cp,
        &certs,
        &["--shutdown-grace-seconds=20", "--shutdown-drain-seconds=1"],
    );
    op.wait_ready().await;
    let ca = certs.generated.ca_pem.clone();
    let port = op.webhook_port;

    // A steady stream of reviews on four keep-alive connections...
    let stats = Arc::new(Stream::default());
    let termed = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(stream_reviews(
                port,
                ca.clone(),
                i,
                stats.clone(),
                termed.clone(),
            ))
        })
        .collect();
    // ...and eight reviews whose bodies are only half sent.
    let mut halves = Vec::new();
    for i in 0..8 {
        halves.push(half_send(port, &ca, &format!("half-{i}")).await);
    }
    // Time for the server to take in the half-sent heads (nothing to poll for: it answers only
    // once a body is complete).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    support::eventually(
        Duration::from_secs(5),
        "the stream to flow before SIGTERM",
        || async { (stats.ok.load(Ordering::SeqCst) > 0).then_some(()) },
    )
    .await;

    termed.store(true, Ordering::SeqCst);
    let termed_at = sigterm(&mut op, port).await;
    let answered = in_flight_reviews_are_answered(&op, halves).await;
    for s in streams {
        s.await.expect("stream task");
    }

    // And then it exits, cleanly.
    let status = support::eventually(Duration::from_secs(25), "the process to exit", || {
        let s = op.child.try_wait().expect("try_wait");
        async move { s }
    })
    .await;
    let exit_after = termed_at.elapsed();
    assert!(status.success(), "exit status {status}:\n{}", op.logs());
    let logs = op.logs();
    assert!(logs.contains("finishing in-flight reviews"), "{logs}");
    the_stream_saw_no_failure(&stats, answered, exit_after);
}

/// Sends SIGTERM: the listener closes at once, new connections are refused while in-flight
/// ones go on, and the process waits for them. Returns when the signal was sent.
async fn sigterm(op: &mut Operator, port: u16) -> Instant {
    let pid = op.child.id();
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill must be installed");
    assert!(kill.success(), "kill -TERM {pid}");
    let termed_at = Instant::now();
    support::eventually(Duration::from_secs(5), "the listener to close", || async {
        TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    support::holds_for(Duration::from_millis(500), || {
        let running = op.child.try_wait().expect("try_wait").is_none();
        let logs = if running { String::new() } else { op.logs() };
        async move {
            assert!(
                running,
                "the process must wait for the half-sent reviews:\n{logs}"
            );
        }
    })
    .await;
    termed_at
}

/// Now the in-flight bodies complete: every one is answered with its review. Returns how many.
async fn in_flight_reviews_are_answered(op: &Operator, halves: Vec<HalfSent>) -> usize {
    let answers = futures::future::join_all(halves.into_iter().map(finish)).await;
    for (uid, answer) in &answers {
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{uid} was in flight at SIGTERM and got: {answer:?}\n{}",
            op.logs()
        );
        assert!(answer.contains(&format!("\"uid\":\"{uid}\"")), "{answer}");
        assert!(answer.contains("\"allowed\":true"), "{answer}");
    }
    answers.len()
}

fn the_stream_saw_no_failure(stats: &Stream, answered: usize, exit_after: Duration) {
    println!(
        "SIGTERM: {} half-sent reviews answered 200 after the signal; stream: {} answered 200 ({} of them sent after the signal), after the signal {} not sent (connection closed) and {} sent but unanswered; {} failed before it, {} non-200, {} truncated; exit 0 after {:.2} s",
        answered,
        stats.ok.load(Ordering::SeqCst),
        stats.ok_after_term.load(Ordering::SeqCst),
        stats.unsent_after_term.load(Ordering::SeqCst),
        stats.unanswered_after_term.load(Ordering::SeqCst),
        stats.refused_before_term.load(Ordering::SeqCst),
        stats.bad_status.load(Ordering::SeqCst),
        stats.truncated.load(Ordering::SeqCst),
        exit_after.as_secs_f64()
    );
    assert_eq!(
        stats.bad_status.load(Ordering::SeqCst),
        0,
        "non-200 answers"
    );
    assert_eq!(
        stats.truncated.load(Ordering::SeqCst),
        0,
        "answers cut short"
    );
    assert_eq!(
        stats.refused_before_term.load(Ordering::SeqCst),
        0,
        "requests failed before SIGTERM"
    );
    // The drain period (readyz failing, `Connection: close` on answers) means no request is
    // accepted onto a keep-alive connection that is then closed without an answer.
    assert_eq!(
        stats.unanswered_after_term.load(Ordering::SeqCst),
        0,
        "requests sent after SIGTERM but never answered"
    );
    assert!(
        stats.ok_after_term.load(Ordering::SeqCst) > 0,
        "reviews are still answered while draining"
    );
}
