//! TCP checks and a monitor against a real listener on loopback: up, closed, back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use healthcheck::{
    run_with_timeout, Check, ConfigError, Failure, Monitor, MonitorConfig, State, TcpCheck,
    TcpConfig,
};
use tokio::net::{TcpListener, TcpSocket};

const TIMEOUT: Duration = Duration::from_secs(10);

fn config(addr: SocketAddr) -> TcpConfig {
    TcpConfig {
        address: addr.to_string(),
        source: None,
    }
}

fn listen(addr: SocketAddr) -> TcpListener {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6().unwrap()
    } else {
        TcpSocket::new_v4().unwrap()
    };
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(64).unwrap()
}

#[tokio::test]
async fn listener_up_then_closed() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let check = TcpCheck::new(&config(addr)).unwrap();
    assert_eq!(check.describe(), format!("tcp {addr}"));
    assert_eq!(run_with_timeout(&check, TIMEOUT).await, Ok(()));
    drop(listener);
    assert_eq!(
        run_with_timeout(&check, TIMEOUT).await,
        Err(Failure::Refused)
    );
}

#[tokio::test]
async fn ipv6_listener_up_then_closed_and_source_address() {
    let listener = listen("[::1]:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let check = TcpCheck::new(&config(addr)).unwrap();
    assert_eq!(check.describe(), format!("tcp [::1]:{}", addr.port()));
    assert_eq!(run_with_timeout(&check, TIMEOUT).await, Ok(()));
    let from = |source: &str| {
        TcpCheck::new(&TcpConfig {
            address: addr.to_string(),
            source: Some(source.parse().unwrap()),
        })
        .unwrap()
    };
    assert_eq!(run_with_timeout(&from("::1"), TIMEOUT).await, Ok(()));
    // An IPv6 source this host does not have cannot be bound.
    let err = run_with_timeout(&from("2001:db8::1"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Io(_)), "{err:?}");
    drop(listener);
    assert_eq!(
        run_with_timeout(&check, TIMEOUT).await,
        Err(Failure::Refused)
    );
}

#[tokio::test]
async fn source_address_and_host_names() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    let from = |source: &str| {
        TcpCheck::new(&TcpConfig {
            address: format!("127.0.0.1:{port}"),
            source: Some(source.parse().unwrap()),
        })
        .unwrap()
    };
    assert_eq!(run_with_timeout(&from("127.0.0.2"), TIMEOUT).await, Ok(()));
    // A source address this host does not have cannot be bound: proof that it is used (no
    // packet leaves, the bind fails first).
    let err = run_with_timeout(&from("192.0.2.1"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Io(_)), "{err:?}");

    let by_name = TcpCheck::new(&TcpConfig {
        address: format!("localhost:{port}"),
        source: None,
    })
    .unwrap();
    drop(listener);
    // Resolved, then refused on every address of localhost.
    let err = run_with_timeout(&by_name, TIMEOUT).await.unwrap_err();
    assert_eq!(err, Failure::Refused);
}

#[test]
fn bad_addresses_are_rejected() {
    for address in ["", "127.0.0.1", "host:", ":80", "host:99999"] {
        let err = TcpCheck::new(&TcpConfig {
            address: address.into(),
            source: None,
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "address",
                    ..
                }
            ),
            "{address:?}: {err:?}"
        );
    }
}

async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<healthcheck::Transition>,
) -> healthcheck::Transition {
    tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .unwrap()
        .unwrap()
}

/// End to end in real time: the monitor follows a listener that closes and comes back.
#[tokio::test]
async fn monitor_follows_the_listener() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let check = TcpCheck::new(&config(addr)).unwrap();
    let monitor_config = MonitorConfig {
        interval: Duration::from_millis(50),
        timeout: TIMEOUT,
        rise: 2,
        fall: 2,
        ..MonitorConfig::default()
    };
    let monitor = Monitor::spawn("tcp-backend", check, &monitor_config).unwrap();
    let mut sub = monitor.subscribe();

    let t = next(&mut sub.transitions).await;
    assert_eq!((t.from, t.to), (State::Unknown, State::Up));
    drop(listener);
    let t = next(&mut sub.transitions).await;
    assert_eq!((t.from, t.to, t.reason.streak), (State::Up, State::Down, 2));
    assert_eq!(t.reason.outcome, Err(Failure::Refused));
    assert_eq!(monitor.state(), State::Down);
    let _back = listen(addr);
    let t = next(&mut sub.transitions).await;
    assert_eq!((t.from, t.to, t.reason.streak), (State::Down, State::Up, 2));
    assert_eq!(*sub.state.borrow(), State::Up);
    assert!(monitor.snapshot().checks >= 5);
}

/// A monitor on a current-thread runtime of its own thread, spawned from outside any runtime.
#[test]
fn spawn_on_a_dedicated_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = std::thread::spawn(move || {
        rt.block_on(async {
            let _ = stop_rx.await;
        })
    });

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let check = TcpCheck::new(&config(listener.local_addr().unwrap())).unwrap();
    let cfg = MonitorConfig {
        interval: Duration::from_millis(20),
        timeout: TIMEOUT,
        ..MonitorConfig::default()
    };
    let monitor = Monitor::spawn_on(&handle, "dedicated", check, &cfg).unwrap();
    let mut state = monitor.subscribe().state;
    handle
        .block_on(async {
            tokio::time::timeout(TIMEOUT, state.wait_for(|s| *s == State::Up)).await
        })
        .unwrap()
        .unwrap();
    drop(monitor);
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
}
