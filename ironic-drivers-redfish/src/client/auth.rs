//! Authentication: none, HTTP basic, or a Redfish session (`X-Auth-Token`),
//! chosen per `redfish_auth_type`; sessions are re-created when the BMC answers
//! 401 (expired or logged out).

use std::fmt;

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use super::{ROOT, RedfishClient, Response};
use crate::config::{AuthType, RedfishDriverInfo};
use crate::error::{RedfishError, Result};
use crate::models::{self, ServiceRoot};
use ironic_core::Secret;

#[derive(Clone)]
enum Mode {
    /// Not decided yet (auto/session need the service root first).
    Unresolved,
    /// No credentials configured.
    Anonymous,
    /// `Authorization: Basic ...`.
    Basic(HeaderValue),
    /// A session: where to create it, and the current token.
    Session {
        uri: String,
        token: Option<HeaderValue>,
    },
}

struct State {
    mode: Mode,
    generation: u64,
}

/// The authentication of one client.
pub(crate) struct Auth {
    user: Option<String>,
    password: Option<Secret>,
    kind: AuthType,
    state: tokio::sync::Mutex<State>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn sensitive(s: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(s).map_err(|_| {
        RedfishError::InvalidParameter(
            "redfish_username/redfish_password or the session token contain characters that cannot be sent in an HTTP header".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Auth {
    pub(crate) fn new(info: &RedfishDriverInfo) -> Self {
        Auth {
            user: info.username.clone(),
            password: info.password.clone(),
            kind: info.auth_type,
            state: tokio::sync::Mutex::new(State {
                mode: Mode::Unresolved,
                generation: 0,
            }),
        }
    }

    fn basic(&self) -> Result<Option<HeaderValue>> {
        match (&self.user, &self.password) {
            (Some(u), Some(p)) => {
                let raw = format!("{u}:{}", p.expose());
                let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                Ok(Some(sensitive(&format!("Basic {enc}"))?))
            }
            _ => Ok(None),
        }
    }

    /// The error for a 401.
    pub(crate) fn unauthorized(&self, address: &str, resp: &Response) -> RedfishError {
        RedfishError::Unauthorized {
            address: address.to_owned(),
            user: self.user.clone().unwrap_or_else(|| "(none)".into()),
            status: resp.status,
            detail: self.redact(models::error_messages(&resp.body)),
        }
    }

    /// `text` with the password masked, in case a BMC echoes it in an error.
    pub(crate) fn redact(&self, text: String) -> String {
        match &self.password {
            Some(p) if !p.is_empty() && text.contains(p.expose()) => {
                text.replace(p.expose(), ironic_core::secret::MASK)
            }
            _ => text,
        }
    }

    /// Whether requests carry a session token.
    pub(crate) async fn uses_session(&self) -> bool {
        matches!(self.state.lock().await.mode, Mode::Session { .. })
    }

    /// The header to send (logging in first if needed) and the login generation
    /// it belongs to.
    pub(crate) async fn header(
        &self,
        client: &RedfishClient,
    ) -> Result<(Option<HeaderValue>, u64)> {
        let mut st = self.state.lock().await;
        if matches!(st.mode, Mode::Unresolved) {
            st.mode = self.resolve(client).await?;
        }
        if let Mode::Session { uri, token: None } = &st.mode {
            let uri = uri.clone();
            match self.login(client, &uri).await? {
                Some(t) => {
                    st.mode = Mode::Session {
                        uri,
                        token: Some(t),
                    }
                }
                None => {
                    st.mode = match self.basic()? {
                        Some(b) => Mode::Basic(b),
                        None => Mode::Anonymous,
                    }
                }
            }
            st.generation += 1;
        }
        let h = match &st.mode {
            Mode::Anonymous | Mode::Unresolved => None,
            Mode::Basic(h) => Some(h.clone()),
            Mode::Session { token, .. } => token.clone(),
        };
        Ok((h, st.generation))
    }

    /// Log in again after the session of `generation` was rejected. When another
    /// request already did, its session is used.
    pub(crate) async fn relogin(
        &self,
        client: &RedfishClient,
        generation: u64,
    ) -> Result<(Option<HeaderValue>, u64)> {
        {
            let mut st = self.state.lock().await;
            if st.generation == generation
                && let Mode::Session { token, .. } = &mut st.mode
            {
                *token = None;
            }
        }
        self.header(client).await
    }

    async fn resolve(&self, client: &RedfishClient) -> Result<Mode> {
        let basic = self.basic()?;
        let Some(basic) = basic else {
            return Ok(Mode::Anonymous);
        };
        if self.kind == AuthType::Basic {
            return Ok(Mode::Basic(basic));
        }
        // The service root is open by the spec; some BMCs want auth anyway.
        let url = client.url(ROOT);
        let mut resp = client
            .with_retries(&Method::GET, &url, None, &HeaderMap::new(), None)
            .await?;
        if resp.status == 401 {
            resp = client
                .with_retries(
                    &Method::GET,
                    &url,
                    None,
                    &HeaderMap::new(),
                    Some(basic.clone()),
                )
                .await?;
        }
        let resp = client.check(&Method::GET, ROOT, resp)?;
        let root: ServiceRoot =
            models::parse(&resp.body).map_err(|detail| RedfishError::Parse { url, detail })?;
        match (root.sessions_uri(), self.kind) {
            (Some(uri), _) => Ok(Mode::Session { uri, token: None }),
            (None, AuthType::Session) => Err(RedfishError::Unsupported(format!(
                "The Redfish BMC at {} offers no SessionService; set redfish_auth_type to basic or auto",
                client.address
            ))),
            (None, _) => Ok(Mode::Basic(basic)),
        }
    }

    /// Create a session. `None`: the BMC has no working session service and the
    /// auth type allows falling back to basic.
    async fn login(&self, client: &RedfishClient, uri: &str) -> Result<Option<HeaderValue>> {
        let (Some(user), Some(password)) = (&self.user, &self.password) else {
            return Ok(None);
        };
        let body = json!({"UserName": user, "Password": password.expose()});
        let url = client.url(uri);
        let resp = client
            .with_retries(&Method::POST, &url, Some(&body), &HeaderMap::new(), None)
            .await?;
        match resp.status {
            200..=299 => match &resp.token {
                Some(t) => {
                    tracing::debug!(bmc = %client.address, user, "Redfish session created");
                    Ok(Some(sensitive(t.expose())?))
                }
                None if self.kind == AuthType::Auto => {
                    tracing::warn!(bmc = %client.address, "Redfish session created without X-Auth-Token; using basic auth");
                    Ok(None)
                }
                None => Err(RedfishError::Other(format!(
                    "The Redfish BMC at {} created a session but sent no X-Auth-Token",
                    client.address
                ))),
            },
            401 | 403 => Err(self.unauthorized(&client.address, &resp)),
            404 | 405 | 501 if self.kind == AuthType::Auto => {
                tracing::info!(bmc = %client.address, status = resp.status, "Redfish sessions not available; using basic auth");
                Ok(None)
            }
            _ => Err(client
                .check(&Method::POST, uri, resp)
                .err()
                .unwrap_or_else(|| RedfishError::Other("session creation failed".into()))),
        }
    }
}
