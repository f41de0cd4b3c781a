//! The Ironic API as the end-to-end tests' client sees it: JSON requests at the
//! newest microversion, optional HTTP basic auth, and a wait for a stable
//! provision state that ends early on a failure state with the node's
//! `last_error`.

use std::time::{Duration, Instant};

use serde_json::Value;

/// A client of one Ironic API endpoint.
pub struct Api {
    /// The endpoint, e.g. `http://10.99.0.1:6385`.
    pub base: String,
    /// The underlying client (30 s per request).
    pub http: reqwest::Client,
    basic_auth: Option<(String, String)>,
    state_timeout: Duration,
}

impl Api {
    /// A client of `base`; every `wait_state` gives up after `state_timeout`.
    pub fn new(base: &str, state_timeout: Duration) -> Api {
        Api {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            basic_auth: None,
            state_timeout,
        }
    }

    /// Send every request with HTTP basic auth.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Api {
        self.basic_auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let req = match &self.basic_auth {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        };
        let resp = req
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// JSON-patch a node.
    pub async fn patch(&self, uuid: &str, ops: Value) -> Result<Value, String> {
        self.send(
            self.http
                .patch(format!("{}/v1/nodes/{uuid}", self.base))
                .json(&ops),
        )
        .await
    }

    /// `PUT /v1/nodes/{uuid}/states/provision`.
    pub async fn provision(&self, uuid: &str, body: Value) -> Result<Value, String> {
        self.send(
            self.http
                .put(format!("{}/v1/nodes/{uuid}/states/provision", self.base))
                .json(&body),
        )
        .await
    }

    /// Wait for a stable provision state; a failure state ends the wait with
    /// the node's last_error. Each state change is printed with `name`.
    /// Returns when (since the call) the agent's first heartbeat was seen
    /// (`agent_url` appearing in `driver_internal_info`) and that URL, if it was.
    pub async fn wait_state(
        &self,
        uuid: &str,
        want: &str,
        name: &str,
    ) -> Result<(Option<Duration>, Option<String>), String> {
        let deadline = Instant::now() + self.state_timeout;
        let mut last = String::new();
        let t = Instant::now();
        let mut heartbeat = None;
        let mut url = None;
        loop {
            let n = self.get(&format!("/v1/nodes/{uuid}")).await?;
            if heartbeat.is_none()
                && let Some(u) = n["driver_internal_info"]["agent_url"].as_str()
            {
                heartbeat = Some(t.elapsed());
                url = Some(u.to_owned());
            }
            let state = n["provision_state"].as_str().unwrap_or_default().to_owned();
            if state == want && n["target_provision_state"].is_null() {
                return Ok((heartbeat, url));
            }
            if state.ends_with("failed") || state == "error" {
                return Err(format!(
                    "node went to {state} waiting for {want}: {}",
                    n["last_error"]
                ));
            }
            if state != last {
                eprintln!("  [{:>6.1}s] {name}: {state}", t.elapsed().as_secs_f64());
                last = state;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node still {last} after {:?} waiting for {want}",
                    self.state_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
