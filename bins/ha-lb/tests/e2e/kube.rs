//! End to end: kubeadm's stacked layout with configurations from `ha-lb kube configs`.
//!
//! Namespaces on one bridge (TEST-NET-1): cp1 192.0.2.1, cp2 192.0.2.2 and cp3 192.0.2.3 each
//! run a fake apiserver bound to 0.0.0.0:6443 (HTTPS with a certificate for "kubernetes" from a
//! test CA; `/readyz`; `/watch`, a long-lived streaming response like a watch; any other path
//! answers with the node's name). cp1 and cp2 run ha-lb with the generated files; the client
//! 192.0.2.4 reaches the VIP 192.0.2.100:8443 (the controlPlaneEndpoint). It checks that every
//! apiserver serves through the VIP, that a watch streams through it, that `/readyz` failing on
//! cp3 takes cp3 out, and that a crash of the node holding the VIP moves it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::netns;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns::{wait_until, ChildGuard, Lan, Netns};
use nix::sys::signal::Signal;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

const VIP: &str = "192.0.2.100";
const ENDPOINT: &str = "192.0.2.100:8443";
const CP1: usize = 0;
const CP2: usize = 1;
const CP3: usize = 2;
const CLIENT: usize = 3;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The cluster CA and the apiservers' serving certificate (for "kubernetes").
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes-ca (test)");
        let ca = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec![
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
        ])
        .unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let cert = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server: Arc::new(server),
        }
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// A fake kube-apiserver on 0.0.0.0:6443 in a node's namespace, until dropped.
struct Apiserver {
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Apiserver {
    fn start(ns: &Netns, name: &str, tls: Arc<rustls::ServerConfig>) -> Self {
        let listener = ns.run(|| TcpListener::bind("0.0.0.0:6443").unwrap());
        listener.set_nonblocking(true).unwrap();
        let ready = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, name) = (ready.clone(), stop.clone(), name.to_owned());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (tls, r, s, name) = (tls.clone(), r.clone(), s.clone(), name.clone());
                        std::thread::spawn(move || serve(stream, tls, &r, &s, &name));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Apiserver { ready, stop }
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    ready: &AtomicBool,
    stop: &AtomicBool,
    name: &str,
) {
    stream.set_nonblocking(false).unwrap();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers up to the blank line.
    let mut h = String::new();
    while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
        h.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = match path.as_str() {
        "/readyz" if ready.load(Ordering::Relaxed) => ("200 OK", "ok".to_owned()),
        "/readyz" => ("500 Internal Server Error", "[-]etcd failed".to_owned()),
        "/watch" => {
            // A watch: one event every 50 ms, until the client or the test goes away.
            let _ = tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let event = format!("{{\"type\":\"MODIFIED\",\"from\":\"{name}\",\"n\":{n}}}\n");
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                if tls
                    .write_all(chunk.as_bytes())
                    .and_then(|()| tls.flush())
                    .is_err()
                {
                    return;
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        _ => ("200 OK", name.to_owned()),
    };
    let _ = tls.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// Opens a TLS connection to the endpoint from the client's namespace (SNI "kubernetes",
/// verified against the cluster CA, as a kubelet does).
fn connect(
    ns: &Netns,
    client: Arc<rustls::ClientConfig>,
) -> Option<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let tcp = ns.run(|| {
        TcpStream::connect_timeout(&ENDPOINT.parse().unwrap(), Duration::from_millis(500)).ok()
    })?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let conn =
        rustls::ClientConnection::new(client, ServerName::try_from("kubernetes").unwrap()).ok()?;
    Some(rustls::StreamOwned::new(conn, tcp))
}

/// GET `path` through the VIP: the body, or `None` on any failure.
fn get(ns: &Netns, client: &Arc<rustls::ClientConfig>, path: &str) -> Option<String> {
    let mut s = connect(ns, client.clone())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: kubernetes\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// Which apiservers answer `n` requests through the VIP.
fn served_by(ns: &Netns, client: &Arc<rustls::ClientConfig>, n: usize) -> BTreeSet<String> {
    (0..n).filter_map(|_| get(ns, client, "/who")).collect()
}

fn generate(dir: &Path, ca: &Path) -> Vec<PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args([
            "kube",
            "configs",
            "--topology",
            "stacked",
            "--vip",
            "192.0.2.100/24",
            "--interface",
            "eth0",
            "--node",
            "cp1=192.0.2.1",
            "--node",
            "cp2=192.0.2.2",
            "--apiserver",
            "192.0.2.1:6443",
            "--apiserver",
            "192.0.2.2:6443",
            "--apiserver",
            "192.0.2.3:6443",
            "--ca-file",
        ])
        .arg(ca)
        .arg("--out-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("controlPlaneEndpoint: {ENDPOINT}\n")
    );
    vec![dir.join("cp1.toml"), dir.join("cp2.toml")]
}

#[test]
fn kubeadm_stacked_layout_serves_checks_and_fails_over() {
    let _serial = crate::netns::serial();
    if !Netns::available("kubeadm_stacked_layout_serves_checks_and_fails_over") {
        return;
    }
    let lan = Lan::new("kube", 4, true);
    let dir = std::env::temp_dir().join(format!("halb-kube-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let pki = Pki::new();
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let client = pki.client();

    let apiservers: Vec<Apiserver> = [(CP1, "cp1"), (CP2, "cp2"), (CP3, "cp3")]
        .iter()
        .map(|(i, name)| Apiserver::start(&lan.nodes[*i], name, pki.server.clone()))
        .collect();
    let configs = generate(&dir, &ca);
    let start = |i: usize, config: &Path| {
        let log = std::fs::File::create(dir.join(format!("cp{}.log", i + 1))).unwrap();
        let mut cmd = lan.nodes[i].command(env!("CARGO_BIN_EXE_ha-lb"));
        cmd.args(["run", "--config"])
            .arg(config)
            .args(["--drain-timeout-ms", "200"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        ChildGuard::spawn(&mut cmd, Duration::from_secs(5))
    };
    let cp1 = start(CP1, &configs[0]);
    let _cp2 = start(CP2, &configs[1]);
    let logs = || {
        ["cp1.log", "cp2.log"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };

    // cp1 (priority 150) holds the VIP; once /readyz passed twice (rise 2 at 1 s), every
    // apiserver serves through it.
    let client_ns = &lan.nodes[CLIENT];
    assert!(
        wait_until(Duration::from_secs(10), || lan.nodes[CP1]
            .has_address("eth0", VIP)),
        "cp1 never held the VIP\n{}",
        logs()
    );
    let all: BTreeSet<String> = ["cp1", "cp2", "cp3"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || served_by(
            client_ns, &client, 12
        ) == all),
        "not every apiserver serves through {ENDPOINT}: {:?}\n{}",
        served_by(client_ns, &client, 12),
        logs()
    );

    // A watch streams through the VIP: events keep coming over a long-lived connection.
    let mut watch = connect(client_ns, client.clone()).unwrap();
    watch
        .write_all(b"GET /watch HTTP/1.1\r\nHost: kubernetes\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(&mut watch);
    let t = Instant::now();
    let mut events = 0;
    let mut line = String::new();
    while t.elapsed() < Duration::from_secs(1) && reader.read_line(&mut line).unwrap() > 0 {
        if line.contains("\"MODIFIED\"") {
            events += 1;
        }
        line.clear();
    }
    assert!(events >= 10, "only {events} watch events in 1 s");
    drop(reader);
    drop(watch);

    // cp3's /readyz fails: fall 2 at 1 s takes it out; no request reaches it after that.
    apiservers[2].ready.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(3000));
    let after = served_by(client_ns, &client, 20);
    assert!(
        !after.contains("cp3") && after.contains("cp1") && after.contains("cp2"),
        "with cp3's /readyz failing: {after:?}"
    );
    apiservers[2].ready.store(true, Ordering::Relaxed);

    // A crash of cp1 (supervisor and worker, SIGKILL: no priority 0): cp2 takes the VIP after
    // Master_Down_Interval (361 ms at 100 ms adverts) and the endpoint answers again.
    cp1.signal(Signal::SIGKILL);
    let crashed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || get(client_ns, &client, "/who")
            .is_some()
            && lan.nodes[CP2].has_address("eth0", VIP)),
        "{ENDPOINT} does not answer after cp1 crashed\n{}",
        logs()
    );
    let outage = crashed.elapsed();
    println!("endpoint answering through cp2 {outage:?} after cp1's crash");
    assert!(
        outage < Duration::from_millis(361 + 700),
        "took {outage:?} after cp1's crash"
    );
    drop(apiservers);
}
