//! `ha-lb run` with listeners and pools only (nginx's role): no VRRP, no capabilities needed,
//! real sockets on loopback. Requests reach every backend, a backend whose check fails gets no
//! more traffic, SIGHUP adds a backend and the admin endpoint, SIGTERM exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::backend::{free_port, Answer, Backend};
use crate::netns::wait_until;

fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut t = String::new();
    s.read_to_string(&mut t).ok()?;
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn config(listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let mut t = format!(
        "[listeners.web]\nlisten = \"{listen}\"\npool = \"web\"\nnon_local_bind = false\n\n\
         [checks.tcp]\nkind = \"tcp\"\ninterval_ms = 50\nrise = 1\nfall = 1\n\n[pools.web]\n"
    );
    for b in backends {
        t += &format!("\n[[pools.web.backends]]\naddress = \"{b}\"\ncheck = \"tcp\"\n");
    }
    t
}

fn seen(listen: SocketAddr, n: usize) -> BTreeSet<String> {
    (0..n).filter_map(|_| get(listen)).collect()
}

#[test]
fn balancer_only_serves_follows_checks_reloads_and_stops() {
    let _serial = crate::netns::serial();
    let [backend_a, mut backend_b, backend_c] =
        ["a", "b", "c"].map(|n| Backend::local(n, Answer::Name));
    let [a, b, c] = [&backend_a, &backend_b, &backend_c].map(Backend::addr);
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = std::env::temp_dir().join(format!("halb-bal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lb.toml");
    std::fs::write(&file, config(listen, &[a, b])).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args([
            "run",
            "--no-supervisor",
            "--drain-timeout-ms",
            "500",
            "--config",
        ])
        .arg(&file)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(listen).is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen(listen, 10), ["a", "b"].map(String::from).into());

    // b's check fails: no more traffic to it.
    backend_b.stop();
    let only_a: BTreeSet<String> = ["a"].map(String::from).into();
    assert!(
        wait_until(Duration::from_secs(5), || seen(listen, 10) == only_a),
        "b still gets traffic: {:?}",
        seen(listen, 10)
    );

    // SIGHUP with c added, and an admin endpoint.
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        &file,
        format!(
            "[admin]\nlisten = \"{admin}\"\n\n{}",
            config(listen, &[a, b, c])
        ),
    )
    .unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen(listen, 4).contains("c") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen(listen, 10), ["a", "c"].map(String::from).into());
    let status = ha_lb::status::fetch(admin).unwrap();
    let backends: Vec<(String, String)> = status.pools[0]
        .backends
        .iter()
        .map(|b| (b.address.clone(), b.state.clone()))
        .collect();
    assert_eq!(
        backends,
        vec![
            (a.to_string(), "up".to_owned()),
            (b.to_string(), "down".to_owned()),
            (c.to_string(), "up".to_owned())
        ]
    );

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop");
        thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "exit {status}\n{log}");
    assert!(get(listen).is_none(), "still listening after exit");
    std::fs::remove_dir_all(&dir).unwrap();
}
