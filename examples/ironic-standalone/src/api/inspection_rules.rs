//! `/v1/inspection_rules` (1.96): rules the conductor runs on inspection data
//! (the engine is `ironic_core::inspection_rules`). A sensitive rule's
//! conditions and actions are never shown; the list shows `uuid`, `priority`,
//! `phase` and `description` unless `detail` or `fields` ask for more.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::ids::InspectionRuleId;
use ironic_core::inspection_rules::{self as rules, InspectionRule};
use serde_json::{Map, Value};

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
    Field::new("description", 1, Ty::Str).null().rw(),
    Field::new("priority", 1, Ty::Int).rw(),
    Field::new("sensitive", 1, Ty::Bool).rw(),
    Field::new("phase", 1, Ty::Str).rw(),
    Field::new("conditions", 1, Ty::List).null().rw(),
    Field::new("actions", 1, Ty::List).null().rw(),
];

/// The inspection rule resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "InspectionRule",
    collection: "inspection_rules",
    key: "inspection_rules",
    fields: FIELDS,
    list_fields: &["uuid", "priority", "phase", "description"],
    sub_links: &[],
};

/// Ironic's `convert_conditions` / `convert_actions`: `op` and `args`, plus
/// `loop` (and, for a condition, `multiple`, default `any`) when it loops.
fn shown(entries: &[Value], condition: bool) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("op".into(), e.get("op").cloned().unwrap_or(Value::Null));
                m.insert("args".into(), e.get("args").cloned().unwrap_or(Value::Null));
                if let Some(l) = e.get("loop").filter(|l| match l {
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                    _ => false,
                }) {
                    m.insert("loop".into(), l.clone());
                    if condition {
                        m.insert(
                            "multiple".into(),
                            e.get("multiple").cloned().unwrap_or_else(|| "any".into()),
                        );
                    }
                }
                Value::Object(m)
            })
            .collect(),
    )
}

impl Resource for InspectionRule {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, _ctx: &Ctx<'_>, name: &str) {
        let r = self;
        match name {
            "uuid" => w.str(name, &r.uuid.to_string()),
            "created_at" => opt_time(w, name, Some(&r.created_at)),
            "updated_at" => opt_time(w, name, r.updated_at.as_ref()),
            "description" => w.field(name, &r.description),
            "priority" => w.field(name, &r.priority),
            "sensitive" => w.field(name, &r.sensitive),
            "phase" => w.str(name, &r.phase),
            // a sensitive rule never shows what it checks and does
            "conditions" if r.sensitive => w.field(name, &Value::Null),
            "actions" if r.sensitive => w.field(name, &Value::Null),
            "conditions" => w.field(name, &shown(&r.conditions, true)),
            "actions" => w.field(name, &shown(&r.actions, false)),
            _ => {}
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    let since = f::INSPECTION_RULES;
    const MSG: &str = "The API version does not allow inspection rules";
    let (read, write) = (Gate::fault(404, MSG), Gate::fault(405, MSG));
    vec![
        get("/v1/inspection_rules", list)
            .doc("List inspection rules (filter: phase)")
            .since_or(since, read)
            .returns(Body::List(&SCHEMA)),
        post("/v1/inspection_rules", create)
            .doc("Create an inspection rule")
            .since_or(since, write)
            .takes(Body::Create(&SCHEMA))
            .returns(Body::One(&SCHEMA)),
        get("/v1/inspection_rules/{id}", show)
            .doc("Show an inspection rule")
            .since_or(since, read)
            .returns(Body::One(&SCHEMA)),
        patch("/v1/inspection_rules/{id}", update)
            .doc("Update an inspection rule (JSON patch)")
            .since_or(since, write)
            .takes(Body::Patch)
            .returns(Body::One(&SCHEMA)),
        delete("/v1/inspection_rules/{id}", remove)
            .doc("Delete an inspection rule")
            .since_or(since, write),
    ]
}

/// A body that does not match Ironic's JSON schema.
fn schema_error(e: String) -> ApiError {
    ApiError::bad_request(format!("Schema error: {e}"))
}

/// A rule UUID from the path (Ironic's schema: `format: uuid`).
fn rule_id(id: &str) -> ApiResult<InspectionRuleId> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("Schema error: '{id}' is not a 'uuid'")))
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = ListRequest::parse(&st, &ctx, &SCHEMA, q.as_deref(), false)?;
    if matches!(req.args.sort_key.as_str(), "actions" | "conditions") {
        return Err(ApiError::bad_request(format!(
            "The sort_key value {} is an invalid field for sorting",
            req.args.sort_key
        )));
    }
    let mut all = st.conductor().list_inspection_rules().await?;
    if let Some(phase) = req.params.get("phase") {
        all.retain(|r| r.phase == phase);
    }
    resource::paginate(
        &mut all,
        &req.args,
        &[
            ("uuid", |r| r.uuid.to_string()),
            ("priority", |r| {
                format!("{:020}", r.priority.saturating_add(i64::MAX / 2))
            }),
            ("phase", |r| r.phase.clone()),
            ("description", |r| r.description.clone().unwrap_or_default()),
            ("sensitive", |r| r.sensitive.to_string()),
            ("updated_at", |r| {
                r.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            }),
        ],
        Resource::link_id,
        "Rule",
    )?;
    Ok(ok(req.body(
        &ctx.render(&st),
        "inspection_rules",
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
    let r = st.conductor().get_inspection_rule(rule_id(&id)?).await?;
    Ok(ok(resource::body(&ctx.render(&st), &r, fields.as_deref())))
}

async fn create(State(st): State<ApiState>, ctx: ReqCtx, body: Bytes) -> ApiResult<Response> {
    let body = Value::Object(parse_object(&body)?);
    rules::check_schema(&body).map_err(schema_error)?;
    let rule = rules::from_body(&body).map_err(ApiError::bad_request)?;
    let r = st.conductor().create_inspection_rule(rule).await?;
    Ok(created(
        &format!("{}/v1/inspection_rules/{}", ctx.base, r.uuid),
        resource::body(&ctx.render(&st), &r, None),
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
    let stored = st.conductor().get_inspection_rule(rule_id(&id)?).await?;
    // the body a create would take, patched, then checked as a create body
    let mut doc = serde_json::json!({
        "uuid": stored.uuid.to_string(),
        "description": stored.description,
        "priority": stored.priority,
        "sensitive": stored.sensitive,
        "phase": stored.phase,
        "conditions": stored.conditions,
        "actions": stored.actions,
    });
    super::patch::apply(&mut doc, &ops)?;
    if stored.sensitive && doc.get("sensitive") != Some(&Value::Bool(true)) {
        return Err(ApiError::bad_request(format!(
            "Couldn't apply patch '{}'. Reason: Inspection rules cannot have the sensitive flag unset.",
            String::from_utf8_lossy(&body)
        )));
    }
    if let Some(o) = doc.as_object_mut() {
        // a removed optional field takes its default, as in Ironic
        o.retain(|_, v| !v.is_null());
    }
    rules::check_schema(&doc).map_err(schema_error)?;
    let mut rule = rules::from_body(&doc).map_err(ApiError::bad_request)?;
    rule.uuid = stored.uuid;
    let r = st.conductor().update_inspection_rule(rule).await?;
    Ok(ok(resource::body(&ctx.render(&st), &r, None)))
}

async fn remove(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.conductor().delete_inspection_rule(rule_id(&id)?).await?;
    Ok(no_content())
}
