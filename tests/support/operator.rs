//! Runs the real `supportgate` binary against the test control plane, and talks to it over TLS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use supportgate::webhook::tls::{GeneratedCerts, generate};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{ControlPlane, eventually, free_port};

/// Registers a `url:` ValidatingWebhookConfiguration `name` for the embedded default's targets,
/// failing closed, in place of one of that name; `excluded` is a namespace never sent to it.
pub async fn register_webhook(
    cp: &ControlPlane,
    name: &str,
    url: String,
    ca_bundle: Vec<u8>,
    excluded: &str,
) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use kube::api::{Api, DeleteParams, PostParams};
    use supportgate::api::webhook_configuration::{
        Endpoint, WebhookSettings, validating_webhook_configuration,
    };
    use supportgate::engine::policyset::PolicySet;
    let settings = WebhookSettings {
        name: name.to_string(),
        endpoint: Endpoint::Url(url),
        ca_bundle_pem: ca_bundle,
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        excluded_namespaces: vec![excluded.into()],
    };
    let vwc = validating_webhook_configuration(&settings, PolicySet::embedded_default().targets());
    let api: Api<ValidatingWebhookConfiguration> = Api::all(cp.client().await);
    let _ = api.delete(name, &DeleteParams::default()).await;
    api.create(&PostParams::default(), &vwc)
        .await
        .expect("create the ValidatingWebhookConfiguration");
}

/// Deletes the webhook configuration `name`: one left behind, pointing at a process that is
/// gone and failing closed, would refuse the next tests' objects.
pub async fn unregister_webhook(cp: &ControlPlane, name: &str) -> kube::Result<()> {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use kube::api::{Api, DeleteParams};
    let api: Api<ValidatingWebhookConfiguration> = Api::all(cp.client().await);
    api.delete(name, &DeleteParams::default()).await.map(|_| ())
}

/// The serving certificate files of a webhook under test.
pub struct CertFiles {
    pub dir: tempfile::TempDir,
    pub generated: GeneratedCerts,
}

impl CertFiles {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let generated =
            generate(&["127.0.0.1", "localhost"], "supportgate-test-ca").expect("certs");
        let files = CertFiles { dir, generated };
        files.write(&files.generated.cert_pem, &files.generated.key_pem);
        files
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Replaces both files the way a Secret volume update does: write aside, then rename.
    pub fn write(&self, cert_pem: &str, key_pem: &str) {
        for (name, body) in [("tls.crt", cert_pem), ("tls.key", key_pem)] {
            let tmp = self.dir.path().join(format!(".{name}.tmp"));
            std::fs::write(&tmp, body).expect("write cert");
            std::fs::rename(&tmp, self.dir.path().join(name)).expect("rename cert");
        }
    }
}

/// A running `supportgate run`; killed on drop.
pub struct Operator {
    pub child: Child,
    pub webhook_port: u16,
    pub health_port: u16,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(cp: &ControlPlane, certs: &CertFiles, extra: &[&str]) -> Operator {
        Self::start_with_kubeconfig(cp, &cp.kubeconfig, certs, extra)
    }

    pub fn start_with_kubeconfig(
        cp: &ControlPlane,
        kubeconfig: &Path,
        certs: &CertFiles,
        extra: &[&str],
    ) -> Operator {
        Self::start_on(cp, kubeconfig, certs, free_port(), extra)
    }

    /// Starts as the ServiceAccount `account` (namespace, name), with a one-hour token in a
    /// kubeconfig beside the certificates, and waits until ready.
    pub async fn ready_as(
        cp: &ControlPlane,
        account: (&str, &str),
        certs: &CertFiles,
        extra: &[&str],
    ) -> Operator {
        let kubeconfig = certs.dir.path().join("sa-kubeconfig");
        cp.service_account_kubeconfig(account.0, account.1, &kubeconfig);
        let mut op = Self::start_with_kubeconfig(cp, &kubeconfig, certs, extra);
        op.wait_ready().await;
        op
    }

    /// Starts on a chosen webhook port (for a webhook configuration written beforehand).
    pub fn start_on(
        cp: &ControlPlane,
        kubeconfig: &Path,
        certs: &CertFiles,
        webhook_port: u16,
        extra: &[&str],
    ) -> Operator {
        let bin = Path::new(env!("CARGO_BIN_EXE_supportgate"));
        Self::start_binary(cp, bin, kubeconfig, certs, webhook_port, extra)
    }

    /// Starts another build of supportgate (a benchmark's baseline).
    pub fn start_binary(
        _cp: &ControlPlane,
        bin: &Path,
        kubeconfig: &Path,
        certs: &CertFiles,
        webhook_port: u16,
        extra: &[&str],
    ) -> Operator {
        let health_port = free_port();
        let log = certs
            .dir
            .path()
            .join(format!("supportgate-{webhook_port}.log"));
        let child = Command::new(bin)
            .arg("run")
            .arg(format!("--webhook-addr=127.0.0.1:{webhook_port}"))
            .arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg("--tls-cert-file")
            .arg(certs.cert())
            .arg("--tls-key-file")
            .arg(certs.key())
            .arg("--cert-reload-seconds=1")
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,supportgate=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn supportgate run");
        Operator {
            child,
            webhook_port,
            health_port,
            log,
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_ready(&mut self) {
        let port = self.health_port;
        let mut tries = 0;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("supportgate exited early ({status}):\n{}", self.logs());
            }
            if let Ok((200, _)) = http_get(port, "/readyz").await {
                return;
            }
            tries += 1;
            if tries > 300 {
                panic!("supportgate not ready after 30 s:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until ready, registers the webhook configuration `name` for this process (its
    /// CA; never `kube-system`), and waits until the API server calls it for `ns`, where
    /// `denied_doc` must be refused.
    pub async fn serve_admission(
        &mut self,
        cp: &ControlPlane,
        certs: &CertFiles,
        name: &str,
        ns: &str,
        denied_doc: &str,
    ) {
        self.wait_ready().await;
        let ca = certs.generated.ca_pem.clone().into_bytes();
        register_webhook(cp, name, self.url(), ca, "kube-system").await;
        wait_webhook_effective(cp, ns, denied_doc).await;
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/validate", self.webhook_port)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .expect("request");
    exchange(&mut sender, req).await
}

/// Sends one request on an open HTTP/1.1 connection: (status, body).
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> std::io::Result<(u16, String)> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A TLS client that trusts only `ca_pem`.
pub fn connector(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("add CA");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

/// POSTs `body` to the webhook over TLS (HTTP/1.1): (status, body, the server's certificate).
pub async fn post(
    port: u16,
    ca_pem: &str,
    path: &str,
    body: Vec<u8>,
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = connector(ca_pem)
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await?;
    let served = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let (status, body) = exchange(&mut sender, req).await?;
    Ok((status, body, served))
}

/// Waits until the API server routes requests to the webhook (its webhook informer lags).
pub async fn wait_webhook_effective(cp: &ControlPlane, namespace: &str, denied_doc: &str) {
    eventually(
        Duration::from_secs(30),
        "the webhook to be called by the API server",
        || async {
            let o = cp.kubectl_in(
                &["-n", namespace, "apply", "--dry-run=server", "-f", "-"],
                Some(denied_doc),
            );
            (!o.status.success() && super::stderr(&o).contains("denied the request")).then_some(())
        },
    )
    .await;
}

/// Writes raw bytes over TLS (ignoring a write the server cut short) and returns what the server
/// answered, for requests a well-behaved client library would refuse to send.
pub async fn raw_exchange(port: u16, ca_pem: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut tls = connector(ca_pem)
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("tls");
    let _ = tls.write_all(request).await;
    let _ = tls.flush().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
