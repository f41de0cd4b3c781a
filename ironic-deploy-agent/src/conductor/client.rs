//! The conductor's client of the agent's command API (Ironic's `agent_client.py`).

use std::time::{Duration, Instant};

use ironic_core::observe::{AgentCall, AgentCallKind, ObserverHandle};
use ironic_core::{Node, NodeId, Secret};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::agent::pinned_client_config;
use crate::error::{AgentError, Result};
use crate::protocol::{CommandList, CommandRequest, CommandResult, Fault};

/// Talks to one node's agent.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
    attempts: u32,
    observer: Option<(NodeId, ObserverHandle)>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish()
    }
}

impl AgentClient {
    /// A client for `agent_url` with `token`, pinning `verify_ca` (PEM) when given.
    pub fn new(
        agent_url: &str,
        token: Secret,
        verify_ca: Option<&str>,
        timeout: Duration,
    ) -> Result<Self> {
        let url = reqwest::Url::parse(agent_url)
            .map_err(|e| AgentError::InvalidParams(format!("invalid agent_url: {e}")))?;
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10));
        match (url.scheme(), verify_ca) {
            ("https", Some(pem)) => b = b.use_preconfigured_tls(pinned_client_config(pem)?),
            ("https", None) | ("http", _) => {}
            (s, _) => {
                return Err(AgentError::InvalidParams(format!(
                    "agent_url scheme {s:?} is not http(s)"
                )));
            }
        }
        let http = b
            .build()
            .map_err(|e| AgentError::Other(format!("HTTP client: {e}")))?;
        Ok(AgentClient {
            http,
            base: agent_url.trim_end_matches('/').to_owned(),
            token,
            attempts: 3,
            observer: None,
        })
    }

    /// Report every request (its latency, retries included, and its outcome)
    /// to `observer` as [`AgentCallKind::Request`] of `node`.
    pub fn observed(mut self, node: NodeId, observer: ObserverHandle) -> Self {
        self.observer = Some((node, observer));
        self
    }

    fn report<T>(&self, command: &str, started: Instant, r: &Result<T>) {
        if let Some((node, obs)) = &self.observer {
            obs.agent_call(&AgentCall::new(
                *node,
                command,
                AgentCallKind::Request,
                started.elapsed(),
                r.as_ref().err().map(AgentError::kind),
            ));
        }
    }

    /// The client for a node's agent, from `driver_internal_info`
    /// (`agent_url`, `agent_secret_token`, `agent_verify_ca`).
    pub fn for_node(node: &Node, timeout: Duration) -> Result<Self> {
        let s = |k: &str| {
            node.internal(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let url = s("agent_url").ok_or_else(|| {
            AgentError::Unreachable(format!(
                "node {} has no agent_url: the agent has not heartbeated",
                node.uuid
            ))
        })?;
        let token = s("agent_secret_token").ok_or_else(|| {
            AgentError::Unauthorized(format!("node {} has no agent token", node.uuid))
        })?;
        Self::new(url, Secret::new(token), s("agent_verify_ca"), timeout)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base)
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<Fault>(&text)
            .map(|f| f.faultstring)
            .unwrap_or_else(|_| text.chars().take(500).collect());
        Err(match status {
            StatusCode::CONFLICT => AgentError::Busy,
            _ if msg.to_lowercase().contains("agent is busy") => AgentError::Busy,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AgentError::Unauthorized(msg),
            StatusCode::BAD_REQUEST => AgentError::InvalidParams(msg),
            s => AgentError::Protocol(format!("agent answered HTTP {s}: {msg}")),
        })
    }

    /// All commands, oldest first.
    pub async fn commands(&self) -> Result<Vec<CommandResult>> {
        let started = Instant::now();
        let r = self.commands_once().await;
        self.report("get_commands", started, &r);
        r
    }

    async fn commands_once(&self) -> Result<Vec<CommandResult>> {
        let r = self
            .http
            .get(self.url("commands/"))
            .query(&[("agent_token", self.token.expose())])
            .send()
            .await
            .map_err(|e| {
                AgentError::Unreachable(format!("agent at {}: {}", self.base, e.without_url()))
            })?;
        let list: CommandList = Self::check(r)
            .await?
            .json()
            .await
            .map_err(|e| AgentError::Protocol(format!("command list: {e}")))?;
        Ok(list.commands)
    }

    /// Run `name` (`extension.command`); with `wait` the agent answers when done.
    /// Busy agents give [`AgentError::Busy`] (retry on a later heartbeat).
    pub async fn command(
        &self,
        name: &str,
        params: Map<String, Value>,
        wait: bool,
    ) -> Result<CommandResult> {
        let short = name.split_once('.').map_or(name, |(_, c)| c);
        let started = Instant::now();
        let r = self.command_once(name, params, wait).await;
        self.report(short, started, &r);
        r
    }

    async fn command_once(
        &self,
        name: &str,
        params: Map<String, Value>,
        wait: bool,
    ) -> Result<CommandResult> {
        let body = CommandRequest {
            name: name.to_owned(),
            params,
        };
        let short = name.split_once('.').map_or(name, |(_, c)| c);
        let mut last = String::new();
        for attempt in 0..self.attempts {
            let r = self
                .http
                .post(self.url("commands/"))
                .query(&[
                    ("wait", if wait { "true" } else { "false" }),
                    ("agent_token", self.token.expose()),
                ])
                .json(&body)
                .send()
                .await;
            match r {
                Ok(resp) => {
                    let resp = Self::check(resp).await?;
                    return resp
                        .json::<CommandResult>()
                        .await
                        .map_err(|e| AgentError::Protocol(format!("{name} result: {e}")));
                }
                Err(e) => {
                    last = e.without_url().to_string();
                    // no request ids in this protocol: if the agent did start it, take that
                    if let Ok(cmds) = self.commands_once().await
                        && let Some(c) = cmds.last()
                        && c.command_name == short
                        && c.command_status == crate::protocol::CommandStatus::Running
                    {
                        return Ok(c.clone());
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (u64::from(attempt) + 1))).await;
                }
            }
        }
        Err(AgentError::Unreachable(format!(
            "agent at {}: {last}",
            self.base
        )))
    }

    /// The last command named `short` (after the dot), if any.
    pub async fn last_command(&self, short: &str) -> Result<Option<CommandResult>> {
        Ok(self
            .commands()
            .await?
            .into_iter()
            .rev()
            .find(|c| c.command_name == short))
    }

    /// `standby.prepare_image`.
    pub async fn prepare_image(
        &self,
        image_info: Value,
        configdrive: Option<String>,
    ) -> Result<CommandResult> {
        let mut p = Map::new();
        p.insert("image_info".into(), image_info);
        p.insert(
            "configdrive".into(),
            configdrive.map_or(Value::Null, Value::String),
        );
        self.command("standby.prepare_image", p, false).await
    }

    /// `clean.execute_clean_step`.
    pub async fn execute_clean_step(
        &self,
        step: Value,
        node: &Node,
        ports: Value,
        clean_version: Value,
    ) -> Result<CommandResult> {
        self.execute_step("clean", step, node, ports, clean_version)
            .await
    }

    /// `{kind}.execute_{kind}_step` (`kind` = `clean`, `deploy` or `service`),
    /// with the hardware manager versions as `{kind}_version`.
    pub async fn execute_step(
        &self,
        kind: &str,
        step: Value,
        node: &Node,
        ports: Value,
        version: Value,
    ) -> Result<CommandResult> {
        let mut p = Map::new();
        p.insert("step".into(), step);
        p.insert("node".into(), node_view(node));
        p.insert("ports".into(), ports);
        p.insert(format!("{kind}_version"), version);
        self.command(&format!("{kind}.execute_{kind}_step"), p, false)
            .await
    }

    /// `clean.get_clean_steps`.
    pub async fn get_clean_steps(&self, node: &Node) -> Result<Value> {
        let mut p = Map::new();
        p.insert("node".into(), node_view(node));
        p.insert("ports".into(), json!([]));
        let r = self.command("clean.get_clean_steps", p, true).await?;
        Ok(r.command_result.unwrap_or(Value::Null))
    }

    /// `standby.get_partition_uuids`.
    pub async fn get_partition_uuids(&self) -> Result<Value> {
        let r = self
            .command("standby.get_partition_uuids", Map::new(), true)
            .await?;
        Ok(r.command_result.unwrap_or(Value::Null))
    }

    /// `standby.power_off`.
    pub async fn power_off(&self) -> Result<CommandResult> {
        self.command("standby.power_off", Map::new(), false).await
    }

    /// `standby.sync`.
    pub async fn sync(&self) -> Result<CommandResult> {
        self.command("standby.sync", Map::new(), true).await
    }

    /// `log.collect_system_logs`.
    pub async fn collect_system_logs(&self) -> Result<Value> {
        let r = self
            .command("log.collect_system_logs", Map::new(), true)
            .await?;
        Ok(r.command_result.unwrap_or(Value::Null))
    }

    /// `rescue.finalize_rescue`.
    pub async fn finalize_rescue(&self, hashed_password: &Secret) -> Result<CommandResult> {
        let mut p = Map::new();
        p.insert(
            "rescue_password".into(),
            Value::String(hashed_password.expose().to_owned()),
        );
        p.insert("hashed".into(), Value::Bool(true));
        self.command("rescue.finalize_rescue", p, true).await
    }

    /// `system.lockdown`.
    pub async fn lockdown(&self) -> Result<CommandResult> {
        self.command("system.lockdown", Map::new(), true).await
    }
}

/// The node as Ironic sends it to the agent with every step
/// (`node.as_dict(secure=True)`): secrets of `driver_info`, `instance_info`
/// (its config drive included) and `driver_internal_info` replaced by `******`.
pub fn node_view(node: &Node) -> Value {
    let masked = |m: &serde_json::Map<String, Value>| {
        let mut m = m.clone();
        ironic_core::secret::mask_map(&mut m);
        Value::Object(m)
    };
    let mut ii = node.instance_info.clone();
    let configdrive = ii.remove("configdrive");
    let mut instance_info = masked(&ii);
    if configdrive.is_some() {
        instance_info["configdrive"] = json!("******");
    }
    json!({
        "uuid": node.uuid.to_string(),
        "name": node.name,
        "driver": node.driver,
        "driver_info": node.driver_info.masked(),
        "driver_internal_info": masked(&node.driver_internal_info),
        "instance_info": instance_info,
        "instance_uuid": node.instance_uuid,
        "properties": node.properties,
        "provision_state": node.provision_state,
        "target_raid_config": node.target_raid_config,
        "raid_config": node.raid_config,
        "boot_mode": node.boot_mode,
        "secure_boot": node.secure_boot,
    })
}
