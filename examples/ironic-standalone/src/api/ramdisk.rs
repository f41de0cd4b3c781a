//! The ramdisk agent's endpoints: `GET /v1/lookup`, `POST /v1/heartbeat/{node}`,
//! `POST /v1/continue_inspection`, wired to the conductor.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::MacAddress;
use ironic_core::conductor::LookupResult;
use ironic_core::driver::Heartbeat;
use ironic_core::ids::NodeId;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::query::Params;
use super::resource::body;
use super::routes::{Body, Gate, Route, get, post};
use super::version::feature as f;
use super::{ApiState, ReqCtx, accepted, ok, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/lookup", lookup)
            .doc("Agent lookup by MAC addresses or node UUID")
            .since_or(f::LOOKUP_HEARTBEAT, Gate::NOT_FOUND)
            .returns(Body::Object("{node, config}")),
        post("/v1/heartbeat/{node}", heartbeat)
            .doc("Agent heartbeat")
            .since_checked_by_handler(f::LOOKUP_HEARTBEAT)
            .status(202)
            .takes(Body::Object("{callback_url, agent_token, agent_version?, agent_verify_ca?, agent_status?, agent_status_message?}")),
        post("/v1/continue_inspection", continue_inspection)
            .doc("In-band inspection data from the agent")
            .status(200)
            .takes(Body::Object("{inventory, ...plugin data}"))
            .returns(Body::Object("{node, config}")),
    ]
}

const LOOKUP_FIELDS: &[&str] = &[
    "uuid",
    "properties",
    "instance_info",
    "driver_internal_info",
];

fn lookup_body(st: &ApiState, ctx: &ReqCtx, r: &LookupResult) -> Vec<u8> {
    let fields: Vec<String> = LOOKUP_FIELDS.iter().map(|s| s.to_string()).collect();
    let node = body(&ctx.render(st), &r.node, Some(&fields));
    let skip_bmc_detect = matches!(
        r.node.interfaces.management_interface.as_str(),
        "redfish" | "idrac-redfish"
    );
    let config = json!({
        "metrics": {"backend": "noop", "prepend_host": false, "prepend_uuid": false,
                    "prepend_host_reverse": true, "global_prefix": null},
        "metrics_statsd": {"statsd_host": "localhost", "statsd_port": 8125},
        "heartbeat_timeout": st.settings().ramdisk_heartbeat_timeout,
        "agent_token": r.agent_token,
        "agent_token_required": true,
        "agent_md5_checksum_enable": false,
        "disable_deep_image_inspection": false,
        "permitted_image_formats": ["raw", "gpt", "qcow2", "iso"],
        "agent_skip_bmc_detect": skip_bmc_detect,
        "enable_bios_bootloader_install": false,
    });
    let mut buf = b"{\"node\":".to_vec();
    buf.extend(node);
    buf.extend_from_slice(b",\"config\":");
    buf.extend(serde_json::to_vec(&config).unwrap_or_else(|_| b"{}".to_vec()));
    buf.push(b'}');
    buf
}

fn node_uuid_arg(v: Option<&str>) -> ApiResult<Option<NodeId>> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("Expected a UUID for node_uuid but received {s}."))
        }),
    }
}

/// `GET /v1/lookup?addresses=MAC,MAC&node_uuid=U`.
async fn lookup(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let macs: Vec<MacAddress> = p
        .list("addresses")
        .unwrap_or_default()
        .iter()
        .filter_map(|a| match a.parse() {
            Ok(m) => Some(m),
            Err(_) => {
                tracing::warn!(address = %a, "lookup: ignoring an invalid MAC address");
                None
            }
        })
        .collect();
    let node_uuid = node_uuid_arg(p.get("node_uuid"))?;
    if macs.is_empty() && node_uuid.is_none() {
        return Err(ApiError::bad_request(
            "At least one of 'addresses' and 'node_uuid' parameters is required",
        ));
    }
    let r = st.conductor().lookup(&macs, node_uuid).await?;
    Ok(ok(lookup_body(&st, &ctx, &r)))
}

/// `POST /v1/heartbeat/{node}`.
async fn heartbeat(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(node): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    let s = |k: &str| -> ApiResult<Option<String>> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::bad_request(format!(
                "Field \"{k}\" must be a string"
            ))),
        }
    };
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "callback_url"
                | "agent_token"
                | "agent_version"
                | "agent_verify_ca"
                | "agent_status"
                | "agent_status_message"
        ) {
            return Err(ApiError::bad_request(format!("Unknown argument: \"{k}\"")));
        }
    }
    let callback_url = s("callback_url")?
        .ok_or_else(|| ApiError::bad_request("Missing mandatory parameter: callback_url"))?;
    // Ironic checks the version after the arguments.
    if !ctx.version.at_least(f::LOOKUP_HEARTBEAT) {
        return Err(Gate::NOT_FOUND.error());
    }
    let agent_version = s("agent_version")?;
    if agent_version.is_some() && !ctx.version.at_least(f::AGENT_VERSION_HEARTBEAT) {
        return Err(ApiError::bad_request(
            "Field \"agent_version\" not recognised",
        ));
    }
    let agent_verify_ca = s("agent_verify_ca")?;
    if agent_verify_ca.is_some() && !ctx.version.at_least(f::HEARTBEAT_VERIFY_CA) {
        return Err(ApiError::bad_request(
            "Field \"agent_verify_ca\" not recognised in this version",
        ));
    }
    let agent_status = s("agent_status")?;
    let agent_status_message = s("agent_status_message")?;
    if (agent_status.is_some() || agent_status_message.is_some())
        && !ctx.version.at_least(f::HEARTBEAT_STATUS)
    {
        return Err(ApiError::bad_request(
            "Fields \"agent_status\" and \"agent_status_message\" not recognised.",
        ));
    }
    if let Some(status) = &agent_status
        && !matches!(status.as_str(), "start" | "end" | "error")
    {
        return Err(ApiError::bad_request(
            "Agent status is invalid. Valid states are start,end,error.",
        ));
    }
    if !callback_url.is_empty() {
        let scheme_ok = callback_url.starts_with("http://") || callback_url.starts_with("https://");
        let host_ok = callback_url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
        if !(scheme_ok && host_ok) {
            return Err(ApiError::bad_request(
                "An issue with the supplied \"callback_url\" has been detected.",
            ));
        }
    }
    let token = s("agent_token")?.ok_or_else(|| {
        ApiError::bad_request("Agent token is required for heartbeat processing.")
    })?;
    let ident = super::nodes::ident(&ctx, &node)?;
    let mut hb = Heartbeat::new(callback_url);
    hb.agent_version = agent_version;
    hb.agent_verify_ca = agent_verify_ca;
    hb.agent_status = agent_status;
    hb.agent_status_message = agent_status_message;
    st.conductor().heartbeat(&ident, &token, hb).await?;
    Ok(accepted(None))
}

/// Ironic's minimal inventory schema (`DATA_VALIDATOR`), with its messages.
fn check_inspection_data(data: &serde_json::Map<String, Value>) -> ApiResult<()> {
    let bad = |m: &str| ApiError::bad_request(format!("Schema error for data: {m}"));
    let inventory = match data.get("inventory") {
        None => return Err(bad("'inventory' is a required property")),
        Some(Value::Object(i)) => i,
        Some(other) => return Err(bad(&format!("{other} is not of type 'object'"))),
    };
    for k in ["bmc_address", "bmc_v6address"] {
        if let Some(v) = inventory.get(k)
            && !(v.is_string() || v.is_null())
        {
            return Err(bad(&format!("{v} is not of type 'string', 'null'")));
        }
    }
    let ifaces = match inventory.get("interfaces") {
        None => return Err(bad("'interfaces' is a required property")),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(bad(&format!("{other} is not of type 'array'"))),
    };
    if ifaces.is_empty() {
        return Err(bad("[] should be non-empty"));
    }
    for i in ifaces {
        match i.get("mac_address") {
            _ if !i.is_object() => return Err(bad(&format!("{i} is not of type 'object'"))),
            None => return Err(bad("'mac_address' is a required property")),
            Some(Value::String(_)) => {}
            Some(other) => return Err(bad(&format!("{other} is not of type 'string'"))),
        }
    }
    Ok(())
}

/// `POST /v1/continue_inspection[?node_uuid=]` (1.84; 1.1 accepted for old agents).
async fn continue_inspection(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let node_uuid = node_uuid_arg(p.get("node_uuid"))?;
    let data = parse_object(&body)?;
    check_inspection_data(&data)?;
    // Ironic validates the data first; 1.1 is accepted for old agents.
    let new_endpoint = ctx.version.at_least(f::CONTINUE_INSPECTION);
    if !new_endpoint && (ctx.version.0 != 1 || node_uuid.is_some()) {
        return Err(ApiError::not_found(format!(
            "API version 1.{} or newer is required",
            f::CONTINUE_INSPECTION
        )));
    }
    let r = st
        .conductor()
        .continue_inspection(node_uuid, Value::Object(data))
        .await?;
    if new_endpoint {
        Ok(ok(lookup_body(&st, &ctx, &r)))
    } else {
        super::ok_value(&json!({ "uuid": r.node.uuid.to_string() }))
    }
}
