//! The admin endpoint (off unless `[admin]` is configured; loopback by default): `/metrics`
//! in the Prometheus text format and `/status` as JSON, served with hyper; the write requests
//! of [`control`] when `control = true`; and the client side of `ha-lb status` and `ha-lb ctl`.

pub mod control;
pub mod ctl;
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

use crate::config::Admin;
use crate::runtime::control::{ask, ControlSender};
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

/// Answers a write request: refused unless control is on and the token (if any) matches.
pub async fn handle_write(
    admin: &Admin,
    control: &ControlSender,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let text = |status, body: String| answer(status, "text/plain", body + "\n");
    if !admin.control {
        return text(
            StatusCode::FORBIDDEN,
            "ha-lb admin: control is off (set control = true in [admin])".into(),
        );
    }
    if let Some(file) = &admin.token_file {
        // Read on each request, so that a new token takes effect without a reload.
        let token = match control::read_token(file) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "admin write refused: no token");
                return text(StatusCode::INTERNAL_SERVER_ERROR, e);
            }
        };
        let header = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !control::authorized(header, &token) {
            tracing::warn!(path = %req.uri().path(), "admin write refused: bad or missing bearer token");
            return text(
                StatusCode::UNAUTHORIZED,
                "ha-lb admin: a valid `Authorization: Bearer TOKEN` is required".into(),
            );
        }
    }
    let request = match control::parse(req.uri().path(), req.uri().query()) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::NOT_FOUND, e),
    };
    match ask(control, request).await {
        Ok(done) => text(StatusCode::OK, done),
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    }
}

/// Binds the `[admin]` address and serves the endpoint in a background task (aborting the
/// handle stops it); write requests go to `control`.
///
/// # Errors
///
/// [`RuntimeError::Io`] when the address cannot be bound, [`RuntimeError::Admin`] when the
/// token file cannot be read.
pub async fn serve(
    admin: &Admin,
    shared: Arc<Shared>,
    control: ControlSender,
) -> Result<tokio::task::JoinHandle<()>, RuntimeError> {
    if let Some(file) = &admin.token_file {
        control::read_token(file).map_err(RuntimeError::Admin)?;
    }
    let listen: SocketAddr = admin.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(RuntimeError::io("bind the admin endpoint"))?;
    tracing::info!(%listen, control = admin.control, token = admin.token_file.is_some(), "admin endpoint: /metrics, /status");
    let admin = Arc::new(admin.clone());
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            let admin = admin.clone();
            let control = control.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let shared = shared.clone();
                    let admin = admin.clone();
                    let control = control.clone();
                    async move {
                        let r = if req.method() == hyper::Method::POST {
                            handle_write(&admin, &control, &req).await
                        } else {
                            handle(&shared, req.uri().path())
                        };
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}
