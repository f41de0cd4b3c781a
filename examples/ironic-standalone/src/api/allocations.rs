//! `/v1/allocations` (1.52) and the allocation of a node.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::ids::{Ident, validate_name};
use ironic_core::model::{Allocation, AllocationState, JsonMap, validate_trait};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, opt_time};
use super::resource::{
    self, CREATED_AT, Ctx, Field, ListRequest, Resource, Schema, Ty, UPDATED_AT, UUID, value as v,
};
use super::routes::{Body, Gate, Route, delete, get, patch, post};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok};

const FIELDS: &[Field] = &[
    UUID,
    CREATED_AT,
    UPDATED_AT,
    Field::new("candidate_nodes", 1, Ty::StrList).create(),
    Field::new("extra", 1, Ty::Object).rw(),
    Field::new("last_error", 1, Ty::Str).null(),
    Field::new("name", 1, Ty::Str).null().rw(),
    Field::new("node_uuid", 1, Ty::Uuid).null(),
    Field::new("node", f::ALLOCATION_BACKFILL, Ty::Str).write_only(),
    Field::new("owner", f::ALLOCATION_OWNER, Ty::Str)
        .null()
        .rw(),
    Field::new("resource_class", 1, Ty::Str).null().create(),
    Field::new("state", 1, Ty::Str),
    Field::new("traits", 1, Ty::StrList).create(),
];

/// The allocation resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "Allocation",
    collection: "allocations",
    key: "allocations",
    fields: FIELDS,
    list_fields: &[],
    sub_links: &[],
};

impl Resource for Allocation {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, _ctx: &Ctx<'_>, name: &str) {
        let a = self;
        match name {
            "uuid" => w.str(name, &a.uuid.to_string()),
            "created_at" => opt_time(w, name, Some(&a.created_at)),
            "updated_at" => opt_time(w, name, a.updated_at.as_ref()),
            "candidate_nodes" => w.field(name, &a.candidate_nodes),
            "extra" => w.field(name, &a.extra),
            "last_error" => w.opt_str(name, a.last_error.as_deref()),
            "name" => w.opt_str(name, a.name.as_deref()),
            "node_uuid" => w.field(name, &a.node_uuid),
            "owner" => w.opt_str(name, a.owner.as_deref()),
            "resource_class" => w.opt_str(name, a.resource_class.as_deref()),
            "state" => w.field(name, &a.state),
            "traits" => w.field(name, &a.traits),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    let since = f::ALLOCATIONS;
    const MSG: &str = "The API version does not allow allocations";
    let (read, write) = (Gate::fault(404, MSG), Gate::fault(405, MSG));
    vec![
        get("/v1/allocations", list)
            .doc("List allocations")
            .since_or(since, read)
            .returns(Body::List(&SCHEMA)),
        post("/v1/allocations", create)
            .doc("Create an allocation (fulfilled in the background)")
            .since_or(since, write)
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/allocations/{id}", show)
            .doc("Show an allocation")
            .since_or(since, read)
            .returns(Body::One(&SCHEMA)),
        patch("/v1/allocations/{id}", update)
            .doc("Update an allocation's name, extra or owner")
            .since_or(
                f::ALLOCATION_UPDATE,
                Gate::fault(405, "The API version does not allow updating allocations"),
            )
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/allocations/{id}", remove)
            .doc("Delete an allocation")
            .since_or(since, write),
        get("/v1/nodes/{node}/allocation", node_allocation)
            .doc("The node's allocation")
            .since(since)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/nodes/{node}/allocation", delete_node_allocation)
            .doc("Delete the node's allocation")
            .since(since),
    ]
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = ListRequest::parse(&st, &ctx, &SCHEMA, q.as_deref(), false)?;
    let p = &req.params;
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
    resource::paginate(&mut all, &req.args, &[], Resource::link_id, "Allocation")?;
    Ok(ok(req.body(&ctx.render(&st), "allocations", &all, None)))
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let a = st.conductor().get_allocation(&Ident::parse(&id)).await?;
    Ok(ok(resource::body(&ctx.render(&st), &a, fields.as_deref())))
}

async fn create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    let body = crate::api::parse_object(&body)?;
    let mut a = Allocation::new();
    let mut backfilled_instance = None;
    for (k, val) in &body {
        match k.as_str() {
            "uuid" => {
                if let Some(s) = v::opt_str(k, val, None)? {
                    a.uuid = s.parse().map_err(|_| {
                        ApiError::bad_request(format!("Expected a UUID for uuid but received {s}."))
                    })?;
                }
            }
            "name" => {
                a.name = v::opt_str(k, val, None)?;
                if let Some(n) = &a.name {
                    validate_name(n).map_err(ApiError::bad_request)?;
                }
            }
            "resource_class" => {
                a.resource_class = v::opt_str(k, val, None)?;
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
                a.traits = v::str_list(k, val)?;
                for t in &a.traits {
                    validate_trait(t).map_err(ApiError::bad_request)?;
                }
            }
            "candidate_nodes" => {
                let names = v::str_list(k, val)?;
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
            "extra" => a.extra = v::map(k, val)?,
            "owner" => {
                ctx.require(f::ALLOCATION_OWNER)?;
                a.owner = v::opt_str(k, val, None)?;
            }
            "node" => {
                if !ctx.version.at_least(f::ALLOCATION_BACKFILL) {
                    return Err(ApiError::bad_request(
                        "Cannot set node when creating an allocation in this API version",
                    ));
                }
                if let Some(n) = v::opt_str(k, val, None)? {
                    // An unknown node is the caller's mistake: 400, as Ironic.
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
                    a.node_uuid = Some(node.uuid);
                    backfilled_instance = node.instance_uuid.clone();
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
    // Backfilling without a UUID: the allocation takes the node's instance UUID
    // (Ironic's rule), so the node stays associated with the same instance.
    if body.get("uuid").is_none_or(Value::is_null)
        && let Some(inst) = backfilled_instance
        && let Ok(u) = inst.parse()
    {
        a.uuid = u;
    }
    let a = st.conductor().create_allocation(a).await?;
    Ok(created(
        &format!("{}/v1/allocations/{}", ctx.base, a.uuid),
        resource::body(&ctx.render(&st), &a, None),
    ))
}

async fn update(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let ops = super::patch::parse(&body)?;
    let allowed: &[&str] = if ctx.version.at_least(f::ALLOCATION_OWNER) {
        &["name", "extra", "owner"]
    } else {
        &["name", "extra"]
    };
    super::patch::check_allowed(&ops, allowed)?;
    let a = st.conductor().get_allocation(&Ident::parse(&id)).await?;
    let mut doc = serde_json::to_value(&a).map_err(ApiError::internal)?;
    super::patch::apply(&mut doc, &ops)?;
    let mut u = a.clone();
    u.name = v::opt_str("name", doc.get("name").unwrap_or(&Value::Null), None)?;
    if let Some(n) = &u.name {
        validate_name(n).map_err(ApiError::bad_request)?;
    }
    u.owner = v::opt_str("owner", doc.get("owner").unwrap_or(&Value::Null), None)?;
    u.extra = match doc.get("extra") {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => JsonMap::new(),
        Some(_) => return Err(ApiError::bad_request("Invalid extra: not an object")),
    };
    let u = st.conductor().update_allocation(u).await?;
    Ok(ok(resource::body(&ctx.render(&st), &u, None)))
}

async fn remove(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.conductor().delete_allocation(&Ident::parse(&id)).await?;
    Ok(no_content())
}

async fn node_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = st
        .conductor()
        .get_node(&super::nodes::ident(&ctx, &id)?)
        .await?;
    let a = match n.allocation_uuid {
        Some(a) => st.conductor().get_allocation(&Ident::Uuid(a.0)).await?,
        None => {
            return Err(ApiError::not_found(format!(
                "Allocation for node {id} could not be found."
            )));
        }
    };
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    Ok(ok(resource::body(&ctx.render(&st), &a, fields.as_deref())))
}

async fn delete_node_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let n = st
        .conductor()
        .get_node(&super::nodes::ident(&ctx, &id)?)
        .await?;
    let Some(a) = n.allocation_uuid else {
        return Err(ApiError::not_found(format!(
            "Allocation for node {id} could not be found."
        )));
    };
    st.conductor().delete_allocation(&Ident::Uuid(a.0)).await?;
    Ok(no_content())
}
