//! `/v1/nodes/{node}/states`: the node's states, and the provision, power,
//! boot mode, secure boot, RAID and console changes.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use ironic_core::Secret;
use ironic_core::conductor::ProvisionRequest;
use ironic_core::driver::BootMode;
use ironic_core::model::InterfaceType;
use ironic_core::states::{self, PowerAction, ProvisionState};
use serde_json::{Map, Value, json};

use super::body::write_states;
use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::routes::{Body, Gate, Route, get, put};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, accepted, no_content, ok, ok_value, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/states", get_states)
            .doc("The node's power, provision, RAID, console and boot states")
            .returns(Body::Object("states")),
        put("/v1/nodes/{node}/states/provision", provision)
            .doc("Change the provision state (deploy, clean, inspect, ...)")
            .takes(Body::Object("{target, configdrive?, clean_steps?, deploy_steps?, service_steps?, rescue_password?, disable_ramdisk?, runbook?}")),
        put("/v1/nodes/{node}/states/power", power)
            .doc("Change the power state")
            .takes(Body::Object("{target, timeout?}")),
        put("/v1/nodes/{node}/states/boot_mode", boot_mode)
            .doc("Set the boot mode")
            .since_checked_by_handler(f::SET_BOOT_MODE)
            .takes(Body::Object("{target: uefi|bios}")),
        put("/v1/nodes/{node}/states/secure_boot", secure_boot)
            .doc("Turn secure boot on or off")
            .since_checked_by_handler(f::SET_BOOT_MODE)
            .takes(Body::Object("{target: bool}")),
        put("/v1/nodes/{node}/states/raid", raid)
            .doc("Set the target RAID configuration")
            .since_or(f::RAID_CONFIG, crate::api::routes::Gate::NOT_ACCEPTABLE)
            .status(204)
            .takes(Body::Object("target_raid_config")),
        get("/v1/nodes/{node}/states/console", get_console)
            .doc("Console state and connection information")
            .returns(Body::Object("{console_enabled, console_info}")),
        put("/v1/nodes/{node}/states/console", set_console)
            .doc("Enable or disable the console")
            .takes(Body::Object("{enabled: bool}")),
    ]
}

fn states_location(ctx: &ReqCtx, node: &str) -> String {
    format!("{}/v1/nodes/{node}/states", ctx.base)
}

async fn get_states(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let mut buf = Vec::with_capacity(400);
    write_states(&mut buf, &ctx.render(&st), &n);
    Ok(ok(buf))
}

pub(super) fn take(body: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    for k in body.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unknown argument: \"{k}\" (expected one of: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn steps_arg(
    body: &Map<String, Value>,
    key: &str,
    need_priority: bool,
) -> ApiResult<Option<Vec<Value>>> {
    let Some(v) = body.get(key) else {
        return Ok(None);
    };
    let Value::Array(items) = v else {
        if v.is_null() {
            return Ok(None);
        }
        return Err(ApiError::bad_request(format!(
            "Invalid {key}: expected a list of steps"
        )));
    };
    let kind = key.trim_end_matches("_steps");
    for s in items {
        let Value::Object(m) = s else {
            return Err(ApiError::bad_request(format!(
                "Invalid {key}: {s} is not of type 'object'"
            )));
        };
        let iface = m.get("interface").and_then(Value::as_str);
        let step = m.get("step").and_then(Value::as_str);
        match (iface, step) {
            (Some(i), Some(st)) if !st.is_empty() => {
                if i.parse::<InterfaceType>().is_err() {
                    return Err(ApiError::bad_request(format!(
                        "Invalid {key}: '{i}' is not a valid interface"
                    )));
                }
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid {key}: each step needs 'interface' and 'step'"
                )));
            }
        }
        if let Some(a) = m.get("args")
            && !a.is_object()
        {
            return Err(ApiError::bad_request(format!(
                "Invalid {key}: 'args' must be an object"
            )));
        }
        if need_priority {
            match m.get("priority") {
                Some(Value::Number(n)) if n.as_u64().is_some() => {}
                Some(Value::String(s)) if s.parse::<u64>().is_ok() => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid {kind}_steps: 'priority' is a required non-negative integer"
                    )));
                }
            }
        }
        for k in m.keys() {
            let ok_keys: &[&str] = if need_priority {
                &["interface", "step", "args", "priority"]
            } else {
                &[
                    "interface",
                    "step",
                    "args",
                    "order",
                    "execute_on_child_nodes",
                    "limit_child_node_execution",
                ]
            };
            if !ok_keys.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Invalid {key}: Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
    }
    Ok(Some(items.clone()))
}

fn check_configdrive(ctx: &ReqCtx, target: &str, cd: &Value) -> ApiResult<()> {
    if cd.is_null() {
        return Ok(());
    }
    let allowed_targets: &[&str] = if ctx.version.at_least(f::REBUILD_CONFIG_DRIVE) {
        &["active", "rebuild", "deploy"]
    } else {
        &["active", "deploy"]
    };
    if !allowed_targets.contains(&target) {
        return Err(ApiError::bad_request(format!(
            "Adding a config drive is only supported when setting provision state to {}",
            allowed_targets.join(", ")
        )));
    }
    match cd {
        Value::String(_) => Ok(()),
        Value::Object(m) => {
            ctx.require(f::BUILD_CONFIGDRIVE)?;
            for (k, v) in m {
                match k.as_str() {
                    "meta_data" | "network_data" => {}
                    "user_data" => {}
                    "vendor_data" => ctx.require(f::CONFIGDRIVE_VENDOR_DATA)?,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid configdrive: unexpected key '{other}' (expected meta_data, network_data, user_data, vendor_data)"
                        )));
                    }
                }
                if matches!(k.as_str(), "meta_data" | "network_data" | "vendor_data")
                    && !(v.is_object() || v.is_null())
                {
                    return Err(ApiError::bad_request(format!(
                        "Invalid configdrive: {k} must be an object"
                    )));
                }
            }
            Ok(())
        }
        _ => Err(ApiError::bad_request(
            "Invalid configdrive: expected a gzipped and base64-encoded string or an object",
        )),
    }
}

/// Ironic's `MIN_VERB_VERSIONS`: verbs refused with 406 before anything else.
fn verb_min_version(target: &str) -> Option<u32> {
    Some(match target {
        "manage" | "provide" => 4,
        "inspect" => f::INSPECT_STATE,
        "abort" => 13,
        "clean" => 15,
        "adopt" => 17,
        "rescue" | "unrescue" => f::RESCUE,
        "deploy" | "undeploy" => 73,
        _ => return None,
    })
}

async fn provision(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut body = parse_object(&body)?;
    take(
        &body,
        &[
            "target",
            "configdrive",
            "clean_steps",
            "deploy_steps",
            "service_steps",
            "rescue_password",
            "disable_ramdisk",
            "runbook",
        ],
    )?;
    let target = match body.get("target") {
        Some(Value::String(t)) => t.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "'target' is a required string argument",
            ));
        }
    };
    let node_ident = ident(&ctx, &id)?;
    let node = st.conductor().get_node(&node_ident).await?;
    // Ironic's order: the verb's version (MIN_VERB_VERSIONS; unhold and service
    // are checked only after the state), maintenance, the state machine.
    if let Some(min) = verb_min_version(&target) {
        ctx.require(min)?;
    }
    let Some(event) = states::verb_event(&target) else {
        return Err(ApiError::bad_request(format!(
            "The requested action \"{target}\" can not be performed on node \"{}\" while it is in state \"{}\".",
            node.uuid, node.provision_state
        )));
    };
    if matches!(target.as_str(), "active" | "rebuild" | "deploy") && node.maintenance {
        return Err(ApiError::bad_request(format!(
            "The node {} is in maintenance mode. Cannot perform provisioning.",
            node.uuid
        )));
    }
    if states::next(node.provision_state, event).is_none() {
        if let Some(holder) = &node.reservation {
            return Err(ApiError::conflict(format!(
                "Node {} is locked by host {holder}, please retry after the current operation is completed.",
                node.uuid
            )));
        }
        return Err(ironic_core::Error::InvalidState {
            action: target,
            node: node.uuid.to_string(),
            state: node.provision_state.to_string(),
        }
        .into());
    }
    match target.as_str() {
        "unhold" => ctx.require(f::UNHOLD)?,
        "service" => ctx.require(f::SERVICE)?,
        _ => {}
    }
    let configdrive = body.remove("configdrive").filter(|v| !v.is_null());
    if let Some(cd) = &configdrive {
        check_configdrive(&ctx, &target, cd)?;
    }
    let mut clean_steps = steps_arg(&body, "clean_steps", false)?;
    let deploy_steps = steps_arg(&body, "deploy_steps", true)?;
    let mut service_steps = steps_arg(&body, "service_steps", false)?;
    let mut disable_ramdisk = match body.get("disable_ramdisk") {
        None | Some(Value::Null) => None,
        Some(v) => Some(crate::api::query::parse_bool(
            "disable_ramdisk",
            &match v {
                Value::Bool(b) => b.to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        )?),
    };
    if let Some(rb) = body.get("runbook").and_then(Value::as_str) {
        ctx.require(f::RUNBOOKS)?;
        if !matches!(target.as_str(), "clean" | "service") {
            return Err(ApiError::bad_request(
                "\"runbooks\" is only valid when setting target provision state to any of ['clean', 'service']",
            ));
        }
        let (steps, dr) = crate::api::extras::runbook_steps(&st, ctx.version, rb, &node).await?;
        if target == "clean" {
            clean_steps = Some(steps);
        } else {
            service_steps = Some(steps);
        }
        if dr.is_some() {
            disable_ramdisk = dr;
        }
    }
    if let Some(d) = disable_ramdisk {
        let _ = d;
        match target.as_str() {
            "clean" => ctx.require(f::CLEAN_DISABLE_RAMDISK)?,
            "service" => ctx.require(f::SERVICE_DISABLE_RAMDISK)?,
            _ => {
                return Err(ApiError::bad_request(
                    "\"disable_ramdisk\" is only valid when setting target provision state to clean or service",
                ));
            }
        }
    }
    if target == "clean" {
        if clean_steps.is_none() {
            return Err(ApiError::bad_request(
                "\"clean_steps\" is required when setting target provision state to clean",
            ));
        }
    } else if clean_steps.is_some() {
        return Err(ApiError::bad_request(
            "\"clean_steps\" is only valid when setting target provision state to clean",
        ));
    }
    if deploy_steps.is_some() {
        ctx.require(f::DEPLOY_STEPS)?;
        if !matches!(target.as_str(), "active" | "rebuild" | "deploy") {
            return Err(ApiError::bad_request(
                "\"deploy_steps\" is only valid when setting target provision state to active or rebuild",
            ));
        }
    }
    if service_steps.is_some() && target != "service" {
        return Err(ApiError::bad_request(
            "\"service_steps\" is only valid when setting target provision state to service",
        ));
    }
    if target == "service" && service_steps.is_none() {
        return Err(ApiError::bad_request(
            "\"service_steps\" is required when setting target provision state to service",
        ));
    }
    let rescue_password = match body.get("rescue_password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            if target != "rescue" {
                return Err(ApiError::bad_request(
                    "\"rescue_password\" is only valid when setting target provision state to rescue",
                ));
            }
            if p.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "A non-empty \"rescue_password\" is required when setting target provision state to rescue",
                ));
            }
            Some(Secret::new(p.clone()))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"rescue_password\" must be a string",
            ));
        }
    };
    if target == "rescue" && rescue_password.is_none() {
        return Err(ApiError::bad_request(
            "A non-empty \"rescue_password\" is required when setting target provision state to rescue",
        ));
    }
    if target == "abort" {
        if node.provision_state == ProvisionState::InspectWait {
            ctx.require(f::INSPECT_ABORT)?;
        }
        if node.provision_state == ProvisionState::DeployWait {
            ctx.require(f::DEPLOY_WAIT_ABORT)?;
        }
    }
    let mut req = ProvisionRequest::new(target);
    req.configdrive = configdrive;
    req.clean_steps = clean_steps;
    req.deploy_steps = deploy_steps;
    req.service_steps = service_steps;
    req.rescue_password = rescue_password;
    req.disable_ramdisk = disable_ramdisk;
    st.conductor().provision(&node_ident, req).await?;
    Ok(accepted(Some(&states_location(&ctx, &id))))
}

async fn power(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    take(&body, &["target", "timeout"])?;
    let target = match body.get("target") {
        Some(Value::String(t)) => t.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "'target' is a required string argument",
            ));
        }
    };
    let timeout = match body.get("timeout") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| ApiError::bad_request("Invalid timeout: expected an integer"))?,
        ),
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request("Invalid timeout: expected an integer"))?,
        ),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid timeout: expected an integer",
            ));
        }
    };
    let node_ident = ident(&ctx, &id)?;
    let node = st.conductor().get_node(&node_ident).await?;
    let action: Option<PowerAction> = target.parse().ok();
    if (action.is_some_and(|a| a.is_soft()) || timeout.is_some())
        && !ctx.version.at_least(f::SOFT_POWER_OFF)
    {
        return Err(ApiError::not_acceptable());
    }
    if timeout.is_some_and(|t| t < 1) {
        return Err(ApiError::bad_request("timeout has to be positive integer"));
    }
    let Some(action) = action else {
        return Err(ApiError::bad_request(format!(
            "The requested action \"{target}\" can not be performed on node \"{id}\" while it is in state \"{}\".",
            node.power_state.map(|p| p.as_str()).unwrap_or("None")
        )));
    };
    if matches!(
        node.provision_state,
        ProvisionState::CleanWait | ProvisionState::Cleaning
    ) {
        return Err(ApiError::bad_request(format!(
            "The requested action \"{target}\" can not be performed on node \"{id}\" while it is in state \"{}\".",
            node.provision_state
        )));
    }
    // Ironic raises PowerStateFailure, an InvalidState: 409
    if matches!(action, PowerAction::PowerOff | PowerAction::SoftPowerOff) && node.disable_power_off
    {
        return Err(ApiError::conflict(format!(
            "Failed to set node power state to {target}: power off is disabled for this node (disable_power_off)."
        )));
    }
    st.conductor()
        .set_power_state(
            &node_ident,
            action,
            timeout.map(|t| Duration::from_secs(t as u64)),
        )
        .await?;
    Ok(accepted(Some(&states_location(&ctx, &id))))
}

/// `target` of a boot mode / secure boot body; Ironic checks it is present
/// before checking the version (1.76).
fn target_arg<'a>(ctx: &ReqCtx, body: &'a Map<String, Value>) -> ApiResult<&'a Value> {
    take(body, &["target"])?;
    let t = body
        .get("target")
        .ok_or_else(|| ApiError::bad_request("Missing mandatory parameter: target"))?;
    if !ctx.version.at_least(f::SET_BOOT_MODE) {
        return Err(Gate::fault(
            404,
            "This endpoint is supported starting with the API version 1.76",
        )
        .error());
    }
    Ok(t)
}

async fn boot_mode(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    let mode: BootMode = target_arg(&ctx, &body)?
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request("Invalid boot mode target: expected \"uefi\" or \"bios\"")
        })?;
    st.conductor()
        .set_boot_mode(&ident(&ctx, &id)?, mode)
        .await?;
    Ok(accepted(Some(&states_location(&ctx, &id))))
}

async fn secure_boot(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    let on = match target_arg(&ctx, &body)? {
        Value::Bool(b) => *b,
        Value::String(s) => crate::api::query::parse_bool("target", s)?,
        _ => {
            return Err(ApiError::bad_request(
                "Invalid secure boot target: expected true or false",
            ));
        }
    };
    st.conductor()
        .set_secure_boot(&ident(&ctx, &id)?, on)
        .await?;
    Ok(accepted(Some(&states_location(&ctx, &id))))
}

async fn raid(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let cfg = parse_object(&body)?;
    st.conductor()
        .set_target_raid_config(&ident(&ctx, &id)?, cfg)
        .await
        .map_err(|e| match e {
            ironic_core::Error::Driver(d) if d.kind() == ironic_core::ErrorKind::Unsupported => {
                ApiError::not_found(d.to_string())
            }
            other => other.into(),
        })?;
    Ok(no_content())
}

/// `GET /states/console`.
async fn get_console(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let info = st.conductor().get_console(&ident(&ctx, &id)?).await?;
    ok_value(&json!({"console_enabled": info.is_some(), "console_info": info}))
}

/// `PUT /states/console {"enabled": bool}`.
async fn set_console(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    take(&body, &["enabled"])?;
    // Ironic's `args.boolean` (oslo's bool_from_string, strict) and its messages.
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "Missing mandatory parameter: enabled",
            ));
        }
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match s.trim().to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "on" | "y" | "yes" => true,
                "0" | "f" | "false" | "off" | "n" | "no" => false,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid enabled: Unrecognized value '{s}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
                    )));
                }
            }
        }
    };
    st.conductor()
        .set_console_mode(&ident(&ctx, &id)?, enabled)
        .await?;
    Ok(accepted(Some(&format!(
        "{}/v1/nodes/{id}/states/console",
        ctx.base
    ))))
}
