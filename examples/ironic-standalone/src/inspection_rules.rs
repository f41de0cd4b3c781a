//! `[inspection_rules]`: the operator's built-in rules file, secret masking, and
//! the HTTP client of `api-call` actions (Ironic's `[inspection_rules]` options
//! and its `CallAPIHookAction`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::inspection_rules::{ApiCall, MaskSecrets, RuleHttp, RulesConfig, parse_built_in};
use serde::Deserialize;

/// `[inspection_rules]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InspectionRulesSection {
    /// A YAML (or JSON) file with a list of built-in rules, run with the rules
    /// stored through the API (Ironic's `built_in_rules`). Read and validated at
    /// start: a bad file stops the service with the rule and the reason.
    pub built_in_rules: Option<PathBuf>,
    /// Whether rules see the secrets (`password`, `auth_token`, `bmc_password`)
    /// of the inspection data: `always` masked (default), `never`, or masked
    /// except for `sensitive` rules. Node secrets are always masked.
    pub mask_secrets: MaskSecrets,
}

/// Read a built-in rules file (YAML; JSON is YAML too).
pub fn load_built_in(
    path: &Path,
) -> Result<Vec<ironic_core::inspection_rules::InspectionRule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("built-in inspection rules file {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_norway::from_str(&text).map_err(|e| {
        format!(
            "built-in inspection rules file {}: not valid YAML: {e}",
            path.display()
        )
    })?;
    parse_built_in(&doc)
        .map_err(|e| format!("built-in inspection rules file {}: {e}", path.display()))
}

/// The engine's settings from `[inspection_rules]`, with the HTTP client.
pub fn rules_config(s: &InspectionRulesSection) -> Result<RulesConfig, String> {
    let mut c = RulesConfig::default();
    c.mask_secrets = s.mask_secrets;
    if let Some(p) = &s.built_in_rules {
        c.built_in = load_built_in(p)?;
        tracing::info!(file = %p.display(), rules = c.built_in.len(), "loaded built-in inspection rules");
    }
    c.http = Some(std::sync::Arc::new(ReqwestRuleHttp));
    Ok(c)
}

/// `api-call` over reqwest, with urllib3's retry rules as Ironic configures
/// them: connection errors and 429/500/502/503/504 are retried `retries`
/// times, waiting `backoff_factor * 2^(n-1)` seconds before the n-th retry
/// (none before the first, at most 120 s); the final answer must not be an
/// HTTP error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReqwestRuleHttp;

#[async_trait]
impl RuleHttp for ReqwestRuleHttp {
    async fn get(&self, call: &ApiCall) -> Result<(), String> {
        let mut b = reqwest::Client::builder().timeout(call.timeout);
        for (scheme, url) in &call.proxies {
            let p = match scheme.as_str() {
                "http" => reqwest::Proxy::http(url),
                "https" => reqwest::Proxy::https(url),
                _ => reqwest::Proxy::all(url),
            }
            .map_err(|e| format!("invalid proxy {url}: {e}"))?;
            b = b.proxy(p);
        }
        let client = b.build().map_err(|e| e.to_string())?;
        let mut attempt = 0u32;
        loop {
            let mut req = client.get(&call.url);
            for (k, v) in &call.headers {
                req = req.header(k, v);
            }
            let retryable = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let again = matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504);
                    if !again || attempt >= call.retries {
                        return if status.is_client_error() || status.is_server_error() {
                            Err(format!("{status} for url: {}", call.url))
                        } else {
                            Ok(())
                        };
                    }
                    format!("{status}")
                }
                Err(e) if attempt >= call.retries => return Err(e.to_string()),
                Err(e) => e.to_string(),
            };
            attempt += 1;
            let wait = if attempt <= 1 {
                0.0
            } else {
                (call.backoff_factor * 2f64.powi(attempt as i32 - 1)).min(120.0)
            };
            tracing::debug!(url = %call.url, attempt, reason = %retryable, "api-call retry");
            tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;
        }
    }
}
