//! Link state over netlink, in namespaces: the watcher notices an interface set down, the
//! loss of carrier when the peer's end goes down, and the return.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::netns;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use ha_lb::net::{link_state, LinkEvent, LinkState, LinkWatcher};
use netns::{veth, Netns};

/// Collects link events of `ifindex` from a watcher running in `ns`, until `done` says so.
fn watch(ns: &Netns, ifindex: u32) -> (mpsc::Receiver<LinkState>, mpsc::Sender<()>) {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel();
    ns.spawn(move || {
        let mut w = LinkWatcher::new().unwrap();
        w.set_read_timeout(Duration::from_millis(100)).unwrap();
        ready_tx.send(()).unwrap();
        while stop_rx.try_recv().is_err() {
            let Ok(events) = w.recv() else { continue };
            for e in events {
                if let LinkEvent::Changed(s) = e {
                    if s.ifindex == ifindex && tx.send(s).is_err() {
                        return;
                    }
                }
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (rx, stop_tx)
}

/// Waits up to 5 s for an event that satisfies `pred`.
fn expect(rx: &mpsc::Receiver<LinkState>, what: &str, pred: impl Fn(&LinkState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(s) if pred(&s) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no link event: {what}");
}

#[test]
fn link_down_and_carrier_loss_are_noticed() {
    let _serial = crate::netns::serial();
    if !Netns::available("link_down_and_carrier_loss_are_noticed") {
        return;
    }
    let a = Netns::new("lnk-a").unwrap();
    let b = Netns::new("lnk-b").unwrap();
    veth(&a, "eth0", &b, "eth0", 7);
    let ifindex = a.ifindex("eth0");
    assert!(wait_until_usable(&a, ifindex), "eth0 comes up");
    let (rx, stop) = watch(&a, ifindex);

    // Administratively down on our side.
    a.ip(&["link", "set", "eth0", "down"]);
    expect(&rx, "eth0 down", |s| !s.admin_up && !s.is_usable());
    let now = a.run(move || link_state(ifindex).unwrap());
    assert!(!now.admin_up);
    assert_eq!(now.name.as_deref(), Some("eth0"));
    a.ip(&["link", "set", "eth0", "up"]);
    expect(&rx, "eth0 up again", LinkState::is_usable);

    // The peer's end goes down: we stay up but lose the carrier.
    b.ip(&["link", "set", "eth0", "down"]);
    expect(&rx, "carrier lost", |s| s.admin_up && !s.running);
    assert!(!a.run(move || link_state(ifindex).unwrap()).is_usable());
    b.ip(&["link", "set", "eth0", "up"]);
    expect(&rx, "carrier back", LinkState::is_usable);
    let _ = stop.send(());
}

fn wait_until_usable(ns: &Netns, ifindex: u32) -> bool {
    netns::wait_until(Duration::from_secs(5), || {
        ns.run(move || link_state(ifindex).map(|s| s.is_usable()).unwrap_or(false))
    })
}
