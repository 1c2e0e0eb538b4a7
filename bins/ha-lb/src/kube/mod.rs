//! `ha-lb kube`: what a Kubernetes control plane needs, generated instead of hand-written (the
//! keepalived.conf, `check_apiserver.sh`, haproxy.cfg and two static pods of kubeadm's HA
//! guide).
//!
//! - [`configs`]: one ha-lb configuration per node from a short description of the cluster
//!   (`ha-lb kube configs`);
//! - [`static_pod`]: a static Pod manifest that runs a node's configuration
//!   (`ha-lb kube static-pod`);
//! - [`yaml`]: the small YAML writer the manifest is printed with.

pub mod configs;
pub mod static_pod;
pub mod yaml;
