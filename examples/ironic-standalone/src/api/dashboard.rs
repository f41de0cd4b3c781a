//! What an operator opens first: `GET /metrics` (Prometheus) and the built-in
//! dashboard at `/dashboard`, both outside `/v1` (no microversion headers) and
//! behind the API's authentication.
//!
//! The dashboard is one HTML page with its script and style sheet embedded in
//! the binary (no CDN, no build step). It reads three endpoints of its own,
//! shaped for the page and paged on the server so that 10,000 nodes stay usable:
//! - `GET /dashboard/api/nodes?provision_state=&driver=&conductor_group=&maintenance=&limit=&marker=`:
//!   one page of node rows, the total and the count per provision state;
//! - `GET /dashboard/api/nodes/{ident}`: a node's row, timeline (history with the
//!   time until the next event), ports and their networks;
//! - `GET /dashboard/events`: a server-sent event stream of changed rows, fed by
//!   the conductor's node events.
//!
//! Its buttons call the public API (`/v1/nodes/{ident}/states/provision`, ...)
//! as any client does; `[dashboard] read_only` hides them.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use ironic_core::conductor::{WaitInfo, over_budget, time_in_state};
use ironic_core::ids::Ident;
use ironic_core::model::Timestamp;
use ironic_core::store::{NodeFilter, NodeQuery, PortQuery};
use ironic_core::{Node, ProvisionState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::http::authenticate;

const INDEX: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");

/// The most rows one page of the dashboard shows.
const MAX_PAGE: usize = 500;

pub(super) fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/app.css", get(app_css))
        .route("/dashboard/api/nodes", get(nodes))
        .route("/dashboard/api/nodes/{ident}", get(node))
        .route("/dashboard/events", get(events))
        .with_state(state)
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

fn json_ok(v: &impl Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            b,
        )
            .into_response(),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// 404 unless the dashboard is enabled, 401 unless authenticated.
async fn gate(st: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if st.dashboard().is_none() {
        return Err(Box::new(plain(
            StatusCode::NOT_FOUND,
            "The dashboard is disabled ([dashboard] enabled = false).",
        )));
    }
    authenticate(st, headers).await
}

async fn metrics(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(m) = st.metrics().cloned() else {
        return plain(
            StatusCode::NOT_FOUND,
            "Metrics are disabled ([metrics] enabled = false).",
        );
    };
    if let Err(r) = authenticate(&st, &headers).await {
        return *r;
    }
    let om = crate::metrics::wants_openmetrics(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    );
    match m.render(st.conductor(), om).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if om {
                    crate::metrics::OPENMETRICS
                } else {
                    crate::metrics::PROMETHEUS_TEXT
                }),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics scrape failed");
            plain(StatusCode::SERVICE_UNAVAILABLE, e)
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return *r;
    }
    let read_only = st.dashboard().is_some_and(|d| d.read_only);
    let html = INDEX.replace(
        "data-read-only=\"false\"",
        if read_only {
            "data-read-only=\"true\""
        } else {
            "data-read-only=\"false\""
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

async fn app_js(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return *r;
    }
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return *r;
    }
    asset("text/css; charset=utf-8", APP_CSS)
}

/// What the node table shows of a node.
#[derive(Debug, Serialize)]
struct Row {
    uuid: String,
    name: Option<String>,
    power_state: Option<String>,
    target_power_state: Option<String>,
    provision_state: String,
    target_provision_state: Option<String>,
    maintenance: bool,
    maintenance_reason: Option<String>,
    fault: Option<String>,
    driver: String,
    conductor_group: String,
    /// The conductor holding the node's lock right now.
    reservation: Option<String>,
    last_error: Option<String>,
    /// When the provision state last changed.
    state_since: Option<Timestamp>,
    /// Seconds in the current state.
    seconds_in_state: Option<u64>,
    /// The running step (`deploy.write_image`).
    step: Option<String>,
    /// What the node waits for, since when, until when.
    wait: Option<WaitInfo>,
    /// Seconds past the state's budget.
    over_budget: Option<u64>,
    /// Image write progress reported by the agent, percent.
    progress: Option<f64>,
}

fn step_of(n: &Node) -> Option<String> {
    let step = match n.provision_state {
        s if s.as_str().starts_with("clean") => &n.clean_step,
        s if s.as_str().starts_with("deploy") => &n.deploy_step,
        s if s.as_str().starts_with("servic") => &n.service_step,
        _ => return None,
    };
    let i = step.get("interface")?.as_str()?;
    let s = step.get("step")?.as_str()?;
    Some(format!("{i}.{s}"))
}

fn row(st: &ApiState, n: &Node, now: Timestamp) -> Row {
    let cfg = st.conductor().config();
    Row {
        uuid: n.uuid.to_string(),
        name: n.name.clone(),
        power_state: n.power_state.map(|p| p.to_string()),
        target_power_state: n.target_power_state.map(|p| p.to_string()),
        provision_state: n.provision_state.to_string(),
        target_provision_state: n.target_provision_state.map(|p| p.to_string()),
        maintenance: n.maintenance,
        maintenance_reason: n.maintenance_reason.clone(),
        fault: n.fault.map(|f| f.as_str().to_owned()),
        driver: n.driver.clone(),
        conductor_group: n.conductor_group.clone(),
        reservation: n.reservation.clone(),
        last_error: n.last_error.clone(),
        state_since: n.provision_state_since,
        seconds_in_state: time_in_state(n, now).map(|d| d.as_secs()),
        step: step_of(n),
        wait: st.conductor().wait_info(n),
        over_budget: over_budget(n, cfg, now).map(|d| d.as_secs()),
        progress: progress(n),
    }
}

/// The agent's image write progress, while the node waits for the agent (a
/// failed or timed-out write leaves its last figures in `driver_internal_info`).
fn progress(n: &Node) -> Option<f64> {
    if !n.provision_state.is_wait_for_callback() {
        return None;
    }
    n.internal("agent_progress")
        .and_then(|p| p.get("percent"))
        .and_then(Value::as_f64)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListParams {
    provision_state: Option<String>,
    driver: Option<String>,
    conductor_group: Option<String>,
    maintenance: Option<bool>,
    limit: Option<usize>,
    marker: Option<uuid::Uuid>,
}

fn bad(msg: impl Into<String>) -> Response {
    plain(StatusCode::BAD_REQUEST, msg)
}

fn filter_of(p: &ListParams) -> Result<NodeFilter, String> {
    let provision_state = match p.provision_state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.split(',')
                .map(|x| {
                    x.parse::<ProvisionState>()
                        .map_err(|_| format!("unknown provision state '{x}'"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut f = NodeFilter::default();
    f.provision_state = provision_state;
    f.driver = p.driver.clone().filter(|s| !s.is_empty());
    f.conductor_group = p
        .conductor_group
        .clone()
        .filter(|s| !s.is_empty())
        .map(|g| g.to_lowercase());
    f.maintenance = p.maintenance;
    Ok(f)
}

async fn nodes(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return *r;
    }
    let filter = match filter_of(&p) {
        Ok(f) => f,
        Err(msg) => return bad(msg),
    };
    let limit = p.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let store = st.conductor().store();
    let mut q = NodeQuery::default();
    q.filter = filter.clone();
    q.page.limit = Some(limit);
    q.page.marker = p.marker;
    let page = match store.list_nodes(&q).await {
        Ok(n) => n,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let total = match store.count_nodes(&filter).await {
        Ok(n) => n,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    // the count per state under the other filters, for the state filter
    let mut states = serde_json::Map::new();
    let mut others = filter;
    others.provision_state = None;
    for s in ProvisionState::ALL {
        let mut f = others.clone();
        f.provision_state = Some(vec![*s]);
        match store.count_nodes(&f).await {
            Ok(0) => {}
            Ok(c) => {
                states.insert(s.to_string(), json!(c));
            }
            Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
    let now = ironic_core::model::now();
    let next = (page.len() == limit).then(|| page.last().map(|n| n.uuid.to_string()));
    let drivers: Vec<&str> = st
        .conductor()
        .registry()
        .hardware_types()
        .iter()
        .map(|h| h.name)
        .collect();
    json_ok(&json!({
        "nodes": page.iter().map(|n| row(&st, n, now)).collect::<Vec<_>>(),
        "total": total,
        "next_marker": next.flatten(),
        "states": states,
        "drivers": drivers,
        "read_only": st.dashboard().is_some_and(|d| d.read_only),
        "conductor": st.conductor().config().host,
    }))
}

async fn node(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return *r;
    }
    let ident = Ident::parse(&ident);
    let c = st.conductor();
    let n = match c.get_node(&ident).await {
        Ok(n) => n,
        Err(e) => return plain(StatusCode::NOT_FOUND, e.to_string()),
    };
    let history = c.history(&ident).await.unwrap_or_default();
    let timeline: Vec<Value> = history
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let until = history.get(i + 1).map(|x| x.created_at);
            json!({
                "at": h.created_at,
                "event": h.event,
                "event_type": h.event_type,
                "severity": h.severity,
                "provision_state": h.provision_state,
                "user": h.user,
                "seconds": until.and_then(|u| (u - h.created_at).to_std().ok()).map(|d| d.as_secs_f64()),
            })
        })
        .collect();
    let ports = c
        .store()
        .list_ports(&{
            let mut q = PortQuery::default();
            q.node = Some(n.uuid);
            q
        })
        .await
        .unwrap_or_default();
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            json!({
                "uuid": p.uuid.to_string(),
                "address": p.address.to_string(),
                "pxe_enabled": p.pxe_enabled,
                "physical_network": p.physical_network,
                "switch": p.local_link_connection.get("switch_info")
                    .or_else(|| p.local_link_connection.get("switch_id")),
                "switch_port": p.local_link_connection.get("port_id"),
                "vif": p.vif(),
                "network": p.internal_info.get("network"),
            })
        })
        .collect();
    let now = ironic_core::model::now();
    json_ok(&json!({
        "node": row(&st, &n, now),
        "image_source": n.instance_info.get("image_source"),
        "agent_last_heartbeat": n.internal("agent_last_heartbeat"),
        "agent_version": n.internal("agent_version"),
        "agent_command": n.internal("agent_pending_command").and_then(|p| p.get("name")),
        "budget_seconds": c.config().state_budgets.get(&n.provision_state).map(|d| d.as_secs()),
        "timeline": timeline,
        "ports": ports,
        "read_only": st.dashboard().is_some_and(|d| d.read_only),
    }))
}

async fn events(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return *r;
    }
    Sse::new(stream(st))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn stream(st: ApiState) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = st.conductor().subscribe();
    futures::stream::unfold((st, rx), |(st, mut rx)| async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    let e = Event::default().event("resync").data(n.to_string());
                    return Some((Ok(e), (st, rx)));
                }
                Err(RecvError::Closed) => return None,
            };
            let id = ev.node();
            let e = match st.conductor().get_node(&id.into()).await {
                Ok(n) => {
                    let r = row(&st, &n, ironic_core::model::now());
                    match serde_json::to_string(&r) {
                        Ok(s) => Event::default().event("node").data(s),
                        Err(_) => continue,
                    }
                }
                Err(_) => Event::default().event("deleted").data(id.to_string()),
            };
            return Some((Ok(e), (st, rx)));
        }
    })
}
