//! The OpenAPI 3.0 document, served at `GET /v1/openapi.json`.
//!
//! Generated from the route table ([`super::routes`]) and the resources' field
//! tables ([`super::resource::Schema`]): the same values that route requests,
//! gate them by microversion and render bodies.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::error::ApiResult;
use super::resource::{Field, Ty};
use super::routes::{Body, Route};
use super::version::{MAX, MIN};
use super::{ApiState, ReqCtx, ok_value};

fn field_schema(f: &Field) -> Value {
    let mut s = match f.ty {
        Ty::Str => json!({"type": "string"}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Object => json!({"type": "object", "additionalProperties": true}),
        Ty::Int => json!({"type": "integer"}),
        Ty::StrList => json!({"type": "array", "items": {"type": "string"}}),
        Ty::List => json!({"type": "array", "items": {"type": "object"}}),
        Ty::Uuid => json!({"type": "string", "format": "uuid"}),
        Ty::Time => json!({"type": "string", "format": "date-time"}),
    };
    if let Value::Object(m) = &mut s {
        if f.nullable {
            m.insert("nullable".into(), true.into());
        }
        m.insert(
            "description".into(),
            format!("Since microversion 1.{}.", f.since).into(),
        );
    }
    s
}

fn object(fields: impl Iterator<Item = &'static Field>, links: bool) -> Value {
    let mut props = Map::new();
    for f in fields {
        props.insert(f.name.into(), field_schema(f));
    }
    if links {
        props.insert(
            "links".into(),
            json!({"$ref": "#/components/schemas/Links"}),
        );
    }
    json!({"type": "object", "properties": props})
}

/// Component name and definition for a body, registering what it refers to.
fn body_schema(b: Body, comps: &mut BTreeMap<String, Value>) -> Option<Value> {
    let r = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    match b {
        Body::None => None,
        Body::One(s) => {
            comps
                .entry(s.name.into())
                .or_insert_with(|| object(s.fields.iter().filter(|f| f.read), true));
            Some(r(s.name))
        }
        Body::List(s) => {
            comps
                .entry(s.name.into())
                .or_insert_with(|| object(s.fields.iter().filter(|f| f.read), true));
            let name = format!("{}List", s.name);
            comps.entry(name.clone()).or_insert_with(|| {
                json!({"type": "object", "required": [s.key], "properties": {
                    s.key: {"type": "array", "items": r(s.name)},
                    "next": {"type": "string", "description": "URL of the next page, present when this page is full."}
                }})
            });
            Some(r(&name))
        }
        Body::Create(s) => {
            let name = format!("{}Create", s.name);
            comps
                .entry(name.clone())
                .or_insert_with(|| object(s.fields.iter().filter(|f| f.create), false));
            Some(r(&name))
        }
        Body::Patch => Some(json!({"type": "array", "items": r("PatchOperation")})),
        Body::Object(desc) => Some(json!({"type": "object", "description": desc})),
    }
}

fn operation_id(method: &str, path: &str) -> String {
    let p = path
        .trim_matches('/')
        .replace(['/', '.'], "_")
        .replace(['{', '}'], "");
    format!("{method}_{p}")
}

/// The document (without `servers`, added per request).
pub(crate) fn document(routes: &[Route]) -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut comps: BTreeMap<String, Value> = BTreeMap::new();
    for rt in routes {
        let method = rt.method.as_str().to_ascii_lowercase();
        let mut params: Vec<Value> = rt
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.push(json!({"$ref": "#/components/parameters/Microversion"}));
        if matches!(rt.response, Body::List(_)) {
            for p in [
                "limit", "marker", "sort_key", "sort_dir", "fields", "detail",
            ] {
                params.push(json!({"$ref": format!("#/components/parameters/{p}")}));
            }
        } else if matches!(rt.response, Body::One(_)) && rt.method == axum::http::Method::GET {
            params.push(json!({"$ref": "#/components/parameters/fields"}));
        }
        let mut responses = Map::new();
        let ok = match body_schema(rt.response, &mut comps) {
            Some(s) => {
                json!({"description": "Success", "content": {"application/json": {"schema": s}}})
            }
            None => json!({"description": "Success (no body)"}),
        };
        responses.insert(rt.status.to_string(), ok);
        for (code, what) in [
            ("400", "Invalid request"),
            ("404", "Not found"),
            ("406", "Microversion not supported or feature newer than it"),
            ("409", "Conflict (e.g. the node is locked)"),
        ] {
            responses.insert(
                code.into(),
                json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let older = rt.gate.status;
        let description = if rt.since > 1 {
            format!(
                "Available since microversion 1.{}; older versions get {older}.",
                rt.since
            )
        } else {
            "Available in every microversion.".to_owned()
        };
        let mut op = json!({
            "summary": rt.summary,
            "description": description,
            "operationId": operation_id(&method, rt.path),
            "tags": [rt.path.trim_start_matches("/v1/").split('/').next().unwrap_or("root")],
            "parameters": params,
            "responses": responses,
            "x-openstack-microversion-min": format!("1.{}", rt.since),
        });
        if let Some(s) = body_schema(rt.request, &mut comps) {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": s}}});
        }
        paths.entry(rt.path).or_default().insert(method, op);
    }
    comps.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error_message"],
              "properties": {"error_message": {"type": "string",
                "description": "A JSON document encoded as a string: {faultcode, faultstring, debuginfo} or {code, title, description}"}}}),
    );
    comps.insert(
        "PatchOperation".into(),
        json!({"type": "object", "required": ["op", "path"],
              "properties": {"op": {"type": "string", "enum": ["add", "replace", "remove"]},
                             "path": {"type": "string", "description": "JSON pointer; ~0 and ~1 escape ~ and / (1.98)"},
                             "value": {}}}),
    );
    comps.insert(
        "Links".into(),
        json!({"type": "array", "items": {"type": "object", "properties": {
            "href": {"type": "string"}, "rel": {"type": "string"}}}}),
    );
    let q = |name: &str, ty: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": desc});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ironic-rs Bare Metal API",
            "version": MAX.to_string(),
            "description": format!(
                "Ironic-compatible v1 REST API, microversions {MIN} to {MAX}. Errors carry {{\"error_message\": \"<JSON string>\"}}."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": comps,
            "parameters": {
                "Microversion": {"name": "X-OpenStack-Ironic-API-Version", "in": "header", "required": false,
                    "description": "Requested microversion (1.N or latest); 1.1 when absent.",
                    "schema": {"type": "string"}},
                "limit": q("limit", "integer", "Page size (at most [api] max_limit)."),
                "marker": q("marker", "string", "UUID of the last item of the previous page."),
                "sort_key": q("sort_key", "string", "Field to sort by."),
                "sort_dir": q("sort_dir", "string", "asc or desc."),
                "fields": q("fields", "string", "Comma-separated fields to return (1.8)."),
                "detail": q("detail", "boolean", "Return every field (1.43)."),
            }
        }
    })
}

/// `GET /v1/openapi.json`.
pub(crate) async fn serve(State(st): State<ApiState>, ctx: ReqCtx) -> ApiResult<Response> {
    let mut doc = st.openapi().clone();
    doc["servers"] = json!([{"url": &*ctx.base}]);
    ok_value(&doc)
}
