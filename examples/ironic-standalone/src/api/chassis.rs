//! `/v1/chassis`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use ironic_core::ids::ChassisId;
use ironic_core::model::{Chassis, JsonMap};
use ironic_core::store::SortDir;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::json::write_str;
use super::nodes::list_nodes;
use super::query::{ListArgs, Params, next_link};
use super::render::{self, CHASSIS_FIELDS, check_fields_in};
use super::{ApiState, ReqCtx, created, no_content, ok, parse_object, patch};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/chassis", get(list).post(create))
        .route("/v1/chassis/detail", get(list_detail))
        .route("/v1/chassis/{id}", get(show).patch(update).delete(delete))
        .route("/v1/chassis/{id}/nodes", get(nodes))
        .route("/v1/chassis/{id}/nodes/detail", get(nodes_detail))
}

fn chassis_id(s: &str) -> ApiResult<ChassisId> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("Expected a UUID but received {s}.")))
}

async fn list_chassis(
    st: &ApiState,
    ctx: &ReqCtx,
    raw: Option<&str>,
    detail_path: bool,
) -> ApiResult<Response> {
    let p = Params::parse(raw);
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, detail_path)?;
    if let Some(fl) = &args.fields {
        check_fields_in(CHASSIS_FIELDS, ctx.version, fl)?;
    }
    let mut all = st.conductor().list_chassis().await?;
    match args.sort_key.as_str() {
        "id" | "created_at" => {}
        "uuid" => all.sort_by_key(|c| c.uuid),
        "description" => all.sort_by(|a, b| a.description.cmp(&b.description)),
        "updated_at" => all.sort_by_key(|c| c.updated_at),
        other => {
            return Err(ApiError::bad_request(format!(
                "The sort_key value {other} is an invalid field for sorting"
            )));
        }
    }
    if args.sort_dir == SortDir::Desc {
        all.reverse();
    }
    if let Some(m) = args.marker {
        match all.iter().position(|c| *c.uuid.as_uuid() == m) {
            Some(i) => {
                all.drain(..=i);
            }
            None => {
                return Err(ApiError::not_found(format!(
                    "Chassis {m} could not be found."
                )));
            }
        }
    }
    all.truncate(args.limit);
    let owned: Vec<String>;
    let fields: Option<&[String]> = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => {
            owned = vec!["uuid".into(), "description".into()];
            Some(&owned)
        }
    };
    let rctx = ctx.render(st);
    let mut buf = b"{\"chassis\":[".to_vec();
    for (i, c) in all.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        render::write_chassis(&mut buf, &rctx, c, fields);
    }
    buf.push(b']');
    let path = if detail_path {
        "chassis/detail"
    } else {
        "chassis"
    };
    if let Some(next) = next_link(
        &ctx.base,
        path,
        &p,
        &args,
        all.len(),
        all.last().map(|c| c.uuid.to_string()),
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
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        check_fields_in(CHASSIS_FIELDS, ctx.version, fl)?;
    }
    let c = st.conductor().get_chassis(chassis_id(&id)?).await?;
    let mut buf = Vec::new();
    render::write_chassis(&mut buf, &ctx.render(&st), &c, fields.as_deref());
    Ok(ok(buf))
}

fn apply_field(c: &mut Chassis, k: &str, v: &Value) -> ApiResult<()> {
    match k {
        "description" => {
            c.description = match v {
                Value::Null => None,
                Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
                Value::String(_) => {
                    return Err(ApiError::bad_request(
                        "Invalid description: longer than 255 characters",
                    ));
                }
                _ => return Err(ApiError::bad_request("Invalid description: not a string")),
            }
        }
        "extra" => {
            c.extra = match v {
                Value::Null => JsonMap::new(),
                Value::Object(m) => m.clone(),
                _ => return Err(ApiError::bad_request("Invalid extra: not an object")),
            }
        }
        "uuid" => {
            if let Value::String(s) = v {
                c.uuid = chassis_id(s)?;
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
    let mut c = Chassis::new();
    for (k, v) in &body {
        apply_field(&mut c, k, v)?;
    }
    let c = st.conductor().create_chassis(c).await?;
    let mut buf = Vec::new();
    render::write_chassis(&mut buf, &ctx.render(&st), &c, None);
    Ok(created(&format!("{}/v1/chassis/{}", ctx.base, c.uuid), buf))
}

async fn update(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let ops = patch::parse(&body)?;
    patch::check_allowed(&ops, &["description", "extra"])?;
    let c = st.conductor().get_chassis(chassis_id(&id)?).await?;
    let mut doc = serde_json::to_value(&c).map_err(ApiError::internal)?;
    patch::apply(&mut doc, &ops)?;
    let mut updated = c.clone();
    for k in ["description", "extra"] {
        apply_field(&mut updated, k, doc.get(k).unwrap_or(&Value::Null))?;
    }
    let updated = st.conductor().update_chassis(updated).await?;
    let mut buf = Vec::new();
    render::write_chassis(&mut buf, &ctx.render(&st), &updated, None);
    Ok(ok(buf))
}

async fn delete(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.conductor().delete_chassis(chassis_id(&id)?).await?;
    Ok(no_content())
}

async fn nodes(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let cid = chassis_id(&id)?;
    st.conductor().get_chassis(cid).await?;
    list_nodes(
        &st,
        &ctx,
        q.as_deref(),
        false,
        &format!("chassis/{id}/nodes"),
        |f| f.chassis_uuid = Some(cid),
    )
    .await
}

async fn nodes_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let cid = chassis_id(&id)?;
    st.conductor().get_chassis(cid).await?;
    list_nodes(
        &st,
        &ctx,
        q.as_deref(),
        true,
        &format!("chassis/{id}/nodes/detail"),
        |f| f.chassis_uuid = Some(cid),
    )
    .await
}
