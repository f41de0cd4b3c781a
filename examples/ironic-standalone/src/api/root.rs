//! `GET /` and `GET /v1`: version discovery.

use axum::response::Response;
use serde_json::{Value, json};

use super::routes::{Body, Route, get};
use super::version::{MAX, MIN, feature as f};
use super::{ReqCtx, ok_value};
use crate::api::error::ApiResult;

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v1",
        "links": [{"href": format!("{base}/v1/"), "rel": "self"}],
        "status": "CURRENT",
        "min_version": MIN.to_string(),
        "version": MAX.to_string(),
    })
}

fn link_pair(base: &str, what: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{what}/"), "rel": "self"},
        {"href": format!("{base}/{what}/"), "rel": "bookmark"},
    ])
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/", root).doc("API versions").returns(Body::Object(
            "{name, description, versions, default_version}",
        )),
        get("/v1", v1)
            .doc("Resources of API v1")
            .returns(Body::Object(
                "{id, links, media_types, version, <resource>: links}",
            )),
        get("/v1/openapi.json", super::openapi::serve)
            .doc("This document")
            .returns(Body::Object("OpenAPI 3.0 document")),
    ]
}

/// `GET /`.
async fn root(ctx: ReqCtx) -> ApiResult<Response> {
    let v = version_doc(&ctx.base);
    ok_value(&json!({
        "name": "OpenStack Ironic API",
        "description": "Ironic is an OpenStack project which enables the provision and management of baremetal machines.",
        "default_version": v,
        "versions": [v],
    }))
}

/// `GET /v1`: the resources this version offers.
async fn v1(ctx: ReqCtx) -> ApiResult<Response> {
    let b = &*ctx.base;
    let mut doc = serde_json::Map::new();
    doc.insert("id".into(), "v1".into());
    doc.insert(
        "links".into(),
        json!([
            {"href": format!("{b}/v1/"), "rel": "self"},
            {"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html", "rel": "describedby", "type": "text/html"},
        ]),
    );
    doc.insert(
        "media_types".into(),
        json!({"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}),
    );
    for what in ["chassis", "nodes", "ports", "drivers"] {
        doc.insert(what.into(), link_pair(b, what));
    }
    doc.insert("version".into(), version_doc(b));
    let gated: &[(&str, u32)] = &[
        ("portgroups", f::PORTGROUPS),
        ("volume", f::VOLUME),
        ("lookup", f::LOOKUP_HEARTBEAT),
        ("heartbeat", f::LOOKUP_HEARTBEAT),
        ("conductors", f::CONDUCTORS),
        ("allocations", f::ALLOCATIONS),
        ("events", f::EVENTS),
        ("deploy_templates", f::DEPLOY_TEMPLATES),
        ("shards", f::SHARDS),
        ("runbooks", f::RUNBOOKS),
        ("inspection_rules", f::INSPECTION_RULES),
        ("continue_inspection", f::CONTINUE_INSPECTION),
    ];
    for (what, minor) in gated {
        if ctx.version.at_least(*minor) {
            doc.insert((*what).into(), link_pair(b, what));
        }
    }
    ok_value(&Value::Object(doc))
}
