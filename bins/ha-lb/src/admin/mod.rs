//! The admin endpoint (off unless `[admin]` is configured; loopback by default): `/metrics`
//! in the Prometheus text format, `/status` as JSON, and the probes `/healthz` (the event loop
//! answers) and `/readyz` (everything configured runs), served with hyper; the write requests
//! of [`control`] when `control = true`; and the client side of `ha-lb status` and `ha-lb ctl`.

pub mod control;
pub mod ctl;
pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::Admin;
use crate::runtime::control::{ask, ControlSender};
use crate::runtime::shared::{Readiness, Shared};
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
        "/readyz" => readyz(shared),
        _ => answer(
            StatusCode::NOT_FOUND,
            "text/plain",
            "ha-lb admin: /metrics, /status, /healthz, /readyz\n".into(),
        ),
    }
}

/// How long `/healthz` waits for the event loop: under a probe's usual one-second timeout.
pub const HEALTHZ_TIMEOUT: Duration = Duration::from_millis(800);

/// `/healthz`: 200 when the worker's event loop answers a ping within [`HEALTHZ_TIMEOUT`],
/// 503 with the reason otherwise.
pub async fn healthz(shared: &Shared) -> Response<Full<Bytes>> {
    healthz_within(shared, HEALTHZ_TIMEOUT).await
}

/// `/healthz` with the wait given.
pub async fn healthz_within(shared: &Shared, timeout: Duration) -> Response<Full<Bytes>> {
    match shared.ping(timeout).await {
        Ok(()) => answer(StatusCode::OK, "text/plain", "ok\n".into()),
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("unhealthy: {e}\n"),
        ),
    }
}

/// `/readyz`: 200 when the configuration is loaded and every instance and listener it names
/// runs; 503 with one line per missing thing otherwise.
pub fn readyz(shared: &Shared) -> Response<Full<Bytes>> {
    let (status, body) = match shared.readiness() {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: starting (configuration not loaded or not applied yet)\n".to_owned(),
        ),
        Some(Readiness::Stopping) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: stopping\n".to_owned(),
        ),
        Some(Readiness::Missing(missing)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", missing.join("\n")),
        ),
        Some(Readiness::Ready {
            instances,
            listeners,
        }) => (
            StatusCode::OK,
            format!("ok: {instances} instance(s), {listeners} listener(s) running\n"),
        ),
    };
    answer(status, "text/plain", body)
}

/// Answers one request, `/healthz` included.
pub async fn respond(shared: &Shared, path: &str) -> Response<Full<Bytes>> {
    if path == "/healthz" {
        healthz(shared).await
    } else {
        handle(shared, path)
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

/// [`serve`] as the runtime takes it ([`crate::runtime::AdminServer`]).
pub fn start(
    admin: Admin,
    shared: Arc<Shared>,
    control: ControlSender,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<tokio::task::JoinHandle<()>, RuntimeError>> + Send>,
> {
    Box::pin(async move { serve(&admin, shared, control).await })
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
    tracing::info!(%listen, control = admin.control, token = admin.token_file.is_some(), "admin endpoint: /metrics, /status, /healthz, /readyz");
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
                            respond(&shared, req.uri().path()).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response<Full<Bytes>>) -> (u16, String) {
        let code = r.status().as_u16();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn healthz_is_the_event_loop_answering() {
        let shared = Arc::new(Shared::default());
        let (code, text) = body(healthz_within(&shared, Duration::from_millis(20)).await).await;
        assert_eq!(
            (code, text.as_str()),
            (503, "unhealthy: the event loop has not started\n")
        );

        // A loop that never takes its pings (hung): no answer in time.
        let rx = shared.heartbeat_channel();
        let (code, text) = body(healthz_within(&shared, Duration::from_millis(20)).await).await;
        assert_eq!(code, 503);
        assert!(text.contains("did not answer"), "{text}");
        // Pings pile up in a stuck loop's queue: the endpoint stops queueing more.
        for _ in 0..8 {
            let _ = healthz_within(&shared, Duration::from_millis(20)).await;
        }
        let (code, text) = body(healthz_within(&shared, Duration::from_millis(20)).await).await;
        assert_eq!(code, 503);
        assert!(text.contains("stuck"), "{text}");
        drop(rx);
        let (_, text) = body(healthz_within(&shared, Duration::from_millis(20)).await).await;
        assert!(text.contains("ended"), "{text}");

        // A loop that answers.
        let mut rx = shared.heartbeat_channel();
        tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send(());
            }
        });
        assert_eq!(
            body(healthz_within(&shared, Duration::from_millis(20)).await).await,
            (200, "ok\n".into())
        );
    }

    #[tokio::test]
    async fn readyz_says_what_is_missing() {
        let shared = Shared::default();
        let (code, text) = body(readyz(&shared)).await;
        assert_eq!(code, 503);
        assert!(text.contains("starting"), "{text}");
        shared.set_readiness(Readiness::Missing(vec![
            "instance VI_1: not running (waiting for interface eth9)".into(),
            "listener web (192.0.2.1:80): not bound".into(),
        ]));
        assert_eq!(
            body(readyz(&shared)).await,
            (
                503,
                "not ready:\ninstance VI_1: not running (waiting for interface eth9)\nlistener web (192.0.2.1:80): not bound\n".into()
            )
        );
        shared.set_readiness(Readiness::Ready {
            instances: 2,
            listeners: 1,
        });
        assert_eq!(
            body(readyz(&shared)).await,
            (200, "ok: 2 instance(s), 1 listener(s) running\n".into())
        );
        shared.set_readiness(Readiness::Stopping);
        assert_eq!(body(readyz(&shared)).await.0, 503);
        assert_eq!(body(handle(&shared, "/nope")).await.0, 404);
    }
}
