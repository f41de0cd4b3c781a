//! `/v1/nodes/{node}/traits` (1.37).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use ironic_core::model::validate_trait;
use serde_json::{Value, json};

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::routes::{Body, Gate, Route, delete, get, put};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, no_content, ok_value, parse_object};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/traits", get_traits)
            .doc("The node's traits")
            .since_or(f::NODE_TRAITS, Gate::NOT_ACCEPTABLE)
            .returns(Body::Object("{traits: [..]}")),
        put("/v1/nodes/{node}/traits", set_traits)
            .doc("Replace all traits")
            .since_or(f::NODE_TRAITS, Gate::webob(405, ""))
            .status(204)
            .takes(Body::Object("{traits: [..]}")),
        delete("/v1/nodes/{node}/traits", delete_traits)
            .doc("Remove all traits")
            .since_or(f::NODE_TRAITS, Gate::NOT_FOUND),
        put("/v1/nodes/{node}/traits/{trait}", add_trait)
            .doc("Add a trait")
            .since_or(f::NODE_TRAITS, Gate::webob(405, ""))
            .status(204),
        delete("/v1/nodes/{node}/traits/{trait}", remove_trait)
            .doc("Remove a trait")
            .since_or(f::NODE_TRAITS, Gate::NOT_FOUND),
    ]
}

async fn get_traits(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    ok_value(&json!({ "traits": n.traits }))
}

fn check_trait(t: &str) -> ApiResult<()> {
    validate_trait(t).map_err(ApiError::bad_request)?;
    let standard_or_custom = t.starts_with("CUSTOM_") || !t.is_empty();
    if !standard_or_custom {
        return Err(ApiError::bad_request(format!("Invalid trait {t}")));
    }
    Ok(())
}

async fn set_traits(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let m = parse_object(&body)?;
    let Some(Value::Array(items)) = m.get("traits") else {
        return Err(ApiError::bad_request(
            "'traits' is a required list of strings",
        ));
    };
    if m.len() != 1 {
        return Err(ApiError::bad_request("Only 'traits' may be given"));
    }
    let mut traits = Vec::with_capacity(items.len());
    for t in items {
        let s = t
            .as_str()
            .ok_or_else(|| ApiError::bad_request(format!("Invalid trait {t}: not a string")))?;
        check_trait(s)?;
        if !traits.iter().any(|x: &String| x == s) {
            traits.push(s.to_owned());
        }
    }
    if traits.len() > 50 {
        return Err(ApiError::bad_request(
            "Could not set traits: a node may have at most 50 traits",
        ));
    }
    st.conductor()
        .set_traits(&ident(&ctx, &id)?, traits)
        .await?;
    Ok(no_content())
}

async fn delete_traits(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.conductor()
        .set_traits(&ident(&ctx, &id)?, Vec::new())
        .await?;
    Ok(no_content())
}

async fn add_trait(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, t)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_trait(&t)?;
    st.conductor().add_trait(&ident(&ctx, &id)?, &t).await?;
    Ok(no_content())
}

async fn remove_trait(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, t)): Path<(String, String)>,
) -> ApiResult<Response> {
    st.conductor().remove_trait(&ident(&ctx, &id)?, &t).await?;
    Ok(no_content())
}
