//! HTTP and HTTPS checks: a request whose status (and optionally body) says healthy.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;

use crate::check::Check;
use crate::error::ConfigError;
use crate::failure::{Failure, Outcome};
use crate::status::StatusMatch;
use crate::tcp::{connect, Target};
use crate::tls::{client_config, server_name, TlsConfig};

/// How much of a response body is searched for [`HttpConfig::expect_body`].
const BODY_LIMIT: usize = 64 * 1024;

/// Configuration of an [`HttpCheck`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `http://host:port/path` or `https://...`, e.g. `https://127.0.0.1:6443/readyz`.
    pub url: String,
    /// The request method; `GET` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// The `Host` header; the URL's authority by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The statuses that count as healthy; 200-399 by default.
    #[serde(default)]
    pub expect_status: StatusMatch,
    /// Text the body must contain (searched in its first 64 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// The local address to connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// TLS settings, used with an `https` URL.
    #[serde(default)]
    pub tls: TlsConfig,
}

fn default_method() -> String {
    "GET".to_owned()
}

impl HttpConfig {
    /// A `GET` of `url` expecting 200-399, with default TLS settings.
    pub fn new(url: impl Into<String>) -> HttpConfig {
        HttpConfig {
            url: url.into(),
            method: default_method(),
            host: None,
            headers: BTreeMap::new(),
            expect_status: StatusMatch::default(),
            expect_body: None,
            source: None,
            tls: TlsConfig::default(),
        }
    }
}

/// Sends one HTTP/1.1 request per check over a fresh connection (HTTPS with rustls).
#[derive(Clone)]
pub struct HttpCheck {
    target: Target,
    source: Option<IpAddr>,
    method: Method,
    /// The request target (path and query), parsed once.
    path: Uri,
    /// Every request header, built once and cloned (cheaply: shared bytes) per request.
    headers: HeaderMap,
    expect_status: StatusMatch,
    expect_body: Option<Vec<u8>>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    url: String,
}

impl std::fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCheck")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("expect_status", &self.expect_status)
            .finish_non_exhaustive()
    }
}

impl HttpCheck {
    /// Builds the check: parses the URL and headers and loads every TLS file now.
    pub fn new(config: &HttpConfig) -> Result<HttpCheck, ConfigError> {
        let bad_url = |reason: &str| ConfigError::InvalidUrl {
            url: config.url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad_url(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(bad_url(&format!("scheme {other:?} is not http or https"))),
            None => return Err(bad_url("no scheme; write http://host:port/path")),
        };
        let authority = uri.authority().ok_or_else(|| bad_url("no host"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(bad_url("no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = Target::parse(&format!("{host}:{port}"), "url")?;
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad_url(&e.to_string()))?;
        let method =
            Method::from_bytes(config.method.as_bytes()).map_err(|_| ConfigError::Invalid {
                field: "method",
                reason: format!("{:?} is not an HTTP method", config.method),
            })?;
        config.expect_status.validate()?;

        let host_header = config
            .host
            .clone()
            .unwrap_or_else(|| authority.as_str().to_owned());
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, header_value("host", &host_header)?);
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("ha-lb-healthcheck"),
        );
        for (name, value) in &config.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConfigError::Invalid {
                    field: "headers",
                    reason: format!("{name:?} is not a header name"),
                })?;
            headers.insert(name, header_value("headers", value)?);
        }

        let tls = if https {
            let sni = config.tls.server_name.as_deref().unwrap_or(host);
            let connector = TlsConnector::from(client_config(&config.tls)?);
            Some((connector, server_name(sni)?))
        } else {
            if config.tls != TlsConfig::default() {
                return Err(ConfigError::Invalid {
                    field: "tls",
                    reason: format!("TLS settings need an https:// URL, not {:?}", config.url),
                });
            }
            None
        };

        Ok(HttpCheck {
            target,
            source: config.source,
            method,
            path,
            headers,
            expect_status: config.expect_status.clone(),
            expect_body: config.expect_body.as_ref().map(|b| b.as_bytes().to_vec()),
            tls,
            url: config.url.clone(),
        })
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    async fn exchange<IO>(&self, io: IO) -> Outcome
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let request = self.request();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(classify)?;
        let exchange = async move {
            let response = sender.send_request(request).await.map_err(classify)?;
            let status = response.status().as_u16();
            if !self.expect_status.matches(status) {
                return Err(Failure::Status(status));
            }
            match &self.expect_body {
                None => Ok(()),
                Some(needle) => search_body(response.into_body(), needle).await,
            }
        };
        tokio::pin!(exchange);
        // The connection is driven here rather than spawned, so that dropping the check on
        // timeout closes everything. It may finish first (the server closed) with the whole
        // response already buffered, so the exchange is still awaited after it.
        let conn_result = tokio::select! {
            biased;
            outcome = &mut exchange => return outcome,
            result = conn => result,
        };
        match exchange.await {
            Err(Failure::Http(m)) => Err(conn_result.err().map_or(Failure::Http(m), classify)),
            other => other,
        }
    }
}

fn header_value(field: &'static str, value: &str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(value).map_err(|_| ConfigError::Invalid {
        field,
        reason: format!("{value:?} is not a valid header value"),
    })
}

async fn search_body(mut body: hyper::body::Incoming, needle: &[u8]) -> Outcome {
    let mut seen: Vec<u8> = Vec::new();
    while seen.len() < BODY_LIMIT {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(classify)?;
        if let Some(data) = frame.data_ref() {
            // Only the new bytes plus an overlap of len(needle)-1 can hold a new match.
            let start = seen.len().saturating_sub(needle.len().saturating_sub(1));
            seen.extend_from_slice(data);
            if contains(&seen[start..], needle) {
                return Ok(());
            }
        }
    }
    Err(Failure::BodyMismatch)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Names the root cause of a hyper error: a TLS alert, a refused or reset socket, or HTTP.
fn classify(err: hyper::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Failure::Tls(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Failure::Tls(tls.to_string());
            }
            return match Failure::from_io(io) {
                Failure::Io(m) => Failure::Http(format!("{err}: {m}")),
                typed => typed,
            };
        }
        source = e.source();
    }
    Failure::Http(err.to_string())
}

#[async_trait]
impl Check for HttpCheck {
    async fn check(&self) -> Outcome {
        let stream = connect(&self.target, self.source).await?;
        // Once the answer is in, the connection is dropped with a reset, as haproxy does: no
        // FIN exchange and no TIME_WAIT on our side, one probe per interval and target.
        socket2::SockRef::from(&stream)
            .set_linger(Some(std::time::Duration::ZERO))
            .map_err(|e| Failure::from_io(&e))?;
        match &self.tls {
            // One request in one write: Nagle has nothing to hold back.
            None => self.exchange(NoShutdown(stream)).await,
            Some((connector, name)) => {
                // The request follows the handshake's last flight before it is acknowledged:
                // without this, Nagle would wait for the server's delayed ACK.
                stream.set_nodelay(true).map_err(|e| Failure::from_io(&e))?;
                let tls = connector.connect(name.clone(), stream).await.map_err(|e| {
                    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(tls) => Failure::Tls(tls.to_string()),
                        None => Failure::Tls(e.to_string()),
                    }
                })?;
                self.exchange(NoShutdown(tls)).await
            }
        }
    }

    fn describe(&self) -> String {
        format!("http {} {}", self.method, self.url)
    }
}

/// Passes reads and writes through but makes `shutdown` a no-op: hyper shuts the write side
/// down when the server asks to close, which would cost a syscall and a FIN exchange on a
/// connection that is about to be reset anyway.
struct NoShutdown<IO>(IO);

impl<IO: AsyncRead + Unpin> AsyncRead for NoShutdown<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for NoShutdown<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search_spans_frames() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(!contains(b"status: failed", b"ok"));
        assert!(contains(b"abc", b""));
    }

    #[test]
    fn rejects_bad_urls() {
        for url in ["not a url", "ftp://host/x", "/readyz", "http:///x"] {
            let err = HttpCheck::new(&HttpConfig::new(url)).err();
            assert!(
                matches!(err, Some(ConfigError::InvalidUrl { .. })),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn tls_settings_need_https() {
        let mut config = HttpConfig::new("http://127.0.0.1:80/");
        config.tls.insecure_skip_verify = true;
        assert!(matches!(
            HttpCheck::new(&config),
            Err(ConfigError::Invalid { field: "tls", .. })
        ));
    }
}
