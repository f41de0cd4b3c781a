//! The driver contract: one object-safe async trait per interface.
//!
//! A node names an implementation for each interface in data
//! (`power_interface = "ipmi"`); the conductor looks them up in the
//! [`InterfaceRegistry`](crate::hardware::InterfaceRegistry) and holds them as
//! `Arc<dyn PowerInterface>` and so on. Every trait extends [`BaseInterface`]
//! (validation, properties, steps).

mod base;
mod bios;
mod boot;
mod console;
mod deploy;
mod firmware;
mod inspect;
mod management;
mod network;
pub mod noop;
mod power;
mod raid;
mod rescue;
mod steps;
mod storage;
mod task;
mod vendor;

pub use base::{BaseInterface, PropertyDoc};
pub use bios::{BiosInterface, BiosSetting};
pub use boot::{BootInterface, BootIsoBuilder, RamdiskKind, RamdiskParams};
pub use console::{ConsoleInfo, ConsoleInterface};
pub use deploy::{DeployInterface, Heartbeat, HeartbeatOutcome};
pub use firmware::{FirmwareComponent, FirmwareInterface, FirmwareUpdate};
pub use inspect::{DiscoveredPort, InspectInterface, InspectOutcome, InspectionData};
pub use management::{BootDevice, BootDeviceInfo, BootMode, ManagementInterface, VmediaDevice};
pub use network::{NetworkInterface, NetworkPhase, VifInfo};
pub use power::{PowerInterface, PowerInterfaceExt};
pub use raid::{LOGICAL_DISK_PROPERTIES, RaidInterface};
pub use rescue::RescueInterface;
pub use steps::{ArgInfo, Step, StepDef, StepKind, StepOutcome};
pub use storage::StorageInterface;
pub use task::{Task, TaskEnv};
pub use vendor::{VendorInterface, VendorRoute};
