//! An HTTP server (hyper) that holds a virtual IP only while it is ready: it starts not ready
//! (warming up), becomes ready after a second, and SIGUSR1 toggles readiness (as a drain
//! before maintenance would). Not ready is a tracked object of weight 0: the router goes to
//! Fault, a Master hands the VIP over at once (priority 0), and it takes part again when ready.
//!
//! ```sh
//! # As root, on each node of one LAN:
//! cargo run -p ha-lb --example ready_server -- eth0 52 150 192.0.2.101/24
//! ```

use std::convert::Infallible;
use std::time::Duration;

use ha_lb::failover::Failover;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [iface, vrid, priority, vip] = args.as_slice() else {
        return Err("usage: ready_server IFACE VRID PRIORITY VIP/PREFIX".into());
    };
    let vip: ha_lb::config::Vip = vip.parse()?;
    let (ready_tx, ready) = watch::channel(false);
    let failover = Failover::builder(iface, vrid.parse()?)
        .priority(priority.parse()?)
        .vip(vip.clone())
        .advert_interval(Duration::from_millis(100))
        .track("ready", ready.clone(), 0)
        .spawn()
        .await?;

    // Bind the VIP's port before holding the VIP (IP_FREEBIND), so it serves at once.
    let socket = socket2::Socket::new(
        socket2::Domain::for_address((vip.address, 80).into()),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_freebind_v4(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&std::net::SocketAddr::from((vip.address, 80)).into())?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(socket.into())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let ready = ready.clone();
            let service = service_fn(move |_req: Request<Incoming>| {
                let body = if *ready.borrow() {
                    "ready\n"
                } else {
                    "warming up\n"
                };
                async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    ready_tx.send_replace(true);
    let (mut usr1, mut term) = (
        signal(SignalKind::user_defined1())?,
        signal(SignalKind::terminate())?,
    );
    loop {
        tokio::select! {
            _ = usr1.recv() => { ready_tx.send_modify(|r| *r = !*r); }
            _ = term.recv() => break,
        }
    }
    failover.shutdown().await;
    Ok(())
}
