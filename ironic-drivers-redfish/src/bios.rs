//! `RedfishBios`: read BIOS attributes (with the attribute registry when the BMC
//! has one), apply settings through `@Redfish.Settings`, factory reset.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, BiosInterface, BiosSetting, PropertyDoc, Step, StepDef, StepKind, StepOutcome,
    Task,
};
use ironic_core::{DriverError, PowerState};
use serde_json::{Map, Value, json};

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::models::{
    AttributeRegistry, Bios, ComputerSystem, RegistryAttribute, RegistryFile, ResetType,
};
use crate::power::{power_state_of, reset};
use crate::{RedfishConfig, Shared, config};

/// BIOS settings over Redfish (`bios_interface = "redfish"`).
#[derive(Debug, Clone)]
pub struct RedfishBios {
    shared: Arc<Shared>,
}

impl RedfishBios {
    /// A BIOS interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishBios { shared }
    }
}

/// The JSON value to send for `text`, typed like the current value (BMCs reject
/// `"10"` for an integer attribute).
pub(crate) fn typed_value(current: Option<&Value>, text: Option<&str>) -> Value {
    let Some(text) = text else { return Value::Null };
    match current {
        Some(Value::Number(_)) => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        Some(Value::Bool(_)) => match text.to_ascii_lowercase().as_str() {
            // "1"/"0" is how Ironic shows a cached boolean
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    }
}

/// Whether `attrs` show every requested setting.
fn applied(attrs: &Map<String, Value>, wanted: &Map<String, Value>) -> bool {
    wanted.iter().all(|(k, v)| {
        attrs.get(k).map(BiosSetting::value_from_json) == Some(BiosSetting::value_from_json(v))
    })
}

fn settings_arg(step: &Step) -> std::result::Result<Vec<BiosSetting>, DriverError> {
    let raw = step.args.get("settings").cloned().ok_or_else(|| {
        DriverError::missing(format!(
            "The {} step needs a 'settings' argument",
            step.step
        ))
    })?;
    serde_json::from_value::<Vec<BiosSetting>>(raw).map_err(|e| {
        DriverError::invalid(format!(
            "The 'settings' argument of {} must be a list of {{name, value}}: {e}",
            step.step
        ))
    })
}

impl RedfishBios {
    async fn bios(
        &self,
        task: &Task,
    ) -> Result<(Arc<RedfishClient>, String, ComputerSystem, String, Bios)> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let link = system.bios.clone().ok_or_else(|| {
            RedfishError::Unsupported(format!(
                "The Redfish system {path} at {} has no Bios resource",
                client.address
            ))
        })?;
        let bios: Bios = client.get(&link.odata_id).await?;
        Ok((client, path, system, link.odata_id, bios))
    }

    /// The attribute registry of `bios`, when the BMC serves it (best effort).
    async fn registry(&self, client: &RedfishClient, bios: &Bios) -> Vec<RegistryAttribute> {
        let Some(name) = bios.attribute_registry.as_deref() else {
            return Vec::new();
        };
        let files: Vec<RegistryFile> = match client.members("/redfish/v1/Registries").await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(bmc = %client.address, error = %e, "no registries");
                return Vec::new();
            }
        };
        let matches = |f: &RegistryFile| {
            [&f.id, &f.registry]
                .into_iter()
                .flatten()
                .any(|n| n == name || name.starts_with(n.as_str()))
        };
        let bios_like = |f: &RegistryFile| {
            [&f.id, &f.registry]
                .into_iter()
                .flatten()
                .any(|n| n.contains("BiosAttributeRegistry"))
        };
        let file = files.iter().find(|f| matches(f)).or_else(|| {
            let mut c = files.iter().filter(|f| bios_like(f));
            match (c.next(), c.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        });
        let Some(uri) = file.and_then(|f| {
            f.location
                .iter()
                .find(|l| l.language.as_deref().is_none_or(|l| l == "en"))
                .and_then(|l| l.uri.clone())
        }) else {
            return Vec::new();
        };
        match client.get::<AttributeRegistry>(&uri).await {
            Ok(r) => r.entries.map(|e| e.attributes).unwrap_or_default(),
            Err(e) => {
                tracing::debug!(bmc = %client.address, registry = uri, error = %e, "BIOS registry unreadable");
                Vec::new()
            }
        }
    }

    async fn read(&self, task: &Task) -> Result<Vec<BiosSetting>> {
        let (client, _, _, _, bios) = self.bios(task).await?;
        let registry = self.registry(&client, &bios).await;
        Ok(bios
            .attributes
            .iter()
            .map(|(name, v)| {
                let value = BiosSetting::value_from_json(v);
                let mut s = BiosSetting::new(name.clone(), value);
                let Some(reg) = registry.iter().find(|a| a.name.as_deref() == Some(name)) else {
                    return s;
                };
                s.attribute_type = reg.kind.clone();
                s.allowable_values = (!reg.values.is_empty()).then(|| {
                    reg.values
                        .iter()
                        .filter_map(|v| v.name.clone().or_else(|| v.display_name.clone()))
                        .collect()
                });
                s.lower_bound = reg.lower_bound;
                s.upper_bound = reg.upper_bound;
                s.min_length = reg.min_length;
                s.max_length = reg.max_length;
                s.read_only = reg.read_only;
                s.reset_required = reg.reset_required;
                s.unique = reg.unique;
                s
            })
            .collect())
    }

    async fn apply(&self, task: &Task, settings: &[BiosSetting]) -> Result<()> {
        if settings.is_empty() {
            return Ok(());
        }
        let (client, path, system, bios_path, bios) = self.bios(task).await?;
        let mut wanted = Map::new();
        for s in settings {
            if !bios.attributes.is_empty() && !bios.attributes.contains_key(&s.name) {
                return Err(RedfishError::InvalidParameter(format!(
                    "BIOS attribute {:?} does not exist on the system {path}",
                    s.name
                )));
            }
            wanted.insert(
                s.name.clone(),
                typed_value(bios.attributes.get(&s.name), s.value.as_deref()),
            );
        }
        if applied(&bios.attributes, &wanted) {
            return Ok(());
        }
        client
            .patch_settings(
                &bios_path,
                &json!({ "Attributes": Value::Object(wanted.clone()) }),
            )
            .await?;
        let now: Bios = client.get(&bios_path).await?;
        if applied(&now.attributes, &wanted) {
            tracing::info!(bmc = %client.address, system = %path, "BIOS settings applied immediately");
            return Ok(());
        }
        // Pending settings apply at the next boot.
        self.reboot_to_apply(&client, &path, &system).await?;
        let timeout = self.shared.config.bios_apply_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now: Bios = client.get(&bios_path).await?;
            if applied(&now.attributes, &wanted) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let msgs = now
                    .settings
                    .map(|s| {
                        s.messages
                            .iter()
                            .filter_map(|m| m.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                return Err(RedfishError::Timeout(format!(
                    "BIOS settings on {path} were not applied within {}s after a reboot{}",
                    timeout.as_secs(),
                    if msgs.is_empty() {
                        String::new()
                    } else {
                        format!(": {msgs}")
                    }
                )));
            }
            tokio::time::sleep(
                self.shared
                    .config
                    .power_poll_interval
                    .max(Duration::from_millis(200)),
            )
            .await;
        }
    }

    async fn reboot_to_apply(
        &self,
        client: &RedfishClient,
        path: &str,
        system: &ComputerSystem,
    ) -> Result<()> {
        let prefs: &[ResetType] = if power_state_of(system) == PowerState::On {
            &[ResetType::ForceRestart, ResetType::PowerCycle]
        } else {
            &[ResetType::On, ResetType::ForceOn]
        };
        reset(client, path, system, prefs).await?;
        Ok(())
    }

    async fn reset_to_defaults(&self, task: &Task) -> Result<()> {
        let (client, path, system, bios_path, bios) = self.bios(task).await?;
        let target = bios
            .reset_action()
            .map(|a| a.target)
            .unwrap_or_else(|| format!("{bios_path}/Actions/Bios.ResetBios"));
        let resp = client.post(&target, &json!({})).await?;
        client
            .wait_for_task(&resp, "BIOS factory reset", self.shared.config.task_timeout)
            .await?;
        // Where defaults apply at the next boot, boot now (a node that is off
        // picks them up when it next starts).
        let after: Bios = client.get(&bios_path).await?;
        if after.attributes == bios.attributes
            && bios.settings.is_some()
            && power_state_of(&system) == PowerState::On
        {
            self.reboot_to_apply(&client, &path, &system).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl BaseInterface for RedfishBios {
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task).map(|_| ())
    }

    fn steps(&self) -> Vec<StepDef> {
        let mut out = Vec::new();
        for kind in [StepKind::Clean, StepKind::Deploy, StepKind::Service] {
            out.push(
                StepDef::new(kind, "apply_configuration", 0)
                    .requires_ramdisk(false)
                    .arg("settings", "A list of BIOS settings to be applied", true),
            );
            out.push(StepDef::new(kind, "factory_reset", 0).requires_ramdisk(false));
        }
        out
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match step.step.as_str() {
            "apply_configuration" => {
                let settings = settings_arg(step)?;
                self.apply_configuration(task, &settings).await
            }
            "factory_reset" => self.factory_reset(task).await,
            other => Err(DriverError::unsupported(format!(
                "{kind} step bios.{other} is not supported by the redfish BIOS interface"
            ))),
        }
    }
}

#[async_trait]
impl BiosInterface for RedfishBios {
    async fn apply_configuration(
        &self,
        task: &mut Task,
        settings: &[BiosSetting],
    ) -> Result<StepOutcome, DriverError> {
        self.apply(task, settings).await?;
        Ok(StepOutcome::Done)
    }

    async fn factory_reset(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.reset_to_defaults(task).await?;
        Ok(StepOutcome::Done)
    }

    async fn cache_bios_settings(&self, task: &mut Task) -> Result<Vec<BiosSetting>, DriverError> {
        Ok(self.read(task).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_the_attribute_type() {
        assert_eq!(typed_value(Some(&json!(3)), Some("10")), json!(10));
        assert_eq!(typed_value(Some(&json!(true)), Some("False")), json!(false));
        assert_eq!(typed_value(Some(&json!("a")), Some("10")), json!("10"));
        assert_eq!(typed_value(None, Some("x")), json!("x"));
        assert_eq!(typed_value(Some(&json!(1)), None), Value::Null);
        let mut attrs = Map::new();
        attrs.insert("A".into(), json!(10));
        let mut want = Map::new();
        want.insert("A".into(), json!(10));
        assert!(applied(&attrs, &want));
        want.insert("A".into(), json!(11));
        assert!(!applied(&attrs, &want));
    }
}
