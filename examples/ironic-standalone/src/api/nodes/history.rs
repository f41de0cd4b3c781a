//! `/v1/nodes/{node}/history` (1.78): the node's event log.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::json::{ObjWriter, opt_time};
use crate::api::query::{ListArgs, Params};
use crate::api::resource::Ctx;
use crate::api::routes::{Body, Route, get};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, ok};
use ironic_core::model::HistoryEvent;

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/history", history)
            .doc("The node's history events")
            .since(f::HISTORY)
            .returns(Body::Object("{history: [..], next?}")),
        get("/v1/nodes/{node}/history/{event}", history_event)
            .doc("One history event")
            .since(f::HISTORY)
            .returns(Body::Object("history event")),
    ]
}

async fn history(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let detail = p.bool("detail")?.unwrap_or(false);
    let args = ListArgs::parse(
        &Params(p.0.iter().filter(|(k, _)| k != "detail").cloned().collect()),
        ctx.version,
        st.settings().max_limit,
        false,
    )?;
    let mut events = st.conductor().history(&ident(&ctx, &id)?).await?;
    if args.sort_dir == ironic_core::store::SortDir::Desc {
        events.reverse();
    }
    if let Some(m) = args.marker {
        match events.iter().position(|e| *e.uuid.as_uuid() == m) {
            Some(i) => {
                events.drain(..=i);
            }
            None => {
                return Err(ApiError::not_found(format!(
                    "Node history record {m} could not be found."
                )));
            }
        }
    }
    events.truncate(args.limit);
    let rctx = ctx.render(&st);
    let mut buf = Vec::with_capacity(events.len() * 300 + 32);
    buf.extend_from_slice(b"{\"history\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_history(&mut buf, &rctx, e, detail);
    }
    buf.push(b']');
    if let Some(next) = crate::api::query::next_link(
        &ctx.base,
        &format!("nodes/{id}/history"),
        &p,
        &args,
        events.len(),
        events.last().map(|e| e.uuid.to_string()),
        None,
    ) {
        buf.extend_from_slice(b",\"next\":");
        crate::api::json::write_str(&mut buf, &next);
    }
    buf.push(b'}');
    Ok(ok(buf))
}

async fn history_event(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, event)): Path<(String, String)>,
) -> ApiResult<Response> {
    let events = st.conductor().history(&ident(&ctx, &id)?).await?;
    let e = events
        .iter()
        .find(|e| e.uuid.to_string() == event)
        .ok_or_else(|| {
            ApiError::not_found(format!("Node history record {event} could not be found."))
        })?;
    let mut buf = Vec::new();
    write_history(&mut buf, &ctx.render(&st), e, true);
    Ok(ok(buf))
}

/// Render a node history event (`detail` adds the fields beyond the summary).
fn write_history(buf: &mut Vec<u8>, ctx: &Ctx<'_>, e: &HistoryEvent, detail: bool) {
    let mut w = ObjWriter::new(buf);
    w.str("uuid", &e.uuid.to_string());
    opt_time(&mut w, "created_at", Some(&e.created_at));
    w.field("severity", &e.severity);
    if detail {
        w.str("event_type", &e.event_type);
        w.str("event", &e.event);
        w.opt_str("conductor", e.conductor.as_deref());
        w.opt_str("user", e.user.as_deref());
        if ctx.version.at_least(f::HISTORY_PROJECT) {
            w.opt_str("project", e.project.as_deref());
        }
        if ctx.version.at_least(f::HISTORY_FIELDS) {
            w.opt_str("state", e.provision_state.as_deref());
            w.opt_str(
                "target_provision_state",
                e.target_provision_state.as_deref(),
            );
            w.field("duration_seconds", &e.duration_seconds);
        }
    } else if e.event.chars().count() > 255 {
        let short: String = e.event.chars().take(251).collect();
        w.str("event", &format!("{short}..."));
    } else {
        w.str("event", &e.event);
    }
    let mut l = Vec::new();
    l.push(b'[');
    let mut lw = ObjWriter::new(&mut l);
    lw.str(
        "href",
        &format!("{}/v1/nodes/{}/history/{}", ctx.base, e.node_uuid, e.uuid),
    );
    lw.str("rel", "self");
    lw.end();
    l.push(b']');
    w.raw("links", &l);
    w.end();
}
