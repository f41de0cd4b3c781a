//! `RedfishFirmware`: component versions (BIOS from the System, BMC from its
//! Manager) and updates through `UpdateService.SimpleUpdate`, following the task.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::DriverError;
use ironic_core::driver::{
    BaseInterface, FirmwareComponent, FirmwareInterface, FirmwareUpdate, PropertyDoc, Step,
    StepDef, StepKind, StepOutcome, Task,
};
use serde_json::{Value, json};

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::models::{Chassis, ComputerSystem, Manager, NetworkAdapter, UpdateService};
use crate::{RedfishConfig, Shared, config};

/// Firmware updates over Redfish (`firmware_interface = "redfish"`).
#[derive(Debug, Clone)]
pub struct RedfishFirmware {
    shared: Arc<Shared>,
}

impl RedfishFirmware {
    /// A firmware interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishFirmware { shared }
    }
}

fn updates_arg(step: &Step) -> std::result::Result<Vec<FirmwareUpdate>, DriverError> {
    let raw = step.args.get("settings").cloned().ok_or_else(|| {
        DriverError::missing("The firmware update step needs a 'settings' argument")
    })?;
    serde_json::from_value(raw).map_err(|e| {
        DriverError::invalid(format!(
            "The 'settings' argument of firmware.update must be a list of {{component, url}}: {e}"
        ))
    })
}

impl RedfishFirmware {
    /// The components Ironic's `RedfishFirmware.cache_firmware_components`
    /// reports: `bios` (the system's `BiosVersion`), `bmc` (the manager's
    /// `FirmwareVersion` and `Model`), and `nic:<serial number or id>` for every
    /// network adapter controller of the system's chassis that reports a
    /// `FirmwarePackageVersion`, with the adapter's vendor, model and serial
    /// number (API 1.114). A part the BMC does not serve is logged and skipped;
    /// no component at all is `Unsupported`.
    async fn components(&self, task: &Task) -> Result<Vec<FirmwareComponent>> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let mut out = Vec::new();
        match system.bios_version.clone().filter(|v| !v.trim().is_empty()) {
            Some(v) => out.push(FirmwareComponent::new("bios", Some(v))),
            None => {
                tracing::debug!(bmc = %client.address, system = %path, "no BiosVersion")
            }
        }
        match system.managers().first() {
            Some(m) => match client.get::<Manager>(&m.odata_id).await {
                Ok(mgr) => match mgr.firmware_version.filter(|v| !v.trim().is_empty()) {
                    Some(v) => out.push({
                        let mut c = FirmwareComponent::new("bmc", Some(v));
                        c.model = mgr.model;
                        c
                    }),
                    None => {
                        tracing::debug!(bmc = %client.address, manager = %m.odata_id, "no FirmwareVersion")
                    }
                },
                Err(e) => {
                    tracing::warn!(bmc = %client.address, manager = %m.odata_id, error = %e, "could not read the manager for the BMC firmware version")
                }
            },
            None => {
                tracing::warn!(bmc = %client.address, system = %path, "the system links no manager; no BMC firmware version")
            }
        }
        out.extend(nic_components(&client, &system).await);
        if out.is_empty() {
            return Err(RedfishError::Unsupported(format!(
                "Cannot retrieve firmware for the system {path}: no supported components"
            )));
        }
        Ok(out)
    }

    async fn update_one(
        &self,
        client: &RedfishClient,
        path: &str,
        system: &ComputerSystem,
        service: &UpdateService,
        u: &FirmwareUpdate,
    ) -> Result<()> {
        let target = match u.component.as_str() {
            "bios" => path.to_owned(),
            "bmc" => system
                .managers()
                .first()
                .map(|m| m.odata_id.clone())
                .ok_or_else(|| {
                    RedfishError::NotFound(format!("The system {path} links no manager (BMC)"))
                })?,
            other => {
                return Err(RedfishError::InvalidParameter(format!(
                    "Unknown firmware component {other:?}: the redfish firmware interface updates \"bios\" and \"bmc\""
                )));
            }
        };
        let scheme = reqwest::Url::parse(&u.url)
            .map_err(|e| {
                RedfishError::InvalidParameter(format!(
                    "Firmware image URL {:?} is not a URL: {e}",
                    u.url
                ))
            })?
            .scheme()
            .to_ascii_uppercase();
        let action = service.simple_update_action().ok_or_else(|| {
            RedfishError::Unsupported(format!(
                "The Redfish BMC at {} offers no UpdateService.SimpleUpdate",
                client.address
            ))
        })?;
        let mut body = json!({"ImageURI": u.url, "Targets": [target]});
        let protocols = action.allowable_values("TransferProtocol");
        if !protocols.is_empty() {
            if !protocols.iter().any(|p| p.eq_ignore_ascii_case(&scheme)) {
                return Err(RedfishError::InvalidParameter(format!(
                    "The BMC at {} downloads firmware over {} only, not {scheme} ({})",
                    client.address,
                    protocols.join(", "),
                    u.url
                )));
            }
            body["TransferProtocol"] = Value::String(scheme);
        }
        tracing::info!(bmc = %client.address, component = %u.component, url = %u.url, "starting Redfish firmware update");
        let resp = client.post(&action.target, &body).await?;
        let outcome = client
            .wait_for_task(&resp, "firmware update", self.shared.config.task_timeout)
            .await?;
        tracing::info!(bmc = %client.address, component = %u.component, task = ?outcome.uri, state = ?outcome.state.as_ref().map(|s| s.as_str().to_owned()), "Redfish firmware update finished");
        if let Some(w) = u.wait.filter(|w| *w > 0) {
            tokio::time::sleep(Duration::from_secs(w)).await;
        }
        Ok(())
    }

    async fn update_all(&self, task: &mut Task, updates: &[FirmwareUpdate]) -> Result<()> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let root = client.root().await?;
        let link = root.update_service.ok_or_else(|| {
            RedfishError::Unsupported(format!(
                "The Redfish BMC at {} has no UpdateService",
                client.address
            ))
        })?;
        let service: UpdateService = client.get(&link.odata_id).await?;
        if service.service_enabled == Some(false) {
            return Err(RedfishError::Unsupported(format!(
                "The UpdateService of the Redfish BMC at {} is disabled",
                client.address
            )));
        }
        let mut done = Vec::new();
        for u in updates {
            let res = self.update_one(&client, &path, &system, &service, u).await;
            done.push(json!({"component": u.component, "url": u.url, "ok": res.is_ok()}));
            task.node
                .set_internal("redfish_firmware_updates", Value::Array(done.clone()));
            res?;
        }
        Ok(())
    }
}

/// NIC firmware from the network adapters of the system's first chassis.
async fn nic_components(client: &RedfishClient, system: &ComputerSystem) -> Vec<FirmwareComponent> {
    let mut out = Vec::new();
    let Some(c) = system.chassis().first() else {
        return out;
    };
    let chassis: Chassis = match client.get(&c.odata_id).await {
        Ok(ch) => ch,
        Err(e) => {
            tracing::debug!(bmc = %client.address, chassis = %c.odata_id, error = %e, "no chassis for NIC firmware");
            return out;
        }
    };
    let Some(link) = chassis.network_adapters else {
        return out;
    };
    // HPE answers 400 here while the host OS is not up: log and go on, as Ironic does.
    let adapters: Vec<NetworkAdapter> = match client.members(&link.odata_id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(bmc = %client.address, collection = %link.odata_id, error = %e, "unable to read the network adapters for their firmware");
            return out;
        }
    };
    for a in adapters {
        let ident = a
            .serial_number
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or(a.id.clone())
            .or(a.odata_id.clone())
            .unwrap_or_default();
        for ctl in &a.controllers {
            let Some(v) = ctl
                .firmware_package_version
                .clone()
                .filter(|v| !v.trim().is_empty())
            else {
                continue;
            };
            let component = format!("nic:{ident}");
            if out
                .iter()
                .any(|c: &FirmwareComponent| c.component == component)
            {
                continue;
            }
            out.push({
                let mut c = FirmwareComponent::new(component, Some(v));
                c.vendor = a.manufacturer.clone();
                c.model = a.model.clone();
                c.serial_number = a.serial_number.clone();
                c
            });
        }
    }
    out
}

#[async_trait]
impl BaseInterface for RedfishFirmware {
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task).map(|_| ())
    }

    fn steps(&self) -> Vec<StepDef> {
        [StepKind::Clean, StepKind::Service]
            .into_iter()
            .map(|k| {
                StepDef::new(k, "update", 0).requires_ramdisk(false).arg(
                    "settings",
                    "A list of dicts with the firmware components to be updated: component (bios or bmc), url, optional wait (seconds)",
                    true,
                )
            })
            .collect()
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match step.step.as_str() {
            "update" => {
                let updates = updates_arg(step)?;
                self.update(task, &updates).await
            }
            other => Err(DriverError::unsupported(format!(
                "{kind} step firmware.{other} is not supported by the redfish firmware interface"
            ))),
        }
    }
}

#[async_trait]
impl FirmwareInterface for RedfishFirmware {
    async fn update(
        &self,
        task: &mut Task,
        updates: &[FirmwareUpdate],
    ) -> Result<StepOutcome, DriverError> {
        self.update_all(task, updates).await?;
        Ok(StepOutcome::Done)
    }

    async fn cache_firmware_components(
        &self,
        task: &mut Task,
    ) -> Result<Vec<FirmwareComponent>, DriverError> {
        Ok(self.components(task).await?)
    }
}
