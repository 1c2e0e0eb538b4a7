//! The admin endpoint (off unless `[admin]` is configured; loopback by default): `/metrics`
//! in the Prometheus text format and `/status` as JSON, served with hyper; and the client side
//! of `ha-lb status`.

pub mod metrics;
pub mod table;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::runtime::status::Shared;
use crate::runtime::RuntimeError;

fn answer(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Answers one request.
pub fn handle(shared: &Shared, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/metrics" => match metrics::render(&shared.snapshot()) {
            Ok(text) => answer(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(_) => answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "encoding failed\n".into(),
            ),
        },
        "/status" => match serde_json::to_string_pretty(&shared.snapshot()) {
            Ok(text) => answer(StatusCode::OK, "application/json", text),
            Err(e) => answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("{e}\n"),
            ),
        },
        _ => answer(
            StatusCode::NOT_FOUND,
            "text/plain",
            "ha-lb admin: /metrics, /status\n".into(),
        ),
    }
}

/// Binds `listen` and serves the endpoint in a background task (aborting the handle stops it).
///
/// # Errors
///
/// [`RuntimeError::Io`] when the address cannot be bound.
pub async fn serve(
    listen: SocketAddr,
    shared: Arc<Shared>,
) -> Result<tokio::task::JoinHandle<()>, RuntimeError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(RuntimeError::io("bind the admin endpoint"))?;
    tracing::info!(%listen, "admin endpoint: /metrics, /status");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let r = handle(&shared, req.uri().path());
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}
