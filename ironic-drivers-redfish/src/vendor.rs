//! `RedfishVendor`: Ironic's `redfish` vendor interface, the passthru methods
//! Metal3's baremetal-operator calls (`create_subscription` and
//! `delete_subscription` for its `BMCEventSubscription`s) plus
//! `get_subscription`, `get_all_subscriptions` and `eject_vmedia`, with Ironic's
//! names, HTTP methods, arguments and answers
//! (`ironic/drivers/modules/redfish/vendor.py`).
//!
//! Where Ironic 39 cannot work, the intent is followed instead, and said here:
//! - `EventTypes` given to `create_subscription` are checked against the
//!   EventService's `EventTypesForSubscription` (all of Redfish's event types
//!   when it lists none); Ironic compares the strings with sushy enum members and
//!   so refuses every non-empty list.
//! - `eject_vmedia` with a `boot_device` ejects the slots that take that media
//!   (`cd`, `dvd`, `usb`, `floppy`, or the Redfish names `CD`, `DVD`, `USBStick`,
//!   `Floppy`); Ironic compares the string with sushy enum members and so refuses
//!   any `boot_device`.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::DriverError;
use ironic_core::driver::{BaseInterface, Task, VendorInterface, VendorRoute};
use serde_json::{Map, Value, json};

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::models::ComputerSystem;
use crate::vmedia::{eject, slots};
use crate::{RedfishConfig, Shared};

/// The fields of a subscription Ironic returns (`SUBSCRIPTION_COMMON_FIELDS`).
const SUBSCRIPTION_FIELDS: &[&str] = &["Id", "Context", "Protocol", "Destination", "EventTypes"];

/// Redfish's event types (sushy's `EventType`): what a subscription may ask for
/// when the EventService does not list `EventTypesForSubscription`.
const EVENT_TYPES: &[&str] = &[
    "StatusChange",
    "ResourceUpdated",
    "ResourceAdded",
    "ResourceRemoved",
    "Alert",
    "MetricReport",
    "Other",
];

/// Vendor passthru over Redfish (`vendor_interface = "redfish"`): BMC event
/// subscriptions and virtual media eject.
///
/// | method | HTTP | body | answer |
/// |---|---|---|---|
/// | `create_subscription` | POST | `Destination` (required, an absolute URI), `EventTypes` (default `["Alert"]`), `Context` (default `""`), `Protocol` (default `"Redfish"`), `HttpHeaders` (a list) | 200, the subscription's `Id`, `Context`, `Protocol`, `Destination`, `EventTypes` |
/// | `delete_subscription` | DELETE | `id` | 200, `null`; any failure is [`ErrorKind::NotFound`](ironic_core::ErrorKind::NotFound) (Ironic's 404) |
/// | `get_subscription` | GET | `id` | 200, as `create_subscription` |
/// | `get_all_subscriptions` | GET | | 200, the BMC's `Subscriptions` collection as it sent it |
/// | `eject_vmedia` | POST | `boot_device` (optional) | 202, empty (asynchronous) |
#[derive(Debug, Clone)]
pub struct RedfishVendor {
    shared: Arc<Shared>,
}

impl RedfishVendor {
    /// A vendor interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishVendor { shared }
    }

    async fn event_service(&self, task: &Task) -> Result<(Arc<RedfishClient>, Value)> {
        // The service root's, not the system's: no redfish_system_id needed.
        let client = self.shared.client(task)?;
        let root: Value = client.get(crate::client::ROOT).await?;
        // Ironic raises a RedfishError (HTTP 500) here too.
        let Some(link) = odata_id(&root, "EventService") else {
            return Err(RedfishError::Other(format!(
                "The Redfish BMC at {} has no EventService",
                client.address
            )));
        };
        let service: Value = client.get(&link).await?;
        Ok((client, service))
    }

    /// The path of the EventService's `Subscriptions` collection.
    fn subscriptions_path(client: &RedfishClient, service: &Value) -> Result<String> {
        odata_id(service, "Subscriptions").ok_or_else(|| {
            RedfishError::Other(format!(
                "The EventService of the Redfish BMC at {} has no Subscriptions",
                client.address
            ))
        })
    }

    async fn create_subscription(&self, task: &Task, body: &Map<String, Value>) -> Result<Value> {
        let destination = body.get("Destination");
        let event_types = body.get("EventTypes");
        let context = body.get("Context").cloned().unwrap_or(json!(""));
        let protocol = body.get("Protocol").cloned().unwrap_or(json!("Redfish"));
        let headers = body.get("HttpHeaders");
        if !context.is_string() {
            return Err(RedfishError::InvalidParameter(format!(
                "Context {} is not a valid string",
                py(&context)
            )));
        }
        if !protocol.is_string() {
            return Err(RedfishError::InvalidParameter(format!(
                "Protocol {} is not a string",
                py(&protocol)
            )));
        }
        if let Some(h) = headers.filter(|h| !h.is_null() && !h.is_array()) {
            return Err(RedfishError::InvalidParameter(format!(
                "HttpHeaders {} is not a list of headers",
                py(h)
            )));
        }
        let valid_destination = destination
            .and_then(Value::as_str)
            .and_then(|d| reqwest::Url::parse(d).ok())
            .is_some_and(|u| u.has_host());
        if !valid_destination {
            return Err(RedfishError::InvalidParameter(format!(
                "Destination {} is not a valid URI",
                destination.map_or_else(|| "None".to_owned(), py)
            )));
        }
        let (client, service) = self.event_service(task).await?;
        if let Some(types) = event_types.filter(|t| !t.is_null()) {
            let allowed: Vec<String> = match service
                .get("EventTypesForSubscription")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
            {
                Some(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| EVENT_TYPES.contains(t))
                    .map(str::to_owned)
                    .collect(),
                None => EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            };
            let ok = types.as_array().is_some_and(|a| {
                a.iter()
                    .all(|t| t.as_str().is_some_and(|t| allowed.iter().any(|x| x == t)))
            });
            if !ok {
                return Err(RedfishError::InvalidParameter(format!(
                    "EventTypes {} is not a valid value, allowed values {:?}",
                    py(types),
                    allowed
                )));
            }
        }
        let mut payload = json!({
            "Destination": destination.cloned().unwrap_or(Value::Null),
            "Protocol": protocol,
            "Context": context,
            "EventTypes": event_types.filter(|t| !t.is_null()).cloned().unwrap_or(json!(["Alert"])),
        });
        if let Some(h) = headers.filter(|h| h.as_array().is_some_and(|a| !a.is_empty())) {
            payload["HttpHeaders"] = h.clone();
        }
        let collection = Self::subscriptions_path(&client, &service)?;
        let created = async {
            let resp = client.post(&collection, &payload).await?;
            // As sushy: the new subscription is read back from `Location`; a BMC
            // that sends none but answers with the subscription is taken at its word.
            let sub: Value = match &resp.location {
                Some(loc) => client.get(loc).await?,
                None => serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .filter(|v| v.get("Id").is_some())
                    .ok_or_else(|| {
                        RedfishError::Other(format!(
                            "the BMC answered HTTP {} without a Location or the subscription",
                            resp.status
                        ))
                    })?,
            };
            Ok::<_, RedfishError>(sub)
        }
        .await;
        match created {
            Ok(sub) => {
                tracing::info!(node = %task.node.uuid, bmc = %client.address, id = ?sub.get("Id"), "Redfish event subscription created");
                Ok(filter_subscription(&sub))
            }
            Err(e) => {
                // Ironic's message, without the headers (they may carry credentials).
                let mut shown = payload.clone();
                if shown.get("HttpHeaders").is_some() {
                    shown["HttpHeaders"] = json!("***");
                }
                Err(RedfishError::Other(format!(
                    "Failed to create subscription on node {}. Subscription payload: {}. Error: {e}",
                    task.node.uuid,
                    py(&shown)
                )))
            }
        }
    }

    /// The path of subscription `id` (Ironic adds the separator some BMCs omit).
    fn member_path(collection: &str, id: &str) -> String {
        if collection.ends_with('/') {
            format!("{collection}{id}")
        } else {
            format!("{collection}/{id}")
        }
    }

    async fn delete_subscription(&self, task: &Task, id: &str) -> Result<()> {
        let r = async {
            let (client, service) = self.event_service(task).await?;
            let path = Self::member_path(&Self::subscriptions_path(&client, &service)?, id);
            // sushy reads the member before deleting it
            let _: Value = client.get(&path).await?;
            client.delete(&path).await?;
            tracing::info!(node = %task.node.uuid, bmc = %client.address, id, "Redfish event subscription deleted");
            Ok::<_, RedfishError>(())
        }
        .await;
        // Ironic answers any failure here with 404 (RedfishError code=404).
        r.map_err(|e| {
            RedfishError::NotFound(format!(
                "Redfish delete_subscription failed for subscription {id} on node {}. Error: {e}",
                task.node.uuid
            ))
        })
    }

    async fn get_subscription(&self, task: &Task, id: &str) -> Result<Value> {
        let r = async {
            let (client, service) = self.event_service(task).await?;
            let path = Self::member_path(&Self::subscriptions_path(&client, &service)?, id);
            let sub: Value = client.get(&path).await?;
            Ok::<_, RedfishError>(filter_subscription(&sub))
        }
        .await;
        r.map_err(|e| {
            RedfishError::Other(format!(
                "Redfish get_subscription failed for subscription {id} on node {}. Error: {e}",
                task.node.uuid
            ))
        })
    }

    async fn get_all_subscriptions(&self, task: &Task) -> Result<Value> {
        let r = async {
            let (client, service) = self.event_service(task).await?;
            client
                .get::<Value>(&Self::subscriptions_path(&client, &service)?)
                .await
        }
        .await;
        r.map_err(|e| {
            RedfishError::Other(format!(
                "Redfish get_subscriptions failed for node {}. Error: {e}",
                task.node.uuid
            ))
        })
    }

    async fn eject_vmedia(&self, task: &Task, boot_device: Option<&str>) -> Result<()> {
        let types: Option<&[&str]> = match boot_device {
            None => None,
            Some(d) => Some(device_media_types(d).ok_or_else(|| {
                RedfishError::InvalidParameter(format!("Boot device {d} is not a valid value "))
            })?),
        };
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let mut ejected = 0;
        for slot in slots(&client, &path, &system).await? {
            if types.is_some_and(|t| !slot.1.accepts(t)) {
                continue;
            }
            if slot.1.is_inserted() {
                eject(&client, &slot).await?;
                ejected += 1;
            }
        }
        tracing::info!(node = %task.node.uuid, device = boot_device.unwrap_or("all"), ejected, "eject_vmedia done");
        Ok(())
    }
}

/// The Redfish media types of an `eject_vmedia` `boot_device`: Ironic's
/// documented names, or the Redfish ones (a CD request also takes DVD slots, as
/// Ironic does for Cisco UCS).
fn device_media_types(device: &str) -> Option<&'static [&'static str]> {
    match device.to_ascii_lowercase().as_str() {
        "cd" | "cdrom" => Some(&["CD", "DVD"]),
        "dvd" => Some(&["DVD"]),
        "usb" | "usbstick" => Some(&["USBStick"]),
        "floppy" => Some(&["Floppy"]),
        _ => None,
    }
}

fn odata_id(v: &Value, key: &str) -> Option<String> {
    v.get(key)?
        .get("@odata.id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn filter_subscription(sub: &Value) -> Value {
    let mut out = Map::new();
    if let Some(o) = sub.as_object() {
        for (k, v) in o {
            if SUBSCRIPTION_FIELDS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A value as Python's `str()` prints it in Ironic's messages (close enough
/// for strings and lists: `'a'`, `['a', 'b']`).
fn py(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| match x {
                    Value::String(s) => format!("'{s}'"),
                    other => py(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn route(method: &str, http: &str, is_async: bool, description: &str) -> VendorRoute {
    let mut r = VendorRoute::new(method, &[http], description);
    r.is_async = is_async;
    r
}

#[async_trait]
impl BaseInterface for RedfishVendor {
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task).map(|_| ())
    }
}

#[async_trait]
impl VendorInterface for RedfishVendor {
    fn routes(&self) -> Vec<VendorRoute> {
        vec![
            route(
                "eject_vmedia",
                "POST",
                true,
                "Eject a virtual media device. If no device is provided then all attached devices will be ejected. Optional arguments: 'boot_device' - the boot device to eject, either 'cd', 'dvd', 'usb', or 'floppy'",
            ),
            route(
                "create_subscription",
                "POST",
                false,
                "Creates a subscription on a node. Required argument: a dictionary of {'Destination': 'destination_url'}",
            ),
            route(
                "delete_subscription",
                "DELETE",
                false,
                "Delete a subscription on a node. Required argument: a dictionary of {'id': 'subscription_bmc_id'}",
            ),
            route(
                "get_all_subscriptions",
                "GET",
                false,
                "Returns all subscriptions on the node.",
            ),
            route(
                "get_subscription",
                "GET",
                false,
                "Get a subscription on the node. Required argument: a dictionary of {'id': 'subscription_bmc_id'}",
            ),
        ]
    }

    async fn call(
        &self,
        task: &mut Task,
        method: &str,
        http_method: &str,
        body: Value,
    ) -> Result<Value, DriverError> {
        let Some(r) = self.routes().into_iter().find(|r| r.method == method) else {
            return Err(DriverError::invalid(format!(
                "No handler for method {method}"
            )));
        };
        if !r
            .http_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(http_method))
        {
            return Err(DriverError::invalid(format!(
                "The method {method} does not support HTTP {}",
                http_method.to_ascii_uppercase()
            )));
        }
        let empty = Map::new();
        let args = match &body {
            Value::Object(o) => o,
            Value::Null => &empty,
            _ => {
                return Err(DriverError::invalid(format!(
                    "The arguments of {method} must be a JSON object"
                )));
            }
        };
        let id = || {
            args.get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| RedfishError::InvalidParameter("id can't be None".to_owned()))
        };
        let out = match method {
            "create_subscription" => self.create_subscription(task, args).await?,
            "delete_subscription" => {
                let id = id()?;
                self.delete_subscription(task, &id).await?;
                Value::Null
            }
            "get_subscription" => self.get_subscription(task, &id()?).await?,
            "get_all_subscriptions" => self.get_all_subscriptions(task).await?,
            "eject_vmedia" => {
                let dev = match args.get("boot_device") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.is_empty() => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(other) => {
                        return Err(DriverError::invalid(format!(
                            "Boot device {} is not a valid value ",
                            py(other)
                        )));
                    }
                };
                self.eject_vmedia(task, dev).await?;
                Value::Null
            }
            _ => unreachable!("every route has a handler"),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_keep_ironics_fields_only() {
        let sub = json!({"@odata.id": "/redfish/v1/EventService/Subscriptions/1", "Id": "1",
            "Name": "s", "Destination": "https://e/x", "Context": "c", "Protocol": "Redfish",
            "EventTypes": ["Alert"], "HttpHeaders": [{"a": "b"}]});
        assert_eq!(
            filter_subscription(&sub),
            json!({"Id": "1", "Destination": "https://e/x", "Context": "c",
                   "Protocol": "Redfish", "EventTypes": ["Alert"]})
        );
    }

    #[test]
    fn boot_devices_map_to_media_types() {
        assert_eq!(device_media_types("cd"), Some(&["CD", "DVD"][..]));
        assert_eq!(device_media_types("USBStick"), Some(&["USBStick"][..]));
        assert_eq!(device_media_types("tape"), None);
        assert_eq!(
            RedfishVendor::member_path("/redfish/v1/EventService/Subscriptions/", "7"),
            "/redfish/v1/EventService/Subscriptions/7"
        );
        assert_eq!(
            RedfishVendor::member_path("/redfish/v1/EventService/Subscriptions", "7"),
            "/redfish/v1/EventService/Subscriptions/7"
        );
    }

    #[test]
    fn python_spelling_of_values() {
        assert_eq!(py(&json!(["Alert", 3])), "['Alert', 3]");
        assert_eq!(py(&Value::Null), "None");
    }
}
