//! Vendor passthru of a node and its indicators (1.63).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::query::Params;
use crate::api::resource::links_value;
use crate::api::routes::{Body, Route, get, put};
use crate::api::{ApiState, ReqCtx, no_content, ok_value, parse_object};

pub(super) fn routes() -> Vec<Route> {
    let mut r = vec![
        get("/v1/nodes/{node}/vendor_passthru/methods", vendor_methods)
            .doc("Vendor methods of the node's vendor interface")
            .returns(Body::Object(
                "{<method>: {http_methods, async, description, attach, require_exclusive_lock}}",
            )),
        // 1.63, but Ironic does not refuse older clients here.
        get("/v1/nodes/{node}/management/indicators", indicators)
            .doc("Indicators (LEDs) of the node's components (1.63)")
            .returns(Body::Object("{indicators: [..]}")),
        get(
            "/v1/nodes/{node}/management/indicators/{indicator}",
            indicator_state,
        )
        .doc("The state of one indicator (name@component)")
        .returns(Body::Object("{state}")),
        put(
            "/v1/nodes/{node}/management/indicators/{indicator}",
            set_indicator,
        )
        .doc("Set an indicator")
        .status(204)
        .takes(Body::Object("{state}")),
    ];
    for m in [
        axum::http::Method::GET,
        axum::http::Method::POST,
        axum::http::Method::PUT,
        axum::http::Method::PATCH,
        axum::http::Method::DELETE,
    ] {
        r.push(
            crate::api::routes::on(m.clone(), "/v1/nodes/{node}/vendor_passthru", vendor_call)
                .doc("Call a vendor method (?method=NAME); 202 without a body for an asynchronous one")
                .status(200)
                .takes(Body::Object("method arguments"))
                .returns(Body::Object("the method's result")),
        );
        // The method as a path segment, as python-ironicclient (`baremetal node
        // passthru call`) sends it; Ironic serves both forms.
        r.push(
            crate::api::routes::on(
                m,
                "/v1/nodes/{node}/vendor_passthru/{method}",
                vendor_call_path,
            )
            .doc("Call a vendor method named in the path")
            .status(200)
            .takes(Body::Object("method arguments"))
            .returns(Body::Object("the method's result")),
        );
    }
    r
}

async fn vendor_methods(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let driver = st
        .conductor()
        .registry()
        .driver_for(&n)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut out = Map::new();
    for r in driver.vendor.routes() {
        out.insert(
            r.method.clone(),
            json!({
                "http_methods": r.http_methods,
                "async": r.is_async,
                "description": r.description,
                "attach": r.attach,
                "require_exclusive_lock": r.require_exclusive_lock,
            }),
        );
    }
    ok_value(&Value::Object(out))
}

async fn vendor_call(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    method: axum::http::Method,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let name = p
        .get("method")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("Method not specified"))?
        .to_owned();
    call_vendor(st, ctx, method, id, name, body).await
}

async fn vendor_call_path(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    method: axum::http::Method,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    call_vendor(st, ctx, method, id, name, body).await
}

async fn call_vendor(
    st: ApiState,
    ctx: ReqCtx,
    method: axum::http::Method,
    id: String,
    name: String,
    body: Bytes,
) -> ApiResult<Response> {
    let data: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        crate::api::parse_body(&body)?
    };
    let node = ident(&ctx, &id)?;
    // Ironic answers an asynchronous method with 202 and no body (its conductor
    // runs it in the background; here it has run when the answer goes out).
    let is_async = {
        let n = st.conductor().get_node(&node).await?;
        st.conductor()
            .registry()
            .driver_for(&n)
            .map(|d| {
                d.vendor
                    .routes()
                    .iter()
                    .any(|r| r.method == name && r.is_async)
            })
            .unwrap_or(false)
    };
    let out = match st
        .conductor()
        .vendor_passthru(&node, &name, method.as_str(), data)
        .await
    {
        Ok(v) => v,
        // A vendor method that fails with "not found" answers 404, as Ironic's
        // redfish delete_subscription (RedfishError code=404); elsewhere a
        // driver's NotFound stays 400.
        Err(e @ ironic_core::Error::Driver(_)) if is_not_found(&e) => {
            return Err(ApiError::not_found(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    if is_async {
        return Ok(crate::api::accepted(None));
    }
    ok_value(&out)
}

fn is_not_found(e: &ironic_core::Error) -> bool {
    matches!(e, ironic_core::Error::Driver(d) if d.kind() == ironic_core::ErrorKind::NotFound)
}

fn split_indicator(unique: &str) -> ApiResult<(&str, &str)> {
    unique
        .split_once('@')
        .filter(|(n, c)| !n.is_empty() && !c.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("Malformed indicator name \"{unique}\"")))
}

async fn indicators(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let ind = st
        .conductor()
        .get_supported_indicators(&ident(&ctx, &id)?)
        .await?;
    let mut out = Vec::new();
    for (component, names) in &ind {
        let Some(names) = names.as_object() else {
            continue;
        };
        for (name, fields) in names {
            let unique = format!("{name}@{component}");
            out.push(json!({
                "name": unique,
                "component": component,
                "readonly": fields.get("readonly").cloned().unwrap_or(Value::Bool(true)),
                "states": fields.get("states").cloned().unwrap_or_else(|| json!([])),
                "links": links_value(&ctx.base, "nodes", &format!("{id}/management/indicators/{unique}")),
            }));
        }
    }
    ok_value(&json!({ "indicators": out }))
}

async fn indicator_state(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, indicator)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (name, component) = split_indicator(&indicator)?;
    let state = st
        .conductor()
        .get_indicator_state(&ident(&ctx, &id)?, component, name)
        .await?;
    ok_value(&json!({ "state": state }))
}

async fn set_indicator(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, indicator)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let (name, component) = split_indicator(&indicator)?;
    // The state comes as a query argument (the client) or in a JSON body.
    let p = Params::parse(q.as_deref());
    // The state comes as a query argument (Ironic's API) or in a JSON body;
    // Ironic's states are lowercase, its documentation uppercase: both work.
    let state = match p.get("state") {
        Some(s) => s.to_owned(),
        None if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(ApiError::bad_request("Missing mandatory parameter: state"));
        }
        None => parse_object(&body)?
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad_request("Missing mandatory parameter: state"))?,
    }
    .to_ascii_uppercase();
    if !matches!(state.as_str(), "ON" | "OFF" | "BLINKING" | "UNKNOWN") {
        return Err(ApiError::bad_request(format!(
            "Invalid indicator state {state:?}: expected ON, OFF, BLINKING or UNKNOWN"
        )));
    }
    st.conductor()
        .set_indicator_state(&ident(&ctx, &id)?, component, name, &state)
        .await?;
    Ok(no_content())
}
