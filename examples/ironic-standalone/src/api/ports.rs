//! `/v1/ports` and `/v1/portgroups`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use ironic_core::MacAddress;
use ironic_core::ids::{Ident, NodeId, PortgroupId, validate_name};
use ironic_core::model::{JsonMap, Port, Portgroup};
use ironic_core::store::{PortQuery, SortDir};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::json::write_str;
use super::query::{ListArgs, Params, next_link, parse_bool};
use super::render::{
    self, PORT_FIELDS, PORT_LIST_FIELDS, PORTGROUP_FIELDS, PORTGROUP_LIST_FIELDS, check_fields_in,
};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object, patch};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/ports", get(list).post(create))
        .route("/v1/ports/detail", get(list_detail))
        .route("/v1/ports/{port}", get(show).patch(update).delete(delete))
        .route("/v1/portgroups", get(pg_list).post(pg_create))
        .route("/v1/portgroups/detail", get(pg_list_detail))
        .route(
            "/v1/portgroups/{pg}",
            get(pg_show).patch(pg_update).delete(pg_delete),
        )
        .route("/v1/portgroups/{pg}/ports", get(pg_ports))
        .route("/v1/portgroups/{pg}/ports/detail", get(pg_ports_detail))
}

fn mac(k: &str, v: &str) -> ApiResult<MacAddress> {
    v.parse().map_err(|_| {
        ApiError::bad_request(format!("Expected a MAC address for {k} but received {v}."))
    })
}

/// Sort in memory for keys the store does not order by, then page.
fn page<T>(
    mut items: Vec<T>,
    args: &ListArgs,
    uuid: impl Fn(&T) -> uuid::Uuid,
    key: Option<fn(&T) -> String>,
) -> ApiResult<Vec<T>> {
    if let Some(k) = key {
        items.sort_by_key(k);
    }
    if args.sort_dir == SortDir::Desc && key.is_some() {
        items.reverse();
    }
    if let Some(m) = args.marker {
        match items.iter().position(|i| uuid(i) == m) {
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
    Ok(items)
}

/// A key function for sorting ports in memory.
type PortKey = fn(&Port) -> String;

fn port_sort_key(k: &str) -> ApiResult<Option<PortKey>> {
    Ok(match k {
        "id" | "created_at" => None,
        "uuid" => Some(|p: &Port| p.uuid.to_string()),
        "address" => Some(|p: &Port| p.address.to_string()),
        "name" => Some(|p: &Port| p.name.clone().unwrap_or_default()),
        "updated_at" => Some(|p: &Port| p.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default()),
        "physical_network" => Some(|p: &Port| p.physical_network.clone().unwrap_or_default()),
        other => {
            return Err(ApiError::bad_request(format!(
                "The sort_key value {other} is an invalid field for sorting"
            )));
        }
    })
}

/// List ports for a collection URL.
pub(super) async fn list_ports(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
    path: &str,
    node: Option<NodeId>,
    portgroup: Option<PortgroupId>,
) -> ApiResult<Response> {
    let p = Params::parse(raw);
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, detail_path)?;
    if let Some(fl) = &args.fields {
        check_fields_in(PORT_FIELDS, ctx.version, fl)?;
    }
    let mut q = PortQuery {
        node,
        portgroup,
        ..PortQuery::default()
    };
    let node_arg = p.get("node").or(p.get("node_uuid"));
    if let Some(n) = node_arg
        && q.node.is_none()
    {
        if p.get("node").is_some() && p.get("node_uuid").is_some() {
            return Err(ApiError::bad_request(
                "Only one of node or node_uuid can be specified",
            ));
        }
        match st.conductor().get_node(&Ident::parse(n)).await {
            Ok(found) => q.node = Some(found.uuid),
            Err(ironic_core::Error::NotFound { .. }) => {
                return Err(ApiError::not_found(format!("Node {n} could not be found.")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(a) = p.get("address") {
        q.address = Some(mac("address", a)?);
    }
    if let Some(pg) = p.get("portgroup") {
        ctx.require(f::PORTGROUPS)?;
        let found = st
            .conductor()
            .store()
            .get_portgroup(&Ident::parse(pg))
            .await?;
        q.portgroup = Some(found.uuid);
    }
    if let Some(pn) = p.get("physical_network") {
        q.physical_network = Some(pn.to_owned());
    }
    let key = port_sort_key(&args.sort_key)?;
    let store_pages = key.is_none();
    if store_pages {
        q.limit = Some(args.limit);
        q.marker = args.marker;
        q.sort_dir = args.sort_dir;
    }
    let mut ports = st.conductor().store().list_ports(&q).await?;
    if !store_pages {
        ports = page(ports, &args, |p| *p.uuid.as_uuid(), key)?;
    }
    let owned: Vec<String>;
    let fields: Option<&[String]> = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => {
            owned = PORT_LIST_FIELDS.iter().map(|s| s.to_string()).collect();
            Some(&owned)
        }
    };
    let rctx = ctx.render(st);
    let mut buf = b"{\"ports\":[".to_vec();
    for (i, port) in ports.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        render::write_port(&mut buf, &rctx, port, fields);
    }
    buf.push(b']');
    if let Some(next) = next_link(
        &ctx.base,
        path,
        &p,
        &args,
        ports.len(),
        ports.last().map(|p| p.uuid.to_string()),
        None,
    ) {
        buf.extend_from_slice(b",\"next\":");
        write_str(&mut buf, &next);
    }
    buf.push(b'}');
    Ok(ok(buf))
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_ports(&st, &ctx, q.as_deref(), false, "ports", None, None).await
}

async fn list_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_ports(&st, &ctx, q.as_deref(), true, "ports/detail", None, None).await
}

fn port_ident(ctx: &ReqCtx, s: &str) -> ApiResult<Ident> {
    let id = Ident::parse(s);
    if matches!(id, Ident::Name(_)) && !ctx.version.at_least(f::PORT_NAME) {
        // Before 1.88 a port is addressed by UUID or MAC address.
        return Err(ApiError::bad_request(format!(
            "Expected a UUID but received {s}."
        )));
    }
    Ok(id)
}

async fn get_port(st: &ApiState, ctx: &ReqCtx, s: &str) -> ApiResult<Port> {
    if let Ok(m) = s.parse::<MacAddress>()
        && uuid::Uuid::parse_str(s).is_err()
    {
        return Ok(st.conductor().store().get_port_by_address(m).await?);
    }
    Ok(st
        .conductor()
        .store()
        .get_port(&port_ident(ctx, s)?)
        .await?)
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        ctx.require(f::FIELDS)?;
        check_fields_in(PORT_FIELDS, ctx.version, fl)?;
    }
    let port = get_port(&st, &ctx, &id).await?;
    let mut buf = Vec::with_capacity(800);
    render::write_port(&mut buf, &ctx.render(&st), &port, fields.as_deref());
    Ok(ok(buf))
}

fn check_llc(ctx: &ReqCtx, v: &Value) -> ApiResult<JsonMap> {
    let m = match v {
        Value::Null => return Ok(JsonMap::new()),
        Value::Object(m) => m.clone(),
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid local_link_connection {other}: expected an object"
            )));
        }
    };
    if m.is_empty() {
        return Ok(m);
    }
    for k in m.keys() {
        match k.as_str() {
            "switch_id" | "port_id" | "switch_info" => {}
            "network_type" => ctx.require(f::LOCAL_LINK_NETWORK_TYPE)?,
            "vtep-logical-switch" | "vtep-physical-switch" => ctx.require(f::OVN_VTEP)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid local_link_connection: unexpected key '{other}' (allowed: switch_id, port_id, switch_info, network_type)"
                )));
            }
        }
    }
    let vtep = m.contains_key("vtep-logical-switch") || m.contains_key("vtep-physical-switch");
    if vtep {
        if !(m.contains_key("vtep-logical-switch")
            && m.contains_key("vtep-physical-switch")
            && m.contains_key("port_id"))
        {
            return Err(ApiError::bad_request(
                "Missing mandatory keys. Required keys are ['vtep-logical-switch', 'vtep-physical-switch', 'port_id'] for an OVN VTEP switch.",
            ));
        }
        return Ok(m);
    }
    match m.get("network_type").and_then(Value::as_str) {
        Some("unmanaged") => {}
        Some("managed") | None => {
            if !(m.contains_key("port_id") && m.contains_key("switch_id")) {
                return Err(ApiError::bad_request(
                    "Missing mandatory keys. Required keys are ['port_id', 'switch_id'] or 'network_type' = 'unmanaged'.",
                ));
            }
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid network_type {other:?}: expected managed or unmanaged"
            )));
        }
    }
    if let Some(sw) = m.get("switch_id") {
        let s = sw.as_str().unwrap_or("");
        let is_mac = s.parse::<MacAddress>().is_ok();
        let is_dpid = s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let is_dpid_colons = s.len() == 23
            && s.split(':')
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if !(is_mac || is_dpid || is_dpid_colons) {
            return Err(ApiError::bad_request(format!(
                "Expected a MAC address or OpenFlow datapath ID but received {s}."
            )));
        }
    }
    Ok(m)
}

const PORT_WRITE: &[(&str, u32)] = &[
    ("address", 1),
    ("node_uuid", 1),
    ("node", 94),
    ("uuid", 1),
    ("extra", 1),
    ("portgroup_uuid", 24),
    ("local_link_connection", 19),
    ("pxe_enabled", 19),
    ("physical_network", 34),
    ("is_smartnic", 53),
    ("name", 88),
    ("description", 97),
    ("vendor", 100),
    ("category", 101),
    ("available_for_dynamic_portgroup", 111),
];

fn opt_str(k: &str, v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {k}: {other} is not of type 'string'"
        ))),
    }
}

fn bool_of(k: &str, v: &Value) -> ApiResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => parse_bool(k, s),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {k}: {other} is not a boolean"
        ))),
    }
}

async fn set_port_field(
    st: &ApiState,
    ctx: &ReqCtx,
    p: &mut Port,
    k: &str,
    v: &Value,
) -> ApiResult<()> {
    match k {
        "address" => {
            let s = opt_str(k, v)?
                .ok_or_else(|| ApiError::bad_request("'address' is a required property"))?;
            p.address = mac(k, &s)?;
        }
        "node_uuid" | "node" => {
            let s = opt_str(k, v)?
                .ok_or_else(|| ApiError::bad_request("'node_uuid' is a required property"))?;
            let ident = if k == "node_uuid" {
                Ident::Uuid(uuid::Uuid::parse_str(&s).map_err(|_| {
                    ApiError::bad_request(format!(
                        "Expected a UUID for node_uuid but received {s}."
                    ))
                })?)
            } else {
                Ident::parse(&s)
            };
            let n = st.conductor().get_node(&ident).await.map_err(|e| match e {
                ironic_core::Error::NotFound { .. } => {
                    ApiError::bad_request(format!("Node {s} could not be found."))
                }
                other => other.into(),
            })?;
            p.node_uuid = n.uuid;
        }
        "uuid" => {
            if let Some(s) = opt_str(k, v)? {
                p.uuid = s.parse().map_err(|_| {
                    ApiError::bad_request(format!("Expected a UUID for uuid but received {s}."))
                })?;
            }
        }
        "extra" => {
            p.extra = match v {
                Value::Null => JsonMap::new(),
                Value::Object(m) => m.clone(),
                _ => {
                    return Err(ApiError::bad_request(
                        "Invalid value for extra: not an object",
                    ));
                }
            }
        }
        "portgroup_uuid" => {
            p.portgroup_uuid = match opt_str(k, v)? {
                None => None,
                Some(s) => {
                    let pg = st
                        .conductor()
                        .store()
                        .get_portgroup(&Ident::parse(&s))
                        .await?;
                    Some(pg.uuid)
                }
            }
        }
        "local_link_connection" => p.local_link_connection = check_llc(ctx, v)?,
        "pxe_enabled" => p.pxe_enabled = bool_of(k, v)?,
        "physical_network" => p.physical_network = opt_str(k, v)?,
        "is_smartnic" => p.is_smartnic = bool_of(k, v)?,
        "name" => {
            let n = opt_str(k, v)?;
            if let Some(n) = &n {
                validate_name(n).map_err(ApiError::bad_request)?;
            }
            p.name = n;
        }
        "description" => p.description = opt_str(k, v)?,
        "vendor" => p.vendor = opt_str(k, v)?,
        "category" => p.category = opt_str(k, v)?,
        "available_for_dynamic_portgroup" => p.available_for_dynamic_portgroup = bool_of(k, v)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )));
        }
    }
    Ok(())
}

fn check_write_fields(ctx: &ReqCtx, table: &[(&str, u32)], body: &JsonMap) -> ApiResult<()> {
    for (k, v) in body {
        match table.iter().find(|(n, _)| n == k) {
            None => {
                return Err(ApiError::bad_request(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            Some((_, minor)) if !ctx.version.at_least(*minor) && !v.is_null() => {
                return Err(ApiError::not_acceptable());
            }
            _ => {}
        }
    }
    Ok(())
}

async fn create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    check_write_fields(&ctx, PORT_WRITE, &body)?;
    let address = body
        .get("address")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("'address' is a required property"))?;
    if !body.contains_key("node_uuid") && !body.contains_key("node") {
        return Err(ApiError::bad_request("'node_uuid' is a required property"));
    }
    if body.contains_key("node_uuid") && body.contains_key("node") {
        return Err(ApiError::bad_request(
            "Only one of node or node_uuid can be specified",
        ));
    }
    let mut port = Port::new(NodeId::new(), mac("address", address)?);
    for (k, v) in &body {
        set_port_field(&st, &ctx, &mut port, k, v).await?;
    }
    let port = st.conductor().create_port(port).await?;
    let mut buf = Vec::with_capacity(800);
    render::write_port(&mut buf, &ctx.render(&st), &port, None);
    Ok(created(
        &format!("{}/v1/ports/{}", ctx.base, port.uuid),
        buf,
    ))
}

const PORT_PATCH: &[&str] = &[
    "address",
    "extra",
    "local_link_connection",
    "pxe_enabled",
    "physical_network",
    "portgroup_uuid",
    "node_uuid",
    "is_smartnic",
    "name",
    "description",
    "vendor",
    "category",
    "available_for_dynamic_portgroup",
];

async fn update(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let ops = patch::parse(&body)?;
    patch::check_allowed(&ops, PORT_PATCH)?;
    for op in &ops {
        let root = op.root();
        if let Some((_, minor)) = PORT_WRITE.iter().find(|(n, _)| *n == root)
            && !ctx.version.at_least(*minor)
        {
            return Err(ApiError::not_acceptable());
        }
    }
    let port = get_port(&st, &ctx, &id).await?;
    let mut doc = serde_json::to_value(&port).map_err(ApiError::internal)?;
    let before = doc.clone();
    patch::apply(&mut doc, &ops)?;
    let mut updated = port.clone();
    for field in PORT_PATCH {
        let new = doc.get(*field).unwrap_or(&Value::Null);
        if before.get(*field).unwrap_or(&Value::Null) != new {
            set_port_field(&st, &ctx, &mut updated, field, new).await?;
        }
    }
    let saved = st.conductor().update_port(updated).await?;
    let mut buf = Vec::with_capacity(800);
    render::write_port(&mut buf, &ctx.render(&st), &saved, None);
    Ok(ok(buf))
}

async fn delete(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let port = get_port(&st, &ctx, &id).await?;
    st.conductor().delete_port(port.uuid).await?;
    Ok(no_content())
}

// ---- port groups ----

/// List port groups for a collection URL.
pub(super) async fn list_portgroups(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
    path: &str,
    node: Option<NodeId>,
) -> ApiResult<Response> {
    ctx.exists_since(f::PORTGROUPS)?;
    let p = Params::parse(raw);
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, detail_path)?;
    if let Some(fl) = &args.fields {
        check_fields_in(PORTGROUP_FIELDS, ctx.version, fl)?;
    }
    let mut node = node;
    if let Some(n) = p.get("node").or(p.get("node_uuid"))
        && node.is_none()
    {
        node = Some(st.conductor().get_node(&Ident::parse(n)).await?.uuid);
    }
    let mut pgs = st.conductor().store().list_portgroups(node).await?;
    if let Some(a) = p.get("address") {
        let a = mac("address", a)?;
        pgs.retain(|pg| pg.address == Some(a));
    }
    let key: Option<fn(&Portgroup) -> String> = match args.sort_key.as_str() {
        "id" | "created_at" => None,
        "uuid" => Some(|p: &Portgroup| p.uuid.to_string()),
        "name" => Some(|p: &Portgroup| p.name.clone().unwrap_or_default()),
        "address" => Some(|p: &Portgroup| p.address.map(|a| a.to_string()).unwrap_or_default()),
        other => {
            return Err(ApiError::bad_request(format!(
                "The sort_key value {other} is an invalid field for sorting"
            )));
        }
    };
    if key.is_none() && args.sort_dir == SortDir::Desc {
        pgs.reverse();
    }
    let pgs = page(pgs, &args, |p| *p.uuid.as_uuid(), key)?;
    let owned: Vec<String>;
    let fields: Option<&[String]> = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => {
            owned = PORTGROUP_LIST_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect();
            Some(&owned)
        }
    };
    let rctx = ctx.render(st);
    let mut buf = b"{\"portgroups\":[".to_vec();
    for (i, pg) in pgs.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        render::write_portgroup(&mut buf, &rctx, pg, fields);
    }
    buf.push(b']');
    if let Some(next) = next_link(
        &ctx.base,
        path,
        &p,
        &args,
        pgs.len(),
        pgs.last().map(|p| p.uuid.to_string()),
        None,
    ) {
        buf.extend_from_slice(b",\"next\":");
        write_str(&mut buf, &next);
    }
    buf.push(b'}');
    Ok(ok(buf))
}

async fn pg_list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_portgroups(&st, &ctx, q.as_deref(), false, "portgroups", None).await
}

async fn pg_list_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_portgroups(&st, &ctx, q.as_deref(), true, "portgroups/detail", None).await
}

async fn get_pg(st: &ApiState, ctx: &ReqCtx, s: &str) -> ApiResult<Portgroup> {
    ctx.exists_since(f::PORTGROUPS)?;
    if let Ok(m) = s.parse::<MacAddress>()
        && uuid::Uuid::parse_str(s).is_err()
    {
        let all = st.conductor().store().list_portgroups(None).await?;
        return all
            .into_iter()
            .find(|p| p.address == Some(m))
            .ok_or_else(|| ApiError::not_found(format!("Portgroup {s} could not be found.")));
    }
    Ok(st
        .conductor()
        .store()
        .get_portgroup(&Ident::parse(s))
        .await?)
}

async fn pg_show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        check_fields_in(PORTGROUP_FIELDS, ctx.version, fl)?;
    }
    let pg = get_pg(&st, &ctx, &id).await?;
    let mut buf = Vec::with_capacity(800);
    render::write_portgroup(&mut buf, &ctx.render(&st), &pg, fields.as_deref());
    Ok(ok(buf))
}

const PG_WRITE: &[(&str, u32)] = &[
    ("address", 1),
    ("name", 1),
    ("node_uuid", 1),
    ("uuid", 1),
    ("extra", 1),
    ("mode", 26),
    ("properties", 26),
    ("standalone_ports_supported", 1),
    ("physical_network", 102),
    ("category", 103),
];

async fn set_pg_field(st: &ApiState, pg: &mut Portgroup, k: &str, v: &Value) -> ApiResult<()> {
    match k {
        "address" => pg.address = opt_str(k, v)?.map(|s| mac(k, &s)).transpose()?,
        "name" => {
            let n = opt_str(k, v)?;
            if let Some(n) = &n {
                validate_name(n).map_err(ApiError::bad_request)?;
            }
            pg.name = n;
        }
        "node_uuid" => {
            let s = opt_str(k, v)?
                .ok_or_else(|| ApiError::bad_request("'node_uuid' is a required property"))?;
            pg.node_uuid = st.conductor().get_node(&Ident::parse(&s)).await?.uuid;
        }
        "uuid" => {
            if let Some(s) = opt_str(k, v)? {
                pg.uuid = s.parse().map_err(|_| {
                    ApiError::bad_request(format!("Expected a UUID for uuid but received {s}."))
                })?;
            }
        }
        "extra" | "properties" => {
            let m = match v {
                Value::Null => JsonMap::new(),
                Value::Object(m) => m.clone(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid value for {k}: not an object"
                    )));
                }
            };
            if k == "extra" {
                pg.extra = m;
            } else {
                pg.properties = m;
            }
        }
        "mode" => pg.mode = opt_str(k, v)?,
        "standalone_ports_supported" => pg.standalone_ports_supported = bool_of(k, v)?,
        "physical_network" => pg.physical_network = opt_str(k, v)?,
        "category" => pg.category = opt_str(k, v)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )));
        }
    }
    Ok(())
}

async fn pg_create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    ctx.exists_since(f::PORTGROUPS)?;
    let body = parse_object(&body)?;
    check_write_fields(&ctx, PG_WRITE, &body)?;
    if !body.contains_key("node_uuid") {
        return Err(ApiError::bad_request("'node_uuid' is a required property"));
    }
    let mut pg = Portgroup::new(NodeId::new());
    for (k, v) in &body {
        set_pg_field(&st, &mut pg, k, v).await?;
    }
    let pg = st.conductor().create_portgroup(pg).await?;
    let mut buf = Vec::with_capacity(800);
    render::write_portgroup(&mut buf, &ctx.render(&st), &pg, None);
    Ok(created(
        &format!("{}/v1/portgroups/{}", ctx.base, pg.uuid),
        buf,
    ))
}

const PG_PATCH: &[&str] = &[
    "address",
    "name",
    "node_uuid",
    "extra",
    "mode",
    "properties",
    "standalone_ports_supported",
    "physical_network",
    "category",
];

async fn pg_update(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let ops = patch::parse(&body)?;
    patch::check_allowed(&ops, PG_PATCH)?;
    for op in &ops {
        let root = op.root();
        if let Some((_, minor)) = PG_WRITE.iter().find(|(n, _)| *n == root)
            && !ctx.version.at_least(*minor)
        {
            return Err(ApiError::not_acceptable());
        }
    }
    let pg = get_pg(&st, &ctx, &id).await?;
    let mut doc = serde_json::to_value(&pg).map_err(ApiError::internal)?;
    let before = doc.clone();
    patch::apply(&mut doc, &ops)?;
    let mut updated = pg.clone();
    for field in PG_PATCH {
        let new = doc.get(*field).unwrap_or(&Value::Null);
        if before.get(*field).unwrap_or(&Value::Null) != new {
            set_pg_field(&st, &mut updated, field, new).await?;
        }
    }
    let saved = st.conductor().update_portgroup(updated).await?;
    let mut buf = Vec::with_capacity(800);
    render::write_portgroup(&mut buf, &ctx.render(&st), &saved, None);
    Ok(ok(buf))
}

async fn pg_delete(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let pg = get_pg(&st, &ctx, &id).await?;
    st.conductor().delete_portgroup(pg.uuid).await?;
    Ok(no_content())
}

async fn pg_ports(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::PORTGROUPS_SUBCONTROLLERS)?;
    let pg = get_pg(&st, &ctx, &id).await?;
    list_ports(
        &st,
        &ctx,
        q.as_deref(),
        false,
        &format!("portgroups/{id}/ports"),
        None,
        Some(pg.uuid),
    )
    .await
}

async fn pg_ports_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::PORTGROUPS_SUBCONTROLLERS)?;
    let pg = get_pg(&st, &ctx, &id).await?;
    list_ports(
        &st,
        &ctx,
        q.as_deref(),
        true,
        &format!("portgroups/{id}/ports/detail"),
        None,
        Some(pg.uuid),
    )
    .await
}
