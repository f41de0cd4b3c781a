//! Authentication: none, HTTP basic, or a Redfish session (`X-Auth-Token`),
//! chosen per `redfish_auth_type`; sessions are re-created when the BMC answers
//! 401 (expired or logged out), logged out (DELETE) when the client gives them
//! up, and bounded per BMC by [`BmcSessions`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use super::sessions::{BmcSessions, Slot};
use super::{ROOT, RedfishClient, Response};
use crate::config::{AuthType, RedfishDriverInfo};
use crate::error::{RedfishError, Result};
use crate::models::{self, ServiceRoot};
use ironic_core::Secret;

enum Mode {
    /// Not decided yet (auto/session need the service root first).
    Unresolved,
    /// No credentials configured.
    Anonymous,
    /// `Authorization: Basic ...`.
    Basic(HeaderValue),
    /// A session: where to create it, and the current one.
    Session { uri: String, live: Option<Live> },
}

/// A session the BMC gave: its token, where to DELETE it, and its slot among
/// the BMC's sessions (given back when this is dropped).
pub(crate) struct Live {
    pub(crate) token: HeaderValue,
    pub(crate) location: Option<String>,
    _slot: Slot,
}

pub(crate) struct State {
    mode: Mode,
    generation: u64,
}

type SharedState = Arc<tokio::sync::Mutex<State>>;

/// The authentication of one client.
pub(crate) struct Auth {
    user: Option<String>,
    password: Option<Secret>,
    kind: AuthType,
    state: SharedState,
    /// Requests of this client under way (an idle client's session may be
    /// logged out for another client of the same BMC).
    in_flight: Arc<AtomicUsize>,
    pool: Arc<BmcSessions>,
}

/// A client that holds (or may hold) a session at a BMC, as its
/// [`BmcSessions`] sees it: enough to log an idle one out.
pub(crate) struct Holder {
    state: std::sync::Weak<tokio::sync::Mutex<State>>,
    in_flight: std::sync::Weak<AtomicUsize>,
}

impl Holder {
    /// Whether its client still exists.
    pub(crate) fn alive(&self) -> bool {
        self.state.strong_count() > 0
    }
}

/// Ends a request's count, however the request ends.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
    pub(crate) fn new(info: &RedfishDriverInfo, pool: Arc<BmcSessions>) -> Self {
        let auth = Auth {
            user: info.username.clone(),
            password: info.password.clone(),
            kind: info.auth_type,
            state: Arc::new(tokio::sync::Mutex::new(State {
                mode: Mode::Unresolved,
                generation: 0,
            })),
            in_flight: Arc::new(AtomicUsize::new(0)),
            pool,
        };
        auth.pool.register(Holder {
            state: Arc::downgrade(&auth.state),
            in_flight: Arc::downgrade(&auth.in_flight),
        });
        auth
    }

    /// The session slots of this client's BMC.
    pub(crate) fn pool(&self) -> &Arc<BmcSessions> {
        &self.pool
    }

    /// Count a request under way until the guard is dropped.
    pub(crate) fn start_request(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.in_flight.clone())
    }

    /// Whether no request of this client is under way.
    pub(crate) fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// The live session, taken out (to log it out when the client goes).
    pub(crate) fn take_live(&self) -> Option<Live> {
        let mut st = self.state.try_lock().ok()?;
        match &mut st.mode {
            Mode::Session { live, .. } => live.take(),
            _ => None,
        }
    }

    /// Log the session out (DELETE) unless a login or another request holds
    /// the state; true when one was logged out.
    pub(crate) async fn logout(&self, client: &RedfishClient) -> bool {
        let live = {
            let Ok(mut st) = self.state.try_lock() else {
                return false;
            };
            match &mut st.mode {
                Mode::Session { live, .. } => live.take(),
                _ => None,
            }
        };
        match live {
            Some(live) => {
                client.delete_session(&live).await;
                self.pool.logged_out();
                true
            }
            None => false,
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
        if let Mode::Session { uri, live: None } = &st.mode {
            let uri = uri.clone();
            let slot = self.slot(client).await?;
            match self.login(client, &uri).await? {
                Some((token, location)) => {
                    self.pool.logged_in();
                    st.mode = Mode::Session {
                        uri,
                        live: Some(Live {
                            token,
                            location,
                            _slot: slot,
                        }),
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
            Mode::Session { live, .. } => live.as_ref().map(|l| l.token.clone()),
        };
        Ok((h, st.generation))
    }

    /// A session slot at this BMC: a free one, or one of an idle client of the
    /// same BMC (its session logged out), or one handed over by a busy client
    /// when it finishes a request, waiting at most the read timeout.
    async fn slot(&self, client: &RedfishClient) -> Result<Slot> {
        let patience = client.config().read_timeout;
        let deadline = std::time::Instant::now() + patience;
        let mut told = false;
        loop {
            if let Some(slot) = self.pool.try_acquire() {
                return Ok(slot);
            }
            if self.reclaim_idle(client).await {
                continue;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(RedfishError::Busy(format!(
                    "The {} Redfish sessions this conductor may hold at the BMC at {} stayed in use for {}s (max_sessions_per_bmc)",
                    self.pool.limit(),
                    client.address,
                    patience.as_secs()
                )));
            }
            if !told {
                tracing::info!(bmc = %client.address, limit = self.pool.limit(), "all Redfish sessions of this BMC are in use; waiting for one");
                told = true;
            }
            // A busy client hands its session over when it finishes a request;
            // look again for idle ones now and then (one may have gone idle
            // before this one started waiting).
            let round = (deadline - now).min(std::time::Duration::from_millis(200));
            if let Some(slot) = self.pool.acquire(round).await {
                return Ok(slot);
            }
        }
    }

    /// Log out the session of another client of this BMC that has no request
    /// under way; true when one was.
    async fn reclaim_idle(&self, client: &RedfishClient) -> bool {
        for h in self.pool.holders() {
            let (Some(state), Some(in_flight)) = (h.state.upgrade(), h.in_flight.upgrade()) else {
                continue;
            };
            if Arc::ptr_eq(&state, &self.state) || in_flight.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let live = {
                let Ok(mut st) = state.try_lock() else {
                    continue;
                };
                match &mut st.mode {
                    Mode::Session { live, .. } => live.take(),
                    _ => None,
                }
            };
            if let Some(live) = live {
                tracing::debug!(bmc = %client.address, "logging out an idle Redfish session for another client");
                client.delete_session(&live).await;
                self.pool.logged_out();
                return true;
            }
        }
        false
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
                && let Mode::Session { live, .. } = &mut st.mode
            {
                // rejected: the BMC no longer has it, nothing to log out
                *live = None;
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
            (Some(uri), _) => Ok(Mode::Session { uri, live: None }),
            (None, AuthType::Session) => Err(RedfishError::Unsupported(format!(
                "The Redfish BMC at {} offers no SessionService; set redfish_auth_type to basic or auto",
                client.address
            ))),
            (None, _) => Ok(Mode::Basic(basic)),
        }
    }

    /// Create a session: its token and where to delete it. `None`: the BMC has
    /// no working session service and the auth type allows falling back to basic.
    async fn login(
        &self,
        client: &RedfishClient,
        uri: &str,
    ) -> Result<Option<(HeaderValue, Option<String>)>> {
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
                    // where to DELETE it: Location, else the session's @odata.id
                    let location = resp.location.clone().or_else(|| {
                        serde_json::from_slice::<serde_json::Value>(&resp.body)
                            .ok()
                            .and_then(|v| v.get("@odata.id")?.as_str().map(str::to_owned))
                    });
                    tracing::debug!(bmc = %client.address, user, session = ?location, "Redfish session created");
                    Ok(Some((sensitive(t.expose())?, location)))
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
            // e.g. iDRAC's 503 RAC0218 "The maximum number of user sessions is
            // reached" (sessions held by others): as sushy's SessionOrBasicAuth
            status @ 500..=599 if self.kind == AuthType::Auto => {
                tracing::warn!(bmc = %client.address, status = status, detail = %models::error_messages(&resp.body), "the Redfish BMC refused a new session; using basic auth");
                Ok(None)
            }
            _ => Err(client
                .check(&Method::POST, uri, resp)
                .err()
                .unwrap_or_else(|| RedfishError::Other("session creation failed".into()))),
        }
    }
}
