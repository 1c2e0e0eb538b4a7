//! Listening sockets: IPv6, IP_FREEBIND, SO_REUSEPORT, and configuration errors.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use common::*;
use lb_core::{Balancer, BalancerConfig, Error, Listener, ListenerConfig, Pool, PoolConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_listener_proxies_to_ipv4_backend() {
    let b = backend(9, true).await;
    let lb = Balancer::start(BalancerConfig {
        pools: vec![pool_of(&[&b])],
        listeners: vec![ListenerConfig::new("[::1]:0".parse().unwrap(), "test")],
    })
    .unwrap();
    let (mut s, id) = open(lb.listeners()[0].local_addr()).await;
    assert_eq!(id, 9);
    echo(&mut s, b"over ipv6").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freebind_listens_on_an_address_this_host_does_not_have() {
    let pool = Pool::new(PoolConfig::new("p", vec![])).unwrap();
    // TEST-NET-2: not on any interface here. Nothing is sent; we only bind.
    let addr = "198.51.100.7:0".parse().unwrap();
    let plain = Listener::bind(&ListenerConfig::new(addr, "p"), pool.clone());
    assert!(matches!(plain, Err(Error::Bind { .. })), "{plain:?}");
    let mut cfg = ListenerConfig::new(addr, "p");
    cfg.freebind = true;
    let l = Listener::bind(&cfg, pool.clone()).unwrap();
    assert_eq!(l.local_addr().ip(), addr.ip());
    let mut cfg6 = ListenerConfig::new("[2001:db8::7]:0".parse().unwrap(), "p");
    cfg6.freebind = true;
    Listener::bind(&cfg6, pool).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuseport_lets_two_listeners_share_a_port() {
    let b = backend(4, true).await;
    let pool = Pool::new(pool_of(&[&b])).unwrap();
    let mut cfg = ListenerConfig::new("127.0.0.1:0".parse().unwrap(), "test");
    cfg.reuseport = true;
    let first = Listener::bind(&cfg, pool.clone()).unwrap();
    cfg.addr = first.local_addr();
    let second = Listener::bind(&cfg, pool.clone()).unwrap();
    assert_eq!(first.local_addr(), second.local_addr());
    // Without SO_REUSEPORT the port is taken.
    let mut plain = cfg.clone();
    plain.reuseport = false;
    assert!(Listener::bind(&plain, pool).is_err());
    let (h1, h2) = (first.spawn(), second.spawn());
    for _ in 0..10 {
        let (mut s, id) = open(h1.local_addr()).await;
        assert_eq!(id, 4);
        echo(&mut s, b"x").await.unwrap();
    }
    assert_eq!(h1.stats().accepted + h2.stats().accepted, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_rejected() {
    let unknown = Balancer::start(BalancerConfig {
        pools: vec![PoolConfig::new("a", vec![])],
        listeners: vec![ListenerConfig::new("127.0.0.1:0".parse().unwrap(), "b")],
    });
    assert!(matches!(unknown, Err(Error::UnknownPool { .. })));
    let dup = Balancer::start(BalancerConfig {
        pools: vec![PoolConfig::new("a", vec![]), PoolConfig::new("a", vec![])],
        listeners: vec![],
    });
    assert!(matches!(dup, Err(Error::DuplicatePool(_))));
    let mut maglev = PoolConfig::new("m", vec![]);
    maglev.algorithm = lb_core::Algorithm::Maglev { table_size: 1000 };
    assert!(matches!(Pool::new(maglev), Err(Error::Invalid(_))));
}

#[test]
fn binding_outside_a_runtime_is_an_error_not_a_panic() {
    let pool = Pool::new(PoolConfig::new("p", vec![])).unwrap();
    let r = Listener::bind(
        &ListenerConfig::new("127.0.0.1:0".parse().unwrap(), "p"),
        pool,
    );
    assert!(matches!(r, Err(Error::NoRuntime)), "{r:?}");
}
