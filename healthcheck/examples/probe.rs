//! Watches one target and prints its transitions: a quick way to try a check by hand.
//!
//! ```sh
//! cargo run -p healthcheck --example probe -- 127.0.0.1:6443            # TCP
//! cargo run -p healthcheck --example probe -- https://127.0.0.1:6443/readyz --insecure
//! cargo run -p healthcheck --example probe -- exec:/usr/bin/pgrep,-x,nginx --for 30
//! ```
//!
//! Checks every second (rise 2, fall 2) and stops after `--for` seconds (10 by default).

use std::error::Error;
use std::time::Duration;

use healthcheck::{CheckConfig, ExecConfig, HttpConfig, Monitor, MonitorConfig, TcpConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut target = None;
    let mut insecure = false;
    let mut seconds = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--insecure" => insecure = true,
            "--for" => seconds = args.next().ok_or("--for needs seconds")?.parse()?,
            _ => target = Some(arg),
        }
    }
    let target = target.ok_or("usage: probe <host:port | http(s)://... | exec:prog,arg,...>")?;
    let check = if target.starts_with("http://") || target.starts_with("https://") {
        let mut http = HttpConfig::new(target.clone());
        http.tls.insecure_skip_verify = insecure;
        CheckConfig::Http(http)
    } else if let Some(command) = target.strip_prefix("exec:") {
        let mut parts = command.split(',');
        let program = parts.next().unwrap_or_default();
        CheckConfig::Exec(ExecConfig::new(program, parts))
    } else {
        CheckConfig::Tcp(TcpConfig {
            address: target.clone(),
            source: None,
        })
    }
    .build()?;
    println!("{check:?}, for {seconds} s");

    let config = MonitorConfig {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 2,
        ..MonitorConfig::default()
    };
    let monitor = Monitor::spawn(target, check, &config)?;
    let mut sub = monitor.subscribe();
    let stop = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            t = sub.transitions.recv() => match t {
                Some(t) => println!("#{} {t}", t.seq),
                None => break,
            },
        }
    }
    let s = monitor.snapshot();
    println!("{} after {} checks; last: {:?}", s.state, s.checks, s.last);
    Ok(())
}
