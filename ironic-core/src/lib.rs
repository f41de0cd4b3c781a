#![doc = include_str!("../README.md")]

pub mod conductor;
pub mod driver;
pub mod error;
pub mod fake;
pub mod graphical;
pub mod hardware;
pub mod ids;
pub mod inspection_rules;
pub mod mac;
pub mod model;
pub mod observe;
pub mod secret;
pub mod states;
pub mod store;
pub mod switch;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use conductor::{Conductor, ConductorConfig, NodeEvent, ProvisionRequest};
pub use error::{DriverError, Error, ErrorKind, Result};
pub use hardware::{Driver, HardwareType, InterfaceRegistry};
pub use ids::{Ident, NodeId, PortId};
pub use mac::MacAddress;
pub use model::{Node, Port};
pub use secret::{DriverInfo, Secret};
pub use states::{Event, PowerAction, PowerState, ProvisionState};
