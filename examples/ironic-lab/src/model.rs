//! The simulated server: the one model both BMC simulators (Redfish and IPMI) act on.
//!
//! A [`SimServer`] holds what a BMC knows about its machine: power, the boot override
//! (device, one-time or persistent, UEFI or legacy), the virtual CD, the NICs' MACs, the
//! disk file, and the [`Faults`] injected into its BMC. Power transitions publish a
//! [`PowerStatus`] on a watch channel; the machine runner (`lab::machine`) follows it to
//! start and stop the deploy agent.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ironic_core::{MacAddress, Secret};
use tokio::sync::watch;

/// Observed power of a simulated server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Running.
    On,
    /// Off (the BMC is still up).
    Off,
}

/// A boot target, named as Redfish's `BootSourceOverrideTarget` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootTarget {
    /// No override: the machine's own boot order (its disk).
    None,
    /// Network boot (PXE).
    Pxe,
    /// Network boot over UEFI HTTP.
    UefiHttp,
    /// The local disk.
    Hdd,
    /// The (virtual) CD drive.
    Cd,
    /// The firmware setup screen.
    BiosSetup,
}

impl BootTarget {
    /// Every target, in the order the Redfish simulator advertises them.
    pub const ALL: [BootTarget; 6] = [
        BootTarget::None,
        BootTarget::Pxe,
        BootTarget::UefiHttp,
        BootTarget::Hdd,
        BootTarget::Cd,
        BootTarget::BiosSetup,
    ];

    /// The Redfish name (`Pxe`, `Hdd`, ...).
    pub fn redfish_name(self) -> &'static str {
        match self {
            BootTarget::None => "None",
            BootTarget::Pxe => "Pxe",
            BootTarget::UefiHttp => "UefiHttp",
            BootTarget::Hdd => "Hdd",
            BootTarget::Cd => "Cd",
            BootTarget::BiosSetup => "BiosSetup",
        }
    }

    /// Parses a Redfish name.
    pub fn from_redfish(name: &str) -> Option<Self> {
        BootTarget::ALL
            .into_iter()
            .find(|t| t.redfish_name() == name)
    }
}

/// Whether the boot override applies (Redfish `BootSourceOverrideEnabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootEnabled {
    /// The override is off.
    Disabled,
    /// The next boot only; reverts to `Disabled` after it.
    Once,
    /// Every boot.
    Continuous,
}

impl BootEnabled {
    /// The Redfish name.
    pub fn redfish_name(self) -> &'static str {
        match self {
            BootEnabled::Disabled => "Disabled",
            BootEnabled::Once => "Once",
            BootEnabled::Continuous => "Continuous",
        }
    }

    /// Parses a Redfish name.
    pub fn from_redfish(name: &str) -> Option<Self> {
        [
            BootEnabled::Disabled,
            BootEnabled::Once,
            BootEnabled::Continuous,
        ]
        .into_iter()
        .find(|t| t.redfish_name() == name)
    }
}

/// Firmware boot mode (Redfish `BootSourceOverrideMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// UEFI.
    Uefi,
    /// Legacy BIOS.
    Legacy,
}

impl BootMode {
    /// The Redfish name.
    pub fn redfish_name(self) -> &'static str {
        match self {
            BootMode::Uefi => "UEFI",
            BootMode::Legacy => "Legacy",
        }
    }

    /// Parses a Redfish name.
    pub fn from_redfish(name: &str) -> Option<Self> {
        match name {
            "UEFI" => Some(BootMode::Uefi),
            "Legacy" => Some(BootMode::Legacy),
            _ => None,
        }
    }
}

/// The boot override a BMC keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOverride {
    /// Where to boot.
    pub target: BootTarget,
    /// For how many boots.
    pub enabled: BootEnabled,
    /// In which firmware mode.
    pub mode: BootMode,
}

/// The virtual CD drive behind the BMC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtualMedia {
    /// The image URL, when inserted.
    pub image: Option<String>,
    /// Whether the image is write protected.
    pub write_protected: bool,
}

impl VirtualMedia {
    /// Whether an image is inserted.
    pub fn inserted(&self) -> bool {
        self.image.is_some()
    }
}

/// What a server booted from when it was last powered on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootSource {
    /// Network boot (PXE, or UEFI HTTP found through DHCP): the deploy ramdisk.
    Network,
    /// An ISO image booted by URL: the virtual CD's, or the `HttpBootUri` of a
    /// UEFI HTTP boot.
    VirtualMedia(String),
    /// The local disk.
    Disk,
    /// Firmware setup, or nothing bootable.
    Firmware,
}

/// What the machine runner follows: power, and a counter bumped on every (re)boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerStatus {
    /// Current power.
    pub power: Power,
    /// Number of boots so far (a reset bumps it while power stays on).
    pub boots: u64,
    /// What the last boot booted from (`None` while off).
    pub booted_from: Option<BootSource>,
}

/// A reset (power) action, named as Redfish's `ResetType` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetAction {
    /// Power on.
    On,
    /// Power on (alias).
    ForceOn,
    /// Cut power.
    ForceOff,
    /// Ask the OS to shut down.
    GracefulShutdown,
    /// Hard reset.
    ForceRestart,
    /// Ask the OS to reboot.
    GracefulRestart,
    /// Off then on.
    PowerCycle,
    /// Diagnostic interrupt (no power change).
    Nmi,
}

impl ResetAction {
    /// Every action, in the order the Redfish simulator advertises them.
    pub const ALL: [ResetAction; 8] = [
        ResetAction::On,
        ResetAction::ForceOn,
        ResetAction::ForceOff,
        ResetAction::GracefulShutdown,
        ResetAction::ForceRestart,
        ResetAction::GracefulRestart,
        ResetAction::PowerCycle,
        ResetAction::Nmi,
    ];

    /// The Redfish name.
    pub fn redfish_name(self) -> &'static str {
        match self {
            ResetAction::On => "On",
            ResetAction::ForceOn => "ForceOn",
            ResetAction::ForceOff => "ForceOff",
            ResetAction::GracefulShutdown => "GracefulShutdown",
            ResetAction::ForceRestart => "ForceRestart",
            ResetAction::GracefulRestart => "GracefulRestart",
            ResetAction::PowerCycle => "PowerCycle",
            ResetAction::Nmi => "Nmi",
        }
    }

    /// Parses a Redfish name.
    pub fn from_redfish(name: &str) -> Option<Self> {
        ResetAction::ALL
            .into_iter()
            .find(|a| a.redfish_name() == name)
    }
}

/// Faults injected into a server's BMC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Latency added to every BMC request.
    pub latency: Duration,
    /// Share (0.0 to 1.0) of BMC requests that fail: Redfish answers 500, IPMI drops them.
    pub flaky: f64,
    /// The BMC rejects the configured password (as if someone changed it).
    pub wrong_password: bool,
    /// Power actions are accepted but never take effect.
    pub stuck: bool,
}

impl Faults {
    /// Parses a fault list such as `slow=200ms,flaky=0.2,wrong-password,stuck`.
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            match (key, value) {
                ("slow", v) => {
                    let v = v.unwrap_or("500ms");
                    f.latency = parse_duration(v).ok_or_else(|| {
                        format!("slow={v}: expected a duration such as 250ms or 2s")
                    })?;
                }
                ("flaky", v) => {
                    let v = v.unwrap_or("0.3");
                    let share: f64 = v
                        .parse()
                        .ok()
                        .filter(|x: &f64| (0.0..=1.0).contains(x))
                        .ok_or_else(|| format!("flaky={v}: expected a share from 0.0 to 1.0"))?;
                    f.flaky = share;
                }
                ("wrong-password", None) => f.wrong_password = true,
                ("stuck", None) => f.stuck = true,
                _ => {
                    return Err(format!(
                        "unknown fault {item:?}: expected slow[=DURATION], flaky[=SHARE], wrong-password or stuck"
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Whether this request should fail (for `flaky`).
    pub fn roll_flaky(&self) -> bool {
        self.flaky > 0.0 && rand::random::<f64>() < self.flaky
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(Duration::from_secs_f64);
    }
    None
}

/// The fixed description of a simulated server.
#[derive(Clone)]
pub struct ServerSpec {
    /// Short name (`lab-0`), also the Redfish system id.
    pub name: String,
    /// SMBIOS UUID.
    pub uuid: uuid::Uuid,
    /// NIC MACs, the first one is the provisioning NIC.
    pub macs: Vec<MacAddress>,
    /// The file standing in for the disk.
    pub disk: PathBuf,
    /// Disk size in bytes.
    pub disk_size: u64,
    /// CPU count.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// BMC user name.
    pub username: String,
    /// BMC password.
    pub password: Secret,
}

impl fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("macs", &self.macs)
            .field("disk", &self.disk)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

/// Mutable BMC-side state.
#[derive(Clone, Debug)]
pub struct ServerState {
    /// Power.
    pub power: Power,
    /// Boot override.
    pub boot: BootOverride,
    /// The virtual CD.
    pub vmedia: VirtualMedia,
    /// The URL a UEFI HTTP boot loads (`Boot.HttpBootUri`), when set.
    pub http_boot_uri: Option<String>,
    /// Injected faults.
    pub faults: Faults,
    /// Bumped on every change visible to a BMC client (for Redfish ETags).
    pub generation: u64,
}

/// Why a BMC operation on the model was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The request made no sense in the current state.
    #[error("{0}")]
    Conflict(String),
    /// A parameter was invalid.
    #[error("{0}")]
    Invalid(String),
}

struct Inner {
    spec: ServerSpec,
    state: Mutex<ServerState>,
    status: watch::Sender<PowerStatus>,
}

/// A simulated server (cheap to clone; all clones share one state).
#[derive(Clone)]
pub struct SimServer {
    inner: Arc<Inner>,
}

impl fmt::Debug for SimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimServer")
            .field("spec", &self.inner.spec)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// A new server, powered off, booting from its disk, UEFI.
    pub fn new(spec: ServerSpec) -> SimServer {
        let (status, _) = watch::channel(PowerStatus {
            power: Power::Off,
            boots: 0,
            booted_from: None,
        });
        SimServer {
            inner: Arc::new(Inner {
                spec,
                state: Mutex::new(ServerState {
                    power: Power::Off,
                    boot: BootOverride {
                        target: BootTarget::None,
                        enabled: BootEnabled::Disabled,
                        mode: BootMode::Uefi,
                    },
                    vmedia: VirtualMedia::default(),
                    http_boot_uri: None,
                    faults: Faults::default(),
                    generation: 1,
                }),
                status,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ServerState> {
        // A poisoned lock only means a panic elsewhere; the state itself stays consistent
        // because every mutation below is a few plain assignments.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fixed description.
    pub fn spec(&self) -> &ServerSpec {
        &self.inner.spec
    }

    /// The disk file.
    pub fn disk(&self) -> &Path {
        &self.inner.spec.disk
    }

    /// A copy of the current state.
    pub fn state(&self) -> ServerState {
        self.lock().clone()
    }

    /// Current power.
    pub fn power(&self) -> Power {
        self.lock().power
    }

    /// Current faults.
    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Follows power transitions and (re)boots.
    pub fn subscribe(&self) -> watch::Receiver<PowerStatus> {
        self.inner.status.subscribe()
    }

    /// Checks BMC credentials (constant time on the password), honouring `wrong_password`.
    pub fn check_credentials(&self, username: &str, password: &str) -> bool {
        if self.lock().faults.wrong_password {
            return false;
        }
        let spec = &self.inner.spec;
        // Evaluate both so the time does not depend on which one is wrong.
        let user_ok = username == spec.username;
        let pass_ok = spec.password.ct_eq(password);
        user_ok & pass_ok
    }

    /// The password the BMC accepts (IPMI needs it to compute RAKP HMACs), or `None`
    /// while `wrong_password` is injected.
    pub fn bmc_password(&self) -> Option<Secret> {
        if self.lock().faults.wrong_password {
            None
        } else {
            Some(self.inner.spec.password.clone())
        }
    }

    /// Performs a reset action. With `stuck` injected it is accepted and ignored.
    pub fn reset(&self, action: ResetAction) -> Result<(), SimError> {
        let mut st = self.lock();
        if st.faults.stuck {
            tracing::debug!(server = %self.inner.spec.name, action = action.redfish_name(), "stuck: power action ignored");
            return Ok(());
        }
        match action {
            ResetAction::On | ResetAction::ForceOn => {
                if st.power == Power::Off {
                    self.boot(&mut st);
                }
            }
            ResetAction::ForceOff | ResetAction::GracefulShutdown => {
                if st.power == Power::On {
                    st.power = Power::Off;
                    st.generation += 1;
                    self.publish(&st, None);
                }
            }
            ResetAction::ForceRestart | ResetAction::GracefulRestart | ResetAction::PowerCycle => {
                self.boot(&mut st);
            }
            ResetAction::Nmi => {
                if st.power == Power::Off {
                    return Err(SimError::Conflict(
                        "the system is powered off: cannot send an NMI".into(),
                    ));
                }
            }
        }
        tracing::info!(server = %self.inner.spec.name, action = action.redfish_name(), power = ?st.power, "power action");
        Ok(())
    }

    /// The operating system shut the machine down by itself (e.g. the agent's power off
    /// command): power goes off whatever faults the BMC has.
    pub fn os_halted(&self) {
        let mut st = self.lock();
        if st.power == Power::On {
            st.power = Power::Off;
            st.generation += 1;
            self.publish(&st, None);
            tracing::info!(server = %self.inner.spec.name, "the operating system powered the machine off");
        }
    }

    /// Powers on (or reboots): consumes a one-time override and publishes what it booted.
    fn boot(&self, st: &mut ServerState) {
        let target = if st.boot.enabled == BootEnabled::Disabled {
            BootTarget::None
        } else {
            st.boot.target
        };
        if st.boot.enabled == BootEnabled::Once {
            st.boot.enabled = BootEnabled::Disabled;
        }
        let source = match target {
            BootTarget::Pxe => BootSource::Network,
            BootTarget::UefiHttp => match &st.http_boot_uri {
                Some(url) => BootSource::VirtualMedia(url.clone()),
                None => BootSource::Network,
            },
            BootTarget::Cd => match &st.vmedia.image {
                Some(url) => BootSource::VirtualMedia(url.clone()),
                None => BootSource::Firmware,
            },
            BootTarget::Hdd | BootTarget::None => BootSource::Disk,
            BootTarget::BiosSetup => BootSource::Firmware,
        };
        st.power = Power::On;
        st.generation += 1;
        self.publish(st, Some(source));
    }

    fn publish(&self, st: &ServerState, booted_from: Option<BootSource>) {
        let power = st.power;
        self.inner.status.send_modify(|s| {
            s.power = power;
            if booted_from.is_some() {
                s.boots += 1;
            }
            s.booted_from = booted_from;
        });
    }

    /// The boot override.
    pub fn boot_override(&self) -> BootOverride {
        self.lock().boot
    }

    /// Changes the boot override; `None` keeps a field as it is.
    pub fn set_boot_override(
        &self,
        target: Option<BootTarget>,
        enabled: Option<BootEnabled>,
        mode: Option<BootMode>,
    ) {
        let mut st = self.lock();
        if let Some(t) = target {
            st.boot.target = t;
            // Setting a target without saying for how long means "once" on real BMCs.
            if enabled.is_none()
                && st.boot.enabled == BootEnabled::Disabled
                && t != BootTarget::None
            {
                st.boot.enabled = BootEnabled::Once;
            }
        }
        if let Some(e) = enabled {
            st.boot.enabled = e;
        }
        if let Some(m) = mode {
            st.boot.mode = m;
        }
        st.generation += 1;
        tracing::info!(server = %self.inner.spec.name, target = st.boot.target.redfish_name(), enabled = st.boot.enabled.redfish_name(), mode = st.boot.mode.redfish_name(), "boot override set");
    }

    /// The URL a UEFI HTTP boot loads (`Boot.HttpBootUri`).
    pub fn http_boot_uri(&self) -> Option<String> {
        self.lock().http_boot_uri.clone()
    }

    /// Sets or clears the URL a UEFI HTTP boot loads.
    pub fn set_http_boot_uri(&self, uri: Option<String>) {
        let mut st = self.lock();
        st.http_boot_uri = uri;
        st.generation += 1;
        tracing::info!(server = %self.inner.spec.name, uri = ?st.http_boot_uri, "HTTP boot URI set");
    }

    /// The virtual CD.
    pub fn vmedia(&self) -> VirtualMedia {
        self.lock().vmedia.clone()
    }

    /// Inserts an image into the virtual CD (refused when one is already inserted).
    pub fn insert_media(&self, image: String, write_protected: bool) -> Result<(), SimError> {
        if image.trim().is_empty() {
            return Err(SimError::Invalid("Image must be a non-empty URL".into()));
        }
        let mut st = self.lock();
        if st.vmedia.inserted() {
            return Err(SimError::Conflict(
                "a virtual media image is already inserted: eject it first".into(),
            ));
        }
        st.vmedia = VirtualMedia {
            image: Some(image),
            write_protected,
        };
        st.generation += 1;
        tracing::info!(server = %self.inner.spec.name, "virtual media inserted");
        Ok(())
    }

    /// Ejects the virtual CD (idempotent).
    pub fn eject_media(&self) {
        let mut st = self.lock();
        st.vmedia = VirtualMedia::default();
        st.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(name: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            uuid: uuid::Uuid::new_v4(),
            macs: vec!["52:54:00:12:34:56".parse().unwrap()],
            disk: PathBuf::from("/nonexistent/disk.img"),
            disk_size: 1 << 30,
            cpus: 2,
            memory_mib: 4096,
            username: "admin".into(),
            password: Secret::new("password"),
        }
    }

    #[test]
    fn one_time_override_is_consumed_by_a_boot() {
        let s = SimServer::new(spec("a"));
        let rx = s.subscribe();
        s.set_boot_override(Some(BootTarget::Pxe), Some(BootEnabled::Once), None);
        s.reset(ResetAction::On).unwrap();
        assert_eq!(rx.borrow().booted_from, Some(BootSource::Network));
        assert_eq!(s.boot_override().enabled, BootEnabled::Disabled);
        s.reset(ResetAction::ForceRestart).unwrap();
        assert_eq!(rx.borrow().booted_from, Some(BootSource::Disk));
        assert_eq!(rx.borrow().boots, 2);
        s.reset(ResetAction::ForceOff).unwrap();
        assert_eq!(rx.borrow().power, Power::Off);
        assert_eq!(rx.borrow().booted_from, None);
    }

    #[test]
    fn stuck_ignores_power_actions() {
        let s = SimServer::new(spec("a"));
        s.set_faults(Faults::parse("stuck").unwrap());
        s.reset(ResetAction::On).unwrap();
        assert_eq!(s.power(), Power::Off);
    }

    #[test]
    fn wrong_password_rejects_the_right_one() {
        let s = SimServer::new(spec("a"));
        assert!(s.check_credentials("admin", "password"));
        assert!(!s.check_credentials("admin", "nope"));
        assert!(!s.check_credentials("root", "password"));
        s.set_faults(Faults::parse("wrong-password").unwrap());
        assert!(!s.check_credentials("admin", "password"));
        assert!(s.bmc_password().is_none());
    }

    #[test]
    fn vmedia_boot_uses_the_inserted_image() {
        let s = SimServer::new(spec("a"));
        s.insert_media("http://127.0.0.1/x.iso".into(), true)
            .unwrap();
        assert!(
            s.insert_media("http://127.0.0.1/y.iso".into(), true)
                .is_err()
        );
        s.set_boot_override(Some(BootTarget::Cd), None, None);
        s.reset(ResetAction::On).unwrap();
        assert_eq!(
            s.subscribe().borrow().booted_from,
            Some(BootSource::VirtualMedia("http://127.0.0.1/x.iso".into()))
        );
    }

    #[test]
    fn fault_specs_parse_or_explain() {
        let f = Faults::parse("slow=250ms, flaky=0.5,stuck").unwrap();
        assert_eq!(f.latency, Duration::from_millis(250));
        assert_eq!(f.flaky, 0.5);
        assert!(f.stuck && !f.wrong_password);
        assert_eq!(
            Faults::parse("slow=2s").unwrap().latency,
            Duration::from_secs(2)
        );
        assert!(Faults::parse("flaky=2").unwrap_err().contains("0.0 to 1.0"));
        assert!(Faults::parse("melt").unwrap_err().contains("unknown fault"));
        assert!(Faults::parse("slow=fast").is_err());
    }
}
