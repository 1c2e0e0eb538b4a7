//! `ha-lb kube static-pod`: a Pod manifest for `/etc/kubernetes/manifests/` that runs one
//! node's configuration, as `kube-vip manifest pod` does for kube-vip.
//!
//! What it holds, and why:
//! - `hostNetwork: true`: VRRP and the VIP live on the node's interface;
//! - `priorityClassName: system-node-critical`: the VIP is what the node's own kubelet uses;
//! - capabilities `NET_ADMIN` (addresses), `NET_RAW` (VRRP, gratuitous ARP), and
//!   `NET_BIND_SERVICE` when a listener's (or the admin) port is below 1024; everything else
//!   dropped;
//! - the configuration and the TLS files its checks name (CA, client certificate and key) as
//!   read-only `hostPath` mounts at the same paths;
//! - liveness on `/healthz` (the worker's event loop answers) and readiness on `/readyz`
//!   (every instance and listener runs), on the admin endpoint, which the file must enable.
//!
//! No kubeconfig and no service account: ha-lb never talks to the apiserver, so it keeps
//! the VIP working while the apiservers or etcd are down.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::configs::KubeError;
use crate::config::Config;

/// Where the image keeps the binary (see the Containerfile).
pub const BINARY: &str = "/usr/bin/ha-lb";

/// The default image: this version, as the Containerfile tags it.
pub fn default_image() -> String {
    format!("localhost/ha-lb:{}", env!("CARGO_PKG_VERSION"))
}

/// The files the configuration reads at run time, which the pod must see: TLS files of the
/// checks.
fn files_read(config: &Config) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for check in config.checks.values() {
        if let Some(tls) = &check.tls {
            files.extend(tls.ca_file.iter().cloned());
            files.extend(tls.client_cert_file.iter().cloned());
            files.extend(tls.client_key_file.iter().cloned());
        }
    }
    files
}

fn volume_name(i: usize, path: &Path) -> String {
    // DNS-1123 label: lower-case alphanumerics and '-', at most 63.
    let stem: String = path
        .file_name()
        .map(|f| f.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = stem.trim_matches('-');
    let mut name = format!("file{i}-{stem}");
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// The Pod manifest (YAML) that runs `config`, read from `config_path` on the node.
///
/// # Errors
///
/// [`KubeError::Invalid`] when the configuration has no `[admin]` (the probes need it) or its
/// path is not absolute (a hostPath must be).
pub fn manifest(config: &Config, config_path: &Path, image: &str) -> Result<String, KubeError> {
    let Some(admin) = &config.admin else {
        return Err(KubeError::Invalid(
            "the configuration has no [admin]: the pod's liveness and readiness probes need it (add [admin] listen = \"127.0.0.1:9555\")".into(),
        ));
    };
    if !config_path.is_absolute() {
        return Err(KubeError::Invalid(format!(
            "{}: give the configuration's absolute path on the node (it is mounted from there)",
            config_path.display()
        )));
    }
    let mut caps = vec!["NET_ADMIN", "NET_RAW"];
    if config.listeners.values().any(|l| l.listen.port() < 1024) || admin.listen.port() < 1024 {
        caps.push("NET_BIND_SERVICE");
    }
    // hostNetwork: the probe reaches the admin address on the node; a wildcard means loopback.
    let host = match admin.listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    };
    let probe = |path: &str, period: u32, failures: u32| {
        json!({
            "httpGet": {"host": host.to_string(), "port": admin.listen.port(), "path": path, "scheme": "HTTP"},
            "periodSeconds": period,
            "timeoutSeconds": 1,
            "failureThreshold": failures,
        })
    };
    let config_path = config_path.to_string_lossy().into_owned();
    let mut mounts = vec![json!({"name": "config", "mountPath": config_path, "readOnly": true})];
    let mut volumes =
        vec![json!({"name": "config", "hostPath": {"path": config_path, "type": "File"}})];
    for (i, f) in files_read(config).iter().enumerate() {
        let name = volume_name(i, f);
        let path = f.to_string_lossy().into_owned();
        mounts.push(json!({"name": name, "mountPath": path, "readOnly": true}));
        volumes.push(json!({"name": name, "hostPath": {"path": path, "type": "File"}}));
    }
    let pod: Value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "ha-lb",
            "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "ha-lb", "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            // Enough for priority 0 and the drain (--drain-timeout-ms 5000).
            "terminationGracePeriodSeconds": 15,
            "containers": [{
                "name": "ha-lb",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": [BINARY],
                "args": ["run", "--config", config_path, "--drain-timeout-ms", "5000"],
                "securityContext": {
                    "capabilities": {"add": caps, "drop": ["ALL"]},
                },
                // The apiserver's checks take 1 s; the event loop answers in microseconds.
                "livenessProbe": probe("/healthz", 5, 3),
                "readinessProbe": probe("/readyz", 1, 3),
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    });
    Ok(super::yaml::to_yaml(&pod))
}
