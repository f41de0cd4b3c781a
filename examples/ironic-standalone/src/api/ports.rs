//! `/v1/ports`, and the ports of a node (`/v1/nodes/{node}/ports`) and of a
//! port group (`/v1/portgroups/{pg}/ports`, 1.24).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::MacAddress;
use ironic_core::ids::{Ident, NodeId, PortgroupId, validate_name};
use ironic_core::model::{JsonMap, Port};
use ironic_core::store::PortQuery;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, opt_time};
use super::query::parse_bool;
use super::resource::{
    self, CREATED_AT, Ctx, Field, ListRequest, Resource, Schema, SortKey, Ty, UPDATED_AT, UUID,
    paginate,
};
use super::routes::{Body, Route, delete, get, patch, post};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object};

/// Port fields in Ironic's order.
const FIELDS: &[Field] = &[
    UUID,
    CREATED_AT,
    UPDATED_AT,
    Field::new("address", 1, Ty::Str).rw(),
    Field::new("extra", 1, Ty::Object).rw(),
    Field::new("internal_info", f::PORT_INTERNAL_INFO, Ty::Object),
    Field::new("is_smartnic", f::PORT_SMARTNIC, Ty::Bool).rw(),
    Field::new(
        "local_link_connection",
        f::PORT_ADVANCED_NET_FIELDS,
        Ty::Object,
    )
    .rw(),
    Field::new("physical_network", f::PORT_PHYSICAL_NETWORK, Ty::Str)
        .null()
        .rw(),
    Field::new("pxe_enabled", f::PORT_ADVANCED_NET_FIELDS, Ty::Bool).rw(),
    Field::new("node_uuid", 1, Ty::Uuid).rw(),
    Field::new("node", f::PORT_NODE_NAME, Ty::Str).write_only(),
    Field::new("name", f::PORT_NAME, Ty::Str).null().rw(),
    Field::new("description", f::PORT_DESCRIPTION, Ty::Str)
        .null()
        .rw(),
    Field::new("vendor", f::PORT_VENDOR, Ty::Str).null().rw(),
    Field::new("category", f::PORT_CATEGORY, Ty::Str)
        .null()
        .rw(),
    Field::new(
        "available_for_dynamic_portgroup",
        f::DYNAMIC_PORTGROUP,
        Ty::Bool,
    )
    .rw(),
    Field::new("portgroup_uuid", f::PORTGROUPS_SUBCONTROLLERS, Ty::Uuid)
        .null()
        .rw(),
];

/// The port resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "Port",
    collection: "ports",
    key: "ports",
    fields: FIELDS,
    list_fields: &["uuid", "address"],
    sub_links: &[],
};

impl Resource for Port {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, ctx: &Ctx<'_>, name: &str) {
        let p = self;
        match name {
            "uuid" => w.str(name, &p.uuid.to_string()),
            "created_at" => opt_time(w, name, Some(&p.created_at)),
            "updated_at" => opt_time(w, name, p.updated_at.as_ref()),
            "address" => w.str(name, &p.address.to_string()),
            "extra" => w.field(name, &p.extra),
            "internal_info" => w.field(name, &p.internal_info),
            "is_smartnic" => w.bool(name, p.is_smartnic),
            // a VTEP connection is shown only from 1.90 to 1.104, else as {}
            "local_link_connection"
                if p.local_link_connection.contains_key("vtep-logical-switch")
                    && (!ctx.version.at_least(f::OVN_VTEP)
                        || ctx.version.at_least(f::OVN_VTEP_REMOVED)) =>
            {
                w.field(name, &serde_json::Map::new())
            }
            "local_link_connection" => w.field(name, &p.local_link_connection),
            "physical_network" => w.opt_str(name, p.physical_network.as_deref()),
            "pxe_enabled" => w.bool(name, p.pxe_enabled),
            "node_uuid" => w.str(name, &p.node_uuid.to_string()),
            "name" => w.opt_str(name, p.name.as_deref()),
            "description" => w.opt_str(name, p.description.as_deref()),
            "vendor" => w.opt_str(name, p.vendor.as_deref()),
            "category" => w.opt_str(name, p.category.as_deref()),
            "available_for_dynamic_portgroup" => w.bool(name, p.available_for_dynamic_portgroup),
            "portgroup_uuid" => w.field(name, &p.portgroup_uuid),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/ports", list)
            .doc("List ports")
            .returns(Body::List(&SCHEMA)),
        post("/v1/ports", create)
            .doc("Create a port")
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/ports/detail", list_detail)
            .doc("List ports with every field")
            .returns(Body::List(&SCHEMA)),
        get("/v1/ports/{port}", show)
            .doc("Show a port")
            .returns(Body::One(&SCHEMA)),
        patch("/v1/ports/{port}", update)
            .doc("Update a port (JSON patch)")
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/ports/{port}", remove).doc("Delete a port"),
        get("/v1/nodes/{node}/ports", node_ports)
            .doc("Ports of a node")
            .returns(Body::List(&SCHEMA)),
        get("/v1/nodes/{node}/ports/detail", node_ports_detail)
            .doc("Ports of a node with every field")
            .returns(Body::List(&SCHEMA)),
        get("/v1/portgroups/{pg}/ports", pg_ports)
            .doc("Ports of a port group")
            .since(f::PORTGROUPS_SUBCONTROLLERS)
            .returns(Body::List(&SCHEMA)),
        get("/v1/portgroups/{pg}/ports/detail", pg_ports_detail)
            .doc("Ports of a port group with every field")
            .since(f::PORTGROUPS_SUBCONTROLLERS)
            .returns(Body::List(&SCHEMA)),
    ]
}

pub(crate) fn mac(k: &str, v: &str) -> ApiResult<MacAddress> {
    v.parse().map_err(|_| {
        ApiError::bad_request(format!("Expected a MAC address for {k} but received {v}."))
    })
}

/// Sort keys the store does not order by (sorted in memory).
const SORT_KEYS: &[SortKey<Port>] = &[
    ("uuid", |p| p.uuid.to_string()),
    ("address", |p| p.address.to_string()),
    ("name", |p| p.name.clone().unwrap_or_default()),
    ("updated_at", |p| {
        p.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default()
    }),
    ("physical_network", |p| {
        p.physical_network.clone().unwrap_or_default()
    }),
];

/// The nodes a port or port group list is narrowed to by `shard` (a list,
/// 1.82 for ports, 1.106 for port groups: 406 below) and `conductor_groups`
/// (a list, 1.99; Ironic accepts it at any version): `None` when neither is
/// given.
pub(crate) async fn nodes_filter(
    st: &ApiState,
    ctx: &ReqCtx,
    p: &super::query::Params,
    shard_since: u32,
) -> ApiResult<Option<std::collections::HashSet<NodeId>>> {
    let list = |k: &str| -> Option<Vec<String>> {
        p.get(k).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    };
    // an empty list is no filter (Ironic: `if conductor_groups:`)
    let shards = list("shard").filter(|l| !l.is_empty());
    let groups = list("conductor_groups").filter(|l| !l.is_empty());
    if shards.is_some() {
        ctx.require(shard_since)?;
    }
    if shards.is_none() && groups.is_none() {
        return Ok(None);
    }
    let mut q = ironic_core::store::NodeQuery::default();
    q.filter.shard = shards;
    let nodes = st.conductor().store().list_nodes(&q).await?;
    let groups: Option<Vec<String>> =
        groups.map(|g| g.into_iter().map(|s| s.to_lowercase()).collect());
    Ok(Some(
        nodes
            .into_iter()
            .filter(|n| {
                groups
                    .as_ref()
                    .is_none_or(|g| g.contains(&n.conductor_group.to_lowercase()))
            })
            .map(|n| n.uuid)
            .collect(),
    ))
}

/// Whether the list parameter `k` names at least one value (Ironic tests a
/// list parameter for truth: `conductor_groups=` is no filter).
pub(crate) fn given(p: &super::query::Params, k: &str) -> bool {
    p.list(k).is_some_and(|l| !l.is_empty())
}

/// List ports for a collection URL.
pub(crate) async fn list_ports(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
    path: &str,
    node: Option<NodeId>,
    portgroup: Option<PortgroupId>,
) -> ApiResult<Response> {
    let req = ListRequest::parse(st, ctx, &SCHEMA, raw, detail_path)?;
    let (p, args) = (&req.params, &req.args);
    let mut q = PortQuery::default();
    q.node = node;
    q.portgroup = portgroup;
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
        ctx.require(f::PORTGROUPS_SUBCONTROLLERS)?;
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
    let by_node =
        (p.get("shard").is_some() as u8) + q.node.is_some() as u8 + q.portgroup.is_some() as u8;
    if by_node > 1 {
        // Ironic's OperationNotPermitted
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "Operation not permitted.",
        ));
    }
    if given(p, "conductor_groups")
        && (q.node.is_some() || q.portgroup.is_some() || q.address.is_some())
    {
        return Err(ApiError::bad_request(
            "Filtering by conductor_groups cannot be combined with node_ident, portgroup_ident, or node address filters.",
        ));
    }
    let nodes = nodes_filter(st, ctx, p, f::SHARDS).await?;
    let description = p.get("description_contains").map(str::to_owned);
    let store_pages = matches!(args.sort_key.as_str(), "id" | "created_at")
        && nodes.is_none()
        && description.is_none();
    if store_pages {
        q.limit = Some(args.limit);
        q.marker = args.marker;
        q.sort_dir = args.sort_dir;
    }
    let mut ports = st.conductor().store().list_ports(&q).await?;
    if let Some(nodes) = &nodes {
        ports.retain(|port| nodes.contains(&port.node_uuid));
    }
    if let Some(d) = &description {
        ports.retain(|port| {
            port.description
                .as_deref()
                .is_some_and(|x| x.contains(d.as_str()))
        });
    }
    if !store_pages {
        paginate(&mut ports, args, SORT_KEYS, Resource::link_id, "Port")?;
    }
    Ok(ok(req.body(&ctx.render(st), path, &ports, None)))
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

/// The port named by a path segment: a UUID or a logical name (a MAC address is
/// neither, and is refused as Ironic does).
async fn get_port(st: &ApiState, _ctx: &ReqCtx, s: &str) -> ApiResult<Port> {
    let id = Ident::parse(s);
    if matches!(id, Ident::Name(_)) && validate_name(s).is_err() {
        return Err(ApiError::bad_request(format!(
            "Expected UUID or name for port_ident: {s}"
        )));
    }
    Ok(st.conductor().store().get_port(&id).await?)
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let port = get_port(&st, &ctx, &id).await?;
    Ok(ok(resource::body(
        &ctx.render(&st),
        &port,
        fields.as_deref(),
    )))
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
            // OVN VTEP keys: 1.90 to 1.104 only (1.105 removed them)
            "vtep-logical-switch" | "vtep-physical-switch" => {
                ctx.require(f::OVN_VTEP)?;
                if ctx.version.at_least(f::OVN_VTEP_REMOVED) {
                    return Err(ApiError::not_acceptable());
                }
            }
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

async fn create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    SCHEMA.check_create(ctx.version, &body)?;
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
    Ok(created(
        &format!("{}/v1/ports/{}", ctx.base, port.uuid),
        resource::body(&ctx.render(&st), &port, None),
    ))
}

async fn update(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let ops = super::patch::parse(&body)?;
    SCHEMA.check_patch(ctx.version, &ops)?;
    let port = get_port(&st, &ctx, &id).await?;
    let doc = serde_json::to_value(&port).map_err(ApiError::internal)?;
    let mut updated = port.clone();
    for (field, new) in resource::patch_changes(&SCHEMA, doc, &ops)? {
        set_port_field(&st, &ctx, &mut updated, field, &new).await?;
    }
    let saved = st.conductor().update_port(updated).await?;
    Ok(ok(resource::body(&ctx.render(&st), &saved, None)))
}

async fn remove(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let port = get_port(&st, &ctx, &id).await?;
    st.conductor().delete_port(port.uuid).await?;
    Ok(no_content())
}

async fn node_ports(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = super::nodes::node(&st, &ctx, &id).await?;
    let path = format!("nodes/{id}/ports");
    list_ports(&st, &ctx, q.as_deref(), false, &path, Some(n.uuid), None).await
}

async fn node_ports_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = super::nodes::node(&st, &ctx, &id).await?;
    let path = format!("nodes/{id}/ports/detail");
    list_ports(&st, &ctx, q.as_deref(), true, &path, Some(n.uuid), None).await
}

async fn pg_ports(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pg = super::portgroups::get_pg(&st, &id).await?;
    let path = format!("portgroups/{id}/ports");
    list_ports(&st, &ctx, q.as_deref(), false, &path, None, Some(pg.uuid)).await
}

async fn pg_ports_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pg = super::portgroups::get_pg(&st, &id).await?;
    let path = format!("portgroups/{id}/ports/detail");
    list_ports(&st, &ctx, q.as_deref(), true, &path, None, Some(pg.uuid)).await
}
