//! `RedfishRaid`: create the volumes of `target_raid_config` under a Storage
//! controller, delete volumes, following tasks.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::DriverError;
use ironic_core::driver::{
    BaseInterface, PropertyDoc, RaidInterface, Step, StepDef, StepKind, StepOutcome, Task,
};
use ironic_core::model::JsonMap;
use serde_json::{Value, json};

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::models::{ComputerSystem, Drive, Storage};
use crate::{RedfishConfig, Shared, config};

const GIB: u64 = 1 << 30;

/// RAID over Redfish (`raid_interface = "redfish"`).
#[derive(Debug, Clone)]
pub struct RedfishRaid {
    shared: Arc<Shared>,
}

impl RedfishRaid {
    /// A RAID interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishRaid { shared }
    }
}

/// What a RAID level means: (Redfish `RAIDType`, deprecated `VolumeType`,
/// minimum number of drives, data drives for `n` drives).
pub(crate) type RaidLevel = (&'static str, &'static str, usize, fn(usize) -> usize);

/// Ironic's RAID level (`"1"`, `"1+0"`, ...).
pub(crate) fn raid_level(level: &str) -> Option<RaidLevel> {
    Some(match level {
        "0" => ("RAID0", "NonRedundant", 1, |n| n),
        "1" => ("RAID1", "Mirrored", 2, |_| 1),
        "5" => ("RAID5", "StripedWithParity", 3, |n| n - 1),
        "6" => ("RAID6", "StripedWithParity", 4, |n| n - 2),
        "1+0" => ("RAID10", "SpannedMirrors", 4, |n| n / 2),
        "5+0" => ("RAID50", "SpannedStripesWithParity", 6, |n| n - 2),
        "6+0" => ("RAID60", "SpannedStripesWithParity", 8, |n| n - 4),
        _ => return None,
    })
}

/// One logical disk of `target_raid_config`, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogicalDisk {
    pub size_gb: Option<u64>,
    pub raid_level: String,
    pub is_root: bool,
    pub name: Option<String>,
    pub controller: Option<String>,
    pub physical_disks: Vec<String>,
    pub raw: JsonMap,
}

pub(crate) fn logical_disks(config: &JsonMap) -> Result<Vec<LogicalDisk>> {
    let list = config
        .get("logical_disks")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            RedfishError::InvalidParameter(
                "target_raid_config must have a 'logical_disks' list".into(),
            )
        })?;
    let mut out = Vec::new();
    for (i, ld) in list.iter().enumerate() {
        let m = ld.as_object().ok_or_else(|| {
            RedfishError::InvalidParameter(format!("logical_disks[{i}] is not an object"))
        })?;
        let size_gb = match m.get("size_gb") {
            Some(Value::String(s)) if s.eq_ignore_ascii_case("MAX") => None,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v > 0) => n.as_u64(),
            other => {
                return Err(RedfishError::InvalidParameter(format!(
                    "logical_disks[{i}].size_gb must be a positive integer or \"MAX\", not {}",
                    other
                        .map(Value::to_string)
                        .unwrap_or_else(|| "missing".into())
                )));
            }
        };
        let raid_level = m
            .get("raid_level")
            .and_then(Value::as_str)
            .filter(|l| raid_level(l).is_some())
            .ok_or_else(|| {
                RedfishError::InvalidParameter(format!(
                    "logical_disks[{i}].raid_level must be one of 0, 1, 5, 6, 1+0, 5+0, 6+0"
                ))
            })?
            .to_owned();
        let physical_disks = match m.get("physical_disks") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| d.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    RedfishError::InvalidParameter(format!(
                        "logical_disks[{i}].physical_disks must be a list of drive ids"
                    ))
                })?,
            Some(_) => {
                return Err(RedfishError::InvalidParameter(format!(
                    "logical_disks[{i}].physical_disks must be a list"
                )));
            }
        };
        out.push(LogicalDisk {
            size_gb,
            raid_level,
            is_root: m
                .get("is_root_volume")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            name: m
                .get("volume_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            controller: m
                .get("controller")
                .and_then(Value::as_str)
                .map(str::to_owned),
            physical_disks,
            raw: m.clone(),
        });
    }
    Ok(out)
}

fn last_segment(s: &str) -> &str {
    s.trim_end_matches('/').rsplit('/').next().unwrap_or(s)
}

/// Drives to build `ld` from: the ones named, or the smallest that fit.
fn pick_drives<'a>(
    ld: &LogicalDisk,
    drives: &'a [(String, Drive)],
) -> Result<Vec<&'a (String, Drive)>> {
    let (rtype, _, min, data) = raid_level(&ld.raid_level).ok_or_else(|| {
        RedfishError::InvalidParameter(format!("unknown RAID level {}", ld.raid_level))
    })?;
    if !ld.physical_disks.is_empty() {
        let mut out = Vec::new();
        for want in &ld.physical_disks {
            let d = drives
                .iter()
                .find(|(p, d)| {
                    p == want || last_segment(p) == want || d.id.as_deref() == Some(want)
                })
                .ok_or_else(|| {
                    RedfishError::InvalidParameter(format!(
                        "physical disk {want:?} is not a drive of the controller"
                    ))
                })?;
            out.push(d);
        }
        if out.len() < min {
            return Err(RedfishError::InvalidParameter(format!(
                "{rtype} needs at least {min} drives, {} given",
                out.len()
            )));
        }
        return Ok(out);
    }
    let per_drive = ld
        .size_gb
        .map(|g| (g * GIB).div_ceil(data(min) as u64))
        .unwrap_or(0);
    let mut fit: Vec<&(String, Drive)> = drives
        .iter()
        .filter(|(_, d)| d.capacity_bytes.unwrap_or(0) >= per_drive)
        .collect();
    fit.sort_by_key(|(_, d)| d.capacity_bytes.unwrap_or(0));
    if fit.len() < min {
        return Err(RedfishError::InvalidParameter(format!(
            "{rtype} of {} needs {min} drives of at least {} GiB; the controller has {} such drives",
            ld.size_gb
                .map(|g| format!("{g} GiB"))
                .unwrap_or_else(|| "MAX".into()),
            per_drive.div_ceil(GIB),
            fit.len()
        )));
    }
    fit.truncate(min);
    Ok(fit)
}

impl RedfishRaid {
    async fn storages(&self, client: &RedfishClient, path: &str) -> Result<Vec<Storage>> {
        let system: ComputerSystem = client.get(path).await?;
        let link = system.storage.ok_or_else(|| {
            RedfishError::Unsupported(format!("The Redfish system {path} has no Storage"))
        })?;
        client.members(&link.odata_id).await
    }

    async fn create(
        &self,
        task: &mut Task,
        root: bool,
        nonroot: bool,
        delete_existing: bool,
    ) -> Result<()> {
        let disks = logical_disks(&task.node.target_raid_config)?;
        let disks: Vec<LogicalDisk> = disks
            .into_iter()
            .filter(|d| if d.is_root { root } else { nonroot })
            .collect();
        if delete_existing {
            self.delete(task).await?;
        }
        let (client, path) = self.shared.connect(task).await?;
        let storages = self.storages(&client, &path).await?;
        let mut created = Vec::new();
        for ld in &disks {
            let storage = storages
                .iter()
                .filter(|s| s.volumes.is_some())
                .find(|s| match &ld.controller {
                    Some(c) => s.id.as_deref() == Some(c) || s.odata_id.as_deref() == Some(c),
                    None => {
                        let types = s.supported_raid_types();
                        let (rtype, ..) = raid_level(&ld.raid_level).unwrap_or(("", "", 0, |n| n));
                        types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(rtype))
                    }
                })
                .ok_or_else(|| {
                    RedfishError::InvalidParameter(format!(
                        "No storage controller of {path} can hold a RAID {} volume{}",
                        ld.raid_level,
                        ld.controller
                            .as_ref()
                            .map(|c| format!(" on controller {c}"))
                            .unwrap_or_default()
                    ))
                })?;
            let mut drives = Vec::new();
            for l in &storage.drives {
                match client.get::<Drive>(&l.odata_id).await {
                    Ok(d) => drives.push((l.odata_id.clone(), d)),
                    Err(e) => tracing::warn!(drive = %l.odata_id, error = %e, "drive skipped"),
                }
            }
            let chosen = pick_drives(ld, &drives)?;
            let (rtype, vtype, _, data) =
                raid_level(&ld.raid_level).unwrap_or(("RAID0", "NonRedundant", 1, |n| n));
            let capacity = match ld.size_gb {
                Some(g) => g * GIB,
                None => {
                    let smallest = chosen
                        .iter()
                        .filter_map(|(_, d)| d.capacity_bytes)
                        .min()
                        .unwrap_or(0);
                    smallest * data(chosen.len()) as u64
                }
            };
            let mut body = json!({
                "RAIDType": rtype,
                "CapacityBytes": capacity,
                "Links": {"Drives": chosen.iter().map(|(p, _)| json!({"@odata.id": p})).collect::<Vec<_>>()},
            });
            if storage.supported_raid_types().is_empty() {
                // Controllers on older schemas know VolumeType only.
                body["VolumeType"] = json!(vtype);
            }
            if let Some(n) = &ld.name {
                body["Name"] = json!(n);
            }
            let collection = storage
                .volumes
                .as_ref()
                .map(|l| l.odata_id.clone())
                .unwrap_or_default();
            let resp = client.post(&collection, &body).await?;
            let outcome = client
                .wait_for_task(&resp, "volume creation", self.shared.config.task_timeout)
                .await?;
            let mut rec = ld.raw.clone();
            rec.insert(
                "controller".into(),
                json!(storage.id.clone().or(storage.odata_id.clone())),
            );
            rec.insert(
                "volume_id".into(),
                json!(resp.location.clone().or(outcome.uri.clone())),
            );
            rec.insert(
                "physical_disks".into(),
                json!(
                    chosen
                        .iter()
                        .map(|(p, _)| last_segment(p))
                        .collect::<Vec<_>>()
                ),
            );
            tracing::info!(bmc = %client.address, system = %path, raid = rtype, capacity, volume = ?resp.location, "Redfish volume created");
            created.push(Value::Object(rec));
        }
        let mut raid = JsonMap::new();
        raid.insert("logical_disks".into(), Value::Array(created));
        task.node.raid_config = raid;
        Ok(())
    }

    async fn delete(&self, task: &mut Task) -> Result<()> {
        let (client, path) = self.shared.connect(task).await?;
        for storage in self.storages(&client, &path).await? {
            let Some(vols) = &storage.volumes else {
                continue;
            };
            for v in client.member_links(&vols.odata_id).await? {
                let resp = client.delete(&v).await?;
                client
                    .wait_for_task(&resp, "volume deletion", self.shared.config.task_timeout)
                    .await?;
                tracing::info!(bmc = %client.address, volume = %v, "Redfish volume deleted");
            }
        }
        task.node.raid_config = JsonMap::new();
        Ok(())
    }
}

#[async_trait]
impl BaseInterface for RedfishRaid {
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task)?;
        if !task.node.target_raid_config.is_empty() {
            self.validate_raid_config(task, &task.node.target_raid_config)?;
        }
        Ok(())
    }

    fn steps(&self) -> Vec<StepDef> {
        vec![
            StepDef::clean("create_configuration", 0)
                .requires_ramdisk(false)
                .arg(
                    "create_root_volume",
                    "Whether to create the root volume (default true)",
                    false,
                )
                .arg(
                    "create_nonroot_volumes",
                    "Whether to create the other volumes (default true)",
                    false,
                )
                .arg(
                    "delete_existing",
                    "Whether to delete existing volumes first (default true)",
                    false,
                ),
            StepDef::clean("delete_configuration", 0).requires_ramdisk(false),
            StepDef::deploy("apply_configuration", 0)
                .arg("raid_config", "The RAID configuration to apply", true)
                .arg(
                    "delete_existing",
                    "Whether to delete existing volumes first (default true)",
                    false,
                ),
            StepDef::deploy("delete_configuration", 0),
        ]
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        let flag = |k: &str| step.args.get(k).and_then(Value::as_bool).unwrap_or(true);
        match step.step.as_str() {
            "create_configuration" => {
                self.create_configuration(
                    task,
                    flag("create_root_volume"),
                    flag("create_nonroot_volumes"),
                    flag("delete_existing"),
                )
                .await
            }
            "apply_configuration" => {
                let cfg = step
                    .args
                    .get("raid_config")
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or_else(|| {
                        DriverError::missing(
                            "raid.apply_configuration needs a 'raid_config' object",
                        )
                    })?;
                self.validate_raid_config(task, &cfg)?;
                task.node.target_raid_config = cfg;
                self.create_configuration(task, true, true, flag("delete_existing"))
                    .await
            }
            "delete_configuration" => self.delete_configuration(task).await,
            other => Err(DriverError::unsupported(format!(
                "{kind} step raid.{other} is not supported by the redfish RAID interface"
            ))),
        }
    }
}

#[async_trait]
impl RaidInterface for RedfishRaid {
    async fn create_configuration(
        &self,
        task: &mut Task,
        create_root_volume: bool,
        create_nonroot_volumes: bool,
        delete_existing: bool,
    ) -> Result<StepOutcome, DriverError> {
        self.create(
            task,
            create_root_volume,
            create_nonroot_volumes,
            delete_existing,
        )
        .await?;
        Ok(StepOutcome::Done)
    }

    async fn delete_configuration(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.delete(task).await?;
        Ok(StepOutcome::Done)
    }

    fn validate_raid_config(&self, _task: &Task, raid_config: &JsonMap) -> Result<(), DriverError> {
        logical_disks(raid_config)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(id: &str, gib: u64) -> (String, Drive) {
        let d: Drive = crate::models::parse(
            json!({"Id": id, "CapacityBytes": gib * GIB})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        (format!("/redfish/v1/Systems/1/Storage/1/Drives/{id}"), d)
    }

    #[test]
    fn target_raid_config_is_checked() {
        let ok = json!({"logical_disks": [
            {"size_gb": 100, "raid_level": "1", "is_root_volume": true},
            {"size_gb": "MAX", "raid_level": "5", "physical_disks": ["a", "b", "c"]},
        ]});
        let lds = logical_disks(ok.as_object().unwrap()).unwrap();
        assert_eq!(lds[0].size_gb, Some(100));
        assert!(lds[0].is_root);
        assert_eq!(lds[1].size_gb, None);
        for bad in [
            json!({}),
            json!({"logical_disks": [{"size_gb": 0, "raid_level": "1"}]}),
            json!({"logical_disks": [{"size_gb": 10, "raid_level": "7"}]}),
            json!({"logical_disks": [{"size_gb": 10, "raid_level": "1", "physical_disks": "a"}]}),
            json!({"logical_disks": ["x"]}),
        ] {
            assert!(logical_disks(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn drives_are_picked_smallest_fit_first() {
        let drives = vec![
            drive("big", 900),
            drive("small", 10),
            drive("mid", 200),
            drive("mid2", 250),
        ];
        let ld = |size: Option<u64>, level: &str, pd: Vec<&str>| LogicalDisk {
            size_gb: size,
            raid_level: level.into(),
            is_root: false,
            name: None,
            controller: None,
            physical_disks: pd.into_iter().map(String::from).collect(),
            raw: JsonMap::new(),
        };
        let got = pick_drives(&ld(Some(100), "1", vec![]), &drives).unwrap();
        let ids: Vec<_> = got.iter().map(|(_, d)| d.id.clone().unwrap()).collect();
        assert_eq!(ids, vec!["mid", "mid2"]);
        assert!(pick_drives(&ld(Some(300), "1", vec![]), &drives).is_err());
        let got = pick_drives(&ld(None, "0", vec!["big"]), &drives).unwrap();
        assert_eq!(got.len(), 1);
        assert!(pick_drives(&ld(None, "1", vec!["big"]), &drives).is_err());
        assert!(pick_drives(&ld(None, "0", vec!["nope"]), &drives).is_err());
    }
}
