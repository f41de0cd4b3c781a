//! Virtual media: finding the slots (under the System, or under its Manager on
//! older BMCs), inserting and ejecting, and `RedfishVirtualMediaBoot`, the boot
//! interface that boots the deploy ISO from the virtual CD.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, BootDevice, BootInterface, BootIsoBuilder, PropertyDoc, RamdiskKind,
    RamdiskParams, Task, VmediaDevice,
};
use ironic_core::{DriverError, PowerAction};
use serde_json::{Value, json};

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::management::set_boot_device;
use crate::models::{ComputerSystem, Manager, VirtualMedia};
use crate::{RedfishConfig, Shared, config};

/// A virtual media slot: its path and what it reported.
pub(crate) type Slot = (String, VirtualMedia);

/// The Redfish media types that serve an Ironic virtual media device.
pub(crate) fn media_types(device: VmediaDevice) -> &'static [&'static str] {
    match device {
        VmediaDevice::Cdrom => &["CD", "DVD"],
        VmediaDevice::Floppy => &["Floppy"],
        VmediaDevice::Disk => &["USBStick"],
        // a device type this crate does not know matches no slot
        _ => &[],
    }
}

/// Every virtual media slot of the system: from `System.VirtualMedia` (Redfish
/// 1.11+), else from the managers that manage it.
pub(crate) async fn slots(
    client: &RedfishClient,
    path: &str,
    system: &ComputerSystem,
) -> Result<Vec<Slot>> {
    let mut collections = Vec::new();
    if let Some(l) = &system.virtual_media {
        collections.push(l.odata_id.clone());
    } else {
        for m in system.managers() {
            match client.get::<Manager>(&m.odata_id).await {
                Ok(mgr) => collections.extend(mgr.virtual_media.map(|l| l.odata_id)),
                Err(e) => {
                    tracing::warn!(manager = %m.odata_id, error = %e, "skipping a manager while looking for virtual media")
                }
            }
        }
    }
    if collections.is_empty() {
        return Err(RedfishError::Unsupported(format!(
            "The Redfish system {path} at {} offers no virtual media (neither under the system nor under its managers)",
            client.address
        )));
    }
    let mut out = Vec::new();
    for c in collections {
        for link in client.member_links(&c).await? {
            let media: VirtualMedia = client.get(&link).await?;
            out.push((link, media));
        }
    }
    Ok(out)
}

/// Insert `url` into the first slot that takes `device` media and accepts it,
/// as Ironic's `_insert_vmedia`: a slot that refuses the insertion with 400 or
/// 405 (Cisco's vKVM-only slots) is skipped for the next one.
pub(crate) async fn insert_any(
    client: &RedfishClient,
    path: &str,
    system: &ComputerSystem,
    device: VmediaDevice,
    url: &str,
) -> Result<Slot> {
    let types = media_types(device);
    let all = slots(client, path, system).await?;
    let listed: Vec<String> = all
        .iter()
        .map(|(p, m)| format!("{p} {:?}", m.media_types))
        .collect();
    let mut refused = Vec::new();
    for slot in all.into_iter().filter(|(_, m)| m.accepts(types)) {
        match insert(client, &slot, url).await {
            Ok(()) => return Ok(slot),
            Err(e) if matches!(e.status(), Some(400 | 405)) => {
                tracing::warn!(bmc = %client.address, slot = %slot.0, error = %e, "the virtual media slot refused the image; trying the next one");
                refused.push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    if refused.is_empty() {
        return Err(RedfishError::Unsupported(format!(
            "No virtual media slot of the system {path} takes {types:?}; it has: {}",
            listed.join(", ")
        )));
    }
    Err(RedfishError::InvalidParameter(format!(
        "Every virtual media slot of the system {path} that takes {types:?} refused {url}: {}",
        refused.join("; ")
    )))
}

/// Eject what is in `slot`; nothing inserted is fine.
pub(crate) async fn eject(client: &RedfishClient, slot: &Slot) -> Result<()> {
    let (path, media) = slot;
    if !media.is_inserted() {
        return Ok(());
    }
    let res = match media.eject_action() {
        Some(a) => client.post(&a.target, &json!({})).await,
        None => {
            client
                .patch(
                    path,
                    &json!({"Image": Value::Null, "Inserted": false}),
                    media.etag.as_deref(),
                )
                .await
        }
    };
    match res {
        Ok(resp) => {
            client
                .wait_for_task(&resp, "virtual media eject", client.config().task_timeout)
                .await?;
        }
        Err(e) => {
            // Some BMCs answer an error when the slot is already empty.
            let now: VirtualMedia = client.get(path).await?;
            if now.is_inserted() {
                return Err(e);
            }
            tracing::info!(bmc = %client.address, slot = %path, error = %e, "eject failed but the slot is empty");
        }
    }
    tracing::info!(bmc = %client.address, slot = %path, "virtual media ejected");
    Ok(())
}

/// Insert `url` into `slot` and check that the BMC took it. Whatever the slot
/// reads as inserted is ejected first, even the same URL: iDRAC keeps reporting
/// an ejected image for a while, and the node's ISO URL does not change, so
/// trusting it would boot an empty drive (Ironic does the same).
pub(crate) async fn insert(client: &RedfishClient, slot: &Slot, url: &str) -> Result<()> {
    let (path, media) = slot;
    eject(client, slot).await?;
    let resp = match media.insert_action() {
        Some(a) => {
            let body = json!({"Image": url, "Inserted": true, "WriteProtected": true});
            match client.post(&a.target, &body).await {
                Ok(r) => r,
                // Some BMCs refuse the optional parameters: try with the image alone.
                Err(e) if e.status() == Some(400) => {
                    tracing::info!(bmc = %client.address, slot = %path, error = %e, "InsertMedia refused; retrying with Image only");
                    client
                        .post(&a.target, &json!({"Image": url}))
                        .await
                        .map_err(|_| e)?
                }
                Err(e) => return Err(e),
            }
        }
        None => {
            let (_, etag): (Value, _) = client.get_with_etag(path).await?;
            client
                .patch(
                    path,
                    &json!({"Image": url, "Inserted": true}),
                    etag.as_deref(),
                )
                .await?
        }
    };
    client
        .wait_for_task(&resp, "virtual media insert", client.config().task_timeout)
        .await?;
    let now: VirtualMedia = client.get(path).await?;
    if !now.is_inserted() {
        return Err(RedfishError::Other(format!(
            "The Redfish BMC at {} accepted inserting {url} into {path} but the slot reads empty",
            client.address
        )));
    }
    tracing::info!(bmc = %client.address, slot = %path, image = url, "virtual media inserted");
    Ok(())
}

/// Boot the agent ramdisk from virtual media
/// (`boot_interface = "redfish-virtual-media"`).
///
/// As Ironic's: with a [`BootIsoBuilder`] (see
/// [`register_with_boot_iso`](crate::register_with_boot_iso)) and no prebuilt ISO
/// in `driver_info`, it inserts an ISO built for the node from its
/// `deploy_kernel`/`deploy_ramdisk` (or `rescue_*`) with the conductor's kernel
/// parameters (`ipa-api-url`, ...) baked in, and removes it again in
/// `clean_up_ramdisk`. A prebuilt ISO, `driver_info.redfish_deploy_iso` (or
/// `deploy_iso`; for rescue `redfish_rescue_iso` / `rescue_iso`), an http(s) URL
/// the BMC can download, is inserted as is: it must carry its own configuration
/// (the API URL on its kernel command line, or found through DHCP); the kernel
/// parameters are then only recorded in `driver_internal_info.redfish_vmedia`
/// (Ironic logs the same: "custom configuration will not be available").
#[derive(Debug, Clone)]
pub struct RedfishVirtualMediaBoot {
    shared: Arc<Shared>,
    builder: Option<Arc<dyn BootIsoBuilder>>,
}

/// Where the booted ISO comes from (shared with `redfish-https`).
pub(crate) enum IsoSource {
    /// A prebuilt ISO named in `driver_info`.
    Prebuilt(String),
    /// Built for the node by the [`BootIsoBuilder`].
    Built(Arc<dyn BootIsoBuilder>),
}

/// The `driver_info` keys of a prebuilt ISO (Ironic's `_parse_driver_info`).
pub(crate) fn iso_keys(kind: RamdiskKind) -> &'static [&'static str] {
    match kind {
        RamdiskKind::Deploy => &["redfish_deploy_iso", "deploy_iso"],
        RamdiskKind::Rescue => &["redfish_rescue_iso", "rescue_iso"],
    }
}

/// The prebuilt ISO, or the builder, or an error naming what to set.
pub(crate) fn iso_source(
    task: &Task,
    kind: RamdiskKind,
    builder: Option<&Arc<dyn BootIsoBuilder>>,
) -> Result<IsoSource> {
    if let Some(url) = prebuilt_iso(task, kind)? {
        return Ok(IsoSource::Prebuilt(url));
    }
    if let Some(b) = builder {
        return Ok(IsoSource::Built(b.clone()));
    }
    let keys = iso_keys(kind);
    Err(RedfishError::MissingParameter(format!(
        "Missing the following property in node's driver_info: {} (or {}); this conductor cannot build ISOs from deploy_kernel and deploy_ramdisk",
        keys[0], keys[1]
    )))
}

/// The prebuilt ISO `driver_info` names, checked to be an http(s) URL.
fn prebuilt_iso(task: &Task, kind: RamdiskKind) -> Result<Option<String>> {
    let keys = iso_keys(kind);
    let info = &task.node.driver_info;
    let Some(url) = keys
        .iter()
        .find_map(|k| info.get_str(k).filter(|s| !s.trim().is_empty()))
    else {
        return Ok(None);
    };
    let url = url.trim().to_owned();
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        RedfishError::InvalidParameter(format!("{} {url:?} is not a URL: {e}", keys[0]))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(RedfishError::InvalidParameter(format!(
            "{} {url:?} must be an http or https URL the BMC can download",
            keys[0]
        )));
    }
    Ok(Some(url))
}

/// Check that the `kind` ISO can be had: prebuilt, or buildable for the node.
pub(crate) fn validate_iso(
    task: &Task,
    kind: RamdiskKind,
    builder: Option<&Arc<dyn BootIsoBuilder>>,
) -> Result<(), DriverError> {
    match iso_source(task, kind, builder)? {
        IsoSource::Prebuilt(_) => Ok(()),
        IsoSource::Built(b) => b.validate(task, kind),
    }
}

/// The ISO's URL: the prebuilt one (warning that the kernel parameters will
/// not reach the ramdisk) or one built now; and whether it was built.
pub(crate) async fn iso_url(
    task: &Task,
    params: &RamdiskParams,
    builder: Option<&Arc<dyn BootIsoBuilder>>,
) -> Result<(String, bool), DriverError> {
    Ok(match iso_source(task, params.kind, builder)? {
        IsoSource::Prebuilt(url) => {
            if !params.kernel_params.is_empty() {
                tracing::warn!(node = %task.node.uuid, iso = %url, "using the prebuilt ISO of driver_info: the conductor's kernel parameters will not reach the ramdisk");
            }
            (url, false)
        }
        IsoSource::Built(b) => (b.prepare(task, params).await?, true),
    })
}

/// The `driver_info` properties of the ISO boot interfaces.
pub(crate) fn iso_properties(can_build: bool) -> Vec<PropertyDoc> {
    let mut p = config::PROPERTIES.to_vec();
    if can_build {
        p.push(PropertyDoc::optional(
            "redfish_deploy_iso",
            "URL (http/https) of a prebuilt deploy ISO the BMC boots as is (deploy_iso is accepted too); without it the conductor builds one for the node from deploy_kernel and deploy_ramdisk with the node's kernel parameters.",
        ));
        p.push(PropertyDoc::optional(
            "deploy_kernel",
            "Deploy kernel the node's ISO is built from (default: the conductor's).",
        ));
        p.push(PropertyDoc::optional(
            "deploy_ramdisk",
            "Deploy ramdisk the node's ISO is built from (default: the conductor's).",
        ));
    } else {
        p.push(PropertyDoc::required(
            "redfish_deploy_iso",
            "URL (http/https) of the deploy ISO the BMC boots (as virtual CD, or over UEFI HTTP with redfish-https); deploy_iso is accepted too.",
        ));
    }
    p.push(PropertyDoc::optional(
        "redfish_rescue_iso",
        "URL (http/https) of the rescue ISO; rescue_iso is accepted too.",
    ));
    p
}

impl RedfishVirtualMediaBoot {
    /// A boot interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    /// Build the node's ISO with `builder` when `driver_info` names no prebuilt one.
    pub fn with_boot_iso(mut self, builder: Arc<dyn BootIsoBuilder>) -> Self {
        self.builder = Some(builder);
        self
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishVirtualMediaBoot {
            shared,
            builder: None,
        }
    }

    fn validate_kind(&self, task: &Task, kind: RamdiskKind) -> Result<(), DriverError> {
        validate_iso(task, kind, self.builder.as_ref())
    }

    /// Eject the ramdisk ISO and forget what was built for it.
    async fn eject_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        self.eject_all_cd(task).await?;
        if let Some(b) = &self.builder {
            b.clean_up(task).await?;
        }
        task.node.driver_internal_info.remove("redfish_vmedia");
        Ok(())
    }

    async fn eject_all_cd(&self, task: &Task) -> Result<()> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        for slot in slots(&client, &path, &system).await? {
            if slot.1.accepts(media_types(VmediaDevice::Cdrom)) {
                eject(&client, &slot).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BaseInterface for RedfishVirtualMediaBoot {
    fn properties(&self) -> Vec<PropertyDoc> {
        iso_properties(self.builder.is_some())
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task)?;
        self.validate_kind(task, RamdiskKind::Deploy)
    }

    fn steps(&self) -> Vec<ironic_core::driver::StepDef> {
        Vec::new()
    }
}

#[async_trait]
impl BootInterface for RedfishVirtualMediaBoot {
    fn capabilities(&self) -> Vec<&'static str> {
        vec!["ramdisk_boot"]
    }

    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        let (iso, built) = iso_url(task, params, self.builder.as_ref()).await?;
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let slot = insert_any(&client, &path, &system, VmediaDevice::Cdrom, &iso).await?;
        set_boot_device(&client, &path, task, BootDevice::Cdrom, false).await?;
        task.node.set_internal(
            "redfish_vmedia",
            json!({"slot": slot.0, "image": iso, "built": built, "kernel_params": params.command_line()}),
        );
        Ok(())
    }

    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        // Ironic's RedfishVirtualMediaBoot.clean_up_ramdisk powers the node off
        // before it ejects the ramdisk (so an aborted deploy, inspection or
        // cleaning leaves it off); a node that must not be powered off
        // (disable_power_off) keeps its power; a task without resolved
        // interfaces (a bare driver test) has no power interface to use
        if !task.node.disable_power_off && task.driver.is_some() {
            task.node_power_action(PowerAction::PowerOff, None).await?;
        }
        self.eject_ramdisk(task).await
    }

    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.eject_ramdisk(task).await?;
        let (client, path) = self.shared.connect(task).await?;
        set_boot_device(&client, &path, task, BootDevice::Disk, true).await?;
        Ok(())
    }

    async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.eject_ramdisk(task).await
    }

    fn validate_rescue(&self, task: &Task) -> Result<(), DriverError> {
        self.validate_kind(task, RamdiskKind::Rescue)
    }

    fn validate_inspection(&self, task: &Task) -> Result<(), DriverError> {
        self.validate(task)
    }
}
