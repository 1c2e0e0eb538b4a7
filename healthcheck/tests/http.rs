//! HTTP and HTTPS checks against real servers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{acceptor, cert_pem, key_pem, self_signed, silent_server, HttpServer, Pki, TempDir};
use healthcheck::{
    run_with_timeout, Check, ConfigError, Failure, HttpCheck, HttpConfig, StatusMatch, TlsConfig,
};

/// Generous: CI is a loaded 2-core machine; only the timeout test waits for it.
const TIMEOUT: Duration = Duration::from_secs(10);

async fn probe(config: &HttpConfig) -> Result<(), Failure> {
    let check = HttpCheck::new(config).unwrap();
    run_with_timeout(&check, TIMEOUT).await
}

#[tokio::test]
async fn status_200_is_up_then_503_is_down() {
    let server = HttpServer::start(None).await;
    let config = HttpConfig::new(format!("http://{}/readyz?verbose", server.addr));
    assert_eq!(probe(&config).await, Ok(()));
    let (method, path, host) = server.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(method, "GET");
    assert_eq!(path, "/readyz?verbose");
    assert_eq!(host, server.addr.to_string());

    server.set_status(503);
    assert_eq!(probe(&config).await, Err(Failure::Status(503)));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn ipv6_literal_urls_over_http_and_https() {
    let server = HttpServer::start_on("[::1]:0", None).await;
    let port = server.addr.port();
    let config = HttpConfig::new(format!("http://[::1]:{port}/readyz"));
    assert_eq!(probe(&config).await, Ok(()));
    // The Host header keeps the brackets (RFC 7230 section 5.4 / RFC 3986 IP-literal).
    let (_, _, host) = server.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(host, format!("[::1]:{port}"));
    assert!(server.state.peer.lock().unwrap().unwrap().is_ipv6());
    server.set_status(503);
    assert_eq!(probe(&config).await, Err(Failure::Status(503)));

    // HTTPS verified against an IPv6 IP SAN; no SNI for an IP literal.
    let pki = Pki::new(&["::1"]);
    let dir = TempDir::new("https-v6");
    let server = HttpServer::start_on("[::1]:0", Some(acceptor(&pki.server, None))).await;
    let mut config = HttpConfig::new(format!("https://[::1]:{}/readyz", server.addr.port()));
    config.tls.ca_file = Some(dir.write("ca.pem", cert_pem(&pki.ca)));
    assert_eq!(probe(&config).await, Ok(()));
    assert_eq!(*server.state.sni.lock().unwrap(), None);
    // The certificate does not name 127.0.0.1: reached over IPv4, it is refused.
    let v4 = HttpServer::start(Some(acceptor(&pki.server, None))).await;
    config.url = format!("https://127.0.0.1:{}/readyz", v4.addr.port());
    let err = probe(&config).await.unwrap_err();
    assert!(matches!(err, Failure::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn method_host_status_set_and_body() {
    let server = HttpServer::start(None).await;
    let mut config = HttpConfig::new(format!("http://{}/healthz", server.addr));
    config.method = "HEAD".into();
    config.host = Some("api.example.test".into());
    config.expect_status = StatusMatch::Set(vec![204]);
    assert_eq!(probe(&config).await, Err(Failure::Status(200)));
    let (method, _, host) = server.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        (method.as_str(), host.as_str()),
        ("HEAD", "api.example.test")
    );

    let mut config = HttpConfig::new(format!("http://{}/healthz", server.addr));
    config.expect_body = Some("ready".into());
    assert_eq!(probe(&config).await, Ok(()));
    config.expect_body = Some("healthy".into());
    assert_eq!(probe(&config).await, Err(Failure::BodyMismatch));

    // 503 matches an explicit range that includes it.
    server.set_status(503);
    config.expect_body = None;
    config.expect_status = StatusMatch::Range(500, 599);
    assert_eq!(probe(&config).await, Ok(()));
}

#[tokio::test]
async fn connects_from_the_source_address() {
    let server = HttpServer::start(None).await;
    let mut config = HttpConfig::new(format!("http://{}/", server.addr));
    config.source = Some("127.0.0.3".parse().unwrap());
    assert_eq!(probe(&config).await, Ok(()));
    let peer = server.state.peer.lock().unwrap().unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.3");
}

#[tokio::test]
async fn extra_headers_are_sent_and_may_override_host() {
    let server = HttpServer::start(None).await;
    let mut config = HttpConfig::new(format!("http://{}/", server.addr));
    config.headers.insert("X-Probe".into(), "ha-lb".into());
    config.headers.insert("host".into(), "override.test".into());
    assert_eq!(probe(&config).await, Ok(()));
    assert_eq!(
        server.state.x_probe.lock().unwrap().as_deref(),
        Some("ha-lb")
    );
    let (_, _, host) = server.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(host, "override.test");

    config.headers.insert("bad header".into(), "x".into());
    assert!(matches!(
        HttpCheck::new(&config),
        Err(ConfigError::Invalid {
            field: "headers",
            ..
        })
    ));
}

/// A chunked body whose expected text straddles two chunks sent apart.
#[tokio::test]
async fn body_text_split_across_chunks_is_found() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            stream.write_all(head.as_bytes()).await.unwrap();
            stream
                .write_all(b"7\r\nstatus:\r\n4\r\n rea\r\n")
                .await
                .unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            // The client may have what it needs already and be gone.
            let _ = stream.write_all(b"3\r\ndy\n\r\n0\r\n\r\n").await;
        }
    });
    let mut config = HttpConfig::new(format!("http://{addr}/readyz"));
    config.expect_body = Some("status: ready".into());
    assert_eq!(probe(&config).await, Ok(()));
    config.expect_body = Some("status: steady".into());
    assert_eq!(probe(&config).await, Err(Failure::BodyMismatch));
    server.abort();
}

#[tokio::test]
async fn refused_when_nothing_listens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = HttpConfig::new(format!("http://{addr}/"));
    assert_eq!(probe(&config).await, Err(Failure::Refused));
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    let (addr, task) = silent_server().await;
    let check = HttpCheck::new(&HttpConfig::new(format!("http://{addr}/readyz"))).unwrap();
    let timeout = Duration::from_millis(300);
    assert_eq!(
        run_with_timeout(&check, timeout).await,
        Err(Failure::TimedOut(timeout))
    );
    task.abort();
}

#[tokio::test]
async fn https_with_ca_file_and_sni() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let dir = TempDir::new("https-ca");
    let ca_file = dir.write("ca.pem", cert_pem(&pki.ca));
    let server = HttpServer::start(Some(acceptor(&pki.server, None))).await;
    let port = server.addr.port();

    // By IP: verified against the IP SAN, no SNI sent (RFC 6066 forbids IP literals).
    let mut config = HttpConfig::new(format!("https://127.0.0.1:{port}/readyz"));
    config.tls.ca_file = Some(ca_file.clone());
    assert_eq!(probe(&config).await, Ok(()));
    assert_eq!(*server.state.sni.lock().unwrap(), None);

    // By name through an explicit server name: sent as SNI.
    config.tls.server_name = Some("localhost".into());
    assert_eq!(probe(&config).await, Ok(()));
    assert_eq!(
        server.state.sni.lock().unwrap().as_deref(),
        Some("localhost")
    );

    // A name the certificate does not hold is a TLS failure.
    config.tls.server_name = Some("other.test".into());
    let err = probe(&config).await.unwrap_err();
    assert!(matches!(err, Failure::Tls(_)), "{err:?}");

    // A 503 over TLS is still a status failure.
    config.tls.server_name = None;
    server.set_status(503);
    assert_eq!(probe(&config).await, Err(Failure::Status(503)));
}

#[tokio::test]
async fn self_signed_needs_its_cert_as_ca_or_insecure_skip_verify() {
    let cert = self_signed(&["localhost", "127.0.0.1"]);
    let dir = TempDir::new("https-self");
    let own = dir.write("self.pem", cert_pem(&cert));
    let other_ca = dir.write("other-ca.pem", cert_pem(&Pki::new(&["x.test"]).ca));
    let server = HttpServer::start(Some(acceptor(&cert, None))).await;
    let url = format!("https://127.0.0.1:{}/readyz", server.addr.port());

    let mut config = HttpConfig::new(url.clone());
    config.tls.ca_file = Some(other_ca);
    let err = probe(&config).await.unwrap_err();
    assert!(
        matches!(&err, Failure::Tls(m) if m.contains("UnknownIssuer")),
        "{err:?}"
    );

    config.tls.ca_file = Some(own);
    assert_eq!(probe(&config).await, Ok(()));

    let mut config = HttpConfig::new(url);
    config.tls = TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    };
    assert_eq!(probe(&config).await, Ok(()));
}

#[tokio::test]
async fn client_certificate_required_by_the_server() {
    let pki = Pki::new(&["127.0.0.1"]);
    let dir = TempDir::new("https-mtls");
    let ca_file = dir.write("ca.pem", cert_pem(&pki.ca));
    let client_cert = dir.write("client.pem", cert_pem(&pki.client));
    let client_key = dir.write("client-key.pem", key_pem(&pki.client));
    let server = HttpServer::start(Some(acceptor(&pki.server, Some(&pki.ca)))).await;

    let mut config = HttpConfig::new(format!("https://127.0.0.1:{}/readyz", server.addr.port()));
    config.tls.ca_file = Some(ca_file);
    let err = probe(&config).await.unwrap_err();
    assert!(matches!(err, Failure::Tls(_)), "no client cert: {err:?}");
    assert_eq!(server.hits(), 0);

    config.tls.client_cert = Some(client_cert);
    config.tls.client_key = Some(client_key);
    assert_eq!(probe(&config).await, Ok(()));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn plain_http_to_a_tls_port_fails_cleanly() {
    let cert = self_signed(&["127.0.0.1"]);
    let server = HttpServer::start(Some(acceptor(&cert, None))).await;
    let err = probe(&HttpConfig::new(format!("http://{}/", server.addr)))
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Http(_)), "{err:?}");
}

#[test]
fn missing_and_bad_certificate_files_are_config_errors() {
    let dir = TempDir::new("https-bad");
    let mut config = HttpConfig::new("https://127.0.0.1:6443/readyz");
    config.tls.ca_file = Some(dir.path("missing-ca.pem"));
    let err = HttpCheck::new(&config).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::ReadFile {
                what: "CA file",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing-ca.pem"), "{err}");

    config.tls.ca_file = Some(dir.write("empty.pem", "no pem here\n"));
    let err = HttpCheck::new(&config).unwrap_err();
    assert!(matches!(err, ConfigError::EmptyPem { .. }), "{err:?}");

    let pki = Pki::new(&["127.0.0.1"]);
    config.tls.ca_file = Some(dir.write("ca.pem", cert_pem(&pki.ca)));
    config.tls.client_cert = Some(dir.write("client.pem", cert_pem(&pki.client)));
    let err = HttpCheck::new(&config).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "client_key",
                ..
            }
        ),
        "{err:?}"
    );
    config.tls.client_key = Some(dir.path("missing-key.pem"));
    let err = HttpCheck::new(&config).unwrap_err();
    assert!(err.to_string().contains("missing-key.pem"), "{err}");

    // A key that does not match the certificate.
    config.tls.client_key = Some(dir.write("wrong-key.pem", key_pem(&pki.server)));
    let err = HttpCheck::new(&config).unwrap_err();
    assert!(matches!(err, ConfigError::Tls(_)), "{err:?}");
}

#[test]
fn insecure_and_ca_file_together_are_rejected() {
    let mut config = HttpConfig::new("https://127.0.0.1:6443/readyz");
    config.tls.insecure_skip_verify = true;
    config.tls.ca_file = Some("/etc/kubernetes/pki/ca.crt".into());
    assert!(matches!(
        HttpCheck::new(&config),
        Err(ConfigError::Invalid {
            field: "insecure_skip_verify",
            ..
        })
    ));
}

#[test]
fn describe_names_method_and_url() {
    let check = HttpCheck::new(&HttpConfig::new("http://127.0.0.1:8080/readyz")).unwrap();
    assert_eq!(check.describe(), "http GET http://127.0.0.1:8080/readyz");
}

/// Without `ca_file` the system's roots are used: our test CA is not among them.
#[tokio::test]
async fn system_roots_do_not_trust_a_private_ca() {
    let pki = Pki::new(&["127.0.0.1"]);
    let server = HttpServer::start(Some(acceptor(&pki.server, None))).await;
    let config = HttpConfig::new(format!("https://127.0.0.1:{}/readyz", server.addr.port()));
    let bundle = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
    match HttpCheck::new(&config) {
        Ok(check) => {
            let err = run_with_timeout(&check, TIMEOUT).await.unwrap_err();
            assert!(
                matches!(&err, Failure::Tls(m) if m.contains("UnknownIssuer")),
                "{err:?}"
            );
            assert_eq!(server.hits(), 0);
        }
        // Only acceptable on a machine without a CA bundle, and then with a clear error.
        Err(err) => {
            assert!(
                !bundle.exists(),
                "roots not loaded although {bundle:?} exists: {err}"
            );
            assert!(matches!(err, ConfigError::NoSystemRoots { .. }), "{err:?}");
        }
    }
}
