//! The `ha-lb` command line.
//!
//! Each subcommand is one variant of [`Command`] and one function below.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod demo;

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
    /// Run everything the configuration names: VRRP instances, health checks, the balancer
    /// and the admin endpoint. SIGTERM/SIGINT stop gracefully, SIGHUP reloads.
    Run {
        /// The ha-lb TOML configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// How long open connections may go on after a stop signal, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        drain_timeout_ms: u64,
        /// Run in this process, without the supervisor that restarts a crashed worker.
        #[arg(long)]
        no_supervisor: bool,
        /// Internal: this process is the worker of a supervisor.
        #[arg(long, hide = true)]
        worker: bool,
    },
    /// Show failover on this machine (root): two nodes, three backends and a client in
    /// throwaway network namespaces; crash the master and print what the client saw.
    Demo,
    /// Print a running node's status (from its admin endpoint) as tables.
    Status {
        /// The admin endpoint; default: the `[admin]` of `--config`, else 127.0.0.1:9555.
        #[arg(short, long)]
        admin: Option<SocketAddr>,
        /// Read the admin address from this configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print the raw JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::ImportKeepalived { file, output } => import_keepalived(&file, output.as_deref()),
        Command::Run {
            config,
            drain_timeout_ms,
            no_supervisor,
            worker,
        } => run(config, drain_timeout_ms, no_supervisor, worker),
        Command::Status {
            admin,
            config,
            json,
        } => status(admin, config.as_deref(), json),
        Command::Demo => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ha-lb demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(config: PathBuf, drain_timeout_ms: u64, no_supervisor: bool, worker: bool) -> ExitCode {
    init_logs();
    if worker || no_supervisor {
        if worker {
            ha_lb::supervisor::become_worker();
        }
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let options = ha_lb::runtime::Options {
            config_path: config,
            drain_timeout: Duration::from_millis(drain_timeout_ms),
        };
        let shared = Arc::new(ha_lb::runtime::status::Shared::default());
        return match rt.block_on(ha_lb::runtime::run(options, shared)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ha-lb run: {e}");
                // A worker that cannot start is not restarted by its supervisor.
                ExitCode::from(u8::try_from(ha_lb::supervisor::EXIT_FATAL).unwrap_or(1))
            }
        };
    }
    let program = match std::env::current_exe() {
        Ok(p) => p.to_string_lossy().into_owned(),
        Err(e) => {
            eprintln!("ha-lb run: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = ha_lb::supervisor::Options {
        config_path: config.clone(),
        worker: vec![
            program,
            "run".into(),
            "--config".into(),
            config.to_string_lossy().into_owned(),
            "--drain-timeout-ms".into(),
            drain_timeout_ms.to_string(),
            "--worker".into(),
        ],
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(ha_lb::supervisor::supervise(options)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("ha-lb run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn status(admin: Option<SocketAddr>, config: Option<&Path>, json: bool) -> ExitCode {
    let addr = match (admin, config) {
        (Some(a), _) => a,
        (None, Some(path)) => match ha_lb::config::load(path) {
            Ok(c) => c
                .admin
                .map_or(ha_lb::config::DEFAULT_ADMIN_LISTEN, |a| a.listen),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => ha_lb::config::DEFAULT_ADMIN_LISTEN,
    };
    match ha_lb::admin::table::fetch(addr) {
        Ok(s) if json => match serde_json::to_string_pretty(&s) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Ok(s) => {
            print!("{}", ha_lb::admin::table::render(&s));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ha-lb status: {e}");
            ExitCode::FAILURE
        }
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
