use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{InterfaceType, JsonMap};

/// Which kind of step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StepKind {
    /// Clean steps (automated on `provide`/undeploy, or manual with `clean`).
    Clean,
    /// Deploy steps.
    Deploy,
    /// Service steps (on an active node).
    Service,
    /// Verify steps (run while `verifying`; synchronous).
    Verify,
}

impl StepKind {
    /// `"clean"`, `"deploy"`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            StepKind::Clean => "clean",
            StepKind::Deploy => "deploy",
            StepKind::Service => "service",
            StepKind::Verify => "verify",
        }
    }

    /// Interface priority used to break ties between equal step priorities
    /// (`conductor/steps.py`); higher runs first.
    pub const fn interface_priority(self, iface: InterfaceType) -> u32 {
        match self {
            StepKind::Clean | StepKind::Deploy | StepKind::Service => match iface {
                InterfaceType::Network => {
                    if matches!(self, StepKind::Service) {
                        8
                    } else {
                        0
                    }
                }
                InterfaceType::Vendor => 7,
                InterfaceType::Power => 6,
                InterfaceType::Management => 5,
                InterfaceType::Firmware => 4,
                InterfaceType::Deploy => 3,
                InterfaceType::Bios => 2,
                InterfaceType::Raid => 1,
                _ => 0,
            },
            StepKind::Verify => match iface {
                InterfaceType::Power => 13,
                InterfaceType::Management => 12,
                InterfaceType::Firmware => 11,
                InterfaceType::Inspect => 10,
                InterfaceType::Deploy => 9,
                InterfaceType::Boot => 8,
                InterfaceType::Bios => 7,
                InterfaceType::Raid => 6,
                InterfaceType::Vendor => 5,
                InterfaceType::Network => 4,
                InterfaceType::Storage => 3,
                InterfaceType::Console => 2,
                InterfaceType::Rescue => 1,
            },
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Description of one argument a step takes (`argsinfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArgInfo {
    /// What it is.
    pub description: String,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
}

/// A step an interface offers, as its `get_steps` returns it (Ironic's
/// `@clean_step` / `@deploy_step` / `@service_step` / `@verify_step`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepDef {
    /// Kind.
    pub kind: StepKind,
    /// Step name (the method name in Ironic).
    pub name: String,
    /// Priority: 0 = only when asked for; higher runs first.
    pub priority: u32,
    /// Whether `abort` may interrupt it.
    pub abortable: bool,
    /// Whether it needs the agent ramdisk (clean/service).
    pub requires_ramdisk: bool,
    /// Arguments it accepts.
    pub argsinfo: Option<BTreeMap<String, ArgInfo>>,
}

impl StepDef {
    /// A step of `kind` with Ironic's decorator defaults: deploy steps abortable,
    /// clean/service steps not; clean/service steps require the ramdisk.
    pub fn new(kind: StepKind, name: impl Into<String>, priority: u32) -> Self {
        StepDef {
            kind,
            name: name.into(),
            priority,
            abortable: matches!(kind, StepKind::Deploy),
            requires_ramdisk: matches!(kind, StepKind::Clean | StepKind::Service),
            argsinfo: None,
        }
    }
    /// A clean step (`@clean_step(priority)`).
    pub fn clean(name: impl Into<String>, priority: u32) -> Self {
        Self::new(StepKind::Clean, name, priority)
    }
    /// A deploy step (`@deploy_step(priority)`).
    pub fn deploy(name: impl Into<String>, priority: u32) -> Self {
        Self::new(StepKind::Deploy, name, priority)
    }
    /// A service step (`@service_step(priority)`).
    pub fn service(name: impl Into<String>, priority: u32) -> Self {
        Self::new(StepKind::Service, name, priority)
    }
    /// A verify step (`@verify_step(priority)`).
    pub fn verify(name: impl Into<String>, priority: u32) -> Self {
        Self::new(StepKind::Verify, name, priority)
    }
    /// Set `abortable`.
    pub fn abortable(mut self, yes: bool) -> Self {
        self.abortable = yes;
        self
    }
    /// Set `requires_ramdisk`.
    pub fn requires_ramdisk(mut self, yes: bool) -> Self {
        self.requires_ramdisk = yes;
        self
    }
    /// Document an argument.
    pub fn arg(mut self, name: &str, description: &str, required: bool) -> Self {
        self.argsinfo.get_or_insert_with(BTreeMap::new).insert(
            name.to_owned(),
            ArgInfo {
                description: description.to_owned(),
                required,
            },
        );
        self
    }
}

/// A step scheduled on a node (what `clean_step`/`deploy_step`/`service_step` hold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// The interface that runs it.
    pub interface: InterfaceType,
    /// Step name.
    pub step: String,
    /// Priority it runs with.
    #[serde(default)]
    pub priority: u32,
    /// Arguments.
    #[serde(default)]
    pub args: JsonMap,
    /// Whether abort may interrupt it.
    #[serde(default)]
    pub abortable: bool,
    /// Whether it needs the ramdisk.
    #[serde(default)]
    pub requires_ramdisk: bool,
}

impl Step {
    /// The step `step` of `interface`, priority 0, no arguments, not abortable, no
    /// ramdisk needed; adjust with the `with_*` methods.
    pub fn new(interface: InterfaceType, step: impl Into<String>) -> Self {
        Step {
            interface,
            step: step.into(),
            priority: 0,
            args: JsonMap::new(),
            abortable: false,
            requires_ramdisk: false,
        }
    }

    /// Set the arguments.
    pub fn with_args(mut self, args: JsonMap) -> Self {
        self.args = args;
        self
    }

    /// Set the priority.
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Set whether abort may interrupt it.
    pub fn with_abortable(mut self, abortable: bool) -> Self {
        self.abortable = abortable;
        self
    }

    /// Set whether it needs the ramdisk.
    pub fn with_requires_ramdisk(mut self, requires_ramdisk: bool) -> Self {
        self.requires_ramdisk = requires_ramdisk;
        self
    }

    /// A step from an interface's definition, with no arguments.
    pub fn from_def(interface: InterfaceType, def: &StepDef) -> Self {
        Step {
            interface,
            step: def.name.clone(),
            priority: def.priority,
            args: JsonMap::new(),
            abortable: def.abortable,
            requires_ramdisk: def.requires_ramdisk,
        }
    }

    /// As a JSON object, the way the node's `*_step` field shows it.
    pub fn to_json(&self) -> JsonMap {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => JsonMap::new(),
        }
    }
}

/// What running a step (or an operation that may be asynchronous) led to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// Finished; go on with the next step.
    Done,
    /// Started something asynchronous (e.g. booted the agent ramdisk): the node
    /// waits in the `* wait` state until the deploy interface reports, through a
    /// heartbeat, that it can continue.
    Wait,
}
