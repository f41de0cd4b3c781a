//! `/v1/portgroups` (1.23) and the port groups of a node (1.24).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::MacAddress;
use ironic_core::ids::{Ident, NodeId, validate_name};
use ironic_core::model::{JsonMap, Portgroup};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, opt_time};
use super::ports::mac;
use super::query::parse_bool;
use super::resource::{
    self, CREATED_AT, Ctx, Field, ListRequest, Resource, Schema, SortKey, Ty, UPDATED_AT, UUID,
    paginate,
};
use super::routes::{Body, Gate, Route, delete, get, patch, post};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object};

/// Port group fields in Ironic's order.
const FIELDS: &[Field] = &[
    UUID,
    CREATED_AT,
    UPDATED_AT,
    Field::new("address", 1, Ty::Str).null().rw(),
    Field::new("extra", 1, Ty::Object).rw(),
    Field::new("internal_info", 1, Ty::Object),
    Field::new("mode", f::PORTGROUP_MODE_PROPERTIES, Ty::Str)
        .null()
        .rw(),
    Field::new("name", 1, Ty::Str).null().rw(),
    Field::new("properties", f::PORTGROUP_MODE_PROPERTIES, Ty::Object).rw(),
    Field::new("standalone_ports_supported", 1, Ty::Bool).rw(),
    Field::new("node_uuid", 1, Ty::Uuid).rw(),
    Field::new("physical_network", f::PORTGROUP_PHYSICAL_NETWORK, Ty::Str)
        .null()
        .rw(),
    Field::new("category", f::PORTGROUP_CATEGORY, Ty::Str)
        .null()
        .rw(),
    Field::new("dynamic_portgroup", f::DYNAMIC_PORTGROUP, Ty::Bool),
];

/// The port group resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "Portgroup",
    collection: "portgroups",
    key: "portgroups",
    fields: FIELDS,
    list_fields: &["uuid", "address", "name"],
    sub_links: &[("ports", 1)],
};

impl Resource for Portgroup {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, _ctx: &Ctx<'_>, name: &str) {
        let p = self;
        match name {
            "uuid" => w.str(name, &p.uuid.to_string()),
            "created_at" => opt_time(w, name, Some(&p.created_at)),
            "updated_at" => opt_time(w, name, p.updated_at.as_ref()),
            "address" => w.opt_str(name, p.address.map(|a| a.to_string()).as_deref()),
            "extra" => w.field(name, &p.extra),
            "internal_info" => w.field(name, &p.internal_info),
            "mode" => w.opt_str(name, p.mode.as_deref()),
            "name" => w.opt_str(name, p.name.as_deref()),
            "properties" => w.field(name, &p.properties),
            "standalone_ports_supported" => w.bool(name, p.standalone_ports_supported),
            "node_uuid" => w.str(name, &p.node_uuid.to_string()),
            "physical_network" => w.opt_str(name, p.physical_network.as_deref()),
            "category" => w.opt_str(name, p.category.as_deref()),
            "dynamic_portgroup" => w.bool(name, p.dynamic_portgroup),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    let since = f::PORTGROUPS;
    vec![
        get("/v1/portgroups", list)
            .doc("List port groups")
            .since_or(since, Gate::UNSUPPORTED)
            .returns(Body::List(&SCHEMA)),
        post("/v1/portgroups", create)
            .doc("Create a port group")
            .since_or(since, Gate::UNSUPPORTED)
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/portgroups/detail", list_detail)
            .doc("List port groups with every field")
            .since_or(since, Gate::UNSUPPORTED)
            .returns(Body::List(&SCHEMA)),
        get("/v1/portgroups/{pg}", show)
            .doc("Show a port group")
            .since_or(since, Gate::UNSUPPORTED)
            .returns(Body::One(&SCHEMA)),
        patch("/v1/portgroups/{pg}", update)
            .doc("Update a port group (JSON patch)")
            .since_or(since, Gate::UNSUPPORTED)
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/portgroups/{pg}", remove)
            .doc("Delete a port group")
            .since_or(since, Gate::UNSUPPORTED),
        get("/v1/nodes/{node}/portgroups", node_portgroups)
            .doc("Port groups of a node")
            .since(f::PORTGROUPS_SUBCONTROLLERS)
            .returns(Body::List(&SCHEMA)),
        get("/v1/nodes/{node}/portgroups/detail", node_portgroups_detail)
            .doc("Port groups of a node with every field")
            .since(f::PORTGROUPS_SUBCONTROLLERS)
            .returns(Body::List(&SCHEMA)),
    ]
}

const SORT_KEYS: &[SortKey<Portgroup>] = &[
    ("uuid", |p| p.uuid.to_string()),
    ("name", |p| p.name.clone().unwrap_or_default()),
    ("address", |p| {
        p.address.map(|a| a.to_string()).unwrap_or_default()
    }),
];

/// List port groups for a collection URL.
async fn list_portgroups(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
    path: &str,
    node: Option<NodeId>,
) -> ApiResult<Response> {
    let req = ListRequest::parse(st, ctx, &SCHEMA, raw, detail_path)?;
    let p = &req.params;
    let mut node = node;
    let exclusive = [
        node.is_some() || p.get("node").or(p.get("node_uuid")).is_some(),
        p.get("address").is_some(),
        p.get("shard").is_some(),
        super::ports::given(p, "conductor_groups"),
    ];
    if exclusive.iter().filter(|b| **b).count() > 1 {
        return Err(ApiError::bad_request(
            "Filtering by node, address, or shard simultaneously is not supported.",
        ));
    }
    if let Some(n) = p.get("node").or(p.get("node_uuid"))
        && node.is_none()
    {
        node = Some(st.conductor().get_node(&Ident::parse(n)).await?.uuid);
    }
    let nodes = super::ports::nodes_filter(st, ctx, p, f::PORTGROUP_SHARD_FILTER).await?;
    let mut pgs = st.conductor().store().list_portgroups(node).await?;
    if let Some(nodes) = &nodes {
        pgs.retain(|pg| nodes.contains(&pg.node_uuid));
    }
    if let Some(a) = p.get("address") {
        let a = mac("address", a)?;
        pgs.retain(|pg| pg.address == Some(a));
    }
    paginate(
        &mut pgs,
        &req.args,
        SORT_KEYS,
        Resource::link_id,
        "Portgroup",
    )?;
    Ok(ok(req.body(&ctx.render(st), path, &pgs, None)))
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_portgroups(&st, &ctx, q.as_deref(), false, "portgroups", None).await
}

async fn list_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_portgroups(&st, &ctx, q.as_deref(), true, "portgroups/detail", None).await
}

async fn node_portgroups(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = super::nodes::node(&st, &ctx, &id).await?;
    let path = format!("nodes/{id}/portgroups");
    list_portgroups(&st, &ctx, q.as_deref(), false, &path, Some(n.uuid)).await
}

async fn node_portgroups_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = super::nodes::node(&st, &ctx, &id).await?;
    let path = format!("nodes/{id}/portgroups/detail");
    list_portgroups(&st, &ctx, q.as_deref(), true, &path, Some(n.uuid)).await
}

/// The port group named by a path segment (UUID, name or MAC address).
pub(crate) async fn get_pg(st: &ApiState, s: &str) -> ApiResult<Portgroup> {
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

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let pg = get_pg(&st, &id).await?;
    Ok(ok(resource::body(&ctx.render(&st), &pg, fields.as_deref())))
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

async fn create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    let body = parse_object(&body)?;
    SCHEMA.check_create(ctx.version, &body)?;
    if !body.contains_key("node_uuid") {
        return Err(ApiError::bad_request("'node_uuid' is a required property"));
    }
    let mut pg = Portgroup::new(NodeId::new());
    for (k, v) in &body {
        set_pg_field(&st, &mut pg, k, v).await?;
    }
    let pg = st.conductor().create_portgroup(pg).await?;
    Ok(created(
        &format!("{}/v1/portgroups/{}", ctx.base, pg.uuid),
        resource::body(&ctx.render(&st), &pg, None),
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
    let pg = get_pg(&st, &id).await?;
    let doc = serde_json::to_value(&pg).map_err(ApiError::internal)?;
    let mut updated = pg.clone();
    for (field, new) in resource::patch_changes(&SCHEMA, doc, &ops)? {
        set_pg_field(&st, &mut updated, field, &new).await?;
    }
    let saved = st.conductor().update_portgroup(updated).await?;
    Ok(ok(resource::body(&ctx.render(&st), &saved, None)))
}

async fn remove(
    State(st): State<ApiState>,
    _ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let pg = get_pg(&st, &id).await?;
    st.conductor().delete_portgroup(pg.uuid).await?;
    Ok(no_content())
}
