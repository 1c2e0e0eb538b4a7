//! The one adapter from the configuration to vrrp-core: an instance's [`RouterConfig`], its
//! VRID and priority as vrrp-core takes them, and the address its adverts leave from. The
//! configuration stays free of vrrp-core types; everything that converts goes through here
//! (the driver, the supervisor's priority-0 adverts, the status of an instance not running).

use std::net::IpAddr;
use std::time::Duration;

use vrrp_core::packet::{Auth, Version};
use vrrp_core::RouterConfig;

use super::error::RuntimeError;
use crate::config::Instance;
use crate::net::{Addresses, Interface, NetError};

/// The instance's VRID as vrrp-core takes it.
///
/// # Errors
///
/// [`RuntimeError::InstanceSetting`] above 255 (check-config refuses it first).
pub fn vrid(name: &str, inst: &Instance) -> Result<u8, RuntimeError> {
    u8::try_from(inst.vrid)
        .map_err(|_| RuntimeError::setting(name, format!("vrid {} > 255", inst.vrid)))
}

/// The priority the instance runs at: 255 for an address owner, else the configured one.
///
/// # Errors
///
/// [`RuntimeError::InstanceSetting`] above 255 (check-config refuses it first).
pub fn priority(name: &str, inst: &Instance) -> Result<u8, RuntimeError> {
    if inst.address_owner {
        return Ok(vrrp_core::PRIORITY_OWNER);
    }
    u8::try_from(inst.priority)
        .map_err(|_| RuntimeError::setting(name, format!("priority {} > 254", inst.priority)))
}

/// The vrrp-core configuration of an instance whose adverts leave from `source`.
///
/// # Errors
///
/// [`RuntimeError::InstanceSetting`] for values vrrp-core cannot take.
pub fn router_config(
    name: &str,
    inst: &Instance,
    source: IpAddr,
    tracks: Vec<vrrp_core::Track>,
) -> Result<RouterConfig, RuntimeError> {
    let vrid = vrid(name, inst)?;
    let version = if inst.version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    let vips = inst.vips.iter().map(|v| v.address).collect();
    let mut c = RouterConfig::new(vrid, version, source, vips);
    c.priority = priority(name, inst)?;
    c.advert_interval_cs = u16::try_from((inst.advert_interval_ms / 10).max(1))
        .map_err(|_| RuntimeError::setting(name, "advert interval too long".into()))?;
    c.preempt = inst.preempt;
    c.preempt_delay = Duration::from_millis(inst.preempt_delay_ms);
    c.accept_mode = inst.accept_mode;
    if let Some(p) = &inst.password {
        c.auth =
            Auth::simple(p.as_bytes()).map_err(|e| RuntimeError::setting(name, e.to_string()))?;
    }
    c.unicast_peers.clone_from(&inst.unicast_peers);
    c.unicast_min_ttl = inst.unicast_min_ttl;
    c.checksum = inst.checksum_mode();
    let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
    let a = &mut c.announce;
    a.master_repeat = inst.garp.master_repeat;
    a.master_delay = ms(inst.garp.master_delay_ms);
    a.refresh = ms(inst.garp.master_refresh_ms);
    a.refresh_repeat = inst.garp.master_refresh_repeat;
    a.lower_prio_repeat = inst.garp.lower_prio_repeat;
    a.lower_prio_delay = ms(inst.garp.lower_prio_delay_ms);
    c.tracks = tracks;
    Ok(c)
}

/// The address adverts leave from: `unicast_src`, else the interface's primary IPv4 address or
/// its IPv6 link-local address.
///
/// # Errors
///
/// [`RuntimeError::Instance`] when there is none.
pub fn source_address(
    name: &str,
    inst: &Instance,
    iface: &Interface,
) -> Result<IpAddr, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: name.to_owned(),
        source,
    };
    if let Some(src) = inst.unicast_src {
        return Ok(src);
    }
    let ipv6 = inst.is_ipv6();
    Addresses::new()
        .and_then(|mut a| a.vrrp_source(iface.index(), ipv6))
        .map_err(err)?
        .ok_or_else(|| {
            err(NetError::NoSourceAddress {
                ifname: iface.name().to_owned(),
                what: if ipv6 { "IPv6 link-local" } else { "IPv4" },
            })
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{parse, MAX_DURATION_MS};

    fn instance(settings: &str) -> Instance {
        let text = format!(
            "[instances.VI_1]\ninterface = \"eth0\"\nvrid = 101\nvips = [\"192.0.2.200/24\"]\n{settings}\n"
        );
        let config = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
        config.instances["VI_1"].clone()
    }

    #[test]
    fn the_longest_delays_check_config_takes_are_valid_for_vrrp_core() {
        // check-config bounds every delay by MAX_DURATION_MS (its tests: the located errors);
        // vrrp-core's RouterConfig::validate by MAX_DELAY, so that `now + delay` cannot
        // overflow. What passes the first must pass the second.
        assert!(Duration::from_millis(MAX_DURATION_MS) <= vrrp_core::MAX_DELAY);
        let max = MAX_DURATION_MS;
        for setting in [
            format!("preempt_delay_ms = {max}"),
            format!("garp = {{ master_delay_ms = {max} }}"),
            format!("garp = {{ master_refresh_ms = {max} }}"),
            format!("garp = {{ lower_prio_delay_ms = {max} }}"),
        ] {
            let inst = instance(&setting);
            let c = router_config("VI_1", &inst, "192.0.2.1".parse().unwrap(), Vec::new())
                .unwrap_or_else(|e| panic!("{setting}: {e}"));
            assert_eq!(c.validate(), Ok(()), "{setting}");
        }
    }

    #[test]
    fn owners_run_at_255_and_others_at_their_priority() {
        let inst = instance("priority = 120");
        assert_eq!(priority("VI_1", &inst).unwrap(), 120);
        assert_eq!(vrid("VI_1", &inst).unwrap(), 101);
        let mut owner = inst.clone();
        owner.address_owner = true;
        assert_eq!(priority("VI_1", &owner).unwrap(), vrrp_core::PRIORITY_OWNER);
        let c = router_config("VI_1", &owner, "192.0.2.1".parse().unwrap(), Vec::new()).unwrap();
        assert_eq!(c.priority, vrrp_core::PRIORITY_OWNER);
        let mut bad = inst;
        bad.vrid = 300;
        assert!(matches!(
            vrid("VI_1", &bad),
            Err(RuntimeError::InstanceSetting { .. })
        ));
    }
}
