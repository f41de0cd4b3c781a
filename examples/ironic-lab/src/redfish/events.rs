//! EventService: event subscriptions (`EventDestination`s) kept in memory, as a
//! BMC keeps them for clients such as Metal3 (through Ironic's `redfish` vendor
//! passthru). Events are not sent.

use super::*;

/// The event types a subscription may ask for (`EventTypesForSubscription`).
pub(super) const EVENT_TYPES: &[&str] = &["StatusChange", "ResourceUpdated", "Alert"];

const COLLECTION: &str = "/redfish/v1/EventService/Subscriptions";

/// One subscription as stored: its document (the `HttpHeaders` it was given are
/// checked, not kept: the schema says they read as null).
pub(super) type Subscription = Value;

pub(super) async fn event_service(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    Ok(doc(resources::event_service(EVENT_TYPES)))
}

pub(super) async fn subscriptions(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    let members = {
        let subs = bmc.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        subs.keys().map(|id| format!("{COLLECTION}/{id}")).collect()
    };
    Ok(doc(resources::collection(
        "EventDestinationCollection",
        COLLECTION,
        "Event Subscriptions Collection",
        members,
    )))
}

pub(super) async fn subscription(
    State(bmc): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    bmc.service_request(&headers).await?;
    let subs = bmc.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
    let s = subs
        .get(&sid)
        .ok_or_else(|| RfError::NotFound(format!("{COLLECTION}/{sid}")))?;
    Ok(doc(s.clone()))
}

pub(super) async fn delete_subscription(
    State(bmc): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    bmc.service_request(&headers).await?;
    let mut subs = bmc.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
    subs.remove(&sid)
        .ok_or_else(|| RfError::NotFound(format!("{COLLECTION}/{sid}")))?;
    Ok(no_content())
}

fn invalid(key: &str, value: &Value) -> RfError {
    RfError::BadRequest {
        id: "PropertyValueFormatError",
        message: format!(
            "The value {value} for the property {key} is of a different format than the property can accept."
        ),
    }
}

pub(super) async fn create_subscription(
    State(bmc): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> RfResult {
    bmc.service_request(&headers).await?;
    let body = parse_body(&body)?;
    let Some(destination) = string_prop(&body, "Destination")? else {
        return Err(RfError::BadRequest {
            id: "PropertyMissing",
            message: "The property Destination is a required property and must be included in the request.".into(),
        });
    };
    // An absolute http(s) URI with a host (DSP0266: the event listener).
    let ok = reqwest::Url::parse(destination)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    if !ok {
        return Err(invalid("Destination", &Value::String(destination.into())));
    }
    let protocol = string_prop(&body, "Protocol")?.unwrap_or("Redfish");
    if protocol != "Redfish" {
        return Err(not_in_list("Protocol", protocol));
    }
    let context = string_prop(&body, "Context")?.unwrap_or("");
    let event_types = match body.get("EventTypes") {
        None | Some(Value::Null) => vec!["Alert".to_owned()],
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for t in a {
                match t.as_str() {
                    Some(s) if EVENT_TYPES.contains(&s) => out.push(s.to_owned()),
                    Some(s) => return Err(not_in_list("EventTypes", s)),
                    None => return Err(invalid("EventTypes", t)),
                }
            }
            out
        }
        Some(other) => return Err(invalid("EventTypes", other)),
    };
    match body.get("HttpHeaders") {
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(other) => return Err(invalid("HttpHeaders", other)),
    }
    let id = {
        let mut n = bmc
            .next_subscription
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n += 1;
        n.to_string()
    };
    let location = format!("{COLLECTION}/{id}");
    let doc_value =
        resources::event_destination(&location, &id, destination, context, protocol, &event_types);
    bmc.subscriptions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, doc_value.clone());
    let mut resp = (StatusCode::CREATED, Json(doc_value)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}
