//! The command API (`:9999`), as IPA serves it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::commands::{self, Kind, Outcome};
use crate::protocol::{
    CommandList, CommandRequest, CommandResult, CommandStatus, Fault, error_body,
};

fn fault(status: StatusCode, code: &str, msg: impl Into<String>) -> Response {
    (
        status,
        Json(Fault {
            faultcode: code.to_owned(),
            faultstring: msg.into(),
        }),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    agent_token: Option<String>,
    wait: Option<String>,
}

async fn check_token(st: &State, q: &TokenQuery) -> Result<(), Response> {
    let token = st.token.read().await;
    match (&*token, &q.agent_token) {
        (Some(t), Some(given)) if t.ct_eq(given) => Ok(()),
        _ => Err(fault(StatusCode::UNAUTHORIZED, "Client", "Token invalid.")),
    }
}

async fn root() -> Json<Value> {
    Json(json!({
        "name": "OpenStack Ironic Python Agent API",
        "description": "Ironic Python Agent is a provisioning agent for OpenStack Ironic",
        "versions": [{"id": "v1", "links": [{"href": "/v1/", "rel": "self"}]}],
        "default_version": {"id": "v1", "links": [{"href": "/v1/", "rel": "self"}]},
    }))
}

async fn v1() -> Json<Value> {
    Json(json!({
        "id": "v1",
        "links": [{"href": "/v1/", "rel": "self"}],
        "media_types": [{"base": "application/json", "type": "application/vnd.openstack.ironic-python-agent.v1+json"}],
        "commands": [{"href": "/v1/commands/", "rel": "self"}],
        "status": [{"href": "/v1/status/", "rel": "self"}],
    }))
}

async fn status(AxState(st): AxState<Arc<State>>) -> Json<Value> {
    Json(json!({"started_at": st.started_at, "version": crate::protocol::AGENT_VERSION}))
}

async fn list(AxState(st): AxState<Arc<State>>, Query(q): Query<TokenQuery>) -> Response {
    if let Err(r) = check_token(&st, &q).await {
        return r;
    }
    let mut commands = st.commands.lock().await.clone();
    with_progress(&st, &mut commands);
    Json(CommandList { commands }).into_response()
}

async fn get_one(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(r) = check_token(&st, &q).await {
        return r;
    }
    let wait = q.wait.as_deref().is_some_and(|w| w == "true");
    loop {
        let found = st
            .commands
            .lock()
            .await
            .iter()
            .find(|c| c.id == id)
            .cloned();
        match found {
            None => {
                return fault(
                    StatusCode::NOT_FOUND,
                    "Client",
                    format!("Command {id} not found"),
                );
            }
            Some(c) if wait && c.command_status == CommandStatus::Running => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Some(mut c) => {
                with_progress(&st, std::slice::from_mut(&mut c));
                return Json(c).into_response();
            }
        }
    }
}

/// Adds the running command's progress to its result (`command_progress`).
fn with_progress(st: &State, commands: &mut [CommandResult]) {
    for c in commands
        .iter_mut()
        .filter(|c| c.command_status == CommandStatus::Running)
    {
        c.command_progress = st.progress_of(&c.id);
    }
}

fn finish(res: &mut CommandResult, out: Outcome) {
    match out {
        Outcome::Ok(v) => {
            res.command_status = CommandStatus::Succeeded;
            res.command_result = Some(match v {
                Value::String(s) => json!({ "result": format!("{}: {s}", res.command_name) }),
                other => other,
            });
        }
        Outcome::Err(e) => {
            tracing::error!(command = %res.command_name, error = %e, "command failed");
            res.command_status = CommandStatus::Failed;
            res.command_error = Some(error_body(
                e.ipa_type(),
                e.ipa_code(),
                &e.to_string(),
                &e.to_string(),
            ));
        }
        Outcome::Mismatch(m) => {
            res.command_status = CommandStatus::CleanVersionMismatch;
            res.command_error = Some(error_body("VersionMismatch", 409, &m, &m));
        }
    }
}

async fn post_command(
    AxState(st): AxState<Arc<State>>,
    Query(q): Query<TokenQuery>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = check_token(&st, &q).await {
        return r;
    }
    if st.is_locked() {
        return fault(
            StatusCode::FORBIDDEN,
            "Client",
            "The agent is locked down and accepts no commands.",
        );
    }
    let req: CommandRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return fault(
                StatusCode::BAD_REQUEST,
                "Client",
                format!("Invalid command body: {e}"),
            );
        }
    };
    let Some((ext, cmd)) = req.name.split_once('.') else {
        return fault(
            StatusCode::BAD_REQUEST,
            "Client",
            format!(
                "Invalid command name {:?}: expected extension.command",
                req.name
            ),
        );
    };
    let Some(kind) = commands::kind_of(&req.name) else {
        return fault(
            StatusCode::NOT_FOUND,
            "Client",
            format!("Unknown extension or command: {ext}.{cmd}"),
        );
    };
    let mut cmds = st.commands.lock().await;
    if let Some(last) = cmds.last()
        && last.command_status == CommandStatus::Running
    {
        return fault(
            StatusCode::CONFLICT,
            "Client",
            format!("Agent is busy: executing command {}", last.command_name),
        );
    }
    let mut res = CommandResult::running(cmd);
    match kind {
        Kind::Sync => {
            drop(cmds);
            let out = commands::run(&st, &req.name, req.params).await;
            if let Outcome::Err(crate::AgentError::InvalidParams(m)) = &out {
                return fault(StatusCode::BAD_REQUEST, "Client", m.clone());
            }
            finish(&mut res, out);
            st.commands.lock().await.push(res.clone());
            Json(res).into_response()
        }
        Kind::Async => {
            cmds.push(res.clone());
            drop(cmds);
            let id = res.id.clone();
            *st.progress.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((id.clone(), Arc::new(crate::progress::Progress::new())));
            let st2 = st.clone();
            let name = req.name.clone();
            let task = tokio::spawn(async move {
                let st3 = st2.clone();
                let run = tokio::spawn(async move { commands::run(&st3, &name, req.params).await });
                let out = match run.await {
                    Ok(o) => o,
                    Err(e) => Outcome::Err(crate::AgentError::Other(format!(
                        "the command crashed: {e}"
                    ))),
                };
                let mut cmds = st2.commands.lock().await;
                // the last figures stay with the finished command
                let last = st2.progress_of(&id);
                if let Some(r) = cmds.iter_mut().find(|c| c.id == id) {
                    finish(r, out);
                    r.command_progress = last;
                }
                st2.progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take_if(|(running, _)| *running == id);
                drop(cmds);
                st2.force_heartbeat.notify_one();
            });
            if q.wait.as_deref() == Some("true") {
                let _ = task.await;
                let done = st
                    .commands
                    .lock()
                    .await
                    .iter()
                    .find(|c| c.id == res.id)
                    .cloned();
                return Json(done.unwrap_or(res)).into_response();
            }
            Json(res).into_response()
        }
    }
}

/// The API server, plain HTTP or TLS.
pub struct Server {
    st: Arc<State>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Server {
    pub(crate) fn new(
        st: Arc<State>,
        listener: tokio::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Server { st, listener, tls }
    }

    fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/", get(root))
            .route("/v1", get(v1))
            .route("/v1/", get(v1))
            .route("/v1/status", get(status))
            .route("/v1/status/", get(status))
            .route("/v1/commands", get(list).post(post_command))
            .route("/v1/commands/", get(list).post(post_command))
            .route("/v1/commands/{id}", get(get_one))
            .route("/commands", get(list).post(post_command))
            .route("/commands/", get(list).post(post_command))
            .route("/commands/{id}", get(get_one))
            .route("/status", get(status))
            .fallback(post(|| async {
                fault(StatusCode::NOT_FOUND, "Client", "Not found")
            }))
            .with_state(self.st.clone())
    }

    /// Serve until the task is dropped.
    pub async fn run(self) {
        let app = self.router();
        match self.tls {
            None => {
                let _ = axum::serve(self.listener, app).await;
            }
            Some(cfg) => super::tls::serve(self.listener, cfg, app).await,
        }
    }
}
