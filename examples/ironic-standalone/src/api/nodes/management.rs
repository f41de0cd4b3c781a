//! Node management: boot device, NMI, maintenance, interface validation.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use ironic_core::driver::BootDevice;
use ironic_core::model::InterfaceType;
use serde_json::{Map, Value, json};

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::routes::{Body, Gate, Route, delete, get, put};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, accepted, no_content, ok_value, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/management/boot_device", get_boot_device)
            .doc("The current boot device")
            .returns(Body::Object("{boot_device, persistent}")),
        put("/v1/nodes/{node}/management/boot_device", set_boot_device)
            .doc("Set the boot device")
            .status(204)
            .takes(Body::Object("{boot_device, persistent?}")),
        get(
            "/v1/nodes/{node}/management/boot_device/supported",
            supported_boot_devices,
        )
        .doc("Boot devices the node supports")
        .returns(Body::Object("{supported_boot_devices: [..]}")),
        put("/v1/nodes/{node}/management/inject_nmi", inject_nmi)
            .doc("Inject a non-maskable interrupt")
            .since_or(f::INJECT_NMI, Gate::NOT_FOUND)
            .status(204),
        put("/v1/nodes/{node}/maintenance", set_maintenance)
            .doc("Put the node in maintenance")
            .takes(Body::Object("{reason?}")),
        delete("/v1/nodes/{node}/maintenance", unset_maintenance)
            .doc("Take the node out of maintenance")
            .status(202),
        get("/v1/nodes/{node}/validate", validate)
            .doc("Validate the node's interfaces")
            .returns(Body::Object("{<interface>: {result, reason}}")),
    ]
}

fn take(body: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    super::states::take(body, allowed)
}

async fn get_boot_device(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let info = st.conductor().get_boot_device(&ident(&ctx, &id)?).await?;
    ok_value(&info)
}

async fn set_boot_device(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    take(&body, &["boot_device", "persistent"])?;
    let dev = body
        .get("boot_device")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("'boot_device' is a required string argument"))?;
    let device: BootDevice = dev.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid boot device {dev}, valid boot devices are: {}",
            BootDevice::ALL
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let persistent = match body.get("persistent") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => crate::api::query::parse_bool("persistent", s)?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid persistent: expected a boolean",
            ));
        }
    };
    st.conductor()
        .set_boot_device(&ident(&ctx, &id)?, device, persistent)
        .await?;
    Ok(no_content())
}

async fn supported_boot_devices(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let devs = st
        .conductor()
        .get_supported_boot_devices(&ident(&ctx, &id)?)
        .await?;
    ok_value(&json!({ "supported_boot_devices": devs }))
}

async fn inject_nmi(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.conductor().inject_nmi(&ident(&ctx, &id)?).await?;
    Ok(no_content())
}

async fn set_maintenance(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let m = parse_object(&body)?;
        take(&m, &["reason"])?;
        match m.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("Invalid reason: expected a string")),
        }
    };
    st.conductor()
        .set_maintenance(&ident(&ctx, &id)?, true, reason)
        .await?;
    Ok(accepted(Some(&format!(
        "{}/v1/nodes/{id}/maintenance",
        ctx.base
    ))))
}

async fn unset_maintenance(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.conductor()
        .set_maintenance(&ident(&ctx, &id)?, false, None)
        .await?;
    Ok(accepted(Some(&format!(
        "{}/v1/nodes/{id}/maintenance",
        ctx.base
    ))))
}

async fn validate(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let results = st.conductor().validate(&ident(&ctx, &id)?).await?;
    let mut out = Map::new();
    for (t, r) in results {
        // Ironic validates the non-vendor interfaces, at every version.
        if t == InterfaceType::Vendor {
            continue;
        }
        // `reason` only when there is one (Ironic's validate_driver_interfaces)
        let mut v = json!({"result": r.result});
        if let Some(reason) = r.reason {
            v["reason"] = json!(reason);
        }
        out.insert(t.as_str().to_owned(), v);
    }
    ok_value(&Value::Object(out))
}
