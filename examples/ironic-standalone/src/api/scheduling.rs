//! Conductors, allocations, deploy templates, events and shards.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use ironic_core::ids::{AllocationId, DeployTemplateId, Ident, validate_name};
use ironic_core::model::{
    Allocation, AllocationState, DeployTemplate, DeployTemplateStep, JsonMap, validate_trait,
};
use ironic_core::store::{NodeFilter, NodeQuery, SortDir};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::json::write_str;
use super::query::{ListArgs, Params, next_link};
use super::render::{self, ALLOCATION_FIELDS, CONDUCTOR_FIELDS, TEMPLATE_FIELDS, check_fields_in};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, ok_value, parse_object, patch};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/conductors", get(conductors))
        .route("/v1/conductors/{host}", get(conductor))
        .route("/v1/allocations", get(allocations).post(create_allocation))
        .route(
            "/v1/allocations/{id}",
            get(allocation)
                .patch(update_allocation)
                .delete(delete_allocation),
        )
        .route("/v1/deploy_templates", get(templates).post(create_template))
        .route(
            "/v1/deploy_templates/{id}",
            get(template).patch(update_template).delete(delete_template),
        )
}

/// A conductor is alive when its keep-alive is younger than this (Ironic's
/// `[conductor]heartbeat_timeout`).
const HEARTBEAT_TIMEOUT_SECS: i64 = 60;

fn alive(c: &ironic_core::model::ConductorRecord) -> bool {
    let last = c.updated_at.unwrap_or(c.created_at);
    (ironic_core::model::now() - last).num_seconds() < HEARTBEAT_TIMEOUT_SECS
}

/// Write a list body `{"<key>": [...], "next": ...}` from rendered items.
fn list_body(key: &str, items: Vec<Vec<u8>>, next: Option<String>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(items.iter().map(Vec::len).sum::<usize>() + 64);
    buf.push(b'{');
    write_str(&mut buf, key);
    buf.extend_from_slice(b":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(it);
    }
    buf.push(b']');
    if let Some(n) = next {
        buf.extend_from_slice(b",\"next\":");
        write_str(&mut buf, &n);
    }
    buf.push(b'}');
    buf
}

fn page_by<T>(items: &mut Vec<T>, args: &ListArgs, id: impl Fn(&T) -> String) -> ApiResult<()> {
    if args.sort_dir == SortDir::Desc {
        items.reverse();
    }
    if let Some(m) = args.marker {
        let m = m.to_string();
        match items.iter().position(|i| id(i) == m) {
            Some(i) => {
                items.drain(..=i);
            }
            None => {
                return Err(ApiError::not_found(format!(
                    "Marker {m} could not be found."
                )));
            }
        }
    }
    items.truncate(args.limit);
    Ok(())
}

async fn conductors(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::CONDUCTORS)?;
    let p = Params::parse(q.as_deref());
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    if let Some(fl) = &args.fields {
        check_fields_in(CONDUCTOR_FIELDS, ctx.version, fl)?;
    }
    let mut all = st.conductor().store().list_conductors().await?;
    for c in &mut all {
        c.alive = alive(c);
    }
    if args.sort_key != "id" && args.sort_key != "hostname" {
        return Err(ApiError::bad_request(format!(
            "The sort_key value {} is an invalid field for sorting",
            args.sort_key
        )));
    }
    all.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    if args.sort_dir == SortDir::Desc {
        all.reverse();
    }
    all.truncate(args.limit);
    let default: Vec<String> = ["hostname", "conductor_group", "alive"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let fields = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f.as_slice()),
        (None, true) => None,
        (None, false) => Some(default.as_slice()),
    };
    let rctx = ctx.render(&st);
    let items = all
        .iter()
        .map(|c| {
            let mut b = Vec::new();
            render::write_conductor(&mut b, &rctx, c, fields);
            b
        })
        .collect();
    Ok(ok(list_body("conductors", items, None)))
}

async fn conductor(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(host): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::CONDUCTORS)?;
    let mut c = st
        .conductor()
        .store()
        .list_conductors()
        .await?
        .into_iter()
        .find(|c| c.hostname == host)
        .ok_or_else(|| ApiError::not_found(format!("Conductor {host} could not be found.")))?;
    c.alive = alive(&c);
    let mut b = Vec::new();
    render::write_conductor(&mut b, &ctx.render(&st), &c, None);
    Ok(ok(b))
}

// ---- allocations ----

async fn allocations(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    let p = Params::parse(q.as_deref());
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    if let Some(fl) = &args.fields {
        check_fields_in(ALLOCATION_FIELDS, ctx.version, fl)?;
    }
    let mut all = st.conductor().list_allocations().await?;
    if let Some(n) = p.get("node") {
        let node = st.conductor().get_node(&Ident::parse(n)).await?;
        all.retain(|a| a.node_uuid == Some(node.uuid));
    }
    if let Some(rc) = p.get("resource_class") {
        all.retain(|a| a.resource_class.as_deref() == Some(rc));
    }
    if let Some(s) = p.get("state") {
        let state: AllocationState = serde_json::from_value(json!(s))
            .map_err(|_| ApiError::bad_request(format!("Invalid allocation state {s:?}")))?;
        all.retain(|a| a.state == state);
    }
    if let Some(o) = p.get("owner") {
        ctx.require(f::ALLOCATION_OWNER)?;
        all.retain(|a| a.owner.as_deref() == Some(o));
    }
    page_by(&mut all, &args, |a| a.uuid.to_string())?;
    let rctx = ctx.render(&st);
    let fields = args.fields.as_deref();
    let items = all
        .iter()
        .map(|a| {
            let mut b = Vec::new();
            render::write_allocation(&mut b, &rctx, a, fields);
            b
        })
        .collect();
    let next = next_link(
        &ctx.base,
        "allocations",
        &p,
        &args,
        all.len(),
        all.last().map(|a| a.uuid.to_string()),
        None,
    );
    Ok(ok(list_body("allocations", items, next)))
}

async fn allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        check_fields_in(ALLOCATION_FIELDS, ctx.version, fl)?;
    }
    let a = st.conductor().get_allocation(&Ident::parse(&id)).await?;
    let mut b = Vec::new();
    render::write_allocation(&mut b, &ctx.render(&st), &a, fields.as_deref());
    Ok(ok(b))
}

fn string_list(k: &str, v: &Value) -> ApiResult<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::bad_request(format!("Invalid {k}: {i} is not a string"))
                })
            })
            .collect(),
        other => Err(ApiError::bad_request(format!(
            "Invalid {k}: {other} is not a list"
        ))),
    }
}

fn opt_string(k: &str, v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ApiError::bad_request(format!(
            "Invalid {k}: {other} is not a string"
        ))),
    }
}

async fn create_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    let body = parse_object(&body)?;
    let now = ironic_core::model::now();
    let mut a = Allocation {
        uuid: AllocationId::new(),
        name: None,
        state: AllocationState::Allocating,
        node_uuid: None,
        resource_class: None,
        traits: Vec::new(),
        candidate_nodes: Vec::new(),
        last_error: None,
        owner: None,
        extra: JsonMap::new(),
        conductor_affinity: None,
        created_at: now,
        updated_at: None,
    };
    for (k, v) in &body {
        match k.as_str() {
            "uuid" => {
                if let Some(s) = opt_string(k, v)? {
                    a.uuid = s.parse().map_err(|_| {
                        ApiError::bad_request(format!("Expected a UUID for uuid but received {s}."))
                    })?;
                }
            }
            "name" => {
                a.name = opt_string(k, v)?;
                if let Some(n) = &a.name {
                    validate_name(n).map_err(ApiError::bad_request)?;
                }
            }
            "resource_class" => {
                a.resource_class = opt_string(k, v)?;
                if a.resource_class
                    .as_ref()
                    .is_some_and(|r| r.is_empty() || r.len() > 80)
                {
                    return Err(ApiError::bad_request(
                        "Invalid resource_class: must be 1 to 80 characters",
                    ));
                }
            }
            "traits" => {
                a.traits = string_list(k, v)?;
                for t in &a.traits {
                    validate_trait(t).map_err(ApiError::bad_request)?;
                }
            }
            "candidate_nodes" => {
                let names = string_list(k, v)?;
                let mut uuids = Vec::with_capacity(names.len());
                for n in names {
                    let node =
                        st.conductor()
                            .get_node(&Ident::parse(&n))
                            .await
                            .map_err(|e| match e {
                                ironic_core::Error::NotFound { .. } => {
                                    ApiError::bad_request(format!("Node {n} could not be found."))
                                }
                                other => other.into(),
                            })?;
                    uuids.push(node.uuid.to_string());
                }
                a.candidate_nodes = uuids;
            }
            "extra" => {
                a.extra = match v {
                    Value::Null => JsonMap::new(),
                    Value::Object(m) => m.clone(),
                    _ => return Err(ApiError::bad_request("Invalid extra: not an object")),
                }
            }
            "owner" => {
                ctx.require(f::ALLOCATION_OWNER)?;
                a.owner = opt_string(k, v)?;
            }
            "node" => {
                ctx.require(f::ALLOCATION_BACKFILL)?;
                if let Some(n) = opt_string(k, v)? {
                    let node = st.conductor().get_node(&Ident::parse(&n)).await?;
                    a.node_uuid = Some(node.uuid);
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    if a.node_uuid.is_none() && a.resource_class.is_none() {
        return Err(ApiError::bad_request(
            "The resource_class field is mandatory when not backfilling",
        ));
    }
    if a.node_uuid.is_some() && !a.candidate_nodes.is_empty() {
        return Err(ApiError::bad_request(
            "Cannot use candidate_nodes when backfilling an allocation",
        ));
    }
    let a = st.conductor().create_allocation(a).await?;
    let mut b = Vec::new();
    render::write_allocation(&mut b, &ctx.render(&st), &a, None);
    Ok(created(
        &format!("{}/v1/allocations/{}", ctx.base, a.uuid),
        b,
    ))
}

async fn update_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    ctx.require(f::ALLOCATION_UPDATE)?;
    let ops = patch::parse(&body)?;
    let allowed: &[&str] = if ctx.version.at_least(f::ALLOCATION_OWNER) {
        &["name", "extra", "owner"]
    } else {
        &["name", "extra"]
    };
    patch::check_allowed(&ops, allowed)?;
    let a = st.conductor().get_allocation(&Ident::parse(&id)).await?;
    let mut doc = serde_json::to_value(&a).map_err(ApiError::internal)?;
    patch::apply(&mut doc, &ops)?;
    let mut u = a.clone();
    u.name = opt_string("name", doc.get("name").unwrap_or(&Value::Null))?;
    if let Some(n) = &u.name {
        validate_name(n).map_err(ApiError::bad_request)?;
    }
    u.owner = opt_string("owner", doc.get("owner").unwrap_or(&Value::Null))?;
    u.extra = match doc.get("extra") {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => JsonMap::new(),
        Some(_) => return Err(ApiError::bad_request("Invalid extra: not an object")),
    };
    let u = st.conductor().update_allocation(u).await?;
    let mut b = Vec::new();
    render::write_allocation(&mut b, &ctx.render(&st), &u, None);
    Ok(ok(b))
}

async fn delete_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    st.conductor().delete_allocation(&Ident::parse(&id)).await?;
    Ok(no_content())
}

// ---- deploy templates ----

const STEP_INTERFACES: &[&str] = &[
    "bios",
    "deploy",
    "firmware",
    "management",
    "network",
    "power",
    "raid",
    "vendor",
];

fn parse_steps(v: &Value) -> ApiResult<Vec<DeployTemplateStep>> {
    let Value::Array(items) = v else {
        return Err(ApiError::bad_request("Invalid steps: expected a list"));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid steps: at least one step is required",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for s in items {
        let Value::Object(m) = s else {
            return Err(ApiError::bad_request(format!(
                "Invalid step {s}: not an object"
            )));
        };
        for k in m.keys() {
            if !matches!(k.as_str(), "interface" | "step" | "args" | "priority") {
                return Err(ApiError::bad_request(format!(
                    "Invalid step: Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        let interface = m.get("interface").and_then(Value::as_str).unwrap_or("");
        if !STEP_INTERFACES.contains(&interface) {
            return Err(ApiError::bad_request(format!(
                "Invalid step interface {interface:?}: expected one of {}",
                STEP_INTERFACES.join(", ")
            )));
        }
        let step = m
            .get("step")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("Invalid step: 'step' is a required non-empty string")
            })?;
        let args = match m.get("args") {
            None | Some(Value::Null) => JsonMap::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Invalid step: 'args' must be an object",
                ));
            }
        };
        let priority = match m.get("priority") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            ApiError::bad_request("Invalid step: 'priority' is a required non-negative integer")
        })?;
        out.push(DeployTemplateStep {
            interface: interface.to_owned(),
            step: step.to_owned(),
            args,
            priority: priority.min(u32::MAX as u64) as u32,
        });
    }
    Ok(out)
}

fn check_template_name(n: &str) -> ApiResult<()> {
    validate_trait(n).map_err(ApiError::bad_request)
}

async fn templates(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::DEPLOY_TEMPLATES)?;
    let p = Params::parse(q.as_deref());
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    if let Some(fl) = &args.fields {
        check_fields_in(TEMPLATE_FIELDS, ctx.version, fl)?;
    }
    let mut all = st.conductor().list_deploy_templates().await?;
    page_by(&mut all, &args, |t| t.uuid.to_string())?;
    let default: Vec<String> = vec!["uuid".into(), "name".into()];
    let fields = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f.as_slice()),
        (None, true) => None,
        (None, false) => Some(default.as_slice()),
    };
    let rctx = ctx.render(&st);
    let items = all
        .iter()
        .map(|t| {
            let mut b = Vec::new();
            render::write_template(&mut b, &rctx, t, fields);
            b
        })
        .collect();
    let next = next_link(
        &ctx.base,
        "deploy_templates",
        &p,
        &args,
        all.len(),
        all.last().map(|t| t.uuid.to_string()),
        None,
    );
    Ok(ok(list_body("deploy_templates", items, next)))
}

async fn template(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::DEPLOY_TEMPLATES)?;
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        check_fields_in(TEMPLATE_FIELDS, ctx.version, fl)?;
    }
    let t = st
        .conductor()
        .get_deploy_template(&Ident::parse(&id))
        .await?;
    let mut b = Vec::new();
    render::write_template(&mut b, &ctx.render(&st), &t, fields.as_deref());
    Ok(ok(b))
}

async fn create_template(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::DEPLOY_TEMPLATES)?;
    let body = parse_object(&body)?;
    for k in body.keys() {
        if !matches!(k.as_str(), "name" | "steps" | "extra" | "uuid") {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("'name' is a required property"))?;
    check_template_name(name)?;
    let steps = parse_steps(
        body.get("steps")
            .ok_or_else(|| ApiError::bad_request("'steps' is a required property"))?,
    )?;
    let uuid = match body.get("uuid").and_then(Value::as_str) {
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_request(format!("Expected a UUID for uuid but received {s}."))
        })?,
        None => DeployTemplateId::new(),
    };
    let extra = match body.get("extra") {
        None | Some(Value::Null) => JsonMap::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::bad_request("Invalid extra: not an object")),
    };
    let t = DeployTemplate {
        uuid,
        name: name.to_owned(),
        steps,
        extra,
        created_at: ironic_core::model::now(),
        updated_at: None,
    };
    let t = st.conductor().create_deploy_template(t).await?;
    let mut b = Vec::new();
    render::write_template(&mut b, &ctx.render(&st), &t, None);
    Ok(created(
        &format!("{}/v1/deploy_templates/{}", ctx.base, t.uuid),
        b,
    ))
}

async fn update_template(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::DEPLOY_TEMPLATES)?;
    let ops = patch::parse(&body)?;
    patch::check_allowed(&ops, &["name", "steps", "extra"])?;
    let t = st
        .conductor()
        .get_deploy_template(&Ident::parse(&id))
        .await?;
    let mut doc = serde_json::to_value(&t).map_err(ApiError::internal)?;
    patch::apply(&mut doc, &ops)?;
    let mut u = t.clone();
    let name = doc.get("name").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("'/name' is a mandatory attribute and can not be removed")
    })?;
    check_template_name(name)?;
    u.name = name.to_owned();
    u.steps = parse_steps(doc.get("steps").ok_or_else(|| {
        ApiError::bad_request("'/steps' is a mandatory attribute and can not be removed")
    })?)?;
    u.extra = match doc.get("extra") {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => JsonMap::new(),
        Some(_) => return Err(ApiError::bad_request("Invalid extra: not an object")),
    };
    let u = st.conductor().update_deploy_template(u).await?;
    let mut b = Vec::new();
    render::write_template(&mut b, &ctx.render(&st), &u, None);
    Ok(ok(b))
}

async fn delete_template(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::DEPLOY_TEMPLATES)?;
    st.conductor()
        .delete_deploy_template(&Ident::parse(&id))
        .await?;
    Ok(no_content())
}

// ---- events, shards ----

/// `POST /v1/events` (1.54): Neutron port notifications. Validated and logged;
/// the noop and flat network interfaces have nothing to wait for.
pub(super) async fn events(ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    ctx.exists_since(f::EVENTS)?;
    let body = parse_object(&body)?;
    let Some(Value::Array(events)) = body.get("events") else {
        return Err(ApiError::bad_request("'events' is a required list"));
    };
    if body.len() != 1 {
        return Err(ApiError::bad_request("Only 'events' may be given"));
    }
    for e in events {
        let Value::Object(m) = e else {
            return Err(ApiError::bad_request(format!(
                "Invalid event {e}: not an object"
            )));
        };
        let kind = m.get("event").and_then(Value::as_str).unwrap_or("");
        if !matches!(
            kind,
            "network.bind_port" | "network.unbind_port" | "network.delete_port"
        ) {
            return Err(ApiError::bad_request(format!(
                "Invalid event {kind:?}: expected network.bind_port, network.unbind_port or network.delete_port"
            )));
        }
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                "event"
                    | "port_id"
                    | "mac_address"
                    | "status"
                    | "device_id"
                    | "binding:host_id"
                    | "binding:vnic_type"
            ) {
                return Err(ApiError::bad_request(format!(
                    "Invalid event: Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        match m.get("port_id").and_then(Value::as_str) {
            Some(p) if uuid::Uuid::parse_str(p).is_ok() => {}
            _ => {
                return Err(ApiError::bad_request(
                    "Invalid event: 'port_id' must be a UUID",
                ));
            }
        }
        if let Some(mac) = m.get("mac_address").and_then(Value::as_str)
            && mac.parse::<ironic_core::MacAddress>().is_err()
        {
            return Err(ApiError::bad_request(format!(
                "Invalid event: {mac} is not a MAC address"
            )));
        }
        tracing::info!(event = kind, port = ?m.get("port_id"), "network event received");
    }
    Ok(no_content())
}

/// `GET /v1/shards` (1.82): shard names and their node counts.
pub(super) async fn shards(State(st): State<ApiState>, ctx: ReqCtx) -> ApiResult<Response> {
    ctx.exists_since(f::SHARDS)?;
    let nodes = st
        .conductor()
        .list_nodes(&NodeQuery {
            filter: NodeFilter {
                sharded: Some(true),
                ..NodeFilter::default()
            },
            ..NodeQuery::default()
        })
        .await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in nodes {
        if let Some(s) = n.shard {
            *counts.entry(s).or_default() += 1;
        }
    }
    let items: Vec<Value> = counts
        .into_iter()
        .map(|(name, count)| json!({"name": name, "count": count}))
        .collect();
    ok_value(&json!({ "shards": items }))
}
