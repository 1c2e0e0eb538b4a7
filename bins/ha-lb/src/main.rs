//! The `ha-lb` command line.
//!
//! Each subcommand is one variant of [`Command`] and one function below; `run`, `status` and
//! `demo` slot in the same way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// VRRP virtual IPs, health checks and L4 load balancing in one process.
#[derive(Debug, Parser)]
#[command(name = "ha-lb", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file without touching the system; prints a summary.
    CheckConfig {
        /// The ha-lb TOML configuration file.
        file: PathBuf,
    },
    /// Translate a keepalived.conf into an equivalent ha-lb configuration (printed on stdout;
    /// every directive not translated is a warning on stderr).
    ImportKeepalived {
        /// The keepalived.conf to read (its `include`s are followed).
        file: PathBuf,
        /// Write the TOML here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::ImportKeepalived { file, output } => import_keepalived(&file, output.as_deref()),
    }
}

fn check_config(file: &Path) -> ExitCode {
    match ha_lb::config::load_with_warnings(file) {
        Ok((config, warnings)) => {
            for w in &warnings {
                eprintln!("{w}\n");
            }
            print!("{}", config.summary());
            println!("{}: configuration is valid", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn import_keepalived(file: &Path, output: Option<&Path>) -> ExitCode {
    let import = match ha_lb::keepalived::import_file(file) {
        Ok(import) => import,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &import.warnings {
        eprintln!("{w}");
    }
    let text = match import.to_toml() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match output {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("{}: cannot write: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "{}: translated with {} warning(s)",
        file.display(),
        import.warnings.len()
    );
    ExitCode::SUCCESS
}
