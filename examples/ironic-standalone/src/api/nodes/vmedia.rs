//! `/v1/nodes/{node}/vmedia`: virtual media attach (1.89), detach, state (1.93).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::query::Params;
use crate::api::routes::{Body, Gate, Route, delete, get, post};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, no_content, ok_value, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/vmedia", get_vmedia)
            .doc("Attached virtual media")
            .since_or(
                f::GET_VMEDIA,
                Gate::fault(404, "The resource could not be found."),
            )
            .returns(Body::Object("virtual media by device")),
        post("/v1/nodes/{node}/vmedia", attach_vmedia)
            .doc("Attach virtual media")
            .since(f::ATTACH_VMEDIA)
            .status(204)
            .takes(Body::Object(
                "{device_type, image_url, image_download_source?}",
            )),
        delete("/v1/nodes/{node}/vmedia", detach_vmedia)
            .doc("Detach virtual media")
            .since(f::ATTACH_VMEDIA),
    ]
}

fn vmedia_device(s: &str) -> ApiResult<ironic_core::driver::VmediaDevice> {
    serde_json::from_value(json!(s)).map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid device type(s) {s} (valid are cdrom, floppy, disk)"
        ))
    })
}

async fn get_vmedia(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let v = st.conductor().get_virtual_media(&ident(&ctx, &id)?).await?;
    ok_value(&v)
}

async fn attach_vmedia(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let m = parse_object(&body)?;
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "device_type" | "image_url" | "image_download_source"
        ) {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let device = vmedia_device(
        m.get("device_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("'device_type' is a required property"))?,
    )?;
    let url = m
        .get("image_url")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("'image_url' is a required property"))?;
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    if !matches!(scheme, "http" | "https" | "nfs" | "cifs") {
        return Err(ApiError::bad_request(format!(
            "Unsupported or missing URL scheme: {scheme}"
        )));
    }
    if let Some(src) = m.get("image_download_source")
        && !matches!(src.as_str(), Some("http" | "local" | "swift"))
    {
        return Err(ApiError::bad_request(
            "Invalid image_download_source: expected http, local or swift",
        ));
    }
    st.conductor()
        .attach_virtual_media(&ident(&ctx, &id)?, device, url)
        .await?;
    Ok(no_content())
}

async fn detach_vmedia(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let devices = p
        .list("device_types")
        .unwrap_or_default()
        .iter()
        .map(|d| vmedia_device(d))
        .collect::<ApiResult<Vec<_>>>()?;
    st.conductor()
        .detach_virtual_media(&ident(&ctx, &id)?, &devices)
        .await?;
    Ok(no_content())
}
