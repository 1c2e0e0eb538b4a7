//! Servers and files the integration tests start on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedKey, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hc-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test PKI: a CA, a server certificate it signed and a client certificate it signed.
pub struct Pki {
    pub ca: CertifiedKey,
    pub server: CertifiedKey,
    pub client: CertifiedKey,
}

fn ca(name: &str) -> CertifiedKey {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    CertifiedKey {
        cert,
        key_pair: key,
    }
}

fn leaf(names: &[&str], usage: ExtendedKeyUsagePurpose, issuer: &CertifiedKey) -> CertifiedKey {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.extended_key_usages = vec![usage];
    let cert = params
        .signed_by(&key, &issuer.cert, &issuer.key_pair)
        .unwrap();
    CertifiedKey {
        cert,
        key_pair: key,
    }
}

impl Pki {
    /// Server certificate valid for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Pki {
        let ca = ca("ha-lb test CA");
        let server = leaf(names, ExtendedKeyUsagePurpose::ServerAuth, &ca);
        let client = leaf(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth, &ca);
        Pki { ca, server, client }
    }
}

/// A self-signed server certificate, like a fresh kube-apiserver's or a lab box's.
pub fn self_signed(names: &[&str]) -> CertifiedKey {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    rcgen::generate_simple_self_signed(names).unwrap()
}

pub fn cert_pem(c: &CertifiedKey) -> String {
    c.cert.pem()
}

pub fn key_pem(c: &CertifiedKey) -> String {
    c.key_pair.serialize_pem()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS acceptor presenting `server`; requiring a client certificate signed by `client_ca`
/// when given.
pub fn acceptor(server: &CertifiedKey, client_ca: Option<&CertifiedKey>) -> TlsAcceptor {
    let chain = vec![CertificateDer::from_pem_slice(server.cert.pem().as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(server.key_pair.serialize_pem().as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.cert.pem().as_bytes()).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// What the HTTP test server saw and what it answers.
#[derive(Default)]
pub struct HttpState {
    /// The status to answer (200 when 0).
    pub status: AtomicU16,
    /// Requests served.
    pub hits: AtomicUsize,
    /// The last request's method, path and Host header.
    pub last: Mutex<Option<(String, String, String)>>,
    /// The SNI of the last TLS connection.
    pub sni: Mutex<Option<String>>,
    /// TLS handshakes that failed.
    pub tls_failures: AtomicUsize,
    /// The peer address of the last connection.
    pub peer: Mutex<Option<SocketAddr>>,
    /// The `x-probe` header of the last request.
    pub x_probe: Mutex<Option<String>>,
}

/// An HTTP(S) server on loopback answering `state.status` with body `ready` or `not ready`.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub state: Arc<HttpState>,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    pub async fn start(tls: Option<TlsAcceptor>) -> HttpServer {
        HttpServer::start_on("127.0.0.1:0", tls).await
    }

    /// The same on `bind` (e.g. `[::1]:0`).
    pub async fn start_on(bind: &str, tls: Option<TlsAcceptor>) -> HttpServer {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(HttpState::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                *st.peer.lock().unwrap() = Some(peer);
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(TokioIo::new(stream), st).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                                *st.sni.lock().unwrap() = sni;
                                serve(TokioIo::new(tls), st).await;
                            }
                            Err(_) => {
                                st.tls_failures.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                    }
                });
            }
        });
        HttpServer { addr, state, task }
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

async fn serve<IO>(io: TokioIo<IO>, state: Arc<HttpState>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move {
            state.hits.fetch_add(1, Ordering::SeqCst);
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            *state.last.lock().unwrap() =
                Some((req.method().to_string(), req.uri().to_string(), host));
            *state.x_probe.lock().unwrap() = req
                .headers()
                .get("x-probe")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let status = match state.status.load(Ordering::SeqCst) {
                0 => 200,
                s => s,
            };
            let body = if status == 200 { "ready" } else { "not ready" };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap(),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// A listener that accepts connections and never answers; keeps them open.
pub async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// Polls `cond` every 20 ms until it holds or `secs` pass (for effects of real processes).
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cond()
}

/// Whether `/proc/PID` names a live, non-zombie process.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat[stat.rfind(')').unwrap() + 1..]
        .trim_start()
        .chars()
        .next();
    !matches!(state, Some('Z') | Some('X') | None)
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}
