//! What the conductor records about a node from its BMC, at the moments Ironic
//! does (`ironic/conductor/utils.py`: `node_cache_vendor`,
//! `node_cache_boot_mode`, `node_cache_health`, `node_cache_bios_settings`,
//! `node_cache_firmware_components`, `node_update_cache`):
//!
//! * `properties.vendor`, `boot_mode`, `secure_boot`: when management
//!   verification succeeds, at the start and end of cleaning and servicing, and
//!   on every power-state sync (the vendor only while it is not known yet);
//! * `health` (API 1.109): on every power-state sync, a change recorded in the
//!   node's history (`monitoring`);
//! * BIOS settings (with the registry's metadata) and firmware components: when
//!   verification succeeds, at the start and end of cleaning and servicing; BIOS
//!   settings also after the `apply_configuration` and `factory_reset` steps,
//!   firmware components after inspection.
//!
//! None of this ever fails the operation it rides on: an interface that does not
//! support a read is skipped, any other error is logged and what was recorded
//! before is kept.

use std::collections::HashMap;

use super::Conductor;
use super::job::Job;
use crate::driver::{BiosSetting, FirmwareComponent, Task};
use crate::error::{DriverError, ErrorKind};
use crate::hardware::Driver;
use crate::model::{Node, Severity};

/// Ironic's health states (`ironic.common.health_states.HealthState`).
const HEALTH_STATES: [&str; 3] = ["OK", "Warning", "Critical"];

/// The health string Ironic records for what a driver reports, or `None` when it
/// is not one of Ironic's states (the value is then ignored, as Ironic does).
pub(crate) fn normalize_health(h: &str) -> Option<&'static str> {
    HEALTH_STATES
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(h.trim()))
}

fn unsupported(e: &DriverError) -> bool {
    e.kind() == ErrorKind::Unsupported
}

/// What the BMC reported, read under a shared lock, to be applied to the node
/// under the exclusive one. `None` fields leave the node as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Observed {
    vendor: Option<String>,
    boot: Option<(Option<String>, Option<bool>)>,
    health: Option<Option<String>>,
}

/// Which of the cheap node fields to read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Want {
    pub(crate) vendor: bool,
    pub(crate) boot_mode: bool,
    pub(crate) health: bool,
}

impl Observed {
    /// Read what `want` asks for (Ironic's `node_cache_vendor`,
    /// `node_cache_boot_mode`, `node_cache_health`, without the writes).
    pub(crate) async fn read(c: &Conductor, task: &Task, d: &Driver, want: Want) -> Observed {
        let node = &task.node;
        let mut out = Observed::default();
        let has_vendor = node
            .properties
            .get("vendor")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| !v.is_empty());
        if want.vendor && !has_vendor {
            match d.management.detect_vendor(task).await {
                Ok(Some(v)) if !v.trim().is_empty() => out.vendor = Some(v.trim().to_owned()),
                Ok(_) => {}
                Err(e) if unsupported(&e) => {}
                Err(e) => {
                    tracing::warn!(node = %node.uuid, error = %e, "could not detect the vendor")
                }
            }
        }
        if want.boot_mode {
            let mode = match d.management.get_boot_mode(task).await {
                Ok(m) => Ok(m.map(|m| m.as_str().to_owned())),
                Err(e) if unsupported(&e) => Ok(None),
                Err(e) => Err(e),
            };
            match mode {
                Ok(mode) => match d.management.get_secure_boot_state(task).await {
                    Ok(sb) => out.boot = Some((mode, Some(sb))),
                    Err(e) if unsupported(&e) => out.boot = Some((mode, None)),
                    Err(e) => {
                        tracing::warn!(node = %node.uuid, error = %e, "could not read the secure boot state; keeping the recorded boot mode and secure boot")
                    }
                },
                Err(e) => {
                    tracing::warn!(node = %node.uuid, error = %e, "could not read the boot mode; keeping the recorded boot mode and secure boot")
                }
            }
        }
        if want.health && c.config().enable_health_monitoring {
            match d.management.get_node_health(task).await {
                Ok(None) => out.health = Some(None),
                Ok(Some(h)) => match normalize_health(&h) {
                    Some(s) => out.health = Some(Some(s.to_owned())),
                    None => {
                        tracing::warn!(node = %node.uuid, health = %h, "the BMC reports a health value that is not OK, Warning or Critical; ignoring it")
                    }
                },
                Err(e) if unsupported(&e) => {}
                Err(e) => {
                    tracing::warn!(node = %node.uuid, error = %e, "could not read the health status")
                }
            }
        }
        out
    }

    /// Whether applying this would change `node`.
    pub(crate) fn changes(&self, node: &Node) -> bool {
        self.vendor.is_some()
            || self
                .boot
                .as_ref()
                .is_some_and(|(m, sb)| *m != node.boot_mode || *sb != node.secure_boot)
            || self.health.as_ref().is_some_and(|h| *h != node.health)
    }

    /// Apply to the node; returns the history message of a health change.
    pub(crate) fn apply(self, node: &mut Node) -> Option<(String, Severity)> {
        if let Some(v) = self.vendor {
            let known = node
                .properties
                .get("vendor")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| !v.is_empty());
            if !known {
                tracing::info!(node = %node.uuid, vendor = %v, "detected the vendor");
                node.properties.insert("vendor".into(), v.into());
            }
        }
        if let Some((mode, sb)) = self.boot
            && (mode != node.boot_mode || sb != node.secure_boot)
        {
            tracing::info!(node = %node.uuid, boot_mode = ?mode, secure_boot = ?sb, "updated the boot mode and secure boot state");
            node.boot_mode = mode;
            node.secure_boot = sb;
        }
        let health = self.health?;
        if health == node.health {
            return None;
        }
        let old = std::mem::replace(&mut node.health, health.clone());
        let msg = format!(
            "Node health status changed: health='{}' (previously '{}')",
            health.as_deref().unwrap_or("None"),
            old.as_deref().unwrap_or("None")
        );
        let bad = matches!(health.as_deref(), Some("Warning" | "Critical"));
        if bad {
            tracing::warn!(node = %node.uuid, health = ?health, "the node's health indicates a problem");
        } else {
            tracing::info!(node = %node.uuid, health = ?health, previous = ?old, "health status changed");
        }
        // Ironic records health changes with error=False.
        Some((msg, Severity::Info))
    }
}

/// Merge what the driver reports into the stored BIOS settings: new settings get
/// `created_at`, changed values `updated_at`; settings the BMC no longer reports
/// go (Ironic's `BIOSSettingList.sync_node_setting`).
pub(crate) fn merge_bios(old: &[BiosSetting], new: Vec<BiosSetting>) -> Vec<BiosSetting> {
    let now = crate::model::now();
    let by_name: HashMap<&str, &BiosSetting> = old.iter().map(|s| (s.name.as_str(), s)).collect();
    new.into_iter()
        .map(|mut s| {
            match by_name.get(s.name.as_str()) {
                Some(prev) => {
                    s.created_at = prev.created_at.or(Some(now));
                    s.updated_at = if prev.value != s.value {
                        Some(now)
                    } else {
                        prev.updated_at
                    };
                }
                None => {
                    s.created_at = Some(now);
                    s.updated_at = None;
                }
            }
            s
        })
        .collect()
}

/// Merge what the driver reports into the stored firmware components
/// (Ironic's `sync_firmware_components` and `RedfishFirmware.cache_firmware_components`):
/// a new component records its version as `initial_version`; when the version of
/// a known one changes, `current_version` and `last_version_flashed` both take the
/// new version; the identity (vendor, model, serial number) follows the BMC.
/// Components the BMC no longer reports are kept, as Ironic keeps them.
pub(crate) fn merge_firmware(
    old: &[FirmwareComponent],
    new: Vec<FirmwareComponent>,
) -> Vec<FirmwareComponent> {
    let now = crate::model::now();
    let mut out: Vec<FirmwareComponent> = old.to_vec();
    for n in new {
        match out.iter_mut().find(|o| o.component == n.component) {
            Some(o) => {
                let mut changed = false;
                if o.current_version != n.current_version {
                    o.last_version_flashed = n.current_version.clone();
                    o.current_version = n.current_version;
                    changed = true;
                }
                if (&o.vendor, &o.model, &o.serial_number)
                    != (&n.vendor, &n.model, &n.serial_number)
                {
                    o.vendor = n.vendor;
                    o.model = n.model;
                    o.serial_number = n.serial_number;
                    changed = true;
                }
                if changed {
                    o.updated_at = Some(now);
                }
            }
            None => out.push(FirmwareComponent {
                initial_version: n.current_version.clone(),
                last_version_flashed: None,
                created_at: Some(now),
                updated_at: None,
                ..n
            }),
        }
    }
    out
}

impl Job {
    /// Ironic's `node_update_cache`: vendor, boot mode and secure boot, BIOS
    /// settings, firmware components. The node is changed in place (the caller
    /// saves it); BIOS settings and firmware go to the store at once.
    pub(crate) async fn update_cache(&mut self) {
        let Ok(d) = self.task.driver().cloned() else {
            return;
        };
        let want = Want {
            vendor: true,
            boot_mode: true,
            health: false,
        };
        let obs = Observed::read(&self.c, &self.task, &d, want).await;
        let _ = obs.apply(self.node_mut());
        self.cache_bios_settings().await;
        self.cache_firmware_components().await;
    }

    /// Ironic's `node_cache_bios_settings`.
    pub(crate) async fn cache_bios_settings(&mut self) {
        let Ok(d) = self.task.driver().cloned() else {
            return;
        };
        let uuid = self.node().uuid;
        match d.bios.cache_bios_settings(&mut self.task).await {
            Ok(settings) => {
                let store = self.c.store().clone();
                let old = match store.get_bios_settings(uuid).await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::warn!(node = %uuid, error = %e, "could not read the cached BIOS settings");
                        return;
                    }
                };
                let count = settings.len();
                let merged = merge_bios(&old, settings);
                if merged == old {
                    // Unchanged (as Ironic's sync, which writes only what differs).
                    return;
                }
                match store.set_bios_settings(uuid, &merged).await {
                    Ok(()) => {
                        tracing::debug!(node = %uuid, settings = count, "cached the BIOS settings")
                    }
                    Err(e) => {
                        tracing::warn!(node = %uuid, error = %e, "could not store the BIOS settings")
                    }
                }
            }
            Err(e) if unsupported(&e) => {
                tracing::debug!(node = %uuid, "BIOS settings are not supported; skipping")
            }
            Err(e) => {
                tracing::warn!(node = %uuid, error = %e, "caching of BIOS settings failed")
            }
        }
    }

    /// Ironic's `node_cache_firmware_components` (which validates the firmware
    /// interface first).
    pub(crate) async fn cache_firmware_components(&mut self) {
        let Ok(d) = self.task.driver().cloned() else {
            return;
        };
        let uuid = self.node().uuid;
        if let Err(e) = d.firmware.validate(&self.task) {
            if !unsupported(&e) {
                tracing::warn!(node = %uuid, error = %e, "firmware interface does not validate; not caching firmware components");
            }
            return;
        }
        match d.firmware.cache_firmware_components(&mut self.task).await {
            Ok(comps) => {
                let store = self.c.store().clone();
                let old = match store.get_firmware_components(uuid).await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::warn!(node = %uuid, error = %e, "could not read the cached firmware components");
                        return;
                    }
                };
                let merged = merge_firmware(&old, comps);
                if merged != old
                    && let Err(e) = store.set_firmware_components(uuid, &merged).await
                {
                    tracing::warn!(node = %uuid, error = %e, "could not store the firmware components");
                }
            }
            Err(e) if unsupported(&e) => {
                tracing::debug!(node = %uuid, "firmware components are not supported; skipping")
            }
            Err(e) => {
                tracing::warn!(node = %uuid, error = %e, "caching of firmware components failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(c: &str, v: &str) -> FirmwareComponent {
        FirmwareComponent::new(c, Some(v.into()))
    }

    #[test]
    fn firmware_merge_keeps_initial_and_records_flashes() {
        let first = merge_firmware(&[], vec![fw("bios", "1.0"), fw("bmc", "5.0")]);
        assert_eq!(first[0].initial_version.as_deref(), Some("1.0"));
        assert_eq!(first[0].last_version_flashed, None);
        assert!(first[0].created_at.is_some() && first[0].updated_at.is_none());
        let same = merge_firmware(&first, vec![fw("bios", "1.0"), fw("bmc", "5.0")]);
        assert_eq!(same, first, "nothing changed, nothing rewritten");
        let mut nic = fw("nic:SN1", "20.1");
        nic.vendor = Some("Mellanox".into());
        let second = merge_firmware(&same, vec![fw("bios", "1.2"), nic]);
        let bios = &second[0];
        assert_eq!(bios.initial_version.as_deref(), Some("1.0"));
        assert_eq!(bios.current_version.as_deref(), Some("1.2"));
        assert_eq!(bios.last_version_flashed.as_deref(), Some("1.2"));
        assert!(bios.updated_at.is_some());
        assert_eq!(
            second[1].component, "bmc",
            "a component not reported is kept"
        );
        assert_eq!(second[2].vendor.as_deref(), Some("Mellanox"));
        let mut moved = fw("nic:SN1", "20.1");
        moved.vendor = Some("NVIDIA".into());
        let third = merge_firmware(&second, vec![moved]);
        assert_eq!(third[2].vendor.as_deref(), Some("NVIDIA"));
        assert_eq!(third[2].last_version_flashed, None);
    }

    #[test]
    fn bios_merge_drops_vanished_and_stamps_changes() {
        let a = |v: &str| BiosSetting::new("A", Some(v.into()));
        let first = merge_bios(&[], vec![a("1"), BiosSetting::new("B", None)]);
        assert!(first.iter().all(|s| s.created_at.is_some()));
        let second = merge_bios(&first, vec![a("2")]);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].created_at, first[0].created_at);
        assert!(second[0].updated_at.is_some());
        let third = merge_bios(&second, vec![a("2")]);
        assert_eq!(third[0].updated_at, second[0].updated_at);
    }

    #[test]
    fn health_is_one_of_ironics_states() {
        assert_eq!(normalize_health("ok"), Some("OK"));
        assert_eq!(normalize_health("CRITICAL"), Some("Critical"));
        assert_eq!(normalize_health(" Warning "), Some("Warning"));
        assert_eq!(normalize_health("Degraded"), None);
    }

    #[test]
    fn observed_changes_and_applies() {
        let mut n = Node::new("fake-hardware");
        let o = Observed {
            vendor: Some("Dell Inc.".into()),
            boot: Some((Some("uefi".into()), Some(true))),
            health: Some(Some("Critical".into())),
        };
        assert!(o.changes(&n));
        let h = o.clone().apply(&mut n);
        assert_eq!(n.properties["vendor"], "Dell Inc.");
        assert_eq!(n.boot_mode.as_deref(), Some("uefi"));
        assert_eq!(n.secure_boot, Some(true));
        assert_eq!(n.health.as_deref(), Some("Critical"));
        assert!(
            h.unwrap()
                .0
                .contains("health='Critical' (previously 'None')")
        );
        let again = Observed {
            vendor: None,
            ..o.clone()
        };
        assert!(!again.changes(&n));
        assert!(again.apply(&mut n).is_none());
        // a known vendor is never replaced
        let other = Observed {
            vendor: Some("HPE".into()),
            boot: None,
            health: None,
        };
        let _ = other.apply(&mut n);
        assert_eq!(n.properties["vendor"], "Dell Inc.");
    }
}
