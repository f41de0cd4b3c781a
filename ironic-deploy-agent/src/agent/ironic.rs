//! Talking to Ironic: API version discovery, lookup with backoff, heartbeats.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ironic_core::Secret;
use reqwest::StatusCode;
use serde_json::Value;

use super::{State, inventory};
use crate::error::{AgentError, Result};
use crate::protocol::{AGENT_VERSION, HeartbeatBody, LookupResponse};

const VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";

/// The host to advertise: the local address used to reach the first API URL.
pub async fn advertise_host(cfg: &super::AgentConfig, bound: std::net::SocketAddr) -> String {
    if !bound.ip().is_unspecified() {
        return bound.ip().to_string();
    }
    let target = cfg
        .api_urls
        .first()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    if let Some(t) = target
        && let Ok(Some(addr)) = tokio::net::lookup_host(&t).await.map(|mut a| a.next())
        && let Ok(sock) = std::net::UdpSocket::bind(if addr.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        && sock.connect(addr).is_ok()
        && let Ok(local) = sock.local_addr()
    {
        return local.ip().to_string();
    }
    "127.0.0.1".to_owned()
}

/// A token kept by an earlier run of the agent process (survives a crash/restart).
pub fn load_token(dir: &Path) -> Option<Secret> {
    std::fs::read_to_string(dir.join("agent_token"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.len() >= 32)
        .map(Secret::new)
}

fn save_token(dir: &Path, t: &Secret) {
    if std::fs::create_dir_all(dir).is_ok() {
        let p = dir.join("agent_token");
        if std::fs::write(&p, t.expose()).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

async fn max_version(st: &State, base: &str) -> Option<u32> {
    let v: Value = with_request_id(st, st.http.get(format!("{}/", base.trim_end_matches('/'))))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let s = v
        .pointer("/default_version/version")
        .or_else(|| v.pointer("/versions/0/version"))?
        .as_str()?;
    s.strip_prefix("1.")?.parse().ok()
}

fn jitter(base: Duration, lo: f64, hi: f64) -> Duration {
    // Never waits for the kernel's random pool (see `entropy`).
    base.mul_f64(super::entropy::uniform(lo, hi))
}

/// The Ironic API the agent talks to.
#[derive(Clone, Debug)]
pub struct Api {
    url: String,
    /// Ironic's maximum API version (`1.N`: N).
    pub max_version: u32,
    lookup_version: u32,
    heartbeat_version: u32,
}

impl Api {
    /// Whether Ironic can pin the agent's certificate (`agent_verify_ca`, API 1.68+).
    pub fn supports_verify_ca(&self) -> bool {
        self.max_version >= 68
    }
}

/// The result of a lookup.
#[derive(Debug)]
pub struct Found {
    /// Where Ironic answered.
    pub api: Api,
    node_uuid: String,
    heartbeat_timeout: u64,
}

/// `X-OpenStack-Request-ID` from `ipa-global-request-id`, on every request to Ironic.
fn with_request_id(st: &State, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &st.cfg.global_request_id {
        Some(id) => req.header("X-OpenStack-Request-ID", id),
        None => req,
    }
}

async fn lookup(st: &Arc<State>) -> Result<(Api, LookupResponse)> {
    let cfg = &st.cfg;
    if cfg.api_urls.is_empty() {
        return Err(AgentError::InvalidParams("no ipa-api-url given".into()));
    }
    let inv = inventory::collect(cfg);
    let macs = inventory::macs(cfg, &inv);
    if macs.is_empty() && cfg.node_uuid.is_none() {
        return Err(AgentError::InvalidParams(
            "no MAC address or node UUID to look up with".into(),
        ));
    }
    let deadline = tokio::time::Instant::now() + cfg.lookup_timeout;
    let mut wait = cfg.lookup_interval;
    let mut conflicts = 0usize;
    let mut urls = cfg.api_urls.clone();
    loop {
        for i in 0..urls.len() {
            let base = urls[i].trim_end_matches('/').to_owned();
            let max = max_version(st, &base).await;
            let Some(max) = max else {
                tracing::warn!(url = %base, "Ironic API not reachable");
                continue;
            };
            let lv = max.min(62);
            let mut req = with_request_id(st, st.http.get(format!("{base}/v1/lookup")))
                .header(VERSION_HEADER, format!("1.{lv}"))
                .timeout(Duration::from_secs(30));
            if !macs.is_empty() {
                req = req.query(&[("addresses", macs.join(","))]);
            }
            if let Some(u) = &cfg.node_uuid {
                req = req.query(&[("node_uuid", u)]);
            }
            match req.send().await {
                Ok(r) if r.status() == StatusCode::OK => {
                    let body: LookupResponse = r
                        .json()
                        .await
                        .map_err(|e| AgentError::Protocol(format!("lookup response: {e}")))?;
                    urls.rotate_left(i);
                    return Ok((
                        Api {
                            url: base,
                            max_version: max,
                            lookup_version: lv,
                            heartbeat_version: max.min(68),
                        },
                        body,
                    ));
                }
                Ok(r) if r.status() == StatusCode::CONFLICT => {
                    conflicts += 1;
                    wait = Duration::from_secs([5, 10, 30][conflicts.min(3) - 1]);
                }
                Ok(r) => tracing::info!(status = %r.status(), "lookup: node not found yet"),
                Err(e) => tracing::warn!(error = %e, "lookup failed"),
            }
        }
        if tokio::time::Instant::now() + wait > deadline {
            return Err(AgentError::Unreachable(format!(
                "lookup did not find the node within {}s",
                cfg.lookup_timeout.as_secs()
            )));
        }
        tokio::time::sleep(jitter(wait, 0.5, 1.0)).await;
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// The inspection data IPA posts: the inventory, the disk it would install on,
/// the MAC it booted from and, when collected, the LLDP frames heard on each NIC: each interface's
/// `lldp` and the top-level `lldp_raw` (IPA's `lldp` collector), both as
/// `[[tlv_type, "hex"], ...]`.
pub fn inspection_data_with(
    cfg: &super::AgentConfig,
    lldp: Option<&super::lldp::LldpByInterface>,
) -> Value {
    let mut inv = inventory::collect(cfg);
    let mut raw = serde_json::Map::new();
    if let Some(l) = lldp {
        if let Some(ifs) = inv.get_mut("interfaces").and_then(Value::as_array_mut) {
            for i in ifs {
                let name = i
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(tlvs) = l.get(&name) {
                    i["lldp"] = super::lldp::to_json(tlvs);
                }
            }
        }
        for (name, tlvs) in l {
            raw.insert(name.clone(), super::lldp::to_json(tlvs));
        }
    }
    let disks = inventory::disks(cfg);
    let root = super::hints::pick(&disks, None)
        .ok()
        .and_then(|d| serde_json::to_value(d).ok());
    serde_json::json!({
        "inventory": inv,
        "root_disk": root,
        "boot_interface": cfg.bootif.map(|m| m.to_string()),
        "configuration": {"collectors": if lldp.is_some() { serde_json::json!(["default", "lldp"]) } else { serde_json::json!(["default"]) }, "managers": []},
        "lldp_raw": if lldp.is_some() { Value::Object(raw) } else { Value::Null },
    })
}

/// Post the inventory to `url` (`/v1/continue_inspection`), retrying with backoff
/// until the lookup timeout while Ironic is unreachable or the node is not (yet)
/// waiting for it. A token in the answer (API >= 1.84) is kept as a lookup's.
pub async fn inspect(st: &Arc<State>, url: &str) -> Result<()> {
    let cfg = &st.cfg;
    let lldp = if cfg.collect_lldp {
        let names = inventory::interface_names(&cfg.sys_root);
        let timeout = cfg.lldp_timeout;
        match tokio::task::spawn_blocking(move || super::lldp::collect(&names, timeout)).await {
            Ok(Ok(l)) => Some(l),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "LLDP collection failed; inspecting without it");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "LLDP collection panicked; inspecting without it");
                None
            }
        }
    } else {
        None
    };
    let data = inspection_data_with(cfg, lldp.as_ref());
    let deadline = tokio::time::Instant::now() + cfg.lookup_timeout;
    let mut wait = cfg.lookup_interval;
    loop {
        let mut req = with_request_id(st, st.http.post(url))
            .header(VERSION_HEADER, "1.84")
            .timeout(Duration::from_secs(30))
            .json(&data);
        if let Some(u) = &cfg.node_uuid {
            req = req.query(&[("node_uuid", u)]);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                let body: Option<LookupResponse> = r.json().await.ok();
                let token = body
                    .as_ref()
                    .and_then(|b| b.config.get("agent_token"))
                    .and_then(Value::as_str)
                    .filter(|t| t.len() >= 32 && *t != ironic_core::secret::MASK);
                if let Some(t) = token {
                    let t = Secret::new(t);
                    save_token(&cfg.state_dir, &t);
                    *st.token.write().await = Some(t);
                }
                if let Some(b) = body {
                    *st.node.write().await = Some(b.node);
                    *st.lookup_config.write().await = b.config;
                }
                tracing::info!("inspection data accepted");
                return Ok(());
            }
            Ok(r)
                if r.status().is_client_error()
                    && !matches!(
                        r.status(),
                        StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::BAD_REQUEST
                    ) =>
            {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(AgentError::Protocol(format!(
                    "inspection data refused ({status}): {}",
                    text.chars().take(300).collect::<String>()
                )));
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                tracing::info!(%status, body = %text.chars().take(300).collect::<String>(), "inspection data not taken yet");
            }
            Err(e) => tracing::warn!(error = %e, "posting inspection data failed"),
        }
        if tokio::time::Instant::now() + wait > deadline {
            return Err(AgentError::Unreachable(format!(
                "the inspection data was not accepted within {}s",
                cfg.lookup_timeout.as_secs()
            )));
        }
        tokio::time::sleep(jitter(wait, 0.5, 1.0)).await;
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// Look the node up until the token is known.
pub async fn lookup_node(st: &Arc<State>) -> Result<Found> {
    let (api, node_uuid, timeout) = loop {
        let (api, resp) = lookup(st).await?;
        let uuid = resp
            .node
            .get("uuid")
            .and_then(Value::as_str)
            .ok_or_else(|| AgentError::Protocol("lookup response has no node uuid".into()))?
            .to_owned();
        let token = resp
            .config
            .get("agent_token")
            .and_then(Value::as_str)
            .unwrap_or("");
        let timeout = resp
            .config
            .get("heartbeat_timeout")
            .and_then(Value::as_u64)
            .unwrap_or(300);
        *st.node.write().await = Some(resp.node.clone());
        *st.lookup_config.write().await = resp.config.clone();
        if token.len() >= 32 && token != ironic_core::secret::MASK {
            let t = Secret::new(token);
            save_token(&st.cfg.state_dir, &t);
            *st.token.write().await = Some(t);
            break (api, uuid, timeout);
        }
        if st.token.read().await.is_some() {
            tracing::info!("token already issued; using the one this agent holds");
            break (api, uuid, timeout);
        }
        tracing::warn!(
            "Ironic has already issued this node's token and this agent does not hold it; \
             retrying lookup until the token is reset"
        );
        tokio::time::sleep(st.cfg.lookup_interval.max(Duration::from_secs(1))).await;
    };
    tracing::info!(node = %node_uuid, api = %api.url, lookup_version = api.lookup_version, "lookup done");
    Ok(Found {
        api,
        node_uuid,
        heartbeat_timeout: timeout,
    })
}

/// Resolves once the running command's progress differs from `reported` (what
/// the last heartbeat could show), checked every `progress_interval`: the
/// conductor reads the progress when a heartbeat arrives, and IPA's own
/// heartbeats are minutes apart. Never resolves when the interval is 0.
async fn progress_moved(st: &State, reported: Option<(u64, u64)>) {
    let every = st.cfg.progress_interval;
    if every.is_zero() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(every).await;
        if let Some(now) = st.current_progress().map(|p| p.signature())
            && Some(now) != reported
            && now.1 > 0
        {
            return;
        }
    }
}

/// Heartbeat forever (until the agent is locked down or stopped).
pub async fn heartbeat_forever(
    st: Arc<State>,
    found: Found,
    callback_url: String,
    cert_pem: Option<String>,
) -> Result<()> {
    let Found {
        api,
        node_uuid,
        heartbeat_timeout: timeout,
    } = found;
    // IPA sends the certificate only to APIs that can pin it
    let cert_pem = cert_pem.filter(|_| api.supports_verify_ca());
    let interval = st
        .cfg
        .heartbeat_interval
        .unwrap_or(Duration::from_secs(timeout));
    let mut last_forced = tokio::time::Instant::now() - st.cfg.heartbeat_min_interval;
    loop {
        if st.is_locked() {
            tracing::info!("agent locked down: heartbeats stop");
            std::future::pending::<()>().await;
        }
        let token = st
            .token
            .read()
            .await
            .clone()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        let body = HeartbeatBody {
            callback_url: callback_url.clone(),
            agent_token: token,
            agent_version: AGENT_VERSION.to_owned(),
            agent_verify_ca: cert_pem.clone(),
            agent_status: None,
            agent_status_message: None,
        };
        let r = with_request_id(
            &st,
            st.http
                .post(format!("{}/v1/heartbeat/{node_uuid}", api.url)),
        )
        .header(VERSION_HEADER, format!("1.{}", api.heartbeat_version))
        .timeout(Duration::from_secs(30))
        .json(&body)
        .send()
        .await;
        let next = match r {
            Ok(resp) if resp.status().is_success() => {
                if st.cfg.heartbeat_interval.is_some() {
                    interval
                } else {
                    jitter(interval, 0.3, 0.6)
                }
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                tracing::warn!(%status, body = %text.chars().take(300).collect::<String>(), "heartbeat refused");
                jitter(Duration::from_secs(5), 1.0, 2.0).min(interval)
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                jitter(Duration::from_secs(5), 1.0, 2.0).min(interval)
            }
        };
        let reported = st.current_progress().map(|p| p.signature());
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = progress_moved(&st, reported) => {}
            _ = st.force_heartbeat.notified() => {
                let earliest = last_forced + st.cfg.heartbeat_min_interval;
                tokio::time::sleep_until(earliest).await;
                last_forced = tokio::time::Instant::now();
            }
        }
    }
}
