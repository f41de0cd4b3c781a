//! Static network configuration from `network_data.json` (the OpenStack
//! metadata format Ironic puts at `openstack/latest/network_data.json` in a
//! node's virtual media ISO when the node has `network_data`), as IPA's ramdisk
//! does with glean: before any DHCP, the ramdisk applies it and only the links
//! it asks DHCP for get DHCP.
//!
//! [`plan`] is pure: it turns the document and the machine's interfaces (name
//! and MAC) into [`Action`]s; [`apply`] runs them (`ip`, sysfs for bonds) and
//! writes `/etc/resolv.conf`. Supported: links of type `phy` (matched by
//! `ethernet_mac_address`), `vlan` (`vlan_link`, `vlan_id`,
//! `vlan_mac_address`) and `bond` (`bond_links`, `bond_mode`, through
//! `/sys/class/net/bonding_masters`); networks `ipv4`, `ipv6` (address,
//! `netmask` or a prefix on the address, `routes`), `ipv4_dhcp` and
//! `ipv6_dhcp` (named for DHCP), `ipv6_slaac` (link up only); `dns` services,
//! global or per network.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One step of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run `ip` with these arguments.
    Ip(Vec<String>),
    /// Write `value` to the sysfs file `path` (relative to `/sys`).
    Sysfs {
        /// The file, e.g. `class/net/bonding_masters`.
        path: String,
        /// What to write.
        value: String,
    },
}

/// What [`plan`] makes of a `network_data.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The steps, in order.
    pub actions: Vec<Action>,
    /// Interfaces that want DHCP (`ipv4_dhcp`, `ipv6_dhcp` networks).
    pub dhcp: Vec<String>,
    /// Name servers (`dns` services).
    pub dns: Vec<String>,
    /// Interfaces given a static address.
    pub configured: Vec<String>,
}

fn ip(args: &[&str]) -> Action {
    Action::Ip(args.iter().map(|s| (*s).to_owned()).collect())
}

fn prefix_of(mask: &str) -> Option<u8> {
    if let Ok(n) = mask.parse::<u8>() {
        return Some(n);
    }
    let bits: u32 = match mask.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => u32::from(a).count_ones(),
        std::net::IpAddr::V6(a) => u128::from(a).count_ones(),
    };
    u8::try_from(bits).ok()
}

/// `address/prefix` from an `ip_address` (maybe with its own prefix) and a `netmask`.
fn cidr(net: &Value, default_prefix: u8) -> Result<String, String> {
    let addr = net["ip_address"]
        .as_str()
        .ok_or_else(|| format!("network {}: no ip_address", net["id"]))?;
    if addr.contains('/') {
        return Ok(addr.to_owned());
    }
    let prefix = match net["netmask"].as_str() {
        Some(m) => prefix_of(m).ok_or_else(|| format!("network {}: netmask {m:?}", net["id"]))?,
        None => default_prefix,
    };
    Ok(format!("{addr}/{prefix}"))
}

/// The configuration of `doc` for a machine with `interfaces` (`(name, mac)`,
/// MACs in any case). A link whose MAC no interface has is an error, as is a
/// document with no usable link.
pub fn plan(doc: &Value, interfaces: &[(String, String)]) -> Result<Plan, String> {
    let mut p = Plan::default();
    let links = doc["links"].as_array().cloned().unwrap_or_default();
    if links.is_empty() {
        return Err("network_data has no links".into());
    }
    let by_mac = |mac: &str| {
        interfaces
            .iter()
            .find(|(_, m)| m.eq_ignore_ascii_case(mac))
            .map(|(n, _)| n.clone())
    };
    // Link id -> interface name, links in order (a VLAN or bond after what it uses).
    let mut names: Vec<(String, String)> = Vec::new();
    let name_of = |names: &Vec<(String, String)>, id: &str| {
        names.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone())
    };
    let mut pending = links;
    let mut bonds = 0;
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for link in pending {
            let id = link["id"].as_str().unwrap_or_default().to_owned();
            let kind = link["type"].as_str().unwrap_or("phy");
            let name = match kind {
                "vlan" => {
                    let parent = link["vlan_link"].as_str().unwrap_or_default();
                    let Some(parent) = name_of(&names, parent) else {
                        rest.push(link);
                        continue;
                    };
                    let vid = link["vlan_id"]
                        .as_u64()
                        .or_else(|| link["vlan_id"].as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| format!("link {id}: vlan_id missing"))?;
                    let name = format!("{parent}.{vid}");
                    p.actions.push(ip(&["link", "set", "dev", &parent, "up"]));
                    p.actions.push(ip(&[
                        "link",
                        "add",
                        "link",
                        &parent,
                        "name",
                        &name,
                        "type",
                        "vlan",
                        "id",
                        &vid.to_string(),
                    ]));
                    if let Some(mac) = link["vlan_mac_address"].as_str() {
                        p.actions
                            .push(ip(&["link", "set", "dev", &name, "address", mac]));
                    }
                    name
                }
                "bond" => {
                    let members: Vec<&str> = link["bond_links"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let resolved: Option<Vec<String>> =
                        members.iter().map(|m| name_of(&names, m)).collect();
                    let Some(resolved) = resolved else {
                        rest.push(link);
                        continue;
                    };
                    let name = format!("bond{bonds}");
                    bonds += 1;
                    p.actions.push(Action::Sysfs {
                        path: "class/net/bonding_masters".into(),
                        value: format!("+{name}"),
                    });
                    let mode = link["bond_mode"].as_str().unwrap_or("active-backup");
                    p.actions.push(Action::Sysfs {
                        path: format!("class/net/{name}/bonding/mode"),
                        value: mode.to_owned(),
                    });
                    if let Some(m) = link["bond_miimon"].as_u64() {
                        p.actions.push(Action::Sysfs {
                            path: format!("class/net/{name}/bonding/miimon"),
                            value: m.to_string(),
                        });
                    }
                    for m in &resolved {
                        // Members must be down to be enslaved.
                        p.actions.push(ip(&["link", "set", "dev", m, "down"]));
                        p.actions.push(Action::Sysfs {
                            path: format!("class/net/{name}/bonding/slaves"),
                            value: format!("+{m}"),
                        });
                        p.actions.push(ip(&["link", "set", "dev", m, "up"]));
                    }
                    if let Some(mac) = link["ethernet_mac_address"].as_str() {
                        p.actions
                            .push(ip(&["link", "set", "dev", &name, "address", mac]));
                    }
                    name
                }
                _ => {
                    let mac = link["ethernet_mac_address"]
                        .as_str()
                        .ok_or_else(|| format!("link {id}: no ethernet_mac_address"))?;
                    by_mac(mac).ok_or_else(|| format!("link {id}: no interface has MAC {mac}"))?
                }
            };
            if let Some(mtu) = link["mtu"].as_u64() {
                p.actions
                    .push(ip(&["link", "set", "dev", &name, "mtu", &mtu.to_string()]));
            }
            p.actions.push(ip(&["link", "set", "dev", &name, "up"]));
            names.push((id, name));
        }
        if rest.len() == before {
            let ids: Vec<String> = rest.iter().map(|l| l["id"].to_string()).collect();
            return Err(format!(
                "links {} name links that do not exist",
                ids.join(", ")
            ));
        }
        pending = rest;
    }
    let mut dns: Vec<String> = Vec::new();
    fn add_dns(dns: &mut Vec<String>, services: &Value) {
        for s in services.as_array().into_iter().flatten() {
            if s["type"] == "dns"
                && let Some(a) = s["address"].as_str()
                && !dns.iter().any(|d| d == a)
            {
                dns.push(a.to_owned());
            }
        }
    }
    add_dns(&mut dns, &doc["services"]);
    for net in doc["networks"].as_array().into_iter().flatten() {
        let link = net["link"].as_str().unwrap_or_default();
        let dev = name_of(&names, link)
            .ok_or_else(|| format!("network {}: link {link:?} is not in links", net["id"]))?;
        let kind = net["type"].as_str().unwrap_or_default();
        match kind {
            "ipv4" | "ipv6" => {
                let v6 = kind == "ipv6";
                let fam = if v6 { "-6" } else { "-4" };
                let addr = cidr(net, if v6 { 64 } else { 24 })?;
                p.actions
                    .push(ip(&[fam, "addr", "add", &addr, "dev", &dev]));
                for r in net["routes"].as_array().into_iter().flatten() {
                    let gw = r["gateway"].as_str().unwrap_or_default();
                    let network = r["network"].as_str().unwrap_or_default();
                    let mask = r["netmask"].as_str().unwrap_or("0");
                    let prefix = prefix_of(mask).unwrap_or(0);
                    let dest = if prefix == 0 {
                        "default".to_owned()
                    } else {
                        format!("{network}/{prefix}")
                    };
                    p.actions.push(ip(&[
                        fam, "route", "replace", &dest, "via", gw, "dev", &dev,
                    ]));
                }
                add_dns(&mut dns, &net["services"]);
                for d in net["dns_nameservers"].as_array().into_iter().flatten() {
                    if let Some(a) = d.as_str()
                        && !dns.iter().any(|x| x == a)
                    {
                        dns.push(a.to_owned());
                    }
                }
                if !p.configured.contains(&dev) {
                    p.configured.push(dev);
                }
            }
            "ipv4_dhcp" | "ipv6_dhcp" | "dhcp4" | "dhcp6" => {
                if !p.dhcp.contains(&dev) {
                    p.dhcp.push(dev);
                }
            }
            // The kernel configures SLAAC addresses on a link that is up.
            "ipv6_slaac" => {}
            other => return Err(format!("network {}: type {other:?}", net["id"])),
        }
    }
    p.dns = dns;
    Ok(p)
}

/// The machine's interfaces (name, MAC) under `sys` (`/sys`), loopback left out.
pub fn interfaces(sys: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(sys.join("class/net")) else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lo" {
            continue;
        }
        if let Ok(mac) = std::fs::read_to_string(e.path().join("address")) {
            out.push((name, mac.trim().to_owned()));
        }
    }
    out.sort();
    out
}

/// Apply `doc` on this machine: waits up to `wait` for the interfaces its
/// `phy` links name (NIC drivers may still be probing), runs the plan, writes
/// `resolv` (`/etc/resolv.conf`) when it names DNS servers. Returns the plan.
pub fn apply(doc: &Value, sys: &Path, resolv: &Path, wait: Duration) -> Result<Plan, String> {
    let deadline = Instant::now() + wait;
    let plan = loop {
        match plan(doc, &interfaces(sys)) {
            Ok(p) => break p,
            Err(e) if Instant::now() < deadline && e.contains("no interface has MAC") => {
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(e),
        }
    };
    for a in &plan.actions {
        match a {
            Action::Ip(args) => {
                let out = std::process::Command::new("ip")
                    .args(args)
                    .output()
                    .map_err(|e| format!("ip could not run: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "ip {} failed: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            Action::Sysfs { path, value } => {
                let f = sys.join(path);
                std::fs::write(&f, value)
                    .map_err(|e| format!("writing {value:?} to {}: {e}", f.display()))?;
            }
        }
    }
    if !plan.dns.is_empty() {
        let text: String = plan
            .dns
            .iter()
            .map(|d| format!("nameserver {d}\n"))
            .collect();
        std::fs::write(resolv, text).map_err(|e| format!("{}: {e}", resolv.display()))?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ifs() -> Vec<(String, String)> {
        vec![
            ("eth0".into(), "52:54:00:aa:00:01".into()),
            ("eth1".into(), "52:54:00:aa:00:02".into()),
        ]
    }

    fn ips(p: &Plan) -> Vec<String> {
        p.actions
            .iter()
            .map(|a| match a {
                Action::Ip(v) => format!("ip {}", v.join(" ")),
                Action::Sysfs { path, value } => format!("{path} < {value}"),
            })
            .collect()
    }

    #[test]
    fn a_static_ipv4_address_with_a_default_route_and_dns() {
        // The shape Ironic/Nova write (Metal3's networkData too).
        let doc = json!({
            "links": [{"id": "port0", "type": "phy", "ethernet_mac_address": "52:54:00:AA:00:02", "mtu": 9000}],
            "networks": [{
                "id": "net0", "type": "ipv4", "link": "port0",
                "ip_address": "10.99.0.50", "netmask": "255.255.255.0",
                "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.99.0.1"},
                           {"network": "192.168.10.0", "netmask": "255.255.255.0", "gateway": "10.99.0.2"}],
            }],
            "services": [{"type": "dns", "address": "10.99.0.1"}],
        });
        let p = plan(&doc, &ifs()).unwrap();
        assert_eq!(
            ips(&p),
            vec![
                "ip link set dev eth1 mtu 9000",
                "ip link set dev eth1 up",
                "ip -4 addr add 10.99.0.50/24 dev eth1",
                "ip -4 route replace default via 10.99.0.1 dev eth1",
                "ip -4 route replace 192.168.10.0/24 via 10.99.0.2 dev eth1",
            ]
        );
        assert_eq!(p.dns, vec!["10.99.0.1"]);
        assert_eq!(p.configured, vec!["eth1"]);
        assert!(p.dhcp.is_empty());
    }

    #[test]
    fn vlans_bonds_ipv6_and_dhcp_links() {
        let doc = json!({
            // a VLAN listed before its parent, a bond over both NICs
            "links": [
                {"id": "v", "type": "vlan", "vlan_link": "p0", "vlan_id": 100, "vlan_mac_address": "52:54:00:aa:00:01"},
                {"id": "p0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:00:01"},
                {"id": "p1", "type": "phy", "ethernet_mac_address": "52:54:00:aa:00:02"},
            ],
            "networks": [
                {"id": "n6", "type": "ipv6", "link": "v", "ip_address": "fd00::5/64",
                 "routes": [{"network": "::", "netmask": "::", "gateway": "fd00::1"}],
                 "services": [{"type": "dns", "address": "fd00::53"}]},
                {"id": "d", "type": "ipv4_dhcp", "link": "p1"},
            ],
        });
        let p = plan(&doc, &ifs()).unwrap();
        assert_eq!(
            ips(&p),
            vec![
                "ip link set dev eth0 up",
                "ip link set dev eth1 up",
                "ip link set dev eth0 up",
                "ip link add link eth0 name eth0.100 type vlan id 100",
                "ip link set dev eth0.100 address 52:54:00:aa:00:01",
                "ip link set dev eth0.100 up",
                "ip -6 addr add fd00::5/64 dev eth0.100",
                "ip -6 route replace default via fd00::1 dev eth0.100",
            ]
        );
        assert_eq!(p.dhcp, vec!["eth1"]);
        assert_eq!(p.dns, vec!["fd00::53"]);

        let bond = json!({
            "links": [
                {"id": "p0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:00:01"},
                {"id": "p1", "type": "phy", "ethernet_mac_address": "52:54:00:aa:00:02"},
                {"id": "b", "type": "bond", "bond_links": ["p0", "p1"], "bond_mode": "802.3ad",
                 "ethernet_mac_address": "52:54:00:aa:00:01"},
            ],
            "networks": [{"id": "n", "type": "ipv4", "link": "b", "ip_address": "10.0.0.5", "netmask": "255.255.0.0"}],
        });
        let p = plan(&bond, &ifs()).unwrap();
        let s = ips(&p);
        assert!(
            s.contains(&"class/net/bonding_masters < +bond0".to_owned()),
            "{s:?}"
        );
        assert!(
            s.contains(&"class/net/bond0/bonding/mode < 802.3ad".to_owned()),
            "{s:?}"
        );
        assert!(
            s.contains(&"class/net/bond0/bonding/slaves < +eth1".to_owned()),
            "{s:?}"
        );
        assert_eq!(s.last().unwrap(), "ip -4 addr add 10.0.0.5/16 dev bond0");
    }

    #[test]
    fn unusable_documents_are_refused_with_the_reason() {
        let e = plan(&json!({}), &ifs()).unwrap_err();
        assert!(e.contains("no links"), "{e}");
        let e = plan(
            &json!({"links": [{"id": "x", "type": "phy", "ethernet_mac_address": "00:11:22:33:44:55"}]}),
            &ifs(),
        )
        .unwrap_err();
        assert!(e.contains("no interface has MAC 00:11:22:33:44:55"), "{e}");
        let e = plan(
            &json!({"links": [{"id": "v", "type": "vlan", "vlan_link": "nope", "vlan_id": 5}]}),
            &ifs(),
        )
        .unwrap_err();
        assert!(e.contains("do not exist"), "{e}");
        let e = plan(
            &json!({"links": [{"id": "p", "ethernet_mac_address": "52:54:00:aa:00:01"}],
                    "networks": [{"id": "n", "type": "ipv4", "link": "other", "ip_address": "10.0.0.1"}]}),
            &ifs(),
        )
        .unwrap_err();
        assert!(e.contains("not in links"), "{e}");
    }

    #[test]
    fn interfaces_are_read_from_sysfs() {
        let d = tempfile::tempdir().unwrap();
        for (n, m) in [("lo", "00:00:00:00:00:00"), ("eth0", "52:54:00:aa:00:01")] {
            std::fs::create_dir_all(d.path().join("class/net").join(n)).unwrap();
            std::fs::write(
                d.path().join("class/net").join(n).join("address"),
                format!("{m}\n"),
            )
            .unwrap();
        }
        assert_eq!(
            interfaces(d.path()),
            vec![("eth0".to_owned(), "52:54:00:aa:00:01".to_owned())]
        );
    }
}
