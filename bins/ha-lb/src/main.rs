//! The `ha-lb` command line.

use clap::Parser;

/// VRRP virtual IPs, health checks and L4 load balancing in one process.
#[derive(Debug, Parser)]
#[command(name = "ha-lb", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
