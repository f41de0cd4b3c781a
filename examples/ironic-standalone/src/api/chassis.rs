//! `/v1/chassis` and the nodes of a chassis.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::ids::ChassisId;
use ironic_core::model::Chassis;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, opt_time};
use super::nodes::list_nodes;
use super::resource::{
    self, CREATED_AT, Ctx, Field, ListRequest, Resource, Schema, SortKey, Ty, UPDATED_AT, UUID,
    paginate, value as v,
};
use super::routes::{Body, Route, delete, get, patch, post};
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object};

const FIELDS: &[Field] = &[
    UUID,
    CREATED_AT,
    UPDATED_AT,
    Field::new("description", 1, Ty::Str).null().rw(),
    Field::new("extra", 1, Ty::Object).rw(),
];

/// The chassis resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "Chassis",
    collection: "chassis",
    key: "chassis",
    fields: FIELDS,
    list_fields: &["uuid", "description"],
    sub_links: &[("nodes", 1)],
};

impl Resource for Chassis {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, _ctx: &Ctx<'_>, name: &str) {
        match name {
            "uuid" => w.str(name, &self.uuid.to_string()),
            "created_at" => opt_time(w, name, Some(&self.created_at)),
            "updated_at" => opt_time(w, name, self.updated_at.as_ref()),
            "description" => w.opt_str(name, self.description.as_deref()),
            "extra" => w.field(name, &self.extra),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/chassis", list)
            .doc("List chassis")
            .returns(Body::List(&SCHEMA)),
        post("/v1/chassis", create)
            .doc("Create a chassis")
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/chassis/detail", list_detail)
            .doc("List chassis with every field")
            .returns(Body::List(&SCHEMA)),
        get("/v1/chassis/{id}", show)
            .doc("Show a chassis")
            .returns(Body::One(&SCHEMA)),
        patch("/v1/chassis/{id}", update)
            .doc("Update a chassis (JSON patch)")
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/chassis/{id}", remove).doc("Delete a chassis (it must hold no nodes)"),
        get("/v1/chassis/{id}/nodes", nodes)
            .doc("Nodes of a chassis")
            .returns(Body::List(&super::nodes::body::SCHEMA)),
        get("/v1/chassis/{id}/nodes/detail", nodes_detail)
            .doc("Nodes of a chassis with every field")
            .returns(Body::List(&super::nodes::body::SCHEMA)),
    ]
}

fn chassis_id(s: &str) -> ApiResult<ChassisId> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("Expected a UUID but received {s}.")))
}

const SORT_KEYS: &[SortKey<Chassis>] = &[
    ("uuid", |c| c.uuid.to_string()),
    ("description", |c| c.description.clone().unwrap_or_default()),
    ("updated_at", |c| {
        c.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default()
    }),
];

async fn list_chassis(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
) -> ApiResult<Response> {
    let req = ListRequest::parse(st, ctx, &SCHEMA, raw, detail_path)?;
    let mut all = st.conductor().list_chassis().await?;
    paginate(&mut all, &req.args, SORT_KEYS, Resource::link_id, "Chassis")?;
    let path = if detail_path {
        "chassis/detail"
    } else {
        "chassis"
    };
    Ok(ok(req.body(&ctx.render(st), path, &all, None)))
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_chassis(&st, &ctx, q.as_deref(), false).await
}

async fn list_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_chassis(&st, &ctx, q.as_deref(), true).await
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let c = st.conductor().get_chassis(chassis_id(&id)?).await?;
    Ok(ok(resource::body(&ctx.render(&st), &c, fields.as_deref())))
}

fn set_field(c: &mut Chassis, k: &str, val: &Value) -> ApiResult<()> {
    match k {
        "description" => c.description = v::opt_str(k, val, Some(255))?,
        "extra" => c.extra = v::map(k, val)?,
        "uuid" => {
            if let Some(u) = v::opt_uuid(k, val)? {
                c.uuid = u.into();
            }
        }
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
    let mut c = Chassis::new();
    for (k, val) in &body {
        set_field(&mut c, k, val)?;
    }
    let c = st.conductor().create_chassis(c).await?;
    Ok(created(
        &format!("{}/v1/chassis/{}", ctx.base, c.uuid),
        resource::body(&ctx.render(&st), &c, None),
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
    let c = st.conductor().get_chassis(chassis_id(&id)?).await?;
    let doc = serde_json::to_value(&c).map_err(ApiError::internal)?;
    let mut updated = c.clone();
    for (field, new) in resource::patch_changes(&SCHEMA, doc, &ops)? {
        set_field(&mut updated, field, &new)?;
    }
    let updated = st.conductor().update_chassis(updated).await?;
    Ok(ok(resource::body(&ctx.render(&st), &updated, None)))
}

async fn remove(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.conductor().delete_chassis(chassis_id(&id)?).await?;
    Ok(no_content())
}

async fn chassis_nodes(
    st: &ApiState,
    ctx: &ReqCtx,
    id: &str,
    raw: Option<&str>,
    detail: bool,
) -> ApiResult<Response> {
    let cid = chassis_id(id)?;
    st.conductor().get_chassis(cid).await?;
    let path = if detail {
        format!("chassis/{id}/nodes/detail")
    } else {
        format!("chassis/{id}/nodes")
    };
    list_nodes(st, ctx, raw, detail, &path, |f| f.chassis_uuid = Some(cid)).await
}

async fn nodes(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    chassis_nodes(&st, &ctx, &id, q.as_deref(), false).await
}

async fn nodes_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    chassis_nodes(&st, &ctx, &id, q.as_deref(), true).await
}
