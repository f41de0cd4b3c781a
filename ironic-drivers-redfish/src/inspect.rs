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

/// Where a disk was seen (Ironic sizes `local_gb` from each kind differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DiskSource {
    /// A `Storage` drive.
    #[default]
    Drive,
    /// A `Storage` volume.
    Volume,
    /// A `SimpleStorage` device; `true` when its `Status.State` is `Enabled`.
    Simple(bool),
}

/// One disk seen by inspection.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Disk {
    pub name: String,
    pub size: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub rotational: Option<bool>,
    pub source: DiskSource,
}

/// Ironic's `_detect_local_gb`: in each of SimpleStorage (enabled devices),
/// Storage volumes and, when no volume qualifies, Storage drives, the smallest
/// size of at least 4 GiB; the smaller of the SimpleStorage and Storage sizes
/// when both exist; in GiB less one (for partitioning), and 0 for a disk-less
/// system.
pub(crate) fn local_gb(disks: &[Disk]) -> u64 {
    let smallest = |want: &dyn Fn(DiskSource) -> bool| {
        disks
            .iter()
            .filter(|d| want(d.source))
            .map(|d| d.size)
            .filter(|s| *s >= 4 * GIB)
            .min()
            .unwrap_or(0)
    };
    let simple = smallest(&|s| s == DiskSource::Simple(true));
    let mut storage = smallest(&|s| s == DiskSource::Volume);
    if storage == 0 {
        storage = smallest(&|s| s == DiskSource::Drive);
    }
    let size = if simple > 0 && storage > 0 {
        simple.min(storage)
    } else {
        simple.max(storage)
    };
    // int(size / Gi - 1), never below 0
    (size / GIB).saturating_sub(1)
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
    let local = local_gb(&f.disks);
    if local == 0 {
        tracing::warn!(system = ?f.system.odata_id, "no disk of at least 4 GiB found; assuming a disk-less node (local_gb 0)");
    }
    props.insert("local_gb".into(), json!(local));
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
    // Every NIC with a valid MAC becomes a port, whatever its state, as in Ironic.
    for nic in &f.nics {
        let raw = nic_mac(nic);
        let Some(mac) = raw.and_then(|m| m.trim().parse::<MacAddress>().ok()) else {
            tracing::warn!(nic = ?nic.odata_id, mac = ?raw, "NIC without a usable MAC address skipped");
            continue;
        };
        // Ironic takes any well-formed MAC (DMTF's mockups use group-bit ones);
        // an all-zero MAC is a placeholder and would clash between nodes.
        if mac.octets() == [0; 6] || ports.iter().any(|p| p.address == mac) {
            continue;
        }
        interfaces.push(json!({
            "name": nic.id.clone().or(nic.name.clone()),
            "mac_address": mac.to_string(),
            "speed_mbps": nic.speed_mbps,
        }));
        ports.push(DiscoveredPort::new(mac, true));
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
    let mut data = InspectionData::default();
    data.properties = props;
    data.ports = ports;
    data.boot_mode = boot_mode.map(str::to_owned);
    data.inventory = Some(inventory);
    data
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
        source: DiskSource::Drive,
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
                    source: DiskSource::Volume,
                    ..Disk::default()
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
                let enabled = d
                    .status
                    .as_ref()
                    .and_then(|s| s.state.as_deref())
                    .is_some_and(|s| s.eq_ignore_ascii_case("Enabled"));
                disks.push(Disk {
                    name: d.name.clone().unwrap_or_default(),
                    size,
                    model: d.model.clone(),
                    source: DiskSource::Simple(enabled),
                    ..Disk::default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(size_gib: u64, source: DiskSource) -> Disk {
        Disk {
            size: size_gib * GIB,
            source,
            ..Disk::default()
        }
    }

    #[test]
    fn local_gb_follows_ironics_rule() {
        use DiskSource::*;
        assert_eq!(local_gb(&[]), 0, "disk-less");
        assert_eq!(local_gb(&[disk(2, Drive)]), 0, "too small to count");
        // the smallest drive of at least 4 GiB, less one GiB; never a sum
        assert_eq!(
            local_gb(&[disk(960, Drive), disk(480, Drive), disk(1, Drive)]),
            479
        );
        // volumes win over drives
        assert_eq!(local_gb(&[disk(100, Drive), disk(1800, Volume)]), 1799);
        // volumes too small: drives again
        assert_eq!(local_gb(&[disk(100, Drive), disk(2, Volume)]), 99);
        // SimpleStorage and Storage: the smaller of both
        assert_eq!(local_gb(&[disk(300, Simple(true)), disk(200, Drive)]), 199);
        assert_eq!(local_gb(&[disk(300, Simple(true))]), 299);
        // a SimpleStorage device that is not Enabled does not count
        assert_eq!(local_gb(&[disk(300, Simple(false))]), 0);
        // fractions truncate as int() does
        let d = Disk {
            size: 4 * GIB + GIB / 2,
            ..Disk::default()
        };
        assert_eq!(local_gb(&[d]), 3);
    }
}
