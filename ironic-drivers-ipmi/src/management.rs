//! [`IpmiManagement`]: boot device (with persistent and UEFI/legacy flags), sensors
//! from the SDR repository, NMI.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, BootDevice, BootDeviceInfo, BootMode, ManagementInterface, PropertyDoc, Task,
};
use ironic_core::model::JsonMap;
use ironic_core::{DriverError, Node};
use serde_json::Value;

use crate::client::{IpmiClient, Request};
use crate::config::{IpmiDriverInfo, PROPERTIES};
use crate::error::Error;
use crate::power::{ChassisControl, chassis_control};
use crate::sdr;

/// Devices `set_boot_device` accepts (Ironic's ipmitool list).
pub const SUPPORTED_BOOT_DEVICES: [BootDevice; 5] = [
    BootDevice::Pxe,
    BootDevice::Disk,
    BootDevice::Safe,
    BootDevice::Cdrom,
    BootDevice::Bios,
];

/// Boot device selector (bits 5:2 of boot flags data byte 2).
fn device_selector(d: BootDevice) -> Option<u8> {
    Some(match d {
        BootDevice::Pxe => 0x1,
        BootDevice::Disk => 0x2,
        BootDevice::Safe => 0x3,
        BootDevice::Cdrom => 0x5,
        BootDevice::Bios => 0x6,
        BootDevice::Floppy => 0xF,
        _ => return None,
    })
}

fn device_from_selector(s: u8) -> Option<BootDevice> {
    match s {
        0x1 => Some(BootDevice::Pxe),
        0x2 => Some(BootDevice::Disk),
        0x3 => Some(BootDevice::Safe),
        0x5 => Some(BootDevice::Cdrom),
        0x6 => Some(BootDevice::Bios),
        0xF => Some(BootDevice::Floppy),
        _ => None,
    }
}

/// The five bytes of boot option parameter 5 (boot flags).
pub(crate) fn boot_flags(device: BootDevice, persistent: bool, mode: BootMode) -> Option<[u8; 5]> {
    let sel = device_selector(device)?;
    let mut b1 = 0x80; // valid
    if persistent {
        b1 |= 0x40;
    }
    if mode == BootMode::Uefi {
        b1 |= 0x20;
    }
    Some([b1, sel << 2, 0, 0, 0])
}

/// The boot mode to set with the device (Ironic's `boot_mode_utils.get_boot_mode`):
/// `instance_info.deploy_boot_mode`, then the `boot_mode` capability (or
/// `secure_boot:true`, which implies UEFI), then the driver default.
pub(crate) fn boot_mode_for(node: &Node, default: BootMode) -> BootMode {
    if let Some(m) = node
        .instance_info
        .get("deploy_boot_mode")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        return m;
    }
    let caps: Vec<(String, String)> = match node.properties.get("capabilities") {
        Some(Value::String(s)) => s
            .split(',')
            .filter_map(|kv| kv.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    for (k, v) in &caps {
        if k == "boot_mode"
            && let Ok(m) = v.parse()
        {
            return m;
        }
    }
    if caps
        .iter()
        .any(|(k, v)| k == "secure_boot" && v.eq_ignore_ascii_case("true"))
    {
        return BootMode::Uefi;
    }
    default
}

/// Management over IPMI (registered as `ipmitool`, Ironic's name).
#[derive(Clone, Debug)]
pub struct IpmiManagement {
    client: Arc<IpmiClient>,
}

impl IpmiManagement {
    pub(crate) fn new(client: Arc<IpmiClient>) -> Self {
        IpmiManagement { client }
    }

    fn info(&self, task: &Task) -> Result<IpmiDriverInfo, DriverError> {
        IpmiDriverInfo::from_node(&task.node, self.client.config())
    }

    async fn read_boot_flags(&self, info: &IpmiDriverInfo) -> Result<[u8; 5], Error> {
        let d = self
            .client
            .call(
                info,
                Request::new(0x00, 0x09, [0x05, 0x00, 0x00], "Get System Boot Options"),
            )
            .await?;
        // [param version, param valid + selector, 5 data bytes]
        if d.len() < 7 || d[1] & 0x7F != 0x05 {
            return Err(Error::Unexpected {
                bmc: info.bmc(),
                what: "Get System Boot Options",
                detail: format!("boot flags reply {}", hex::encode(&d)),
            });
        }
        let mut f = [0u8; 5];
        f.copy_from_slice(&d[2..7]);
        Ok(f)
    }

    async fn sensors(&self, info: &IpmiDriverInfo) -> Result<JsonMap, Error> {
        let records = self.read_sdr(info).await?;
        let mut out = JsonMap::new();
        for rec in records {
            if rec.owner != 0x20 || rec.lun != 0 {
                tracing::debug!(bmc = %info.bmc(), sensor = %rec.name, owner = rec.owner, "sensor behind another controller; skipped");
                continue;
            }
            let reading = match self
                .client
                .call_raw(
                    info,
                    Request::new(0x04, 0x2D, [rec.number], "Get Sensor Reading"),
                )
                .await
            {
                Ok(r) if r.completion == 0 => Some(r.data),
                Ok(_) => None,
                Err(e) if e.is_retryable() => return Err(e),
                Err(_) => None,
            };
            let entry = sdr::sensor_entry(&rec, reading.as_deref());
            let id = entry
                .get("Sensor ID")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let group = out
                .entry(sdr::sensor_type_name(rec.sensor_type))
                .or_insert_with(|| Value::Object(JsonMap::new()));
            if let Value::Object(g) = group {
                g.insert(id, Value::Object(entry));
            }
        }
        Ok(out)
    }

    /// Walk the SDR repository: Reserve SDR Repository, then Get SDR for every record,
    /// whole if the BMC can, else in pieces of `sdr_chunk_size` (16 when the BMC
    /// refuses whole reads).
    async fn read_sdr(&self, info: &IpmiDriverInfo) -> Result<Vec<sdr::SensorRecord>, Error> {
        const MAX_RECORDS: usize = 1024;
        let mut reservation = self.reserve(info).await?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut id: u16 = 0;
        let size = self.client.config().sdr_chunk_size;
        let mut chunked = size < 0xFF;
        let chunk = if chunked { size.max(1) as usize } else { 16 };
        let mut restarts = 0;
        while id != 0xFFFF && seen.len() < MAX_RECORDS {
            if !seen.insert(id) {
                return Err(Error::Unexpected {
                    bmc: info.bmc(),
                    what: "Get SDR",
                    detail: format!("record {id:#06x} links back into the repository"),
                });
            }
            let (next, rec) = match self.get_sdr(info, reservation, id, chunked, chunk).await {
                Ok(v) => v,
                Err(Error::Completion {
                    code: 0xCA | 0xC7 | 0xC8 | 0xFF,
                    ..
                }) if !chunked => {
                    chunked = true;
                    seen.remove(&id);
                    continue;
                }
                Err(Error::Completion { code: 0xC5, .. }) if restarts < 3 => {
                    // the reservation was cancelled: take a new one, read the record again
                    restarts += 1;
                    reservation = self.reserve(info).await?;
                    seen.remove(&id);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match sdr::parse_record(&rec) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(detail) => {
                    tracing::warn!(bmc = %info.bmc(), %detail, "skipping malformed SDR")
                }
            }
            id = next;
        }
        Ok(out)
    }

    async fn reserve(&self, info: &IpmiDriverInfo) -> Result<u16, Error> {
        match self
            .client
            .call(info, Request::new(0x0A, 0x22, [], "Reserve SDR Repository"))
            .await
        {
            Ok(d) if d.len() >= 2 => Ok(u16::from_le_bytes([d[0], d[1]])),
            Ok(d) => Err(Error::Unexpected {
                bmc: info.bmc(),
                what: "Reserve SDR Repository",
                detail: format!("reply {}", hex::encode(d)),
            }),
            // without reservations, whole-record reads at offset 0 still work
            Err(Error::Completion { code: 0xC1, .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// One record: (next record ID, record bytes with header).
    async fn get_sdr(
        &self,
        info: &IpmiDriverInfo,
        reservation: u16,
        id: u16,
        chunked: bool,
        chunk: usize,
    ) -> Result<(u16, Vec<u8>), Error> {
        let get = |offset: u8, count: u8| {
            let r = reservation.to_le_bytes();
            let i = id.to_le_bytes();
            Request::new(
                0x0A,
                0x23,
                [r[0], r[1], i[0], i[1], offset, count],
                "Get SDR",
            )
        };
        let short = |d: &[u8]| Error::Unexpected {
            bmc: info.bmc(),
            what: "Get SDR",
            detail: format!("record {id:#06x}: reply {}", hex::encode(d)),
        };
        if !chunked {
            let d = self.client.call(info, get(0, 0xFF)).await?;
            if d.len() < 7 {
                return Err(short(&d));
            }
            return Ok((u16::from_le_bytes([d[0], d[1]]), d[2..].to_vec()));
        }
        let d = self.client.call(info, get(0, 5)).await?;
        if d.len() < 7 {
            return Err(short(&d));
        }
        let next = u16::from_le_bytes([d[0], d[1]]);
        let mut rec = d[2..7].to_vec();
        let total = 5 + rec[4] as usize;
        while rec.len() < total {
            let count = (total - rec.len()).min(chunk) as u8;
            let Ok(offset) = u8::try_from(rec.len()) else {
                return Err(short(&rec)); // a record longer than an SDR can be
            };
            let d = self.client.call(info, get(offset, count)).await?;
            if d.len() < 3 {
                return Err(short(&d));
            }
            rec.extend_from_slice(&d[2..]);
        }
        rec.truncate(total);
        Ok((next, rec))
    }
}

#[async_trait]
impl BaseInterface for IpmiManagement {
    fn properties(&self) -> Vec<PropertyDoc> {
        PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.info(task).map(|_| ())
    }
}

#[async_trait]
impl ManagementInterface for IpmiManagement {
    async fn get_supported_boot_devices(
        &self,
        _task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        Ok(SUPPORTED_BOOT_DEVICES.to_vec())
    }

    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        if !SUPPORTED_BOOT_DEVICES.contains(&device) {
            return Err(DriverError::invalid(format!(
                "Invalid boot device {device} specified. Supported: {}",
                SUPPORTED_BOOT_DEVICES.map(|d| d.as_str()).join(", ")
            )));
        }
        let info = self.info(task)?;
        let mode = boot_mode_for(&task.node, self.client.config().default_boot_mode);
        let flags = boot_flags(device, persistent, mode)
            .ok_or_else(|| DriverError::invalid(format!("boot device {device}")))?;
        if info.disable_boot_timeout {
            // Boot flag valid bit clearing: keep the flags past the BMC's 60 s timeout.
            let r = self
                .client
                .call(
                    &info,
                    Request::new(
                        0x00,
                        0x08,
                        [0x03, 0x08],
                        "Set System Boot Options (timeout)",
                    ),
                )
                .await;
            if let Err(e) = r {
                if e.is_retryable() {
                    return Err(e.into());
                }
                tracing::warn!(bmc = %info.bmc(), error = %e, "could not disable the boot flag timeout");
            }
        }
        let mut data = vec![0x05];
        data.extend_from_slice(&flags);
        self.client
            .call(
                &info,
                Request::new(0x00, 0x08, data, "Set System Boot Options (boot flags)"),
            )
            .await?;
        tracing::info!(node = %task.node.uuid, bmc = %info.bmc(), %device, persistent, %mode, "boot device set");
        Ok(())
    }

    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError> {
        let info = self.info(task)?;
        let f = self.read_boot_flags(&info).await?;
        Ok(BootDeviceInfo {
            boot_device: device_from_selector((f[1] >> 2) & 0x0F),
            // Without the valid bit the persistence bit means nothing (ipmi_sim
            // never sets it; real BMCs clear it after a one-time boot).
            persistent: (f[0] & 0x80 != 0).then_some(f[0] & 0x40 != 0),
        })
    }

    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        let info = self.info(task)?;
        Ok(self.sensors(&info).await?)
    }

    async fn inject_nmi(&self, task: &Task) -> Result<(), DriverError> {
        let info = self.info(task)?;
        chassis_control(&self.client, &info, ChassisControl::DiagnosticInterrupt).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_encode_persistent_and_mode() {
        assert_eq!(
            boot_flags(BootDevice::Pxe, false, BootMode::Bios),
            Some([0x80, 0x04, 0, 0, 0])
        );
        assert_eq!(
            boot_flags(BootDevice::Disk, true, BootMode::Uefi),
            Some([0xE0, 0x08, 0, 0, 0])
        );
        assert_eq!(boot_flags(BootDevice::UefiHttp, true, BootMode::Uefi), None);
        for d in SUPPORTED_BOOT_DEVICES {
            let sel = device_selector(d).unwrap();
            assert_eq!(device_from_selector(sel), Some(d));
        }
    }

    #[test]
    fn boot_mode_follows_ironic_precedence() {
        let mut n = Node::new("ipmi");
        assert_eq!(boot_mode_for(&n, BootMode::Uefi), BootMode::Uefi);
        n.properties
            .insert("capabilities".into(), json!("boot_mode:bios,foo:bar"));
        assert_eq!(boot_mode_for(&n, BootMode::Uefi), BootMode::Bios);
        n.instance_info
            .insert("deploy_boot_mode".into(), json!("uefi"));
        assert_eq!(boot_mode_for(&n, BootMode::Bios), BootMode::Uefi);
        let mut n = Node::new("ipmi");
        n.properties
            .insert("capabilities".into(), json!({"secure_boot": "true"}));
        assert_eq!(boot_mode_for(&n, BootMode::Bios), BootMode::Uefi);
    }
}
