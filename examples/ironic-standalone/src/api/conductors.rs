//! `/v1/conductors` (1.49): the conductors registered in the store.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::model::ConductorRecord;

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, opt_time};
use super::resource::{self, Ctx, Field, ListRequest, Resource, Schema, Ty};
use super::routes::{Body, Gate, Route, get};
use super::version::feature as f;
use super::{ApiState, ReqCtx, ok};

const FIELDS: &[Field] = &[
    Field::new("hostname", 1, Ty::Str),
    Field::new("conductor_group", 1, Ty::Str),
    Field::new("alive", 1, Ty::Bool),
    Field::new("drivers", 1, Ty::StrList),
    Field::new("created_at", 1, Ty::Time),
    Field::new("updated_at", 1, Ty::Time).null(),
];

/// The conductor resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "Conductor",
    collection: "conductors",
    key: "conductors",
    fields: FIELDS,
    list_fields: &["hostname", "conductor_group", "alive"],
    sub_links: &[],
};

impl Resource for ConductorRecord {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.hostname.clone()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, _ctx: &Ctx<'_>, name: &str) {
        let c = self;
        match name {
            "hostname" => w.str(name, &c.hostname),
            "conductor_group" => w.str(name, &c.conductor_group),
            "alive" => w.bool(name, c.alive),
            "drivers" => w.field(name, &c.drivers),
            "created_at" => opt_time(w, name, Some(&c.created_at)),
            "updated_at" => opt_time(w, name, c.updated_at.as_ref()),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/conductors", list)
            .doc("List conductors")
            .since_or(f::CONDUCTORS, Gate::UNSUPPORTED)
            .returns(Body::List(&SCHEMA)),
        get("/v1/conductors/{host}", show)
            .doc("Show a conductor")
            .since_or(f::CONDUCTORS, Gate::UNSUPPORTED)
            .returns(Body::One(&SCHEMA)),
    ]
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = ListRequest::parse(&st, &ctx, &SCHEMA, q.as_deref(), false)?;
    // `alive`: stamped less than `[conductor] heartbeat_timeout` ago by the
    // store's clock, the judgement the hash rings use.
    let mut all = st.conductor().list_conductors().await?;
    all.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    resource::paginate(
        &mut all,
        &req.args,
        &[("hostname", |c| c.hostname.clone())],
        |c| c.hostname.clone(),
        "Conductor",
    )?;
    Ok(ok(req.body(&ctx.render(&st), "conductors", &all, None)))
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(host): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let c = st
        .conductor()
        .list_conductors()
        .await?
        .into_iter()
        .find(|c| c.hostname == host)
        .ok_or_else(|| ApiError::not_found(format!("Conductor {host} could not be found.")))?;
    Ok(ok(resource::body(&ctx.render(&st), &c, fields.as_deref())))
}
