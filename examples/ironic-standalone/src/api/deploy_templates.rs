//! `/v1/deploy_templates` (1.55): named deploy steps applied when an instance
//! asks for the template's trait.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::ids::{DeployTemplateId, Ident};
use ironic_core::model::{DeployTemplate, DeployTemplateStep, JsonMap, validate_trait};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, opt_time};
use super::resource::{
    self, CREATED_AT, Ctx, Field, ListRequest, Resource, Schema, Ty, UPDATED_AT, UUID,
};
use super::routes::{Body, Gate, Route, delete, get, patch, post};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object};

const FIELDS: &[Field] = &[
    UUID,
    CREATED_AT,
    UPDATED_AT,
    Field::new("extra", 1, Ty::Object).rw(),
    Field::new("name", 1, Ty::Str).rw(),
    Field::new("steps", 1, Ty::List).rw(),
];

/// The deploy template resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "DeployTemplate",
    collection: "deploy_templates",
    key: "deploy_templates",
    fields: FIELDS,
    list_fields: &["uuid", "name"],
    sub_links: &[],
};

impl Resource for DeployTemplate {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, _ctx: &Ctx<'_>, name: &str) {
        let t = self;
        match name {
            "uuid" => w.str(name, &t.uuid.to_string()),
            "created_at" => opt_time(w, name, Some(&t.created_at)),
            "updated_at" => opt_time(w, name, t.updated_at.as_ref()),
            "extra" => w.field(name, &t.extra),
            "name" => w.str(name, &t.name),
            "steps" => w.field(name, &t.steps),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    let since = f::DEPLOY_TEMPLATES;
    const MSG: &str = "The API version does not allow deploy templates";
    let (read, write) = (Gate::webob(404, MSG), Gate::webob(405, MSG));
    vec![
        get("/v1/deploy_templates", list)
            .doc("List deploy templates")
            .since_or(since, read)
            .returns(Body::List(&SCHEMA)),
        post("/v1/deploy_templates", create)
            .doc("Create a deploy template")
            .since_or(since, write)
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/deploy_templates/{id}", show)
            .doc("Show a deploy template")
            .since_or(since, read)
            .returns(Body::One(&SCHEMA)),
        patch("/v1/deploy_templates/{id}", update)
            .doc("Update a deploy template (JSON patch)")
            .since_or(since, write)
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/deploy_templates/{id}", remove)
            .doc("Delete a deploy template")
            .since_or(since, write),
    ]
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = ListRequest::parse(&st, &ctx, &SCHEMA, q.as_deref(), false)?;
    let mut all = st.conductor().list_deploy_templates().await?;
    resource::paginate(
        &mut all,
        &req.args,
        &[("name", |t| t.name.clone())],
        Resource::link_id,
        "Deploy template",
    )?;
    Ok(ok(req.body(
        &ctx.render(&st),
        "deploy_templates",
        &all,
        None,
    )))
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let fields = resource::show_fields(&ctx, &SCHEMA, q.as_deref())?;
    let t = st
        .conductor()
        .get_deploy_template(&Ident::parse(&id))
        .await?;
    Ok(ok(resource::body(&ctx.render(&st), &t, fields.as_deref())))
}

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
        out.push(DeployTemplateStep::new(
            interface,
            step,
            args,
            priority.min(u32::MAX as u64) as u32,
        ));
    }
    Ok(out)
}

fn check_template_name(n: &str) -> ApiResult<()> {
    validate_trait(n).map_err(ApiError::bad_request)
}

async fn create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
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
    let mut t = DeployTemplate::new(name, steps);
    t.uuid = uuid;
    t.extra = extra;
    let t = st.conductor().create_deploy_template(t).await?;
    Ok(created(
        &format!("{}/v1/deploy_templates/{}", ctx.base, t.uuid),
        resource::body(&ctx.render(&st), &t, None),
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
    let t = st
        .conductor()
        .get_deploy_template(&Ident::parse(&id))
        .await?;
    let mut doc = serde_json::to_value(&t).map_err(ApiError::internal)?;
    super::patch::apply(&mut doc, &ops)?;
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
    Ok(ok(resource::body(&ctx.render(&st), &u, None)))
}

async fn remove(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.conductor()
        .delete_deploy_template(&Ident::parse(&id))
        .await?;
    Ok(no_content())
}
