//! The `ha-lb` command line: each subcommand is one variant of `Command` and one function
//! below. The binary's `main` calls [`main`]; this is the edge where errors become messages
//! and exit codes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::kube::configs::{Cluster, NodeSpec, Topology};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

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
        /// Log lines as plain text (no colours unless stderr is a terminal: journald-friendly)
        /// or as one JSON object per line.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Change a running node through its admin endpoint (`[admin] control = true`): drain,
    /// disable, enable or re-weight a backend, put a VRRP instance in maintenance. Kept
    /// across SIGHUP until the file changes that backend (or removes that instance); shown
    /// by `ha-lb status`.
    Ctl {
        /// The admin endpoint; default: the `[admin]` of `--config`, else 127.0.0.1:9555.
        #[arg(short, long)]
        admin: Option<SocketAddr>,
        /// Read the admin address (and token file) from this configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// A file holding the bearer token; default: `[admin] token_file` of `--config`.
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        what: CtlCommand,
    },
    /// Internal: run a command with no capabilities (and as `--run-as`): how exec checks and
    /// notify commands run.
    #[command(hide = true)]
    Sandbox {
        /// `user[:group]` to run as.
        #[arg(long)]
        run_as: Option<String>,
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    /// Show failover on this machine (root): two nodes, three backends and a client in
    /// throwaway network namespaces; crash the master and print what the client saw.
    Demo,
    /// Kubernetes: per-node configurations for an apiserver VIP, and static pod manifests.
    Kube {
        #[command(subcommand)]
        command: KubeCommand,
    },
    /// Print a shell completion script (e.g. `ha-lb completions bash > /etc/bash_completion.d/ha-lb`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (ha-lb.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man {
        /// The directory (made if missing).
        dir: PathBuf,
    },
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

#[derive(Debug, Subcommand)]
enum KubeCommand {
    /// Write one ha-lb configuration per node (DIR/NODE.toml), each valid for check-config,
    /// and print kubeadm's controlPlaneEndpoint.
    Configs {
        /// The VIP with its prefix, e.g. 192.0.2.100/24.
        #[arg(long)]
        vip: crate::config::Vip,
        /// The interface carrying the VIP on every node.
        #[arg(long)]
        interface: String,
        /// A node as NAME=ADDRESS (its address on the interface); repeat for each, the first
        /// gets the highest priority.
        #[arg(long = "node", required = true)]
        nodes: Vec<NodeSpec>,
        /// An apiserver as ADDRESS:PORT; repeat for each. Default (stacked): each node's
        /// address on 6443.
        #[arg(long = "apiserver")]
        apiservers: Vec<SocketAddr>,
        /// stacked: on the control-plane nodes (listener on VIP:8443); external: dedicated
        /// balancer nodes (listener on VIP:6443).
        #[arg(long, value_enum, default_value = "stacked")]
        topology: Topology,
        /// The listener's port. Default: 8443 stacked, 6443 external.
        #[arg(long)]
        port: Option<u16>,
        /// VRRP version (2 or 3).
        #[arg(long, default_value_t = 3)]
        vrrp_version: u32,
        /// VRRP advert interval in milliseconds.
        #[arg(long, default_value_t = 100)]
        advert_interval_ms: u64,
        /// The VRID, unique on the segment.
        #[arg(long, default_value_t = 51)]
        vrid: u32,
        /// The cluster CA, for the apiservers' /readyz checks.
        #[arg(long, default_value = crate::kube::configs::DEFAULT_CA_FILE)]
        ca_file: PathBuf,
        /// The admin endpoint (the static pod's probes).
        #[arg(long, default_value_t = crate::config::DEFAULT_ADMIN_LISTEN)]
        admin: SocketAddr,
        /// Multicast adverts (default: unicast between the nodes).
        #[arg(long)]
        multicast: bool,
        /// Where to write the files.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Print a static Pod manifest that runs this node's configuration (for
    /// /etc/kubernetes/manifests/ha-lb.yaml).
    StaticPod {
        /// The node's configuration, by its absolute path on the node (mounted from there).
        #[arg(long)]
        config: PathBuf,
        /// The container image.
        #[arg(long)]
        image: Option<String>,
    },
}

/// The log line format of `ha-lb run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Plain text.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// A backend of a pool: `ha-lb ctl backend POOL ADDRESS drain|disable|enable|weight N`.
    Backend {
        /// The pool's name.
        pool: String,
        /// The backend's address (IP:port) as in the file.
        address: SocketAddr,
        #[command(subcommand)]
        action: BackendCommand,
    },
    /// A VRRP instance: `ha-lb ctl instance NAME maintenance on|off`.
    Instance {
        /// The instance's name.
        name: String,
        #[command(subcommand)]
        action: InstanceCommand,
    },
    /// An anycast group: `ha-lb ctl anycast NAME maintenance on|off`.
    Anycast {
        /// The group's name.
        name: String,
        #[command(subcommand)]
        action: AnycastCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AnycastCommand {
    /// On: the group's routes are withdrawn now (the VIPs stay local, so what the router
    /// still sends is served) and stay withdrawn; off: announced again while healthy.
    Maintenance {
        /// on or off.
        #[arg(value_enum)]
        state: OnOff,
    },
}

#[derive(Debug, Subcommand)]
enum BackendCommand {
    /// No new connections; open ones go on.
    Drain,
    /// No new connections; open ones are closed after a grace.
    Disable {
        /// How long open connections may go on; default: the node's --drain-timeout-ms.
        #[arg(long)]
        grace_ms: Option<u64>,
    },
    /// Undo drain and disable: the backend follows its check again.
    Enable,
    /// Set the weight (0..=1000); the file's weight ends the change.
    Weight {
        /// The new weight.
        weight: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

#[derive(Debug, Subcommand)]
enum InstanceCommand {
    /// On: a Master hands its VIPs over now (priority 0, as a graceful stop) and the
    /// instance stays Backup; off: it takes part in elections again.
    Maintenance {
        /// on or off.
        #[arg(value_enum)]
        state: OnOff,
    },
}

/// Parses the command line and runs the subcommand: what `ha-lb` does.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::ImportKeepalived { file, output } => import_keepalived(&file, output.as_deref()),
        Command::Run {
            config,
            drain_timeout_ms,
            no_supervisor,
            worker,
            log_format,
        } => run(config, drain_timeout_ms, no_supervisor, worker, log_format),
        Command::Ctl {
            admin,
            config,
            token_file,
            what,
        } => ctl(admin, config.as_deref(), token_file.as_deref(), &what),
        Command::Status {
            admin,
            config,
            json,
        } => status(admin, config.as_deref(), json),
        Command::Kube { command } => kube(command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ha-lb", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir } => man(&dir),
        Command::Sandbox { run_as, argv } => {
            let e = crate::runtime::scripts::exec_sandboxed(run_as.as_deref(), &argv);
            eprintln!("ha-lb sandbox: {e}");
            ExitCode::from(127)
        }
        Command::Demo => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ha-lb demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn run(
    config: PathBuf,
    drain_timeout_ms: u64,
    no_supervisor: bool,
    worker: bool,
    log_format: LogFormat,
) -> ExitCode {
    init_logs(log_format);
    if worker || no_supervisor {
        if worker {
            crate::reporting::become_worker();
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
        let options = crate::runtime::Options {
            config_path: config,
            drain_timeout: Duration::from_millis(drain_timeout_ms),
            admin: crate::admin::start,
        };
        let shared = Arc::new(crate::runtime::shared::Shared::default());
        return match rt.block_on(crate::runtime::run(options, shared)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ha-lb run: {e}");
                // A worker that cannot start is not restarted by its supervisor.
                ExitCode::from(u8::try_from(crate::reporting::EXIT_FATAL).unwrap_or(1))
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
    let options = crate::supervisor::Options {
        config_path: config.clone(),
        worker: vec![
            program,
            "run".into(),
            "--config".into(),
            config.to_string_lossy().into_owned(),
            "--drain-timeout-ms".into(),
            drain_timeout_ms.to_string(),
            "--log-format".into(),
            match log_format {
                LogFormat::Text => "text".into(),
                LogFormat::Json => "json".into(),
            },
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
    match rt.block_on(crate::supervisor::supervise(options)) {
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
        (None, Some(path)) => match crate::config::load(path) {
            Ok(c) => c
                .admin
                .map_or(crate::config::DEFAULT_ADMIN_LISTEN, |a| a.listen),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => crate::config::DEFAULT_ADMIN_LISTEN,
    };
    match crate::status::fetch(addr) {
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
            print!("{}", crate::status::render(&s));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ha-lb status: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ctl(
    admin: Option<SocketAddr>,
    config: Option<&Path>,
    token_file: Option<&Path>,
    what: &CtlCommand,
) -> ExitCode {
    let loaded = match config.map(crate::config::load).transpose() {
        Ok(c) => c.and_then(|c| c.admin),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = admin
        .or(loaded.as_ref().map(|a| a.listen))
        .unwrap_or(crate::config::DEFAULT_ADMIN_LISTEN);
    let token_file = token_file
        .map(Path::to_path_buf)
        .or_else(|| loaded.and_then(|a| a.token_file));
    let token = match token_file
        .as_deref()
        .map(crate::admin::control::read_token)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ha-lb ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    use crate::admin::ctl::{
        anycast_maintenance_path, backend_path, maintenance_path, post, CtlAction,
    };
    let path = match what {
        CtlCommand::Backend {
            pool,
            address,
            action,
        } => {
            let action = match action {
                BackendCommand::Drain => CtlAction::Drain,
                BackendCommand::Disable { grace_ms } => CtlAction::Disable(*grace_ms),
                BackendCommand::Enable => CtlAction::Enable,
                BackendCommand::Weight { weight } => CtlAction::Weight(*weight),
            };
            backend_path(pool, *address, &action)
        }
        CtlCommand::Instance {
            name,
            action: InstanceCommand::Maintenance { state },
        } => maintenance_path(name, *state == OnOff::On),
        CtlCommand::Anycast {
            name,
            action: AnycastCommand::Maintenance { state },
        } => anycast_maintenance_path(name, *state == OnOff::On),
    };
    match post(addr, &path, token.as_deref()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ha-lb ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &Path) -> ExitCode {
    match crate::config::load_with_warnings(file) {
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
    let import = match crate::keepalived::import_file(file) {
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

fn kube(command: KubeCommand) -> ExitCode {
    match command {
        KubeCommand::Configs {
            vip,
            interface,
            nodes,
            apiservers,
            topology,
            port,
            vrrp_version,
            advert_interval_ms,
            vrid,
            ca_file,
            admin,
            multicast,
            out_dir,
        } => {
            let cluster = Cluster {
                vip,
                interface,
                nodes,
                apiservers,
                topology,
                port,
                vrrp_version,
                advert_interval_ms,
                vrid,
                ca_file,
                admin,
                multicast,
            };
            let written = cluster
                .generate()
                .and_then(|c| crate::kube::configs::write_all(&out_dir, &c));
            match written {
                Ok(paths) => {
                    for p in &paths {
                        eprintln!("{}: configuration is valid", p.display());
                    }
                    println!("controlPlaneEndpoint: {}", cluster.control_plane_endpoint());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ha-lb kube configs: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        KubeCommand::StaticPod { config, image } => {
            let image = image.unwrap_or_else(crate::kube::static_pod::default_image);
            let manifest = crate::config::load(&config)
                .map_err(crate::kube::configs::KubeError::from)
                .and_then(|c| crate::kube::static_pod::manifest(&c, &config, &image));
            match manifest {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ha-lb kube static-pod: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Renders one man page; subcommands get `ha-lb-NAME`.
fn render_man(cmd: &clap::Command, dir: &Path, name: &str) -> std::io::Result<()> {
    let cmd = cmd.clone().name(name.to_owned());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_man(sub, dir, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}

fn man(dir: &Path) -> ExitCode {
    let written =
        std::fs::create_dir_all(dir).and_then(|()| render_man(&Cli::command(), dir, "ha-lb"));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ha-lb man {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
