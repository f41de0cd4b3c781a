//! A rack of simulated servers: disk files, one BMC each (Redfish or IPMI, on its own
//! loopback port, as real BMCs have their own address), and the machines behind them.

use std::net::SocketAddr;
use std::path::PathBuf;

use ironic_core::{MacAddress, Secret};
use serde_json::{Map, Value, json};

use crate::ipmi::IpmiSim;
use crate::machine::{AgentLaunch, Machine, MachineState};
use crate::model::{Faults, ServerSpec, SimServer};
use crate::redfish::RedfishSim;

/// Which protocol a server's BMC speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BmcKind {
    /// Redfish over HTTP.
    Redfish,
    /// IPMI v2.0 lanplus over UDP.
    Ipmi,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct RackConfig {
    /// Number of servers.
    pub servers: usize,
    /// Share of them with a Redfish BMC (the rest IPMI), 0.0 to 1.0.
    pub redfish_ratio: f64,
    /// Where disk files go (`<dir>/<name>.img`).
    pub disk_dir: PathBuf,
    /// Size of each (sparse) disk file.
    pub disk_size: u64,
    /// Faults per server index.
    pub faults: Vec<(usize, Faults)>,
    /// Address the BMCs bind (port 0: any free port).
    pub bind: std::net::IpAddr,
}

impl RackConfig {
    /// `n` servers, half Redfish, 1 GiB disks in `disk_dir`.
    pub fn new(n: usize, disk_dir: PathBuf) -> RackConfig {
        RackConfig {
            servers: n,
            redfish_ratio: 0.5,
            disk_dir,
            disk_size: 1 << 30,
            faults: Vec::new(),
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    /// The BMC kind of server `i`: Redfish servers spread evenly among IPMI ones.
    pub fn kind_of(&self, i: usize) -> BmcKind {
        let ratio = self.redfish_ratio.clamp(0.0, 1.0);
        let before = (i as f64 * ratio).floor();
        let after = ((i + 1) as f64 * ratio).floor();
        if after > before {
            BmcKind::Redfish
        } else {
            BmcKind::Ipmi
        }
    }
}

/// One server of the rack.
#[derive(Debug)]
pub struct RackServer {
    /// The shared model.
    pub server: SimServer,
    /// Its BMC's protocol.
    pub kind: BmcKind,
    /// Its BMC's address.
    pub bmc: SocketAddr,
    redfish: Option<RedfishSim>,
    ipmi: Option<IpmiSim>,
    machine: Option<Machine>,
}

impl RackServer {
    /// The node name.
    pub fn name(&self) -> &str {
        &self.server.spec().name
    }

    /// What its machine is doing (`None` when machines are not simulated).
    pub fn machine_state(&self) -> Option<MachineState> {
        self.machine.as_ref().map(Machine::state)
    }

    /// Ironic `driver_info` for this server's BMC (password included: it is enrolled
    /// through the conductor, which stores it as a secret).
    pub fn driver_info(&self) -> Map<String, Value> {
        let spec = self.server.spec();
        let v = match self.kind {
            BmcKind::Redfish => json!({
                "redfish_address": format!("http://{}", self.bmc),
                "redfish_system_id": format!("/redfish/v1/Systems/{}", spec.name),
                "redfish_username": spec.username,
                "redfish_password": spec.password.expose(),
                "redfish_verify_ca": false,
            }),
            BmcKind::Ipmi => json!({
                "ipmi_address": self.bmc.ip().to_string(),
                "ipmi_port": self.bmc.port(),
                "ipmi_username": spec.username,
                "ipmi_password": spec.password.expose(),
                "ipmi_cipher_suite": 3,
                "ipmi_priv_level": "ADMINISTRATOR",
            }),
        };
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// A running rack; everything stops on [`Rack::shutdown`] (or when dropped).
#[derive(Debug)]
pub struct Rack {
    /// The servers, in index order.
    pub servers: Vec<RackServer>,
}

/// The MAC of NIC `nic` of server `i` (locally administered QEMU prefix).
pub fn mac_of(i: usize, nic: u8) -> MacAddress {
    MacAddress([0x52, 0x54, 0x00, 0xA0 + nic, (i >> 8) as u8, i as u8])
}

fn random_password() -> String {
    (0..16)
        .map(|_| {
            let c = rand::random::<u8>() % 62;
            (match c {
                0..=9 => b'0' + c,
                10..=35 => b'a' + c - 10,
                _ => b'A' + c - 36,
            }) as char
        })
        .collect()
}

impl Rack {
    /// Creates the disk files, starts every BMC, and (with `agent`) the machines.
    pub async fn start(cfg: &RackConfig, agent: Option<AgentLaunch>) -> std::io::Result<Rack> {
        if cfg.servers > 0xFFFF {
            return Err(std::io::Error::other("at most 65535 servers"));
        }
        std::fs::create_dir_all(&cfg.disk_dir)?;
        let mut servers = Vec::with_capacity(cfg.servers);
        for i in 0..cfg.servers {
            let name = format!("lab-{i}");
            let disk = cfg.disk_dir.join(format!("{name}.img"));
            // A blank (sparse) disk each start: the lab's machines come out of the box empty.
            let f = std::fs::File::create(&disk)?;
            f.set_len(cfg.disk_size)?;
            let spec = ServerSpec {
                name: name.clone(),
                uuid: uuid::Uuid::new_v4(),
                macs: vec![mac_of(i, 0), mac_of(i, 1)],
                disk,
                disk_size: cfg.disk_size,
                cpus: 4,
                memory_mib: 8192,
                username: "admin".into(),
                password: Secret::new(random_password()),
            };
            let server = SimServer::new(spec);
            if let Some((_, f)) = cfg.faults.iter().find(|(idx, _)| *idx == i) {
                server.set_faults(f.clone());
            }
            let kind = cfg.kind_of(i);
            let any = SocketAddr::new(cfg.bind, 0);
            let (bmc, redfish, ipmi) = match kind {
                BmcKind::Redfish => {
                    let sim = RedfishSim::start(any, vec![server.clone()]).await?;
                    (sim.addr(), Some(sim), None)
                }
                BmcKind::Ipmi => {
                    let sim = IpmiSim::start(any, server.clone()).await?;
                    (sim.addr(), None, Some(sim))
                }
            };
            let machine = agent.clone().map(|a| Machine::spawn(server.clone(), a));
            tracing::info!(server = %name, bmc = ?kind, %bmc, "simulated server up");
            servers.push(RackServer {
                server,
                kind,
                bmc,
                redfish,
                ipmi,
                machine,
            });
        }
        Ok(Rack { servers })
    }

    /// Stops machines (killing agents) and BMCs.
    pub async fn shutdown(self) {
        for s in self.servers {
            if let Some(m) = s.machine {
                m.shutdown().await;
            }
            if let Some(r) = s.redfish {
                r.shutdown().await;
            }
            if let Some(i) = s.ipmi {
                i.shutdown().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redfish_ratio_spreads_kinds() {
        let mut cfg = RackConfig::new(10, PathBuf::from("/tmp"));
        let count = |cfg: &RackConfig| {
            (0..cfg.servers)
                .filter(|i| cfg.kind_of(*i) == BmcKind::Redfish)
                .count()
        };
        assert_eq!(count(&cfg), 5);
        cfg.redfish_ratio = 0.0;
        assert_eq!(count(&cfg), 0);
        cfg.redfish_ratio = 1.0;
        assert_eq!(count(&cfg), 10);
        cfg.redfish_ratio = 0.3;
        assert_eq!(count(&cfg), 3);
    }

    #[test]
    fn macs_are_unique_per_server_and_nic() {
        let mut all: Vec<_> = (0..600)
            .flat_map(|i| [mac_of(i, 0), mac_of(i, 1)])
            .collect();
        all.sort_by_key(|m| m.0);
        all.dedup();
        assert_eq!(all.len(), 1200);
    }
}
