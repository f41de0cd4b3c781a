//! `RedfishInspect`: out-of-band inspection (CPUs, memory, disks, NICs, boot mode).

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, DiscoveredPort, InspectInterface, InspectOutcome, InspectionData, PropertyDoc,
    Task,
};
use ironic_core::model::JsonMap;
use ironic_core::{DriverError, MacAddress};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::RedfishClient;
use crate::error::Result;
use crate::models::{
    BootOverrideMode, ComputerSystem, Drive, EthernetInterface, Processor, SimpleStorage, Storage,
    Volume,
};
use crate::{RedfishConfig, Shared, config};

const GIB: u64 = 1 << 30;

/// Out-of-band inspection over Redfish (`inspect_interface = "redfish"`).
#[derive(Debug, Clone)]
pub struct RedfishInspect {
    shared: Arc<Shared>,
}

impl RedfishInspect {
    /// An inspect interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishInspect { shared }
    }
}

/// Ironic's `cpu_arch` for a processor.
pub(crate) fn cpu_arch(p: &Processor) -> Option<&'static str> {
    let by_set = p.instruction_set.as_deref().and_then(|s| {
        Some(match s.to_ascii_lowercase().as_str() {
            "x86-64" | "x86_64" => "x86_64",
            "x86" => "i686",
            "arm-a64" | "aarch64" => "aarch64",
            "arm-a32" => "arm",
            "ia-64" => "ia64",
            "powerisa" => "ppc64le",
            "mips64" => "mips64",
            "mips32" => "mips",
            _ => return None,
        })
    });
    by_set.or_else(|| {
        p.architecture.as_deref().and_then(|a| {
            Some(match a.to_ascii_lowercase().as_str() {
                "x86" => "x86_64",
                "arm" => "aarch64",
                "ia-64" => "ia64",
                "power" => "ppc64le",
                "mips" => "mips64",
                _ => return None,
            })
        })
    })
}

/// One disk seen by inspection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Disk {
    pub name: String,
    pub size: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub rotational: Option<bool>,
}

/// What was read from the BMC, before it becomes [`InspectionData`].
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub system: ComputerSystem,
    pub processors: Vec<Processor>,
    pub disks: Vec<Disk>,
    pub nics: Vec<EthernetInterface>,
}

/// Turn what was read into Ironic's properties, ports and inventory. Pure.
pub(crate) fn inspection_data(f: &Facts) -> InspectionData {
    let mut props = JsonMap::new();
    let cpus: Vec<&Processor> = f
        .processors
        .iter()
        .filter(|p| {
            p.processor_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("CPU"))
                && !p.status.as_ref().is_some_and(|s| s.is_absent())
        })
        .collect();
    let threads: u64 = cpus.iter().filter_map(|p| p.total_threads).sum();
    let summary = f.system.processor_summary.clone().unwrap_or_default();
    let cpu_count = if threads > 0 {
        Some(threads)
    } else {
        summary.logical_count.or(summary.count)
    };
    if let Some(c) = cpu_count.filter(|c| *c > 0) {
        props.insert("cpus".into(), json!(c));
    }
    let arch = cpus.iter().find_map(|p| cpu_arch(p));
    if let Some(a) = arch {
        props.insert("cpu_arch".into(), json!(a));
    }
    let memory_mb = f
        .system
        .memory_summary
        .as_ref()
        .and_then(|m| m.total_gib)
        .filter(|g| *g > 0.0)
        .map(|g| (g * 1024.0).round() as u64);
    if let Some(m) = memory_mb {
        props.insert("memory_mb".into(), json!(m));
    }
    // Ironic: the largest disk of at least 4 GiB, less one GiB for partitioning.
    let largest = f
        .disks
        .iter()
        .map(|d| d.size)
        .filter(|s| *s >= 4 * GIB)
        .max();
    if let Some(size) = largest {
        props.insert("local_gb".into(), json!(size / GIB - 1));
    }
    let boot_mode = f
        .system
        .boot
        .as_ref()
        .and_then(|b| b.mode.as_ref())
        .and_then(|m| match m {
            BootOverrideMode::Uefi => Some("uefi"),
            BootOverrideMode::Legacy => Some("bios"),
            BootOverrideMode::Other(_) => None,
        });
    if let Some(m) = boot_mode {
        props.insert("capabilities".into(), json!(format!("boot_mode:{m}")));
    }
    let mut ports: Vec<DiscoveredPort> = Vec::new();
    let mut interfaces = Vec::new();
    for nic in &f.nics {
        if nic
            .status
            .as_ref()
            .is_some_and(|s| s.is_absent() || s.state.as_deref() == Some("Disabled"))
        {
            continue;
        }
        let raw = nic_mac(nic);
        let Some(mac) = raw.and_then(|m| m.trim().parse::<MacAddress>().ok()) else {
            tracing::warn!(nic = ?nic.odata_id, mac = ?raw, "NIC without a usable MAC address skipped");
            continue;
        };
        if mac.is_multicast() || mac.octets() == [0; 6] || ports.iter().any(|p| p.address == mac) {
            continue;
        }
        interfaces.push(json!({
            "name": nic.id.clone().or(nic.name.clone()),
            "mac_address": mac.to_string(),
            "speed_mbps": nic.speed_mbps,
        }));
        ports.push(DiscoveredPort {
            address: mac,
            pxe_enabled: true,
            local_link_connection: JsonMap::new(),
        });
    }
    let s = &f.system;
    let inventory = json!({
        "cpu": {
            "count": cpu_count,
            "architecture": arch,
            "model_name": cpus.iter().find_map(|p| p.model.clone()).or(summary.model),
            "frequency": cpus.iter().find_map(|p| p.max_speed_mhz),
        },
        "memory": { "physical_mb": memory_mb },
        "disks": f.disks.iter().map(|d| json!({
            "name": d.name, "size": d.size, "model": d.model,
            "serial": d.serial, "rotational": d.rotational,
        })).collect::<Vec<_>>(),
        "interfaces": interfaces,
        "system_vendor": {
            "manufacturer": s.manufacturer, "product_name": s.model,
            "serial_number": s.serial_number,
        },
        "boot": { "current_boot_mode": boot_mode },
    });
    InspectionData {
        properties: props,
        ports,
        boot_mode: boot_mode.map(str::to_owned),
        inventory: Some(inventory),
    }
}

/// Read a linked collection's members; a BMC that fails to serve it is logged
/// and read as empty (inspection reports what it could find).
async fn optional_members<T: DeserializeOwned>(
    client: &RedfishClient,
    link: Option<&str>,
    what: &str,
) -> Vec<T> {
    let Some(link) = link else { return Vec::new() };
    match client.members(link).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(bmc = %client.address, collection = link, error = %e, "inspection: could not read {what}");
            Vec::new()
        }
    }
}

/// A NIC's MAC: `MACAddress`, or `PermanentMACAddress` when that is empty.
pub(crate) fn nic_mac(nic: &EthernetInterface) -> Option<&str> {
    [&nic.mac_address, &nic.permanent_mac_address]
        .into_iter()
        .flatten()
        .map(|m| m.trim())
        .find(|m| !m.is_empty())
}

pub(crate) fn drive_disk(d: &Drive, link: &str) -> Option<Disk> {
    if d.status.as_ref().is_some_and(|s| s.is_absent()) {
        return None;
    }
    Some(Disk {
        name: d
            .name
            .clone()
            .or(d.id.clone())
            .unwrap_or_else(|| link.to_owned()),
        size: d.capacity_bytes?,
        model: d.model.clone(),
        serial: d.serial_number.clone(),
        rotational: d
            .media_type
            .as_deref()
            .map(|m| m.eq_ignore_ascii_case("HDD")),
    })
}

pub(crate) async fn read_facts(client: &RedfishClient, path: &str) -> Result<Facts> {
    let system: ComputerSystem = client.get(path).await?;
    let link = |l: &Option<crate::models::Link>| l.as_ref().map(|l| l.odata_id.clone());
    let processors =
        optional_members(client, link(&system.processors).as_deref(), "processors").await;
    let nics = optional_members(client, link(&system.ethernet_interfaces).as_deref(), "NICs").await;
    let mut disks = Vec::new();
    let storages: Vec<Storage> =
        optional_members(client, link(&system.storage).as_deref(), "storage").await;
    for st in &storages {
        for d in &st.drives {
            match client.get::<Drive>(&d.odata_id).await {
                Ok(drive) => disks.extend(drive_disk(&drive, &d.odata_id)),
                Err(e) => {
                    tracing::warn!(drive = %d.odata_id, error = %e, "inspection: drive skipped")
                }
            }
        }
        let vols: Vec<Volume> = optional_members(
            client,
            st.volumes.as_ref().map(|l| l.odata_id.as_str()),
            "volumes",
        )
        .await;
        for v in vols {
            if let Some(size) = v.capacity_bytes {
                disks.push(Disk {
                    name: v.name.or(v.id).unwrap_or_default(),
                    size,
                    model: v.raid_type.or(v.volume_type),
                    serial: None,
                    rotational: None,
                });
            }
        }
    }
    let simple: Vec<SimpleStorage> = optional_members(
        client,
        link(&system.simple_storage).as_deref(),
        "SimpleStorage",
    )
    .await;
    for s in &simple {
        for d in &s.devices {
            if let Some(size) = d.capacity_bytes
                && !d.status.as_ref().is_some_and(|s| s.is_absent())
            {
                disks.push(Disk {
                    name: d.name.clone().unwrap_or_default(),
                    size,
                    model: d.model.clone(),
                    serial: None,
                    rotational: None,
                });
            }
        }
    }
    Ok(Facts {
        system,
        processors,
        disks,
        nics,
    })
}

#[async_trait]
impl BaseInterface for RedfishInspect {
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task).map(|_| ())
    }
}

#[async_trait]
impl InspectInterface for RedfishInspect {
    async fn inspect_hardware(&self, task: &mut Task) -> Result<InspectOutcome, DriverError> {
        let (client, path) = self.shared.connect(task).await?;
        let facts = read_facts(&client, &path).await?;
        let data = inspection_data(&facts);
        let missing: Vec<&str> = ["memory_mb", "local_gb", "cpu_arch"]
            .into_iter()
            .filter(|k| !data.properties.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            tracing::warn!(node = %task.node.uuid, bmc = %client.address, ?missing, "Redfish inspection could not discover some essential properties");
        }
        let props = Value::Object(data.properties.clone());
        tracing::info!(node = %task.node.uuid, properties = %props, ports = data.ports.len(), "Redfish inspection finished");
        Ok(InspectOutcome::Done(data))
    }
}
