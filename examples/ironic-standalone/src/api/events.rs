//! `POST /v1/events` (1.54): Neutron port notifications.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::routes::{Body, Gate, Route, post};
use super::version::feature as f;
use super::{no_content, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        post("/v1/events", events)
            .doc("Network events from Neutron")
            .since_or(f::EVENTS, Gate::UNSUPPORTED)
            .status(204)
            .takes(Body::Object("{events: [{event, port_id, mac_address, status, device_id, binding:host_id, binding:vnic_type}]}")),
    ]
}

/// `POST /v1/events` (1.54): Neutron port notifications. Validated and logged;
/// the noop and flat network interfaces have nothing to wait for.
async fn events(body: Bytes) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    let Some(Value::Array(events)) = body.get("events") else {
        return Err(ApiError::bad_request("'events' is a required list"));
    };
    if body.len() != 1 {
        return Err(ApiError::bad_request("Only 'events' may be given"));
    }
    for e in events {
        let Value::Object(m) = e else {
            return Err(ApiError::bad_request(format!(
                "Invalid event {e}: not an object"
            )));
        };
        let kind = m.get("event").and_then(Value::as_str).unwrap_or("");
        if !matches!(
            kind,
            "network.bind_port" | "network.unbind_port" | "network.delete_port"
        ) {
            return Err(ApiError::bad_request(format!(
                "Invalid event {kind:?}: expected network.bind_port, network.unbind_port or network.delete_port"
            )));
        }
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                "event"
                    | "port_id"
                    | "mac_address"
                    | "status"
                    | "device_id"
                    | "binding:host_id"
                    | "binding:vnic_type"
            ) {
                return Err(ApiError::bad_request(format!(
                    "Invalid event: Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        match m.get("port_id").and_then(Value::as_str) {
            Some(p) if uuid::Uuid::parse_str(p).is_ok() => {}
            _ => {
                return Err(ApiError::bad_request(
                    "Invalid event: 'port_id' must be a UUID",
                ));
            }
        }
        if let Some(mac) = m.get("mac_address").and_then(Value::as_str)
            && mac.parse::<ironic_core::MacAddress>().is_err()
        {
            return Err(ApiError::bad_request(format!(
                "Invalid event: {mac} is not a MAC address"
            )));
        }
        tracing::info!(event = kind, port = ?m.get("port_id"), "network event received");
    }
    Ok(no_content())
}
