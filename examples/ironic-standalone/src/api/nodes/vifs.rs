//! `/v1/nodes/{node}/vifs` (1.28): virtual interfaces attached to the node's
//! ports and port groups.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use ironic_core::driver::VifInfo;
use serde_json::{Value, json};

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::routes::{Body, Route, delete, get, post};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, no_content, ok_value, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/vifs", list_vifs)
            .doc("VIFs attached to the node")
            .since(f::VIFS)
            .returns(Body::Object("{vifs: [{id}]}")),
        post("/v1/nodes/{node}/vifs", attach_vif)
            .doc("Attach a VIF")
            .since(f::VIFS)
            .status(204)
            .takes(Body::Object("{id, port_uuid?, portgroup_uuid?}")),
        delete("/v1/nodes/{node}/vifs/{vif}", detach_vif)
            .doc("Detach a VIF")
            .since(f::VIFS),
    ]
}

async fn list_vifs(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let vifs = st.conductor().vif_list(&ident(&ctx, &id)?).await?;
    let items: Vec<Value> = vifs.into_iter().map(|v| json!({ "id": v })).collect();
    ok_value(&json!({ "vifs": items }))
}

async fn attach_vif(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut m = parse_object(&body)?;
    let vif_id = match m.remove("id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(ApiError::bad_request("'id' is a required property")),
    };
    if (m.contains_key("port_uuid") || m.contains_key("portgroup_uuid"))
        && !ctx.version.at_least(f::VIF_ATTACH_PORT)
    {
        return Err(ApiError::not_acceptable());
    }
    if m.contains_key("port_uuid") && m.contains_key("portgroup_uuid") {
        return Err(ApiError::bad_request(
            "Cannot specify both port_uuid and portgroup_uuid",
        ));
    }
    st.conductor()
        .vif_attach(&ident(&ctx, &id)?, {
            let mut vif = VifInfo::new(vif_id);
            vif.extra = m;
            vif
        })
        .await?;
    Ok(no_content())
}

async fn detach_vif(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, vif)): Path<(String, String)>,
) -> ApiResult<Response> {
    st.conductor().vif_detach(&ident(&ctx, &id)?, &vif).await?;
    Ok(no_content())
}
