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
use crate::models::{ComputerSystem, Manager, UpdateService};
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
    async fn versions(&self, task: &Task) -> Result<Vec<(String, Option<String>)>> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let mut out = vec![("bios".to_owned(), system.bios_version.clone())];
        if let Some(m) = system.managers().first() {
            let mgr: Manager = client.get(&m.odata_id).await?;
            out.push(("bmc".to_owned(), mgr.firmware_version));
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
        Ok(self
            .versions(task)
            .await?
            .into_iter()
            .map(|(component, v)| FirmwareComponent {
                component,
                initial_version: v.clone(),
                current_version: v,
                last_version_flashed: None,
            })
            .collect())
    }
}
