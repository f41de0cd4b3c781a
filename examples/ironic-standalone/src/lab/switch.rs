//! `ironic lab --switch ovs`: the rack's top-of-rack switch is a real Open vSwitch
//! bridge. Every NIC of every simulated server becomes a port of the bridge
//! (an internal interface with the NIC's MAC address), the ports are enrolled
//! wired to it (`local_link_connection`), and the nodes use the `switch` network
//! interface with the `ovs` switch driver: `ovs-vsctl get Port PORT tag` follows
//! each node through cleaning, provisioning, its tenant network and back.
//!
//! The simulated servers' agents still reach the service over loopback; the bridge
//! shows (and enforces, for whatever is plugged into its ports) the isolation.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use ironic_core::MacAddress;
use ironic_core::model::JsonMap;
use ironic_core::switch::NetworkDef;
use serde_json::json;

use crate::config::Config;
use crate::network::SwitchSection;

/// VLAN of the provisioning network (nodes being deployed).
pub const PROVISIONING_VLAN: u16 = 10;
/// VLAN of the cleaning network.
pub const CLEANING_VLAN: u16 = 20;
/// The tenant networks nodes can be attached to once deployed, with their VLANs.
pub const TENANT_NETWORKS: [(&str, u16); 2] = [("tenant-a", 101), ("tenant-b", 102)];
/// The tag OVS ports of idle nodes carry: no network, parked (see `ironic-switch-ovs`).
pub const PARKED_VLAN: u16 = 4095;

/// The default OVSDB address.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `external_ids` keys of a lab's bridge naming the process that owns it.
const OWNER_PID: &str = "ironic-lab-pid";
const OWNER_START: &str = "ironic-lab-pid-start";
const OWNER_BOOT: &str = "ironic-lab-boot-id";

/// Interface names are at most 15 bytes (IFNAMSIZ - 1): internal ports of a netdev
/// bridge are kernel tap devices.
const IFNAME_MAX: usize = 15;

/// A port's name: `<bridge>-<server>-<nic>`, or `<bridge>p<k>` (k: the NIC's
/// index on the bridge, hex) when that would be longer than an interface name.
fn port_name(bridge: &str, server: usize, nic: usize, k: usize) -> String {
    let readable = format!("{bridge}-{server}-{nic}");
    if readable.len() <= IFNAME_MAX {
        readable
    } else {
        format!("{bridge}p{k:x}")
    }
}

/// A process, told apart from a later one with the same pid by its start time
/// (clock ticks after boot, `/proc/PID/stat` field 22) and the boot it ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    pid: u32,
    start: String,
    boot: String,
}

impl Owner {
    fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_time(pid).unwrap_or_default(),
            boot: boot_id(),
        }
    }

    /// Whether the process still runs (when /proc cannot tell: assumed running).
    fn alive(&self) -> bool {
        if !self.boot.is_empty() && self.boot != boot_id() {
            return false;
        }
        match start_time(self.pid) {
            Some(start) => self.start.is_empty() || start == self.start,
            None => start_time(std::process::id()).is_none(),
        }
    }
}

/// Removes the lab bridges whose owner process is gone (they carry
/// [`OWNER_PID`] in `external_ids`; other bridges are never touched).
fn remove_stale(db: &str) -> Result<(), String> {
    let out = vsctl(
        db,
        &[
            "--format=json",
            "--columns=name,external_ids",
            "list",
            "Bridge",
        ]
        .map(String::from),
    )?;
    for (name, owner) in lab_bridges(&out)? {
        if owner.alive() {
            continue;
        }
        match vsctl(db, &["--if-exists", "del-br", &name].map(String::from)) {
            Ok(_) => {
                tracing::info!(bridge = %name, pid = owner.pid, "removed the bridge of a lab that is gone")
            }
            Err(e) => {
                tracing::warn!(bridge = %name, error = %e, "could not remove a stale lab bridge")
            }
        }
    }
    Ok(())
}

/// The lab bridges in `ovs-vsctl --format=json --columns=name,external_ids list
/// Bridge` output, with their owners.
fn lab_bridges(json: &str) -> Result<Vec<(String, Owner)>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("reading ovs-vsctl's bridge list: {e}"))?;
    let mut found = Vec::new();
    for row in v["data"].as_array().into_iter().flatten() {
        let Some(name) = row[0].as_str() else {
            continue;
        };
        // external_ids: ["map", [[key, value], ...]]
        let ids: std::collections::HashMap<&str, &str> = row[1][1]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|kv| Some((kv[0].as_str()?, kv[1].as_str()?)))
            .collect();
        let Some(pid) = ids.get(OWNER_PID).and_then(|p| p.parse().ok()) else {
            continue;
        };
        found.push((
            name.to_owned(),
            Owner {
                pid,
                start: ids.get(OWNER_START).unwrap_or(&"").to_string(),
                boot: ids.get(OWNER_BOOT).unwrap_or(&"").to_string(),
            },
        ));
    }
    Ok(found)
}

fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command (field 2) may hold spaces and parentheses: fields after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The lab's bridge; removed (with its ports) when dropped.
#[derive(Debug)]
pub struct LabBridge {
    /// The bridge's name (also the switch's name in `[switches]`).
    pub name: String,
    /// The OVSDB address.
    pub db: String,
    /// Port names per server, per NIC (rack order).
    pub ports: Vec<Vec<String>>,
}

fn vsctl(db: &str, args: &[String]) -> Result<String, String> {
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={db}"))
        .arg("--timeout=30")
        .args(args)
        .output()
        .map_err(|e| {
            format!(
                "running ovs-vsctl: {e} (install Open vSwitch: apt-get install openvswitch-switch, then start it: /usr/share/openvswitch/scripts/ovs-ctl start)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "ovs-vsctl {}: {} (is Open vSwitch running at {db}? /usr/share/openvswitch/scripts/ovs-ctl start)",
            args.first().map(String::as_str).unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl LabBridge {
    /// Creates a new bridge (netdev datapath: no kernel module needed) named after
    /// this process (`il<pid in hex>g<n>`), first removing the bridges earlier labs
    /// left behind when they died without cleaning up (a crash, a kill -9): those
    /// whose recorded owner process is gone. Bridges of running labs are kept.
    pub fn create(db: &str) -> Result<LabBridge, String> {
        remove_stale(db)?;
        let pid = std::process::id();
        let name = format!("il{pid:x}g{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let owner = Owner::me();
        vsctl(
            db,
            &[
                "--may-exist".to_owned(),
                "add-br".to_owned(),
                name.clone(),
                "--".to_owned(),
                "set".to_owned(),
                "bridge".to_owned(),
                name.clone(),
                "datapath_type=netdev".to_owned(),
                format!("external_ids:{OWNER_PID}=\"{}\"", owner.pid),
                format!("external_ids:{OWNER_START}=\"{}\"", owner.start),
                format!("external_ids:{OWNER_BOOT}=\"{}\"", owner.boot),
            ],
        )?;
        Ok(LabBridge {
            name,
            db: db.to_owned(),
            ports: Vec::new(),
        })
    }

    /// Adds one port per NIC of a server (internal interfaces carrying the NICs'
    /// MAC addresses), in one transaction; returns their names.
    pub fn add_server(&mut self, macs: &[MacAddress]) -> Result<Vec<String>, String> {
        let i = self.ports.len();
        let first = self.ports.iter().map(Vec::len).sum::<usize>();
        let names: Vec<String> = (0..macs.len())
            .map(|j| port_name(&self.name, i, j, first + j))
            .collect();
        let mut args: Vec<String> = Vec::new();
        for (p, mac) in names.iter().zip(macs) {
            args.extend(
                [
                    "--",
                    "--may-exist",
                    "add-port",
                    &self.name,
                    p,
                    "--",
                    "set",
                    "interface",
                    p,
                    "type=internal",
                    &format!("mac=\"{mac}\""),
                ]
                .map(String::from),
            );
        }
        if !args.is_empty() {
            vsctl(&self.db, &args)?;
        }
        self.ports.push(names.clone());
        Ok(names)
    }

    /// `local_link_connection` of a server's NIC.
    pub fn wiring(&self, server: usize, nic: usize) -> Option<JsonMap> {
        let port = self.ports.get(server)?.get(nic)?;
        json!({"switch_info": self.name, "port_id": port})
            .as_object()
            .cloned()
    }

    /// The VLAN tag a port carries now (`None`: untagged or unset).
    pub fn tag(&self, port: &str) -> Result<Option<u16>, String> {
        let out = vsctl(&self.db, &["get", "Port", port, "tag"].map(String::from))?;
        Ok(out.parse().ok())
    }

    /// The service's networks and switch for this bridge: provisioning, cleaning,
    /// tenant-a, tenant-b; idle nodes' ports are parked.
    pub fn configure(&self, cfg: &mut Config) {
        let net = |vlan| NetworkDef {
            vlan,
            physical_network: None,
            mtu: None,
        };
        cfg.networks
            .insert("provisioning".into(), net(PROVISIONING_VLAN));
        cfg.networks.insert("cleaning".into(), net(CLEANING_VLAN));
        for (n, v) in TENANT_NETWORKS {
            cfg.networks.insert(n.into(), net(v));
        }
        cfg.switch_network.provisioning_network = Some("provisioning".into());
        cfg.switch_network.cleaning_network = Some("cleaning".into());
        cfg.switches.insert(
            self.name.clone(),
            SwitchSection {
                driver: "ovs".into(),
                address: self.db.clone(),
                options: [("bridge".to_owned(), toml::Value::String(self.name.clone()))]
                    .into_iter()
                    .collect(),
                ..SwitchSection::default()
            },
        );
    }
}

impl Drop for LabBridge {
    fn drop(&mut self) {
        if let Err(e) = vsctl(
            &self.db,
            &["--if-exists", "del-br", &self.name].map(String::from),
        ) {
            tracing::warn!(bridge = %self.name, error = %e, "could not remove the lab's bridge");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_fit_an_interface_name() {
        assert_eq!(port_name("il1a2bg0", 3, 1, 7), "il1a2bg0-3-1");
        let long = port_name("il3fffffg12", 120, 1, 241);
        assert_eq!(long, "il3fffffg12pf1");
        assert!(long.len() <= IFNAME_MAX);
    }

    #[test]
    fn only_bridges_with_an_owner_are_the_labs() {
        let out = r#"{"data":[["br-ex",["map",[]]],
            ["il10g0",["map",[["ironic-lab-boot-id","b"],["ironic-lab-pid","16"],["ironic-lab-pid-start","99"]]]],
            ["other",["map",[["owner","x"]]]]],"headings":["name","external_ids"]}"#;
        let found = lab_bridges(out).unwrap();
        assert_eq!(
            found,
            vec![(
                "il10g0".to_owned(),
                Owner {
                    pid: 16,
                    start: "99".into(),
                    boot: "b".into()
                }
            )]
        );
        assert!(lab_bridges("not json").is_err());
    }

    #[test]
    fn an_owner_is_alive_only_while_its_process_runs() {
        let me = Owner::me();
        assert!(!me.start.is_empty() && !me.boot.is_empty(), "{me:?}");
        assert!(me.alive());
        // the same pid started at another time: a reused pid, the owner is gone
        let reused = Owner {
            start: format!("{}1", me.start),
            ..me.clone()
        };
        assert!(!reused.alive());
        // another boot
        let earlier_boot = Owner {
            boot: "00000000-0000-0000-0000-000000000000".into(),
            ..me.clone()
        };
        assert!(!earlier_boot.alive());
        // a process that has exited
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Owner {
            pid,
            start: "1".into(),
            boot: me.boot.clone(),
        };
        assert!(!gone.alive());
    }
}
