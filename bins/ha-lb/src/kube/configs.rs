//! `ha-lb kube configs`: one configuration per node of an apiserver VIP, from the few facts
//! that differ between clusters (the VIP, the interface, the nodes, the apiservers, the
//! topology). Every file is validated as `check-config` would before it is returned.
//!
//! - `stacked`: ha-lb runs on the control-plane nodes themselves, where the apiserver already
//!   binds `0.0.0.0:6443`; the listener takes another port (8443 by default) on the VIP and
//!   kubeadm's `controlPlaneEndpoint` is `VIP:8443`. The apiservers default to the nodes'
//!   addresses on 6443.
//! - `external`: dedicated balancer nodes; the listener is `VIP:6443`; the apiservers must be
//!   named.
//!
//! Each node gets a VRRP instance (unicast to the other nodes by default, the first node with
//! the highest priority), a listener on the VIP in front of every apiserver (leastconn, watches
//! kept for a day), an https `/readyz` check of each apiserver against the cluster CA, and the
//! admin endpoint for the static pod's probes. A node whose balancer reaches no ready apiserver
//! lowers its priority below every other node's, so the VIP moves to one that does.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::{self, Vip};

/// Where kubeadm puts the cluster CA.
pub const DEFAULT_CA_FILE: &str = "/etc/kubernetes/pki/ca.crt";
/// The apiserver's port.
pub const APISERVER_PORT: u16 = 6443;
/// The listener's port in the stacked topology (the apiserver holds 6443 on the node).
pub const STACKED_PORT: u16 = 8443;
/// The first node's priority; each next node gets [`PRIORITY_STEP`] less.
pub const FIRST_PRIORITY: u32 = 150;
/// The gap between two nodes' priorities.
pub const PRIORITY_STEP: u32 = 10;
/// How much a node loses when its balancer has no ready apiserver: below every other node.
pub const NO_APISERVER_WEIGHT: i32 = -100;
/// Nodes at most: more would put a healthy node's priority below a failed first node's.
pub const MAX_NODES: usize = 9;

/// Where the balancer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    /// On the control-plane nodes (the apiserver binds :6443 there): listener on another port.
    Stacked,
    /// On dedicated balancer nodes: listener on VIP:6443.
    External,
}

/// One node: its name and its address on the VRRP interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node's name (the file name, the router id).
    pub name: String,
    /// Its address on `interface`: VRRP's unicast source, and in the stacked topology its
    /// apiserver's address.
    pub address: IpAddr,
}

impl std::str::FromStr for NodeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, address) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected NAME=ADDRESS, e.g. cp1=192.0.2.11"))?;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!(
                "{name:?}: a node name is letters, digits, '-', '_' and '.'"
            ));
        }
        let address = address
            .parse()
            .map_err(|e| format!("{address:?}: not an IP address: {e}"))?;
        Ok(NodeSpec {
            name: name.to_owned(),
            address,
        })
    }
}

/// The description `ha-lb kube configs` works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The VIP with its prefix, e.g. `192.0.2.100/24`.
    pub vip: Vip,
    /// The interface that carries the VIP and VRRP on every node.
    pub interface: String,
    /// The nodes, highest priority first.
    pub nodes: Vec<NodeSpec>,
    /// The apiservers; empty in the stacked topology: each node's address on 6443.
    pub apiservers: Vec<SocketAddr>,
    /// Where the balancer runs.
    pub topology: Topology,
    /// The listener's port; default 8443 (stacked) or 6443 (external).
    pub port: Option<u16>,
    /// VRRP version, 2 or 3.
    pub vrrp_version: u32,
    /// Advert interval, ms.
    pub advert_interval_ms: u64,
    /// The VRID (1-255), unique on the segment.
    pub vrid: u32,
    /// The CA that signed the apiservers' certificates, for the `/readyz` checks.
    pub ca_file: PathBuf,
    /// The admin endpoint (probes); loopback by default.
    pub admin: SocketAddr,
    /// Multicast adverts instead of unicast between the nodes.
    pub multicast: bool,
}

/// A generated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's name.
    pub node: String,
    /// The file's text (TOML), valid.
    pub text: String,
}

/// Why configurations cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The description is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// A generated file did not validate (a bug, or a value check-config refuses).
    #[error("the configuration generated for {node} is not valid:\n{message}")]
    Generated {
        /// The node.
        node: String,
        /// check-config's diagnostics.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration given to `static-pod` is not valid.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
}

impl Cluster {
    /// The listener's port.
    pub fn listen_port(&self) -> u16 {
        self.port.unwrap_or(match self.topology {
            Topology::Stacked => STACKED_PORT,
            Topology::External => APISERVER_PORT,
        })
    }

    /// What kubeadm's `--control-plane-endpoint` is: the VIP and the listener's port.
    pub fn control_plane_endpoint(&self) -> SocketAddr {
        SocketAddr::new(self.vip.address, self.listen_port())
    }

    /// The apiservers behind the listener.
    pub fn apiserver_list(&self) -> Vec<SocketAddr> {
        if self.apiservers.is_empty() && self.topology == Topology::Stacked {
            self.nodes
                .iter()
                .map(|n| SocketAddr::new(n.address, APISERVER_PORT))
                .collect()
        } else {
            self.apiservers.clone()
        }
    }

    fn check(&self) -> Result<(), KubeError> {
        let bad = |m: String| Err(KubeError::Invalid(m));
        if self.nodes.is_empty() {
            return bad("at least one --node NAME=ADDRESS".into());
        }
        if self.nodes.len() > MAX_NODES {
            return bad(format!(
                "{} nodes: at most {MAX_NODES} (priorities {FIRST_PRIORITY} down by {PRIORITY_STEP})",
                self.nodes.len()
            ));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if self.nodes[..i].iter().any(|m| m.name == n.name) {
                return bad(format!("node {} named twice", n.name));
            }
            if self.nodes[..i].iter().any(|m| m.address == n.address) {
                return bad(format!("address {} given to two nodes", n.address));
            }
            if n.address.is_ipv4() != self.vip.address.is_ipv4() {
                return bad(format!(
                    "node {} ({}) and the VIP {} are not of one address family",
                    n.name, n.address, self.vip.address
                ));
            }
            if n.address == self.vip.address {
                return bad(format!("node {} has the VIP as its address", n.name));
            }
        }
        if self.topology == Topology::External && self.apiservers.is_empty() {
            return bad(
                "the external topology needs the apiservers: --apiserver ADDRESS:6443 for each"
                    .into(),
            );
        }
        if self.topology == Topology::Stacked && self.listen_port() == APISERVER_PORT {
            return bad(format!(
                "stacked: the apiserver binds 0.0.0.0:{APISERVER_PORT} on these nodes, so the listener needs another port (default {STACKED_PORT})"
            ));
        }
        Ok(())
    }

    /// One configuration per node, each validated.
    ///
    /// # Errors
    ///
    /// [`KubeError::Invalid`] for an inconsistent description, [`KubeError::Generated`] when
    /// a generated file does not pass check-config.
    pub fn generate(&self) -> Result<Vec<NodeConfig>, KubeError> {
        self.check()?;
        let mut out = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let text = self.node_text(i, node);
            let name = format!("{}.toml", node.name);
            config::parse(&text, Path::new(&name)).map_err(|e| KubeError::Generated {
                node: node.name.clone(),
                message: e.to_string(),
            })?;
            out.push(NodeConfig {
                node: node.name.clone(),
                text,
            });
        }
        Ok(out)
    }

    fn node_text(&self, index: usize, node: &NodeSpec) -> String {
        let q = |s: &str| toml_string(s);
        let priority = FIRST_PRIORITY - PRIORITY_STEP * u32::try_from(index).unwrap_or(0);
        let endpoint = self.control_plane_endpoint();
        let topology = match self.topology {
            Topology::Stacked => "stacked (on the control-plane nodes)",
            Topology::External => "external (dedicated balancer nodes)",
        };
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# ha-lb for the Kubernetes apiservers, node {} ({} of {}), {topology}.\n\
             # Generated by `ha-lb kube configs`; kubeadm's controlPlaneEndpoint is {endpoint}.\n\
             # Validate: ha-lb check-config THIS-FILE. Run: ha-lb run --config THIS-FILE, or\n\
             # as a static pod: ha-lb kube static-pod --config THIS-FILE.\n",
            node.name,
            index + 1,
            self.nodes.len()
        );
        let _ = writeln!(t, "[global]\nrouter_id = {}\n", q(&node.name));
        let _ = writeln!(
            t,
            "# The VIP: the highest priority wins; a node whose balancer reaches no ready\n\
             # apiserver drops {} below every other node and hands the VIP over.",
            -NO_APISERVER_WEIGHT
        );
        let _ = writeln!(t, "[instances.apiserver]");
        let _ = writeln!(t, "interface = {}", q(&self.interface));
        let _ = writeln!(t, "vrid = {}", self.vrid);
        let _ = writeln!(t, "priority = {priority}");
        let _ = writeln!(t, "version = {}", self.vrrp_version);
        let _ = writeln!(t, "advert_interval_ms = {}", self.advert_interval_ms);
        if !self.multicast {
            let peers: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.name != node.name)
                .map(|n| q(&n.address.to_string()))
                .collect();
            let _ = writeln!(t, "unicast_src = {}", q(&node.address.to_string()));
            let _ = writeln!(t, "unicast_peers = [{}]", peers.join(", "));
        }
        let _ = writeln!(t, "vips = [{}]", q(&self.vip.to_string()));
        let _ = writeln!(
            t,
            "track_pools = [{{ pool = \"apiservers\", weight = {NO_APISERVER_WEIGHT} }}]\n"
        );
        let _ = writeln!(
            t,
            "# Clients (kubelets, kubectl, controllers) use https://{endpoint}: TCP is\n\
             # forwarded (TLS stays end to end). Watches are long-lived: idle connections are\n\
             # kept for a day. The listener binds the VIP before holding it (non_local_bind)."
        );
        let _ = writeln!(t, "[listeners.apiserver]");
        let _ = writeln!(t, "listen = {}", q(&endpoint.to_string()));
        let _ = writeln!(t, "pool = \"apiservers\"");
        let _ = writeln!(t, "max_connections = 20000");
        let _ = writeln!(t, "idle_timeout_ms = 86400000\n");
        let _ = writeln!(t, "[pools.apiservers]");
        let _ = writeln!(t, "algorithm = \"leastconn\"");
        let _ = writeln!(t, "connect_timeout_ms = 2000");
        let _ = writeln!(t, "retries = 2");
        let _ = writeln!(t, "max_fails = 3");
        let _ = writeln!(t, "fail_timeout_ms = 10000");
        let _ = writeln!(t, "backends = [");
        for a in self.apiserver_list() {
            let _ = writeln!(
                t,
                "    {{ address = {}, check = \"apiserver-readyz\" }},",
                q(&a.to_string())
            );
        }
        let _ = writeln!(t, "]\n");
        let _ = writeln!(
            t,
            "# Each apiserver's /readyz, verified against the cluster CA (the serving\n\
             # certificate names \"kubernetes\"). This replaces kubeadm's check_apiserver.sh."
        );
        let _ = writeln!(t, "[checks.apiserver-readyz]");
        let _ = writeln!(t, "kind = \"https\"");
        let _ = writeln!(t, "path = \"/readyz\"");
        let _ = writeln!(t, "expect_status = [200]");
        let _ = writeln!(t, "interval_ms = 1000");
        let _ = writeln!(t, "timeout_ms = 800");
        let _ = writeln!(t, "rise = 2");
        let _ = writeln!(t, "fall = 2");
        let _ = writeln!(
            t,
            "tls = {{ server_name = \"kubernetes\", ca_file = {} }}\n",
            q(&self.ca_file.to_string_lossy())
        );
        let _ = writeln!(
            t,
            "# /healthz and /readyz for the static pod's probes; /metrics and /status."
        );
        let _ = writeln!(t, "[admin]\nlisten = {}", q(&self.admin.to_string()));
        t
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    // JSON string escapes are TOML basic-string escapes.
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Writes each configuration as `DIR/NODE.toml`; returns the paths.
///
/// # Errors
///
/// [`KubeError::Io`] when the directory or a file cannot be written.
pub fn write_all(dir: &Path, configs: &[NodeConfig]) -> Result<Vec<PathBuf>, KubeError> {
    std::fs::create_dir_all(dir).map_err(|source| KubeError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths = Vec::new();
    for c in configs {
        let path = dir.join(format!("{}.toml", c.node));
        std::fs::write(&path, &c.text).map_err(|source| KubeError::Io {
            path: path.clone(),
            source,
        })?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(topology: Topology) -> Cluster {
        Cluster {
            vip: "192.0.2.100/24".parse().unwrap(),
            interface: "eth0".into(),
            nodes: vec![
                "cp1=192.0.2.11".parse().unwrap(),
                "cp2=192.0.2.12".parse().unwrap(),
                "cp3=192.0.2.13".parse().unwrap(),
            ],
            apiservers: Vec::new(),
            topology,
            port: None,
            vrrp_version: 3,
            advert_interval_ms: 100,
            vrid: 51,
            ca_file: DEFAULT_CA_FILE.into(),
            admin: config::DEFAULT_ADMIN_LISTEN,
            multicast: false,
        }
    }

    #[test]
    fn stacked_nodes_listen_on_8443_in_front_of_every_node() {
        let configs = cluster(Topology::Stacked).generate().unwrap();
        assert_eq!(configs.len(), 3);
        for (i, c) in configs.iter().enumerate() {
            let parsed = config::parse(&c.text, Path::new("x.toml")).unwrap();
            let inst = &parsed.instances["apiserver"];
            assert_eq!(inst.priority, 150 - 10 * u32::try_from(i).unwrap());
            assert_eq!(inst.unicast_peers.len(), 2);
            assert_eq!(
                inst.unicast_src.unwrap().to_string(),
                format!("192.0.2.1{}", i + 1)
            );
            assert!(!inst.unicast_peers.contains(&inst.unicast_src.unwrap()));
            let l = &parsed.listeners["apiserver"];
            assert_eq!(l.listen.to_string(), "192.0.2.100:8443");
            let backends: Vec<String> = parsed.pools["apiservers"]
                .backends
                .iter()
                .map(|b| b.address.to_string())
                .collect();
            assert_eq!(
                backends,
                ["192.0.2.11:6443", "192.0.2.12:6443", "192.0.2.13:6443"]
            );
            let check = &parsed.checks["apiserver-readyz"];
            assert_eq!(check.path.as_deref(), Some("/readyz"));
            assert_eq!(
                check.tls.as_ref().unwrap().ca_file.as_deref(),
                Some(Path::new(DEFAULT_CA_FILE))
            );
            assert!(parsed.admin.is_some());
            // The lowest healthy node stays above the first node without apiservers.
            let lowest = 150 - 10 * 2;
            assert!(150 + NO_APISERVER_WEIGHT < lowest);
        }
        assert_eq!(
            cluster(Topology::Stacked)
                .control_plane_endpoint()
                .to_string(),
            "192.0.2.100:8443"
        );
    }

    #[test]
    fn external_needs_apiservers_and_listens_on_6443() {
        let mut c = cluster(Topology::External);
        assert!(c
            .generate()
            .unwrap_err()
            .to_string()
            .contains("--apiserver"));
        c.apiservers = vec!["192.0.2.21:6443".parse().unwrap()];
        let configs = c.generate().unwrap();
        let parsed = config::parse(&configs[0].text, Path::new("x.toml")).unwrap();
        assert_eq!(
            parsed.listeners["apiserver"].listen.to_string(),
            "192.0.2.100:6443"
        );
        assert_eq!(parsed.pools["apiservers"].backends.len(), 1);
    }

    #[test]
    fn inconsistent_descriptions_are_refused() {
        let mut c = cluster(Topology::Stacked);
        c.port = Some(6443);
        assert!(c
            .generate()
            .unwrap_err()
            .to_string()
            .contains("another port"));
        let mut c = cluster(Topology::Stacked);
        c.nodes.push("cp1=192.0.2.14".parse().unwrap());
        assert!(c.generate().unwrap_err().to_string().contains("twice"));
        let mut c = cluster(Topology::Stacked);
        c.nodes.push("cp4=2001:db8::4".parse().unwrap());
        assert!(c.generate().unwrap_err().to_string().contains("family"));
        let mut c = cluster(Topology::Stacked);
        c.nodes = Vec::new();
        assert!(c.generate().is_err());
        assert!("cp1".parse::<NodeSpec>().is_err());
        assert!("cp 1=192.0.2.1".parse::<NodeSpec>().is_err());
        assert!("cp1=host".parse::<NodeSpec>().is_err());
        // A value check-config refuses comes back as its diagnostic.
        let mut c = cluster(Topology::Stacked);
        c.vrid = 300;
        let e = c.generate().unwrap_err().to_string();
        assert!(e.contains("not valid") && e.contains("vrid"), "{e}");
    }

    #[test]
    fn multicast_has_no_peers_and_odd_names_are_quoted() {
        let mut c = cluster(Topology::Stacked);
        c.multicast = true;
        c.interface = "bond0.100".into();
        c.ca_file = "/etc/pki/\"odd\" ca.crt".into();
        let configs = c.generate().unwrap();
        let parsed = config::parse(&configs[1].text, Path::new("x.toml")).unwrap();
        assert!(parsed.instances["apiserver"].unicast_peers.is_empty());
        assert_eq!(
            parsed.checks["apiserver-readyz"]
                .tls
                .as_ref()
                .unwrap()
                .ca_file
                .as_deref(),
            Some(Path::new("/etc/pki/\"odd\" ca.crt"))
        );
    }
}
