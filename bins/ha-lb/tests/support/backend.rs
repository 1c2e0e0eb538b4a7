//! Test backends: TCP servers that answer each connection with their name, in a network
//! namespace (the two-node topology's b1..b3 on port 8080) or on loopback (balancer-only
//! tests). One accept loop for all of them; what a connection gets is an [`Answer`]. Each
//! stops (its listener closed) on [`Backend::stop`] or drop.
//!
//! Included by `tests/e2e/main.rs` with `#[path]`, as `netns.rs` is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test module uses a part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::netns::Netns;

/// What a backend sends on each connection it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `NAME\n`, then it closes the connection.
    Name,
    /// `NAME via PEER-IP\n` (which balancer's address the connection came from), then closes.
    NameAndPeer,
    /// `NAME\n`, then keeps the connection until the client closes it (connection draining).
    NameAndHold,
    /// For programs that check over HTTP: a connection that sends bytes within 30 ms (a health
    /// check) gets `200 OK` with the name as body; one that sends nothing (a probe) gets
    /// `NAME\n`.
    HttpAware,
    /// A line echo: each line comes back as `NAME LINE`, until the client closes or the
    /// backend stops (long-lived flows through NAT).
    EchoLines,
    /// `NAME\n` first, then every byte echoed, until the client closes or the backend stops
    /// (a stream that must survive a failover).
    NameThenEcho,
}

/// A running backend; stops on drop.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// A backend on `0.0.0.0:8080` in `ns` answering `NAME\n` (the topology's b1..b3).
    pub fn start(ns: &Netns, name: &str) -> Self {
        Self::serve(Some(ns), "0.0.0.0:8080", name, Answer::Name)
    }

    /// A backend on a free loopback port of this process's namespace.
    pub fn local(name: &str, answer: Answer) -> Self {
        Self::serve(None, "127.0.0.1:0", name, answer)
    }

    /// A backend bound to `bind`, in `ns` (or this namespace), answering `answer`. Returns once
    /// it listens.
    pub fn serve(ns: Option<&Netns>, bind: &str, name: &str, answer: Answer) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (name, bind) = (name.to_owned(), bind.to_owned());
        let (tx, rx) = std::sync::mpsc::channel();
        let run = move || {
            let listener = TcpListener::bind(&bind).unwrap();
            listener.set_nonblocking(true).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            // The echo connections end when the backend stops: waited for here.
            let mut echoes = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, peer)) => echoes.extend(reply(s, peer, &name, answer, &flag)),
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for e in echoes {
                let _ = e.join();
            }
        };
        let thread = match ns {
            Some(ns) => ns.spawn(run),
            None => thread::spawn(run),
        };
        let addr = rx.recv().unwrap();
        Backend {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener (new connections are refused) and waits for the accept loop.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Answers one connection; the echo answers return their thread, which ends with `stop`.
fn reply(
    mut s: TcpStream,
    peer: SocketAddr,
    name: &str,
    answer: Answer,
    stop: &Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    let _ = s.set_nonblocking(false);
    match answer {
        Answer::Name => {
            let _ = s.write_all(format!("{name}\n").as_bytes());
        }
        Answer::NameAndPeer => {
            let _ = s.write_all(format!("{name} via {}\n", peer.ip()).as_bytes());
        }
        Answer::NameAndHold => {
            let name = name.to_owned();
            thread::spawn(move || {
                let _ = s.write_all(format!("{name}\n").as_bytes());
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
        Answer::HttpAware => {
            let name = name.to_owned();
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(30)));
                let mut buf = [0u8; 1024];
                let text = match s.read(&mut buf) {
                    Ok(n) if n > 0 => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n\
                         {name}\n",
                        name.len() + 1
                    ),
                    _ => format!("{name}\n"),
                };
                let _ = s.write_all(text.as_bytes());
            });
        }
        Answer::EchoLines => {
            let (name, stop) = (name.to_owned(), stop.clone());
            return Some(thread::spawn(move || echo_lines(s, &name, &stop)));
        }
        Answer::NameThenEcho => {
            let (name, stop) = (name.to_owned(), stop.clone());
            return Some(thread::spawn(move || name_then_echo(s, &name, &stop)));
        }
    }
    None
}

fn echo_lines(s: TcpStream, name: &str, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                if w.write_all(format!("{name} {line}").as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
            Err(_) => {}
        }
    }
}

fn name_then_echo(mut s: TcpStream, name: &str, stop: &AtomicBool) {
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    if s.write_all(format!("{name}\n").as_bytes()).is_err() {
        return;
    }
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
