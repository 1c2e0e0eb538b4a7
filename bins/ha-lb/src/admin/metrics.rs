//! `/metrics`: the node's status in the Prometheus text format, with prometheus-client.
//!
//! The registry is built from a [`NodeStatus`] snapshot on each scrape: the counters live in
//! vrrp-core, healthcheck and lb-core already, so nothing is counted twice.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::status::NodeStatus;
use vrrp_core::Stats;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn gauge(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, i64)>) {
    let family = Family::<Labels, Gauge>::default();
    for (l, v) in values {
        family.get_or_create(&l).set(v);
    }
    registry.register(name, help, family);
}

fn counter(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, u64)>) {
    let family = Family::<Labels, Counter>::default();
    for (l, v) in values {
        family.get_or_create(&l).inc_by(v);
    }
    registry.register(name, help, family);
}

/// The RFC 6527 counters exported, with their MIB names in the help text.
/// One exported counter: name, help, and where to read it.
type CounterDef = (&'static str, &'static str, fn(&Stats) -> u64);

const VRRP_COUNTERS: &[CounterDef] = &[
    (
        "vrrp_master_transitions",
        "vrrpv3StatisticsMasterTransitions: times this instance became Master",
        |c| c.master_transitions,
    ),
    (
        "vrrp_rcvd_advertisements",
        "vrrpv3StatisticsRcvdAdvertisements: valid adverts received",
        |c| c.rcvd_advertisements,
    ),
    (
        "vrrp_adv_interval_errors",
        "vrrpv3StatisticsAdvIntervalErrors",
        |c| c.adv_interval_errors,
    ),
    ("vrrp_ip_ttl_errors", "vrrpv3StatisticsIpTtlErrors", |c| {
        c.ip_ttl_errors
    }),
    (
        "vrrp_rcvd_pri_zero_packets",
        "vrrpv3StatisticsRcvdPriZeroPackets",
        |c| c.rcvd_pri_zero_packets,
    ),
    (
        "vrrp_sent_pri_zero_packets",
        "vrrpv3StatisticsSentPriZeroPackets",
        |c| c.sent_pri_zero_packets,
    ),
    (
        "vrrp_rcvd_invalid_type_packets",
        "vrrpv3StatisticsRcvdInvalidTypePackets",
        |c| c.rcvd_invalid_type_packets,
    ),
    (
        "vrrp_address_list_errors",
        "vrrpv3StatisticsAddressListErrors",
        |c| c.address_list_errors,
    ),
    (
        "vrrp_packet_length_errors",
        "vrrpv3StatisticsPacketLengthErrors",
        |c| c.packet_length_errors,
    ),
    ("vrrp_checksum_errors", "vrrpv3RouterChecksumErrors", |c| {
        c.checksum_errors
    }),
    ("vrrp_version_errors", "vrrpv3RouterVersionErrors", |c| {
        c.version_errors
    }),
    ("vrrp_vrid_errors", "vrrpv3RouterVrIdErrors", |c| {
        c.vrid_errors
    }),
    (
        "vrrp_auth_failures",
        "vrrpStatsAuthFailures (RFC 2787)",
        |c| c.auth_failures,
    ),
    (
        "vrrp_invalid_auth_type",
        "vrrpStatsInvalidAuthType (RFC 2787)",
        |c| c.invalid_auth_type,
    ),
    (
        "vrrp_auth_type_mismatch",
        "vrrpStatsAuthTypeMismatch (RFC 2787)",
        |c| c.auth_type_mismatch,
    ),
    (
        "vrrp_unknown_peer_errors",
        "unicast adverts from an address that is not a configured peer",
        |c| c.unknown_peer_errors,
    ),
    (
        "vrrp_destination_errors",
        "adverts sent to a unicast address on a multicast instance, or to the group on a unicast one",
        |c| c.destination_errors,
    ),
    ("vrrp_sent_advertisements", "adverts sent", |c| {
        c.sent_advertisements
    }),
    (
        "vrrp_step_downs",
        "times a Master stepped down for its sync group",
        |c| c.step_downs,
    ),
    (
        "vrrp_heal_adverts",
        "adverts a Master sent at its own priority as it stepped down for another Master (a healed partition)",
        |c| c.heal_adverts,
    ),
    (
        "vrrp_lower_prio_announcements",
        "re-announcement bursts a Master sent because another Master spoke",
        |c| c.lower_prio_announcements,
    ),
];

/// Renders the Prometheus text exposition of `status`.
///
/// # Errors
///
/// Only if formatting fails (it does not on a `String`).
pub fn render(status: &NodeStatus) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("ha_lb");
    let mut states = Vec::new();
    for i in &status.instances {
        for s in ["Initialize", "Backup", "Master", "Fault"] {
            states.push((
                labels(&[("instance", &i.name), ("state", s)]),
                i64::from(i.state == s),
            ));
        }
    }
    gauge(
        &mut registry,
        "vrrp_state",
        "1 for the state the instance is in",
        states,
    );
    gauge(
        &mut registry,
        "vrrp_sync_held",
        "1 while the instance's sync group holds it back from Master",
        status
            .instances
            .iter()
            .map(|i| (labels(&[("instance", &i.name)]), i64::from(i.sync_held)))
            .collect(),
    );
    gauge(
        &mut registry,
        "vrrp_priority",
        "effective priority (configured priority and tracked weights)",
        status
            .instances
            .iter()
            .map(|i| (labels(&[("instance", &i.name)]), i64::from(i.priority)))
            .collect(),
    );
    gauge(
        &mut registry,
        "vrrp_base_priority",
        "configured priority",
        status
            .instances
            .iter()
            .map(|i| (labels(&[("instance", &i.name)]), i64::from(i.base_priority)))
            .collect(),
    );
    for (name, help, get) in VRRP_COUNTERS {
        counter(
            &mut registry,
            name,
            help,
            status
                .instances
                .iter()
                .map(|i| (labels(&[("instance", &i.name)]), get(&i.counters)))
                .collect(),
        );
    }
    gauge(
        &mut registry,
        "anycast_announced",
        "1 while the anycast group's VIPs are on its interface (its routes announced)",
        status
            .anycast
            .iter()
            .map(|a| (labels(&[("anycast", &a.name)]), i64::from(a.announced)))
            .collect(),
    );
    gauge(
        &mut registry,
        "check_up",
        "health check state: 1 up, 0 down, -1 unknown",
        status
            .checks
            .iter()
            .map(|c| {
                let target = c.target.map(|t| t.to_string()).unwrap_or_default();
                let v = match c.state.as_str() {
                    "up" => 1,
                    "down" => 0,
                    _ => -1,
                };
                (labels(&[("check", &c.check), ("target", &target)]), v)
            })
            .collect(),
    );
    let backends = || {
        status.pools.iter().flat_map(|p| {
            p.backends
                .iter()
                .map(move |b| (labels(&[("pool", &p.name), ("backend", &b.address)]), b))
        })
    };
    gauge(
        &mut registry,
        "backend_up",
        "1 while the backend takes new connections (up and not ejected)",
        backends()
            .map(|(l, b)| (l, i64::from(b.state == "up" && !b.ejected)))
            .collect(),
    );
    gauge(
        &mut registry,
        "backend_active_connections",
        "open connections to the backend",
        backends()
            .map(|(l, b)| (l, i64::try_from(b.active).unwrap_or(i64::MAX)))
            .collect(),
    );
    counter(
        &mut registry,
        "backend_connections",
        "connections made to the backend",
        backends().map(|(l, b)| (l, b.connections)).collect(),
    );
    counter(
        &mut registry,
        "backend_connect_errors",
        "failed connects to the backend",
        backends().map(|(l, b)| (l, b.connect_errors)).collect(),
    );
    let listeners = || {
        status
            .listeners
            .iter()
            .map(|l| (labels(&[("listen", &l.listen), ("pool", &l.pool)]), l))
    };
    counter(
        &mut registry,
        "listener_accepted",
        "client connections accepted",
        listeners().map(|(lb, l)| (lb, l.accepted)).collect(),
    );
    gauge(
        &mut registry,
        "listener_active_connections",
        "client connections open",
        listeners()
            .map(|(lb, l)| (lb, i64::try_from(l.active).unwrap_or(i64::MAX)))
            .collect(),
    );
    counter(
        &mut registry,
        "listener_no_backend",
        "clients turned away: no healthy backend",
        listeners().map(|(lb, l)| (lb, l.no_backend)).collect(),
    );
    counter(
        &mut registry,
        "listener_bytes_from_clients",
        "bytes received from clients",
        listeners()
            .map(|(lb, l)| (lb, l.bytes_from_clients))
            .collect(),
    );
    counter(
        &mut registry,
        "listener_bytes_to_clients",
        "bytes sent to clients",
        listeners()
            .map(|(lb, l)| (lb, l.bytes_to_clients))
            .collect(),
    );
    let nat = || {
        status.nat.iter().flat_map(|l| {
            l.backends.iter().map(|b| {
                (
                    labels(&[
                        ("listen", &l.listen),
                        ("pool", &l.pool),
                        ("backend", &b.address),
                    ]),
                    b,
                )
            })
        })
    };
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    gauge(
        &mut registry,
        "nat_backend_slots",
        "NAT listener: the backend's slots in the kernel's map (its share of new flows; 0: none)",
        nat().map(|(lb, b)| (lb, i64::from(b.slots))).collect(),
    );
    gauge(
        &mut registry,
        "nat_backend_open_flows",
        "NAT listener: flows to the backend in the conntrack table now",
        nat().map(|(lb, b)| (lb, int(b.flows))).collect(),
    );
    gauge(
        &mut registry,
        "nat_backend_established_flows",
        "NAT listener: established TCP flows to the backend in the conntrack table now",
        nat().map(|(lb, b)| (lb, int(b.established))).collect(),
    );
    counter(
        &mut registry,
        "nat_backend_flows",
        "NAT listener: flows to the backend since ha-lb started (ended and open, from conntrack)",
        nat().map(|(lb, b)| (lb, b.flows_total)).collect(),
    );
    counter(
        &mut registry,
        "nat_backend_bytes_from_clients",
        "NAT listener: bytes from clients over the backend's flows since ha-lb started (conntrack accounting)",
        nat().map(|(lb, b)| (lb, b.bytes_from_clients_total)).collect(),
    );
    counter(
        &mut registry,
        "nat_backend_bytes_to_clients",
        "NAT listener: bytes to clients over the backend's flows since ha-lb started (conntrack accounting)",
        nat().map(|(lb, b)| (lb, b.bytes_to_clients_total)).collect(),
    );
    gauge(
        &mut registry,
        "backend_weight",
        "the backend's weight now (an operator's, or less while slow start ramps it up)",
        status
            .pools
            .iter()
            .flat_map(|p| {
                p.backends.iter().map(|b| {
                    (
                        labels(&[("pool", &p.name), ("backend", &b.address)]),
                        i64::from(b.weight),
                    )
                })
            })
            .collect(),
    );
    gauge(
        &mut registry,
        "backend_admin_override",
        "1 while an operator's drain, disable or weight applies to the backend",
        status
            .pools
            .iter()
            .flat_map(|p| {
                p.backends.iter().map(|b| {
                    (
                        labels(&[("pool", &p.name), ("backend", &b.address)]),
                        i64::from(b.admin.is_some()),
                    )
                })
            })
            .collect(),
    );
    gauge(
        &mut registry,
        "vrrp_maintenance",
        "1 while an operator keeps the instance in maintenance (Backup)",
        status
            .instances
            .iter()
            .map(|i| (labels(&[("instance", &i.name)]), i64::from(i.maintenance)))
            .collect(),
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(status.connection_log_dropped);
    registry.register(
        "connection_log_dropped",
        "connection log lines dropped because the log could not keep up",
        dropped,
    );
    gauge(
        &mut registry,
        "build_info",
        "1, labelled with the version of ha-lb and its build",
        vec![(
            labels(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("rustc", env!("HA_LB_RUSTC")),
                (
                    "profile",
                    if cfg!(debug_assertions) {
                        "debug"
                    } else {
                        "release"
                    },
                ),
            ]),
            1,
        )],
    );
    counter(
        &mut registry,
        "config_reload",
        "configuration loads, at start and on SIGHUP, by result (success: applied; failure: \
         rejected, the running configuration stayed)",
        vec![
            (labels(&[("result", "success")]), status.reloads.success),
            (labels(&[("result", "failure")]), status.reloads.failure),
        ],
    );
    let last = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    last.set(status.reloads.last_success_unix);
    registry.register(
        "config_last_reload_success_timestamp_seconds",
        "when the configuration was last applied, in seconds since the Unix epoch",
        last,
    );
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{
        AnycastStatus, BackendStatus, CheckStatus, InstanceStatus, NatBackendStatus,
        NatListenerStatus, PoolStatus,
    };

    #[test]
    fn renders_states_priorities_counters_and_backends() {
        let status = NodeStatus {
            router_id: "lb1".into(),
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                state: "Backup".into(),
                reason: "startup".into(),
                priority: 90,
                base_priority: 150,
                master: None,
                vips: vec!["192.0.2.100".into()],
                sync_held: true,
                wants_master: false,
                maintenance: true,
                counters: {
                    let mut c = Stats::default();
                    c.master_transitions = 3;
                    c.sent_pri_zero_packets = 2;
                    c.step_downs = 1;
                    c
                },
            }],
            checks: vec![CheckStatus {
                check: "tcp".into(),
                target: Some("192.0.2.3:8080".parse().unwrap()),
                state: "down".into(),
            }],
            pools: vec![PoolStatus {
                name: "web".into(),
                backends: vec![BackendStatus {
                    address: "192.0.2.3:8080".into(),
                    state: "down".into(),
                    weight: 3,
                    admin: Some("weight 3".into()),
                    ejected: false,
                    active: 0,
                    connections: 7,
                    connect_errors: 1,
                }],
            }],
            listeners: vec![],
            nat: vec![NatListenerStatus {
                name: "api".into(),
                listen: "192.0.2.100:6443".into(),
                pool: "web".into(),
                nat_source: "vip".into(),
                backends: vec![NatBackendStatus {
                    address: "192.0.2.3:8080".into(),
                    slots: 2,
                    flows: 5,
                    established: 4,
                    bytes_from_clients: 1000,
                    bytes_to_clients: 9000,
                    flows_total: 12,
                    bytes_from_clients_total: 3000,
                    bytes_to_clients_total: 29000,
                }],
                error: None,
            }],
            anycast: vec![AnycastStatus {
                name: "api".into(),
                interface: "ha-lb0".into(),
                vips: vec!["203.0.113.10".into()],
                announced: false,
                reason: "pool web has no healthy backend".into(),
            }],
            connection_log_dropped: 4,
            reloads: crate::status::Reloads {
                success: 2,
                failure: 1,
                last_success_unix: 1_700_000_000.5,
            },
        };
        let text = render(&status).unwrap();
        for line in [
            "ha_lb_vrrp_state{instance=\"VI_1\",state=\"Backup\"} 1",
            "ha_lb_vrrp_state{instance=\"VI_1\",state=\"Master\"} 0",
            "ha_lb_vrrp_priority{instance=\"VI_1\"} 90",
            "ha_lb_vrrp_base_priority{instance=\"VI_1\"} 150",
            "ha_lb_vrrp_master_transitions_total{instance=\"VI_1\"} 3",
            "ha_lb_vrrp_sent_pri_zero_packets_total{instance=\"VI_1\"} 2",
            "ha_lb_vrrp_step_downs_total{instance=\"VI_1\"} 1",
            "ha_lb_vrrp_sync_held{instance=\"VI_1\"} 1",
            "ha_lb_check_up{check=\"tcp\",target=\"192.0.2.3:8080\"} 0",
            "ha_lb_anycast_announced{anycast=\"api\"} 0",
            "ha_lb_backend_up{pool=\"web\",backend=\"192.0.2.3:8080\"} 0",
            "ha_lb_backend_connections_total{pool=\"web\",backend=\"192.0.2.3:8080\"} 7",
            "ha_lb_backend_weight{pool=\"web\",backend=\"192.0.2.3:8080\"} 3",
            "ha_lb_backend_admin_override{pool=\"web\",backend=\"192.0.2.3:8080\"} 1",
            "ha_lb_vrrp_maintenance{instance=\"VI_1\"} 1",
            "ha_lb_nat_backend_slots{listen=\"192.0.2.100:6443\",pool=\"web\",backend=\"192.0.2.3:8080\"} 2",
            "ha_lb_nat_backend_open_flows{listen=\"192.0.2.100:6443\",pool=\"web\",backend=\"192.0.2.3:8080\"} 5",
            "ha_lb_nat_backend_flows_total{listen=\"192.0.2.100:6443\",pool=\"web\",backend=\"192.0.2.3:8080\"} 12",
            "ha_lb_nat_backend_established_flows{listen=\"192.0.2.100:6443\",pool=\"web\",backend=\"192.0.2.3:8080\"} 4",
            "ha_lb_nat_backend_bytes_to_clients_total{listen=\"192.0.2.100:6443\",pool=\"web\",backend=\"192.0.2.3:8080\"} 29000",
            "ha_lb_connection_log_dropped_total 4",
            "ha_lb_config_reload_total{result=\"success\"} 2",
            "ha_lb_config_reload_total{result=\"failure\"} 1",
            "ha_lb_config_last_reload_success_timestamp_seconds 1700000000.5",
            concat!(
                "ha_lb_build_info{version=\"",
                env!("CARGO_PKG_VERSION"),
                "\""
            ),
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        let table = crate::status::render(&status);
        assert!(table.contains("VI_1") && table.contains("90/150") && table.contains("startup"));
        assert!(
            table.contains("withdrawn") && table.contains("pool web has no healthy backend"),
            "{table}"
        );
        assert!(table.contains("Backup (maintenance)"), "{table}");
        assert!(table.contains("weight 3"), "{table}");
        assert!(table.contains("192.0.2.100:6443 (vip)"), "{table}");
        assert!(table.contains("29000"), "{table}");
    }
}
