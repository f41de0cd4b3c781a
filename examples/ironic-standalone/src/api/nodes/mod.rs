//! `/v1/nodes`: list (with filters, `fields`, `detail`, paging), create, show,
//! JSON-patch update, delete; the node's sub-resources live in the submodules.

pub(crate) mod body;
mod history;
mod inventory;
mod management;
mod states;
mod traits;
mod vendor;
mod vifs;
mod vmedia;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::ids::{Ident, validate_name};
use ironic_core::model::{Fault, InterfaceType, Node};
use ironic_core::states::ProvisionState;
use ironic_core::store::{NodeFilter, NodeQuery, NodeSortKey, Page};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::query::{Params, parse_bool};
use super::resource::{self, ListRequest, value as v};
use super::routes::{Body, Route, delete, get, patch, post};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object};
use body::{DEFAULT_LIST_FIELDS, SCHEMA};

pub(super) fn routes() -> Vec<Route> {
    let mut r = vec![
        get("/v1/nodes", list)
            .doc("List nodes")
            .returns(Body::List(&SCHEMA)),
        post("/v1/nodes", create)
            .doc("Create a node")
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/nodes/detail", list_detail)
            .doc("List nodes with every field")
            .returns(Body::List(&SCHEMA)),
        get("/v1/nodes/{node}", show)
            .doc("Show a node")
            .returns(Body::One(&SCHEMA)),
        patch("/v1/nodes/{node}", update)
            .doc("Update a node (JSON patch)")
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/nodes/{node}", remove).doc("Delete a node"),
    ];
    r.extend(states::routes());
    r.extend(management::routes());
    r.extend(traits::routes());
    r.extend(vifs::routes());
    r.extend(history::routes());
    r.extend(inventory::routes());
    r.extend(vmedia::routes());
    r.extend(vendor::routes());
    r
}

/// Parse a node identifier; names exist from 1.5 on.
pub(crate) fn ident(ctx: &ReqCtx, s: &str) -> ApiResult<Ident> {
    let id = Ident::parse(s);
    if matches!(id, Ident::Name(_)) && !ctx.version.at_least(f::NODE_NAME) {
        return Err(ApiError::bad_request(format!(
            "Expected a UUID but received {s}."
        )));
    }
    Ok(id)
}

/// The node named by a path segment.
pub(crate) async fn node(st: &ApiState, ctx: &ReqCtx, s: &str) -> ApiResult<Node> {
    Ok(st.conductor().get_node(&ident(ctx, s)?).await?)
}

fn opt_string(p: &Params, k: &str, ctx: &ReqCtx, minor: u32) -> ApiResult<Option<String>> {
    match p.get(k) {
        None => Ok(None),
        Some(v) => {
            ctx.require(minor)?;
            Ok(Some(v.to_owned()))
        }
    }
}

fn opt_bool(p: &Params, k: &str, ctx: &ReqCtx, minor: u32) -> ApiResult<Option<bool>> {
    match p.get(k) {
        None => Ok(None),
        Some(v) => {
            ctx.require(minor)?;
            Ok(Some(parse_bool(k, v)?))
        }
    }
}

/// Filters that the store cannot apply (done after the query).
#[derive(Default)]
struct PostFilter {
    instance_name: Option<String>,
    conductor: Option<String>,
}

fn parse_uuid(k: &str, s: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s)
        .map_err(|_| ApiError::bad_request(format!("Expected a UUID for {k} but received {s}.")))
}

fn filters(ctx: &ReqCtx, p: &Params) -> ApiResult<(NodeFilter, PostFilter)> {
    let mut nf = NodeFilter::default();
    nf.associated = opt_bool(p, "associated", ctx, 1)?;
    nf.maintenance = opt_bool(p, "maintenance", ctx, 1)?;
    nf.retired = opt_bool(p, "retired", ctx, f::RETIRED)?;
    nf.driver = opt_string(p, "driver", ctx, f::DRIVER_FILTER)?;
    nf.resource_class = opt_string(p, "resource_class", ctx, f::RESOURCE_CLASS)?;
    nf.conductor_group =
        opt_string(p, "conductor_group", ctx, f::CONDUCTOR_GROUP)?.map(|g| g.to_lowercase());
    nf.owner = opt_string(p, "owner", ctx, f::OWNER)?;
    nf.lessee = opt_string(p, "lessee", ctx, f::LESSEE)?;
    nf.project = opt_string(p, "project", ctx, f::LESSEE)?;
    nf.description_contains = opt_string(p, "description_contains", ctx, f::DESCRIPTION)?;
    nf.instance_uuid = opt_string(p, "instance_uuid", ctx, 1)?;
    nf.sharded = opt_bool(p, "sharded", ctx, f::SHARDS)?;
    if let Some(s) = p.get("provision_state") {
        ctx.require(f::PROVISION_STATE_FILTER)?;
        let states = s
            .split(',')
            .map(|x| {
                x.trim().parse::<ProvisionState>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid value for provision_state: {x:?} is not a provision state"
                    ))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        nf.provision_state = Some(states);
    }
    if let Some(fault) = opt_string(p, "fault", ctx, f::FAULT)? {
        let parsed: Fault = serde_json::from_value(Value::String(fault.clone())).map_err(|_| {
            ApiError::bad_request(format!(
                "Unknown fault: {fault}. Valid faults are: power failure, clean failure, rescue abort failure, service failure"
            ))
        })?;
        nf.fault = Some(parsed);
    }
    if let Some(c) = p.get("chassis_uuid") {
        nf.chassis_uuid = Some(parse_uuid("chassis_uuid", c)?.into());
    }
    if let Some(shards) = p.list("shard") {
        ctx.require(f::SHARDS)?;
        nf.shard = Some(shards);
    }
    if let Some(parent) = p.get("parent_node") {
        ctx.require(f::PARENT_NODES)?;
        nf.parent_node = Some(parse_uuid("parent_node", parent)?.into());
    }
    let include_children = opt_bool(p, "include_children", ctx, f::PARENT_NODES)?;
    nf.exclude_children = ctx.version.at_least(f::PARENT_NODES)
        && nf.parent_node.is_none()
        && include_children != Some(true);
    let post = PostFilter {
        instance_name: opt_string(p, "instance_name", ctx, f::INSTANCE_NAME)?,
        conductor: opt_string(p, "conductor", ctx, f::CONDUCTORS)?,
    };
    Ok((nf, post))
}

fn sort_key(s: &str) -> ApiResult<NodeSortKey> {
    NodeSortKey::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "The sort_key value {s} is an invalid field for sorting"
        ))
    })
}

/// List nodes for a collection URL (`nodes`, `chassis/{id}/nodes`).
pub(crate) async fn list_nodes(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
    path: &str,
    extra: impl FnOnce(&mut NodeFilter),
) -> ApiResult<Response> {
    let req = ListRequest::parse(st, ctx, &SCHEMA, raw, detail_path)?;
    let args = &req.args;
    let (mut filter, post) = filters(ctx, &req.params)?;
    extra(&mut filter);
    let key = sort_key(&args.sort_key)?;
    let conductor = st.conductor();
    let rctx = ctx.render(st);
    let page = |limit: Option<usize>, marker: Option<uuid::Uuid>| {
        let mut page = Page::default();
        page.limit = limit;
        page.marker = marker;
        page.sort_key = key;
        page.sort_dir = args.sort_dir;
        page
    };
    if post.instance_name.is_some() || post.conductor.is_some() {
        // instance_name and conductor (the owner on the hash ring, as Ironic's
        // `conductor` filter) are not store filters: filter the whole list here.
        let mut nodes = conductor
            .list_nodes(&NodeQuery::new(filter, page(None, None)))
            .await?;
        if let Some(name) = &post.instance_name {
            nodes.retain(|n| n.instance_name.as_deref() == Some(name.as_str()));
        }
        if let Some(host) = &post.conductor {
            nodes.retain(|n| conductor.owner_of(n).as_deref() == Some(host.as_str()));
        }
        if let Some(m) = args.marker {
            match nodes.iter().position(|n| *n.uuid.as_uuid() == m) {
                Some(i) => {
                    nodes.drain(..=i);
                }
                None => nodes.clear(),
            }
        }
        nodes.truncate(args.limit);
        return Ok(ok(req.body(&rctx, path, &nodes, Some(DEFAULT_LIST_FIELDS))));
    }
    // Read the page from the store in chunks, the next chunk sized by the room
    // left in the byte budget, so nodes with megabytes of `extra` are not all
    // loaded at once only to be cut by the budget.
    let mut out = req.page::<Node>(&rctx, args.limit);
    let mut marker = args.marker;
    let mut chunk = args.limit.min(FIRST_CHUNK);
    loop {
        let query = NodeQuery::new(filter.clone(), page(Some(chunk), marker));
        let nodes = conductor.list_nodes_shared(&query).await?;
        for n in &nodes {
            if !out.push(&**n) {
                break;
            }
        }
        if out.is_full() || nodes.len() < chunk {
            break;
        }
        marker = nodes.last().map(|n| *n.uuid.as_uuid());
        let per_node = out.bytes() / out.len().max(1) + 1;
        let room = req.budget.saturating_sub(out.bytes()) / per_node + 1;
        chunk = (args.limit - out.len()).min(room).clamp(1, MAX_CHUNK);
    }
    Ok(ok(out.finish(path, Some(DEFAULT_LIST_FIELDS))))
}

/// Nodes read from the store for the first chunk of a list page; the most read
/// for a later one.
const FIRST_CHUNK: usize = 32;
const MAX_CHUNK: usize = 1000;

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_nodes(&st, &ctx, q.as_deref(), false, "nodes", |_| {}).await
}

async fn list_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_nodes(&st, &ctx, q.as_deref(), true, "nodes/detail", |_| {}).await
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let n = node(&st, &ctx, &id).await?;
    Ok(ok(resource::body(&ctx.render(&st), &n, fields.as_deref())))
}

/// Set one API field of a node from a JSON value, validating it as Ironic's
/// node schema does. Used by create and by PATCH (after the patch is applied).
async fn set_field(st: &ApiState, node: &mut Node, k: &str, val: &Value) -> ApiResult<()> {
    if let Some(t) = k
        .strip_suffix("_interface")
        .and_then(|t| t.parse::<InterfaceType>().ok())
    {
        node.interfaces
            .set(t, v::opt_str(k, val, Some(255))?.unwrap_or_default());
        return Ok(());
    }
    match k {
        "uuid" => {
            if let Some(u) = v::opt_uuid(k, val)? {
                node.uuid = u.into();
            }
        }
        "driver" => {
            node.driver = v::opt_str(k, val, Some(255))?
                .ok_or_else(|| ApiError::bad_request("'driver' is a required property"))?;
        }
        "name" => {
            let name = v::opt_str(k, val, Some(255))?;
            if let Some(n) = &name {
                validate_name(n).map_err(ApiError::bad_request)?;
            }
            node.name = name;
        }
        "automated_clean" => node.automated_clean = v::opt_bool(k, val)?,
        "boot_mode" => {
            let m = v::opt_str(k, val, None)?;
            if let Some(m) = &m
                && m != "uefi"
                && m != "bios"
            {
                return Err(ApiError::bad_request(format!(
                    "Invalid boot_mode {m:?}: expected uefi or bios"
                )));
            }
            node.boot_mode = m;
        }
        "secure_boot" => node.secure_boot = v::opt_bool(k, val)?,
        "chassis_uuid" => {
            node.chassis_uuid = match v::opt_uuid(k, val)? {
                None => None,
                Some(u) => {
                    let c = st.conductor().store().get_chassis(u.into()).await?;
                    Some(c.uuid)
                }
            }
        }
        "conductor_group" => {
            let g = v::opt_str(k, val, Some(255))?.unwrap_or_default();
            if !g
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(ApiError::bad_request(format!(
                    "Invalid conductor_group {g:?}: use only letters, digits, '.', '_' and '-'"
                )));
            }
            node.conductor_group = g.to_lowercase();
        }
        "console_enabled" => node.console_enabled = v::bool(k, val)?,
        "description" => node.description = v::opt_str(k, val, Some(4096))?,
        "disable_power_off" => node.disable_power_off = v::bool(k, val)?,
        "driver_info" => node.driver_info = v::map(k, val)?.into(),
        "extra" => node.extra = v::map(k, val)?,
        "instance_info" => node.instance_info = v::map(k, val)?,
        "instance_name" => {
            let n = v::opt_str(k, val, Some(255))?;
            if n.as_deref() == Some("") {
                return Err(ApiError::bad_request(
                    "Invalid instance_name: must not be empty",
                ));
            }
            node.instance_name = n;
        }
        "instance_uuid" => node.instance_uuid = v::opt_uuid(k, val)?.map(|u| u.to_string()),
        "lessee" => node.lessee = v::opt_str(k, val, Some(255))?,
        "maintenance" => node.maintenance = v::bool(k, val)?,
        "network_data" => node.network_data = v::map(k, val)?,
        "owner" => node.owner = v::opt_str(k, val, Some(255))?,
        "parent_node" => {
            node.parent_node = match v::opt_str(k, val, Some(36))? {
                None => None,
                Some(p) => {
                    let parent = st.conductor().get_node(&Ident::parse(&p)).await?;
                    if parent.uuid == node.uuid {
                        return Err(ApiError::bad_request("A node can not be its own parent"));
                    }
                    Some(parent.uuid)
                }
            }
        }
        "properties" => node.properties = v::map(k, val)?,
        "protected" => node.protected = v::bool(k, val)?,
        "protected_reason" => node.protected_reason = v::opt_str(k, val, Some(255))?,
        "resource_class" => node.resource_class = v::opt_str(k, val, Some(80))?,
        "retired" => node.retired = v::bool(k, val)?,
        "retired_reason" => node.retired_reason = v::opt_str(k, val, Some(255))?,
        "shard" => node.shard = v::opt_str(k, val, Some(255))?,
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
    let driver = match body.get("driver") {
        Some(Value::String(d)) => d.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid value for driver: not of type 'string'",
            ));
        }
        None => return Err(ApiError::bad_request("'driver' is a required property")),
    };
    let mut node = Node::new(driver);
    for (k, val) in &body {
        if k != "driver" {
            set_field(&st, &mut node, k, val).await?;
        }
    }
    let node = if ctx.version.at_least(f::ENROLL_STATE) {
        st.conductor().create_node(node).await?
    } else {
        // Before 1.11 nodes were created `available`.
        st.conductor().create_node_available(node).await?
    };
    Ok(created(
        &format!("{}/v1/nodes/{}", ctx.base, node.uuid),
        resource::body(&ctx.render(&st), &node, None),
    ))
}

async fn update(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let reset_interfaces = match p.get("reset_interfaces") {
        None => false,
        Some(val) => {
            ctx.require(f::RESET_INTERFACES)?;
            parse_bool("reset_interfaces", val)?
        }
    };
    let ops = super::patch::parse(&body)?;
    SCHEMA.check_patch(ctx.version, &ops)?;
    if reset_interfaces && !ops.iter().any(|o| o.root() == "driver") {
        return Err(ApiError::bad_request(
            "The reset_interfaces parameter can be set only when the node's driver is updated.",
        ));
    }
    let node = node(&st, &ctx, &id).await?;
    let only_remove_instance_uuid =
        ops.len() == 1 && ops[0].op == super::patch::Op::Remove && ops[0].path == "/instance_uuid";
    if !(node.maintenance && only_remove_instance_uuid) {
        if node.target_provision_state.is_some() && !node.provision_state.update_allowed() {
            return Err(ApiError::conflict(format!(
                "Node {id} can not be updated while a state transition is in progress."
            )));
        }
        if node.provision_state == ProvisionState::Inspecting
            && ctx.version.at_least(f::INSPECT_WAIT)
        {
            return Err(ApiError::conflict(format!(
                "Cannot update node \"{}\" while it is in state \"inspecting\".",
                node.uuid
            )));
        }
    }
    // The document the patch applies to: the stored values (secrets included),
    // keyed by API field name.
    let mut doc = serde_json::to_value(&node).map_err(ApiError::internal)?;
    if let Value::Object(m) = &mut doc {
        m.insert(
            "chassis_uuid".into(),
            serde_json::to_value(node.chassis_uuid).unwrap_or(Value::Null),
        );
    }
    let mut updated = node.clone();
    for (field, new) in resource::patch_changes(&SCHEMA, doc, &ops)? {
        if field == "driver" && new.is_null() {
            return Err(ApiError::bad_request(
                "'/driver' is a mandatory attribute and can not be removed",
            ));
        }
        set_field(&st, &mut updated, field, &new).await?;
    }
    // protected/retired and their reasons: Conductor::update_node (Ironic's
    // _check_update_protected and _check_update_retired).
    if updated.instance_name.is_none()
        && let Some(Value::String(dn)) = updated.instance_info.get("display_name")
        && node.instance_info != updated.instance_info
    {
        updated.instance_name = Some(dn.clone());
    }
    let saved = st
        .conductor()
        .update_node(updated, reset_interfaces)
        .await?;
    Ok(ok(resource::body(&ctx.render(&st), &saved, None)))
}

async fn remove(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.conductor().delete_node(&ident(&ctx, &id)?).await?;
    Ok(no_content())
}
