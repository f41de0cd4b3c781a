//! `redfish-graphical`: Ironic 39's `RedfishGraphicalConsole`, a graphical
//! console (ironic-core's [`GraphicalConsole`]) whose container app is
//! `redfish-graphical` and gets the node's parsed Redfish `driver_info` as its
//! app info (Ironic's `parse_driver_info`: `address`, `system_id`, `username`,
//! `password`, `verify_ca`, `auth_type`, `node_uuid`). The app, not this
//! driver, talks to the BMC: Ironic's `ironic-console` image logs in to the
//! BMC's web UI and shows its HTML5 KVM over VNC; with ironic-rs's `process`
//! provider the operator's command does that.

use std::sync::Arc;

use ironic_core::driver::{PropertyDoc, Task};
use ironic_core::graphical::{AppInfo, ConsoleApp, GraphicalConsole, GraphicalConsoles};
use ironic_core::{DriverError, InterfaceRegistry};
use serde_json::{Map, Value};

use crate::config::{self, AuthType, RedfishDriverInfo, VerifyCa};

/// The console interface's name (and its app's).
pub const GRAPHICAL_CONSOLE: &str = "redfish-graphical";

/// The `redfish-graphical` app: what the console container gets.
#[derive(Clone, Copy, Debug)]
pub struct RedfishConsoleApp {
    default_auth: AuthType,
}

impl RedfishConsoleApp {
    /// The app, with `default_auth` for nodes without `redfish_auth_type`.
    pub fn new(default_auth: AuthType) -> Self {
        RedfishConsoleApp { default_auth }
    }

    fn info(&self, task: &Task) -> Result<RedfishDriverInfo, DriverError> {
        RedfishDriverInfo::parse(&task.node.driver_info, self.default_auth)
    }
}

impl ConsoleApp for RedfishConsoleApp {
    fn app_name(&self) -> &'static str {
        GRAPHICAL_CONSOLE
    }
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.info(task).map(|_| ())
    }
    fn app_info(&self, task: &Task) -> Result<AppInfo, DriverError> {
        let i = self.info(task)?;
        let mut m = Map::new();
        m.insert("address".into(), i.address.into());
        m.insert(
            "system_id".into(),
            i.system_id.map(Value::from).unwrap_or(Value::Null),
        );
        m.insert(
            "username".into(),
            i.username.map(Value::from).unwrap_or(Value::Null),
        );
        m.insert(
            "password".into(),
            i.password
                .map(|p| Value::from(p.expose()))
                .unwrap_or(Value::Null),
        );
        m.insert(
            "verify_ca".into(),
            match i.verify_ca {
                VerifyCa::Default => Value::Bool(true),
                VerifyCa::Disabled => Value::Bool(false),
                VerifyCa::Bundle(p) => Value::from(p.display().to_string()),
                // not a sushy value: the app gets the pin as configured
                VerifyCa::Fingerprint(fp) => Value::from(format!(
                    "sha256:{}",
                    fp.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )),
            },
        );
        m.insert("auth_type".into(), i.auth_type.as_str().into());
        m.insert("node_uuid".into(), task.node.uuid.to_string().into());
        Ok(AppInfo(m))
    }
}

/// Register `redfish-graphical` over `consoles` (the application's
/// `[vnc] container_provider` and settings), replacing the one [`crate::register`]
/// adds with Ironic's default `fake` provider.
pub fn register_graphical_console(
    registry: &mut InterfaceRegistry,
    consoles: GraphicalConsoles,
    default_auth: AuthType,
) {
    registry.register_console(
        GRAPHICAL_CONSOLE,
        Arc::new(GraphicalConsole::new(
            Arc::new(RedfishConsoleApp::new(default_auth)),
            consoles,
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironic_core::Node;
    use serde_json::json;

    #[test]
    fn app_info_is_the_parsed_driver_info_and_masks_the_password() {
        let mut n = Node::new("redfish");
        n.driver_info = serde_json::from_value(json!({
            "redfish_address": "bmc.example.com:8443",
            "redfish_system_id": "/redfish/v1/Systems/1",
            "redfish_username": "admin",
            "redfish_password": "s3cr3t-pw",
            "redfish_verify_ca": false,
        }))
        .unwrap();
        let task = Task::new(n.clone());
        let app = RedfishConsoleApp::new(AuthType::Auto);
        assert_eq!(app.app_name(), "redfish-graphical");
        let info = app.app_info(&task).unwrap();
        assert_eq!(
            info.0,
            json!({
                "address": "https://bmc.example.com:8443",
                "system_id": "/redfish/v1/Systems/1",
                "username": "admin",
                "password": "s3cr3t-pw",
                "verify_ca": false,
                "auth_type": "auto",
                "node_uuid": n.uuid.to_string(),
            })
            .as_object()
            .unwrap()
            .clone()
        );
        assert!(info.to_json().contains("s3cr3t-pw"));
        assert!(!format!("{info:?}").contains("s3cr3t-pw"));
        let mut bad = Node::new("redfish");
        bad.driver_info = serde_json::from_value(json!({"redfish_username": "x"})).unwrap();
        assert!(app.validate(&Task::new(bad)).is_err());
    }
}
