//! `RedfishManagement`: boot source override, boot mode, secure boot, sensors,
//! NMI, indicator LEDs, MACs, virtual media, vendor and health.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, BootDevice, BootDeviceInfo, BootMode, ManagementInterface, PropertyDoc, Task,
    VmediaDevice,
};
use ironic_core::model::JsonMap;
use ironic_core::{DriverError, MacAddress};
use serde_json::{Value, json};

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::models::{
    BootOverrideEnabled, BootOverrideMode, BootSource, Chassis, ComputerSystem, EthernetInterface,
    IndicatorLed, Power, ResetType, SecureBoot, Status, Thermal,
};
use crate::{RedfishConfig, Shared, config, power, vmedia};

/// Management over Redfish (`management_interface = "redfish"`).
#[derive(Debug, Clone)]
pub struct RedfishManagement {
    shared: Arc<Shared>,
}

impl RedfishManagement {
    /// A management interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishManagement { shared }
    }
}

/// Ironic boot device → Redfish override target.
pub(crate) fn target_of(device: BootDevice) -> Option<BootSource> {
    Some(match device {
        BootDevice::Pxe => BootSource::Pxe,
        BootDevice::Disk => BootSource::Hdd,
        BootDevice::Cdrom => BootSource::Cd,
        BootDevice::Bios => BootSource::BiosSetup,
        BootDevice::UefiHttp => BootSource::UefiHttp,
        BootDevice::Floppy => BootSource::Floppy,
        _ => return None,
    })
}

/// Redfish override target → Ironic boot device.
pub(crate) fn device_of(target: &BootSource) -> Option<BootDevice> {
    Some(match target {
        BootSource::Pxe => BootDevice::Pxe,
        BootSource::Hdd => BootDevice::Disk,
        BootSource::Cd => BootDevice::Cdrom,
        BootSource::BiosSetup => BootDevice::Bios,
        BootSource::UefiHttp => BootDevice::UefiHttp,
        BootSource::Floppy => BootDevice::Floppy,
        _ => return None,
    })
}

fn mode_of(m: &BootOverrideMode) -> Option<BootMode> {
    match m {
        BootOverrideMode::Uefi => Some(BootMode::Uefi),
        BootOverrideMode::Legacy => Some(BootMode::Bios),
        BootOverrideMode::Other(_) => None,
    }
}

fn redfish_mode(m: BootMode) -> BootOverrideMode {
    match m {
        BootMode::Uefi => BootOverrideMode::Uefi,
        BootMode::Bios => BootOverrideMode::Legacy,
    }
}

/// The boot mode the node asks for: `boot_mode`, else `capabilities` `boot_mode:`.
pub(crate) fn requested_boot_mode(task: &Task) -> Option<BootMode> {
    if let Some(m) = task.node.boot_mode.as_deref().and_then(|m| m.parse().ok()) {
        return Some(m);
    }
    let caps = task.node.properties.get("capabilities")?;
    let caps = match caps {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => return None,
    };
    caps.split(',')
        .filter_map(|c| c.split_once(':'))
        .find(|(k, _)| k.trim() == "boot_mode")
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Vendors whose BMCs want the whole boot override (target, enabled, mode) in
/// every request (Ironic's `VENDORS_REQUIRING_FULL_BOOT_REQUEST`, matched as a
/// part of `properties.vendor`, lower case).
const VENDORS_REQUIRING_FULL_BOOT_REQUEST: &[&str] = &[
    "american megatrends international",
    "ami",
    "asrockrack",
    "redfish_compatible",
];

/// How many times a boot override refused during POST is sent (Ironic's
/// `[redfish]post_boot_retry_attempts`).
const POST_BOOT_RETRY_ATTEMPTS: u32 = 6;

/// The node's `properties.vendor`, lower case.
fn node_vendor(task: &Task) -> Option<String> {
    task.node
        .properties
        .get("vendor")
        .and_then(Value::as_str)
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// Set the boot source override of a system (used by management and the boot
/// interfaces), with the node's requested boot mode and vendor quirks.
pub(crate) async fn set_boot_device(
    client: &RedfishClient,
    path: &str,
    task: &Task,
    device: BootDevice,
    persistent: bool,
) -> Result<()> {
    set_boot_device_uri(client, path, task, device, persistent, None).await
}

/// [`set_boot_device`] with the `HttpBootUri` of a UEFI HTTP boot, as sushy's
/// `set_system_boot_options` sends it: with `UefiHttp` and a URI, the URI
/// (refused when the system does not advertise `HttpBootUri`); otherwise a URI
/// the system holds is cleared (`null`), so the firmware falls back to DHCP or
/// a later boot does not reuse it.
///
/// Vendor quirks, by the node's `properties.vendor`, as Ironic's
/// `_set_boot_device` and sushy:
/// - `BootSourceOverrideEnabled` is left out when it already has the wanted
///   value (some BMCs refuse setting it to what it is), except on Supermicro,
///   which wants it every time;
/// - AMI (MegaRAC), ASRock Rack: target, enabled and mode (the current one, else
///   UEFI) in every request;
/// - Supermicro: a CD boot goes to `UsbCd` when the system allows it (its
///   virtual media is a USB CD);
/// - HPE iLO: a PATCH refused with `UnableToModifyDuringSystemPOST` (the machine
///   is in POST) is sent again with backoff, up to 6 times.
pub(crate) async fn set_boot_device_uri(
    client: &RedfishClient,
    path: &str,
    task: &Task,
    device: BootDevice,
    persistent: bool,
    http_boot_uri: Option<&str>,
) -> Result<()> {
    let mode = requested_boot_mode(task);
    let vendor = node_vendor(task);
    let full_request = vendor.as_deref().is_some_and(|v| {
        VENDORS_REQUIRING_FULL_BOOT_REQUEST
            .iter()
            .any(|id| v.contains(id))
    });
    let supermicro = vendor.as_deref() == Some("supermicro");
    let (raw, etag): (Value, _) = client.get_with_etag(path).await?;
    let system: ComputerSystem =
        serde_json::from_value(raw.clone()).map_err(|e| RedfishError::Parse {
            url: client.url(path),
            detail: e.to_string(),
        })?;
    let mut target = target_of(device).ok_or_else(|| {
        RedfishError::InvalidParameter(format!("Boot device {device} is not supported by Redfish"))
    })?;
    let boot = system.boot.unwrap_or_default();
    let allows = |t: &str| {
        boot.target_allowable
            .iter()
            .any(|a| a.eq_ignore_ascii_case(t))
    };
    if supermicro && matches!(target, BootSource::Cd) && allows("UsbCd") {
        tracing::debug!(bmc = %client.address, "Supermicro: booting virtual media as UsbCd");
        target = BootSource::Other("UsbCd".into());
    }
    if !boot.target_allowable.is_empty() && !allows(target.as_str()) {
        return Err(RedfishError::InvalidParameter(format!(
            "Boot device {device} ({}) is not supported by the system {path}; it allows {}",
            target.as_str(),
            boot.target_allowable.join(", ")
        )));
    }
    let enabled = if persistent {
        BootOverrideEnabled::Continuous
    } else {
        BootOverrideEnabled::Once
    };
    let mut b = json!({ "BootSourceOverrideTarget": target.as_str() });
    if full_request || supermicro || boot.enabled.as_ref() != Some(&enabled) {
        b["BootSourceOverrideEnabled"] = json!(enabled.as_str());
    }
    // `HttpBootUri` as the system holds it: absent (not advertised), null, or set.
    let current_uri = raw.get("Boot").and_then(|b| b.get("HttpBootUri"));
    match (matches!(target, BootSource::UefiHttp), http_boot_uri) {
        (true, Some(uri)) => {
            if current_uri.is_none() {
                return Err(RedfishError::Unsupported(format!(
                    "The attribute HttpBootUri is missing from the resource {path}: the Redfish BMC at {} cannot boot a given URL over UEFI HTTP",
                    client.address
                )));
            }
            b["HttpBootUri"] = json!(uri);
        }
        (_, _) => {
            if current_uri.is_some_and(|v| !v.is_null()) {
                b["HttpBootUri"] = Value::Null;
            }
        }
    }
    match mode {
        Some(m) => {
            let want = redfish_mode(m);
            if full_request || boot.mode.as_ref() != Some(&want) {
                b["BootSourceOverrideMode"] = json!(want.as_str());
            }
        }
        None if full_request => {
            let current = boot.mode.clone().unwrap_or(BootOverrideMode::Uefi);
            b["BootSourceOverrideMode"] = json!(current.as_str());
        }
        None => {}
    }
    let body = json!({ "Boot": b });
    let mut etag = etag;
    let mut attempt = 1;
    loop {
        match client.patch(path, &body, etag.as_deref()).await {
            Ok(_) => break,
            Err(e)
                if attempt < POST_BOOT_RETRY_ATTEMPTS
                    && e.status() == Some(400)
                    && e.to_string().contains("UnableToModifyDuringSystemPOST") =>
            {
                let pause = (client.config().retry_interval * (1 << (attempt - 1)))
                    .min(client.config().max_retry_interval * 6);
                tracing::warn!(bmc = %client.address, system = path, attempt, pause = ?pause, "the BMC is in POST and refuses boot device changes; retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
                // the resource changes as POST goes on: a fresh ETag
                etag = client.get_with_etag::<Value>(path).await?.1;
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(bmc = %client.address, system = path, device = %device, persistent, http_boot_uri, vendor = vendor.as_deref(), "Redfish boot device set");
    Ok(())
}

fn indicator_state(led: &IndicatorLed) -> &'static str {
    match led {
        IndicatorLed::Lit => "ON",
        IndicatorLed::Off => "OFF",
        IndicatorLed::Blinking => "BLINKING",
        _ => "UNKNOWN",
    }
}

fn status_fields(out: &mut JsonMap, status: &Option<Status>) {
    if let Some(s) = status {
        out.insert("state".into(), json!(s.state));
        out.insert(
            "health".into(),
            json!(s.health.as_ref().map(|h| h.as_str().to_owned())),
        );
    }
}

impl RedfishManagement {
    async fn system(&self, task: &Task) -> Result<(Arc<RedfishClient>, String, ComputerSystem)> {
        let (client, path) = self.shared.connect(task).await?;
        let system = client.get(&path).await?;
        Ok((client, path, system))
    }

    async fn sensors(&self, task: &Task) -> Result<JsonMap> {
        let (client, _, system) = self.system(task).await?;
        let mut temps = JsonMap::new();
        let mut fans = JsonMap::new();
        let mut supplies = JsonMap::new();
        for link in system.chassis() {
            let chassis: Chassis = match client.get(&link.odata_id).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(chassis = %link.odata_id, error = %e, "skipping chassis for sensors");
                    continue;
                }
            };
            let cid = chassis.id.clone().unwrap_or_else(|| link.odata_id.clone());
            if let Some(t) = &chassis.thermal {
                let thermal: Thermal = client.get(&t.odata_id).await?;
                for (i, s) in thermal.temperatures.iter().enumerate() {
                    let id = s
                        .name
                        .clone()
                        .or(s.member_id.clone())
                        .unwrap_or(i.to_string());
                    let mut m = JsonMap::new();
                    m.insert("identity".into(), json!(id));
                    m.insert("reading_celsius".into(), json!(s.reading_celsius));
                    m.insert("upper_threshold_critical".into(), json!(s.upper_critical));
                    m.insert("physical_context".into(), json!(s.physical_context));
                    status_fields(&mut m, &s.status);
                    temps.insert(format!("{id}@{cid}"), Value::Object(m));
                }
                for (i, f) in thermal.fans.iter().enumerate() {
                    let id = f
                        .name
                        .clone()
                        .or(f.member_id.clone())
                        .unwrap_or(i.to_string());
                    let mut m = JsonMap::new();
                    m.insert("identity".into(), json!(id));
                    m.insert("reading".into(), json!(f.reading));
                    m.insert("reading_units".into(), json!(f.reading_units));
                    status_fields(&mut m, &f.status);
                    fans.insert(format!("{id}@{cid}"), Value::Object(m));
                }
            }
            if let Some(p) = &chassis.power {
                let power: Power = client.get(&p.odata_id).await?;
                for (i, s) in power.power_supplies.iter().enumerate() {
                    let id = s
                        .member_id
                        .clone()
                        .or(s.name.clone())
                        .unwrap_or(i.to_string());
                    let mut m = JsonMap::new();
                    m.insert("identity".into(), json!(id));
                    m.insert("power_capacity_watts".into(), json!(s.capacity_watts));
                    m.insert("line_input_voltage".into(), json!(s.line_input_voltage));
                    m.insert("last_power_output_watts".into(), json!(s.last_output_watts));
                    m.insert("serial_number".into(), json!(s.serial_number));
                    status_fields(&mut m, &s.status);
                    supplies.insert(format!("{id}@{cid}"), Value::Object(m));
                }
            }
        }
        let mut out = JsonMap::new();
        out.insert("Temperature".into(), Value::Object(temps));
        out.insert("Fan".into(), Value::Object(fans));
        out.insert("Power".into(), Value::Object(supplies));
        Ok(out)
    }

    /// The resource carrying the LED of `component` (`system` or `chassis`).
    async fn led_resource(
        &self,
        task: &Task,
        component: &str,
    ) -> Result<(Arc<RedfishClient>, String)> {
        let (client, path, system) = self.system(task).await?;
        match component {
            "system" => Ok((client, path)),
            "chassis" => {
                let c = system.chassis().first().ok_or_else(|| {
                    RedfishError::NotFound(format!("The system {path} links no chassis"))
                })?;
                Ok((client, c.odata_id.clone()))
            }
            other => Err(RedfishError::InvalidParameter(format!(
                "Unknown indicator component {other:?}; Redfish offers \"system\" and \"chassis\""
            ))),
        }
    }
}

#[async_trait]
impl BaseInterface for RedfishManagement {
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task).map(|_| ())
    }
}

#[async_trait]
impl ManagementInterface for RedfishManagement {
    async fn get_supported_boot_devices(
        &self,
        task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        let (_, _, system) = self.system(task).await?;
        let allowed = system.boot.map(|b| b.target_allowable).unwrap_or_default();
        if allowed.is_empty() {
            return Ok(vec![
                BootDevice::Pxe,
                BootDevice::Disk,
                BootDevice::Cdrom,
                BootDevice::Bios,
            ]);
        }
        let mut out: Vec<BootDevice> = allowed
            .iter()
            .filter_map(|a| device_of(&BootSource::from(a.as_str())))
            .collect();
        out.dedup();
        Ok(out)
    }

    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        let (client, path) = self.shared.connect(task).await?;
        Ok(set_boot_device(&client, &path, task, device, persistent).await?)
    }

    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError> {
        let (_, _, system) = self.system(task).await?;
        let boot = system.boot.unwrap_or_default();
        Ok(BootDeviceInfo {
            boot_device: boot.target.as_ref().and_then(device_of),
            persistent: match boot.enabled {
                Some(BootOverrideEnabled::Continuous) => Some(true),
                Some(BootOverrideEnabled::Once) => Some(false),
                _ => None,
            },
        })
    }

    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        Ok(self.sensors(task).await?)
    }

    async fn get_supported_boot_modes(&self, task: &Task) -> Result<Vec<BootMode>, DriverError> {
        let (_, _, system) = self.system(task).await?;
        let allowed = system.boot.map(|b| b.mode_allowable).unwrap_or_default();
        if allowed.is_empty() {
            return Ok(vec![BootMode::Bios, BootMode::Uefi]);
        }
        Ok(allowed
            .iter()
            .filter_map(|m| mode_of(&BootOverrideMode::from(m.as_str())))
            .collect())
    }

    async fn set_boot_mode(&self, task: &Task, mode: BootMode) -> Result<(), DriverError> {
        let (client, path) = self.shared.connect(task).await?;
        let (system, etag): (ComputerSystem, _) = client.get_with_etag(&path).await?;
        let boot = system.boot.unwrap_or_default();
        let want = redfish_mode(mode);
        if boot.mode.as_ref() == Some(&want) {
            return Ok(());
        }
        // Some BMCs want the target and enabled flags alongside the mode.
        let mut b = json!({ "BootSourceOverrideMode": want.as_str() });
        if let Some(t) = &boot.target {
            b["BootSourceOverrideTarget"] = json!(t.as_str());
        }
        if let Some(e) = &boot.enabled {
            b["BootSourceOverrideEnabled"] = json!(e.as_str());
        }
        client
            .patch(&path, &json!({ "Boot": b }), etag.as_deref())
            .await?;
        Ok(())
    }

    async fn get_boot_mode(&self, task: &Task) -> Result<Option<BootMode>, DriverError> {
        let (_, _, system) = self.system(task).await?;
        Ok(system.boot.and_then(|b| b.mode).as_ref().and_then(mode_of))
    }

    async fn get_secure_boot_state(&self, task: &Task) -> Result<bool, DriverError> {
        let (client, path, system) = self.system(task).await?;
        let link = system.secure_boot.ok_or_else(|| {
            RedfishError::Unsupported(format!("The system {path} has no SecureBoot resource"))
        })?;
        let sb: SecureBoot = match client.get(&link.odata_id).await {
            Ok(sb) => sb,
            // A linked resource the BMC does not serve, or one it refuses
            // without a licence (Supermicro's OemLicenseNotPassed): secure boot
            // is unknown, which must not drop the boot mode read with it.
            Err(e) if matches!(e.status(), Some(404 | 403 | 501)) => {
                tracing::warn!(bmc = %client.address, system = %path, resource = %link.odata_id, error = %e, "the SecureBoot resource is linked but cannot be read; secure boot state unknown");
                return Err(RedfishError::Unsupported(format!(
                    "The SecureBoot resource {} of the system {path} cannot be read: {e}",
                    link.odata_id
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        match sb.enable.or_else(|| {
            sb.current_boot
                .as_deref()
                .map(|c| c.eq_ignore_ascii_case("Enabled"))
        }) {
            Some(on) => Ok(on),
            None => Err(RedfishError::Unsupported(format!(
                "The SecureBoot resource {} of the system {path} reports neither SecureBootEnable nor SecureBootCurrentBoot",
                link.odata_id
            ))
            .into()),
        }
    }

    async fn set_secure_boot_state(&self, task: &Task, on: bool) -> Result<(), DriverError> {
        let (client, path, system) = self.system(task).await?;
        let link = system.secure_boot.ok_or_else(|| {
            RedfishError::Unsupported(format!("The system {path} has no SecureBoot resource"))
        })?;
        client
            .patch_settings(&link.odata_id, &json!({ "SecureBootEnable": on }))
            .await?;
        Ok(())
    }

    async fn inject_nmi(&self, task: &Task) -> Result<(), DriverError> {
        let (client, path, system) = self.system(task).await?;
        power::reset(&client, &path, &system, &[ResetType::Nmi]).await?;
        Ok(())
    }

    async fn get_node_health(&self, task: &Task) -> Result<Option<String>, DriverError> {
        let (_, _, system) = self.system(task).await?;
        // Ironic reads Status.Health; a BMC that reports only the rollup (the
        // health of the system and its parts) still says something useful.
        Ok(system
            .status
            .and_then(|s| s.health.or(s.health_rollup))
            .map(|h| h.as_str().to_owned()))
    }

    async fn get_supported_indicators(&self, task: &Task) -> Result<JsonMap, DriverError> {
        let (client, _, system) = self.system(task).await?;
        let entry = || json!({ "led": { "readonly": false, "states": ["BLINKING", "OFF", "ON"] } });
        let mut out = JsonMap::new();
        if system.indicator_led.is_some() {
            out.insert("system".into(), entry());
        }
        if let Some(c) = system.chassis().first() {
            let chassis: Result<Chassis> = client.get(&c.odata_id).await;
            if chassis.is_ok_and(|c| c.indicator_led.is_some()) {
                out.insert("chassis".into(), entry());
            }
        }
        Ok(out)
    }

    async fn set_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
        state: &str,
    ) -> Result<(), DriverError> {
        let led = match state.to_ascii_uppercase().as_str() {
            "ON" => IndicatorLed::Lit,
            "OFF" => IndicatorLed::Off,
            "BLINKING" => IndicatorLed::Blinking,
            other => {
                return Err(DriverError::invalid(format!(
                    "Indicator state {other:?} of {component}/{indicator} is not one of ON, OFF, BLINKING"
                )));
            }
        };
        let (client, path) = self.led_resource(task, component).await?;
        let (_, etag): (Value, _) = client.get_with_etag(&path).await?;
        client
            .patch(
                &path,
                &json!({ "IndicatorLED": led.as_str() }),
                etag.as_deref(),
            )
            .await?;
        Ok(())
    }

    async fn get_indicator_state(
        &self,
        task: &Task,
        component: &str,
        _indicator: &str,
    ) -> Result<String, DriverError> {
        let (client, path) = self.led_resource(task, component).await?;
        let res: Chassis = client.get(&path).await?;
        Ok(res
            .indicator_led
            .as_ref()
            .map(indicator_state)
            .unwrap_or("UNKNOWN")
            .to_owned())
    }

    async fn get_mac_addresses(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        let (client, path, system) = self.system(task).await?;
        let link = system.ethernet_interfaces.ok_or_else(|| {
            RedfishError::Unsupported(format!("The system {path} has no EthernetInterfaces"))
        })?;
        let nics: Vec<EthernetInterface> = client.members(&link.odata_id).await?;
        Ok(nics
            .iter()
            .filter_map(crate::inspect::nic_mac)
            .filter_map(|m| m.parse::<MacAddress>().ok())
            .filter(|m| !m.is_multicast() && m.octets() != [0; 6])
            .map(|m| m.to_string())
            .collect())
    }

    async fn attach_virtual_media(
        &self,
        task: &Task,
        device: VmediaDevice,
        image_url: &str,
    ) -> Result<(), DriverError> {
        let (client, path, system) = self.system(task).await?;
        vmedia::insert_any(&client, &path, &system, device, image_url).await?;
        Ok(())
    }

    async fn get_virtual_media(&self, task: &Task) -> Result<Value, DriverError> {
        // As Ironic's `redfish_boot.get_vmedia`: every slot (under the system,
        // else under its managers) with its media types, inserted flag and image.
        let (client, path, system) = self.system(task).await?;
        let out: Vec<Value> = vmedia::slots(&client, &path, &system)
            .await?
            .into_iter()
            .map(|(_, m)| {
                json!({
                    "media_types": m.media_types,
                    "inserted": m.is_inserted(),
                    "image": m.image,
                })
            })
            .collect();
        Ok(Value::Array(out))
    }

    async fn detach_virtual_media(
        &self,
        task: &Task,
        devices: &[VmediaDevice],
    ) -> Result<(), DriverError> {
        let (client, path, system) = self.system(task).await?;
        let all = [
            VmediaDevice::Cdrom,
            VmediaDevice::Floppy,
            VmediaDevice::Disk,
        ];
        let devices = if devices.is_empty() {
            &all[..]
        } else {
            devices
        };
        for slot in vmedia::slots(&client, &path, &system).await? {
            if devices
                .iter()
                .any(|d| slot.1.accepts(vmedia::media_types(*d)))
            {
                vmedia::eject(&client, &slot).await?;
            }
        }
        Ok(())
    }

    /// Ironic's order: the service root's `Vendor` (Redfish 1.5+), else the
    /// system's `Manufacturer`.
    async fn detect_vendor(&self, task: &Task) -> Result<Option<String>, DriverError> {
        let (client, _, system) = self.system(task).await?;
        let root_vendor = match client.root().await {
            Ok(r) => r.vendor,
            Err(e) => {
                tracing::warn!(bmc = %client.address, error = %e, "could not read the service root for its Vendor");
                None
            }
        };
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(nonempty(root_vendor).or_else(|| nonempty(system.manufacturer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironic_core::Node;

    #[test]
    fn boot_devices_round_trip() {
        for d in [
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::Bios,
            BootDevice::UefiHttp,
            BootDevice::Floppy,
        ] {
            assert_eq!(device_of(&target_of(d).unwrap()), Some(d));
        }
        assert_eq!(device_of(&BootSource::from("UefiBootNext")), None);
        assert_eq!(device_of(&BootSource::from("hdd")), Some(BootDevice::Disk));
    }

    #[test]
    fn boot_mode_from_node_or_capabilities() {
        let mut node = Node::new("redfish");
        assert_eq!(requested_boot_mode(&Task::new(node.clone())), None);
        node.properties
            .insert("capabilities".into(), json!("foo:bar, boot_mode:bios"));
        assert_eq!(
            requested_boot_mode(&Task::new(node.clone())),
            Some(BootMode::Bios)
        );
        node.boot_mode = Some("uefi".into());
        assert_eq!(requested_boot_mode(&Task::new(node)), Some(BootMode::Uefi));
    }
}
