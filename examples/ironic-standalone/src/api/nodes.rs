//! `/v1/nodes`: list (with filters, `fields`, `detail`, paging), create, show,
//! JSON-patch update, delete.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use ironic_core::ids::{Ident, validate_name};
use ironic_core::model::{Fault, InterfaceType, JsonMap, Node};
use ironic_core::states::ProvisionState;
use ironic_core::store::{NodeFilter, NodeQuery, NodeSortKey, Page};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::query::{ListArgs, Params, next_link, parse_bool};
use super::render::node::{DEFAULT_LIST_FIELDS, check_fields, node_value, write_node};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object, patch};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/nodes", get(list).post(create))
        .route("/v1/nodes/detail", get(list_detail))
        .route("/v1/nodes/{node}", get(show).patch(update).delete(delete))
}

/// Parse a node identifier; names exist from 1.5 on.
pub(super) fn ident(ctx: &ReqCtx, s: &str) -> ApiResult<Ident> {
    let id = Ident::parse(s);
    if matches!(id, Ident::Name(_)) && !ctx.version.at_least(f::NODE_NAME) {
        return Err(ApiError::bad_request(format!(
            "Expected a UUID but received {s}."
        )));
    }
    Ok(id)
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

fn filters(st: &ApiState, ctx: &ReqCtx, p: &Params) -> ApiResult<(NodeFilter, PostFilter)> {
    let mut nf = NodeFilter {
        associated: opt_bool(p, "associated", ctx, 1)?,
        maintenance: opt_bool(p, "maintenance", ctx, 1)?,
        retired: opt_bool(p, "retired", ctx, f::RETIRED)?,
        driver: opt_string(p, "driver", ctx, f::DRIVER_FILTER)?,
        resource_class: opt_string(p, "resource_class", ctx, f::RESOURCE_CLASS)?,
        conductor_group: opt_string(p, "conductor_group", ctx, f::CONDUCTOR_GROUP)?
            .map(|g| g.to_lowercase()),
        owner: opt_string(p, "owner", ctx, f::OWNER)?,
        lessee: opt_string(p, "lessee", ctx, f::LESSEE)?,
        project: opt_string(p, "project", ctx, f::LESSEE)?,
        description_contains: opt_string(p, "description_contains", ctx, f::DESCRIPTION)?,
        instance_uuid: opt_string(p, "instance_uuid", ctx, 1)?,
        sharded: opt_bool(p, "sharded", ctx, f::SHARDS)?,
        ..NodeFilter::default()
    };
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
        let u = uuid::Uuid::parse_str(c).map_err(|_| {
            ApiError::bad_request(format!(
                "Expected a UUID for chassis_uuid but received {c}."
            ))
        })?;
        nf.chassis_uuid = Some(u.into());
    }
    if let Some(shards) = p.list("shard") {
        ctx.require(f::SHARDS)?;
        nf.shard = Some(shards);
    }
    if let Some(parent) = p.get("parent_node") {
        ctx.require(f::PARENT_NODES)?;
        let _ = st;
        nf.parent_node = Some(
            uuid::Uuid::parse_str(parent)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "Expected a UUID for parent_node but received {parent}."
                    ))
                })?
                .into(),
        );
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
pub(super) async fn list_nodes(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
    path: &str,
    extra: impl FnOnce(&mut NodeFilter),
) -> ApiResult<Response> {
    let p = Params::parse(raw);
    if detail_path {
        // `/detail` existed before 1.43; `detail=` did not.
    }
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, detail_path)?;
    let rctx = ctx.render(st);
    if let Some(fields) = &args.fields {
        check_fields(&rctx, fields)?;
    }
    let (mut filter, post) = filters(st, ctx, &p)?;
    extra(&mut filter);
    let key = sort_key(&args.sort_key)?;
    let conductor = st.conductor();
    let host_ok = post
        .conductor
        .as_deref()
        .is_none_or(|c| c == conductor.config().host);
    let needs_post = post.instance_name.is_some();
    let page = Page {
        limit: if needs_post { None } else { Some(args.limit) },
        marker: if needs_post { None } else { args.marker },
        sort_key: key,
        sort_dir: args.sort_dir,
    };
    let mut nodes = if host_ok {
        conductor.list_nodes(&NodeQuery { filter, page }).await?
    } else {
        Vec::new()
    };
    if let Some(name) = &post.instance_name {
        nodes.retain(|n| n.instance_name.as_deref() == Some(name.as_str()));
        if let Some(m) = args.marker {
            match nodes.iter().position(|n| *n.uuid.as_uuid() == m) {
                Some(i) => {
                    nodes.drain(..=i);
                }
                None => nodes.clear(),
            }
        }
        nodes.truncate(args.limit);
    }
    let owned_default: Vec<String>;
    let fields: Option<&[String]> = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => {
            owned_default = DEFAULT_LIST_FIELDS.iter().map(|s| s.to_string()).collect();
            Some(&owned_default)
        }
    };
    let mut buf = Vec::with_capacity(nodes.len() * if fields.is_some() { 400 } else { 3000 } + 64);
    buf.extend_from_slice(b"{\"nodes\":[");
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_node(&mut buf, &rctx, n, fields);
    }
    buf.push(b']');
    if let Some(next) = next_link(
        &ctx.base,
        path,
        &p,
        &args,
        nodes.len(),
        nodes.last().map(|n| n.uuid.to_string()),
        Some(DEFAULT_LIST_FIELDS),
    ) {
        buf.extend_from_slice(b",\"next\":");
        super::json::write_str(&mut buf, &next);
    }
    buf.push(b'}');
    Ok(ok(buf))
}

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
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    let rctx = ctx.render(&st);
    if let Some(fl) = &fields {
        ctx.require(f::FIELDS)?;
        check_fields(&rctx, fl)?;
    }
    let n = st.conductor().get_node(&ident(&ctx, &node)?).await?;
    let mut buf = Vec::with_capacity(3000);
    write_node(&mut buf, &rctx, &n, fields.as_deref());
    Ok(ok(buf))
}

/// Fields a create body may carry (Ironic's node schema), with their versions.
const CREATE_FIELDS: &[(&str, u32)] = &[
    ("automated_clean", 47),
    ("bios_interface", 40),
    ("boot_interface", 31),
    ("boot_mode", 75),
    ("chassis_uuid", 1),
    ("conductor_group", 46),
    ("console_enabled", 1),
    ("console_interface", 31),
    ("deploy_interface", 31),
    ("description", 51),
    ("disable_power_off", 95),
    ("driver", 1),
    ("driver_info", 1),
    ("extra", 1),
    ("firmware_interface", 86),
    ("inspect_interface", 31),
    ("instance_info", 1),
    ("instance_name", 104),
    ("instance_uuid", 1),
    ("lessee", 65),
    ("management_interface", 31),
    ("maintenance", 1),
    ("name", 5),
    ("network_data", 66),
    ("network_interface", 20),
    ("owner", 50),
    ("parent_node", 83),
    ("power_interface", 31),
    ("properties", 1),
    ("raid_interface", 31),
    ("rescue_interface", 38),
    ("resource_class", 21),
    ("retired", 61),
    ("retired_reason", 61),
    ("secure_boot", 75),
    ("shard", 82),
    ("storage_interface", 33),
    ("uuid", 1),
    ("vendor_interface", 31),
    ("protected", 48),
    ("protected_reason", 48),
];

/// Fields a PATCH may change (Ironic's `PATCH_ALLOWED_FIELDS`).
pub const PATCH_ALLOWED: &[&str] = &[
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "chassis_uuid",
    "conductor_group",
    "console_interface",
    "deploy_interface",
    "description",
    "disable_power_off",
    "driver",
    "driver_info",
    "extra",
    "inspect_interface",
    "instance_info",
    "instance_name",
    "instance_uuid",
    "lessee",
    "maintenance",
    "management_interface",
    "name",
    "network_data",
    "network_interface",
    "owner",
    "power_interface",
    "properties",
    "protected",
    "protected_reason",
    "raid_interface",
    "rescue_interface",
    "resource_class",
    "retired",
    "retired_reason",
    "shard",
    "storage_interface",
    "vendor_interface",
    "parent_node",
    "firmware_interface",
];

fn bool_value(k: &str, v: &Value) -> ApiResult<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => parse_bool(k, s).map(Some),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {k}: {other} is not a boolean"
        ))),
    }
}

fn str_value(k: &str, v: &Value, max: Option<usize>) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            if let Some(m) = max
                && s.chars().count() > m
            {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for {k}: longer than {m} characters"
                )));
            }
            Ok(Some(s.clone()))
        }
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {k}: {other} is not of type 'string'"
        ))),
    }
}

fn map_value(k: &str, v: &Value) -> ApiResult<JsonMap> {
    match v {
        Value::Null => Ok(JsonMap::new()),
        Value::Object(m) => Ok(m.clone()),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {k}: {other} is not of type 'object'"
        ))),
    }
}

fn uuid_value(k: &str, v: &Value) -> ApiResult<Option<uuid::Uuid>> {
    match str_value(k, v, None)? {
        None => Ok(None),
        Some(s) => uuid::Uuid::parse_str(&s).map(Some).map_err(|_| {
            ApiError::bad_request(format!("Expected a UUID for {k} but received {s}."))
        }),
    }
}

/// Set one API field of a node from a JSON value, validating it as Ironic's
/// node schema does. Used by create and by PATCH (after the patch is applied).
async fn set_field(st: &ApiState, node: &mut Node, k: &str, v: &Value) -> ApiResult<()> {
    if let Some(t) = k
        .strip_suffix("_interface")
        .and_then(|t| t.parse::<InterfaceType>().ok())
    {
        node.interfaces
            .set(t, str_value(k, v, Some(255))?.unwrap_or_default());
        return Ok(());
    }
    match k {
        "uuid" => {
            if let Some(u) = uuid_value(k, v)? {
                node.uuid = u.into();
            }
        }
        "driver" => {
            node.driver = str_value(k, v, Some(255))?
                .ok_or_else(|| ApiError::bad_request("'driver' is a required property"))?;
        }
        "name" => {
            let name = str_value(k, v, Some(255))?;
            if let Some(n) = &name {
                validate_name(n).map_err(ApiError::bad_request)?;
            }
            node.name = name;
        }
        "automated_clean" => node.automated_clean = bool_value(k, v)?,
        "boot_mode" => {
            let m = str_value(k, v, None)?;
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
        "secure_boot" => node.secure_boot = bool_value(k, v)?,
        "chassis_uuid" => {
            node.chassis_uuid = match uuid_value(k, v)? {
                None => None,
                Some(u) => {
                    let c = st.conductor().store().get_chassis(u.into()).await?;
                    Some(c.uuid)
                }
            }
        }
        "conductor_group" => {
            let g = str_value(k, v, Some(255))?.unwrap_or_default();
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
        "console_enabled" => node.console_enabled = bool_value(k, v)?.unwrap_or(false),
        "description" => node.description = str_value(k, v, Some(4096))?,
        "disable_power_off" => node.disable_power_off = bool_value(k, v)?.unwrap_or(false),
        "driver_info" => node.driver_info = map_value(k, v)?.into(),
        "extra" => node.extra = map_value(k, v)?,
        "instance_info" => node.instance_info = map_value(k, v)?,
        "instance_name" => {
            let n = str_value(k, v, Some(255))?;
            if n.as_deref() == Some("") {
                return Err(ApiError::bad_request(
                    "Invalid instance_name: must not be empty",
                ));
            }
            node.instance_name = n;
        }
        "instance_uuid" => node.instance_uuid = uuid_value(k, v)?.map(|u| u.to_string()),
        "lessee" => node.lessee = str_value(k, v, Some(255))?,
        "maintenance" => node.maintenance = bool_value(k, v)?.unwrap_or(false),
        "network_data" => node.network_data = map_value(k, v)?,
        "owner" => node.owner = str_value(k, v, Some(255))?,
        "parent_node" => {
            node.parent_node = match str_value(k, v, Some(36))? {
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
        "properties" => node.properties = map_value(k, v)?,
        "protected" => node.protected = bool_value(k, v)?.unwrap_or(false),
        "protected_reason" => node.protected_reason = str_value(k, v, Some(255))?,
        "resource_class" => node.resource_class = str_value(k, v, Some(80))?,
        "retired" => node.retired = bool_value(k, v)?.unwrap_or(false),
        "retired_reason" => node.retired_reason = str_value(k, v, Some(255))?,
        "shard" => node.shard = str_value(k, v, Some(255))?,
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
    for (k, v) in &body {
        match CREATE_FIELDS.iter().find(|(n, _)| n == k) {
            None => {
                return Err(ApiError::bad_request(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            Some((_, minor)) if !ctx.version.at_least(*minor) => {
                let empty = v.is_null() || (k == "conductor_group" && v == "");
                if !empty {
                    return Err(ApiError::not_acceptable());
                }
            }
            _ => {}
        }
    }
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
    if !ctx.version.at_least(11) {
        // Before 1.11 nodes were created `available`.
        node.provision_state = ProvisionState::Available;
    }
    for (k, v) in &body {
        if k != "driver" {
            set_field(&st, &mut node, k, v).await?;
        }
    }
    if node.protected && !node.provision_state.eq(&ProvisionState::Active) {
        return Err(ApiError::bad_request(
            "Protected can only be set when node is in active provision state",
        ));
    }
    let node = st.conductor().create_node(node).await?;
    let rctx = ctx.render(&st);
    let mut buf = Vec::with_capacity(3000);
    write_node(&mut buf, &rctx, &node, None);
    Ok(created(
        &format!("{}/v1/nodes/{}", ctx.base, node.uuid),
        buf,
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
        Some(v) => {
            ctx.require(f::RESET_INTERFACES)?;
            parse_bool("reset_interfaces", v)?
        }
    };
    let ops = patch::parse(&body)?;
    patch::check_allowed(&ops, PATCH_ALLOWED)?;
    // Fields newer than the version may not be patched.
    for op in &ops {
        let root = op.root();
        if let Some(minor) = super::render::node::field_version(&root)
            && !ctx.version.at_least(minor)
        {
            return Err(ApiError::not_acceptable());
        }
    }
    if reset_interfaces && !ops.iter().any(|o| o.root() == "driver") {
        return Err(ApiError::bad_request(
            "The reset_interfaces parameter can be set only when the node's driver is updated.",
        ));
    }
    let node = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let only_remove_instance_uuid =
        ops.len() == 1 && ops[0].op == patch::Op::Remove && ops[0].path == "/instance_uuid";
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
    let before = doc.clone();
    patch::apply(&mut doc, &ops)?;
    let mut updated = node.clone();
    for field in PATCH_ALLOWED {
        let new = doc.get(*field).unwrap_or(&Value::Null);
        if before.get(*field).unwrap_or(&Value::Null) != new {
            if *field == "driver" && new.is_null() {
                return Err(ApiError::bad_request(
                    "'/driver' is a mandatory attribute and can not be removed",
                ));
            }
            set_field(&st, &mut updated, field, new).await?;
        }
    }
    if updated.protected && node.provision_state != ProvisionState::Active && !node.protected {
        return Err(ApiError::bad_request(
            "Protected can only be set when node is in active provision state",
        ));
    }
    if !updated.protected {
        if updated.protected_reason.is_some() && node.protected_reason != updated.protected_reason {
            return Err(ApiError::bad_request(
                "Cannot set protected_reason without protected=True",
            ));
        }
        updated.protected_reason = None;
    }
    if !updated.retired {
        if updated.retired_reason.is_some() && node.retired_reason != updated.retired_reason {
            return Err(ApiError::bad_request(
                "Cannot set retired_reason without retired=True",
            ));
        }
        updated.retired_reason = None;
    }
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
    let rctx = ctx.render(&st);
    let mut buf = Vec::with_capacity(3000);
    write_node(&mut buf, &rctx, &saved, None);
    let _ = node_value;
    Ok(ok(buf))
}

async fn delete(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.conductor().delete_node(&ident(&ctx, &id)?).await?;
    Ok(no_content())
}
