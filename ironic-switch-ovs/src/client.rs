//! A small OVSDB client (RFC 7047, JSON-RPC 1.0 over a Unix or TCP stream): one
//! connection shared by every caller, requests matched to replies by id, echo
//! requests answered, and a monitor on `Open_vSwitch.cur_cfg` so that a writer can
//! wait until ovs-vswitchd has applied its change (as `ovs-vsctl` does).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

use crate::error::OvsError;

/// The database every call uses.
pub const DB: &str = "Open_vSwitch";

/// Where ovsdb-server listens: `unix:PATH` or `tcp:HOST:PORT` (as `ovs-vsctl --db`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP address (`host:port`, IPv6 in brackets).
    Tcp(String),
}

impl Endpoint {
    /// Parse `unix:/run/openvswitch/db.sock` or `tcp:127.0.0.1:6640`.
    pub fn parse(s: &str) -> Result<Endpoint, OvsError> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(OvsError::Invalid(
                    "address unix: needs a socket path".into(),
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(p)));
        }
        if let Some(hp) = s.strip_prefix("tcp:") {
            let ok = hp
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(OvsError::Invalid(format!(
                    "address {s:?}: expected tcp:HOST:PORT"
                )));
            }
            return Ok(Endpoint::Tcp(hp.to_owned()));
        }
        if s.starts_with("ssl:") {
            return Err(OvsError::Invalid(format!(
                "address {s:?}: ssl: is not supported by this driver; use unix: locally or tcp: over a trusted management network"
            )));
        }
        Err(OvsError::Invalid(format!(
            "address {s:?}: expected unix:PATH or tcp:HOST:PORT"
        )))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

type Reply = Result<Value, OvsError>;

struct Conn {
    endpoint: String,
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next_id: AtomicU64,
    alive: AtomicBool,
    cur_cfg: watch::Sender<i64>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    fn fail_all(&self, why: &str) {
        self.alive.store(false, Ordering::SeqCst);
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in p.drain() {
            let _ = tx.send(Err(OvsError::Closed(format!("{} ({why})", self.endpoint))));
        }
    }

    async fn send(&self, msg: &Value) -> Result<(), OvsError> {
        let mut w = self.writer.lock().await;
        let bytes = serde_json::to_vec(msg).map_err(|e| OvsError::Protocol(e.to_string()))?;
        let r = async {
            w.write_all(&bytes).await?;
            w.flush().await
        }
        .await;
        r.map_err(|e| {
            self.fail_all(&e.to_string());
            OvsError::Closed(format!("{} ({e})", self.endpoint))
        })
    }

    async fn call(&self, method: &str, params: Value, timeout: Duration) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        if !self.alive.load(Ordering::SeqCst) {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(OvsError::Closed(self.endpoint.clone()));
        }
        self.send(&json!({"method": method, "params": params, "id": id}))
            .await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(OvsError::Closed(self.endpoint.clone())),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(OvsError::Timeout(format!(
                    "OVSDB at {} did not answer {method} within {timeout:?}",
                    self.endpoint
                )))
            }
        }
    }
}

/// Dispatch one message from the server.
fn dispatch(conn: &Conn, msg: Value, echo: &tokio::sync::mpsc::UnboundedSender<Value>) {
    match msg.get("method").and_then(Value::as_str) {
        Some("echo") => {
            let reply = json!({"id": msg.get("id").cloned().unwrap_or(Value::Null),
                               "result": msg.get("params").cloned().unwrap_or(json!([])),
                               "error": null});
            let _ = echo.send(reply);
        }
        Some("update") => {
            if let Some(u) = msg.get("params").and_then(|p| p.get(1)) {
                note_cfg(u, &conn.cur_cfg);
            }
        }
        Some(_) => {}
        None => {
            let Some(id) = msg.get("id").and_then(Value::as_u64) else {
                return;
            };
            let tx = conn
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(tx) = tx {
                let r = match msg.get("error") {
                    Some(e) if !e.is_null() => Err(OvsError::Rpc(e.to_string())),
                    _ => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(r);
            }
        }
    }
}

/// Take `cur_cfg` out of a monitor's table updates.
fn note_cfg(updates: &Value, cfg: &watch::Sender<i64>) {
    if let Some(rows) = updates.get(DB).and_then(Value::as_object) {
        for row in rows.values() {
            if let Some(c) = row
                .get("new")
                .and_then(|n| n.get("cur_cfg"))
                .and_then(Value::as_i64)
            {
                // cur_cfg only grows; the monitor's first reply may arrive after an update
                cfg.send_if_modified(|cur| {
                    let newer = c > *cur;
                    if newer {
                        *cur = c;
                    }
                    newer
                });
            }
        }
    }
}

async fn read_loop(
    mut r: Box<dyn AsyncRead + Send + Unpin>,
    conn: std::sync::Weak<Conn>,
    echo: tokio::sync::mpsc::UnboundedSender<Value>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let why = loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) => break "end of stream".to_owned(),
            Ok(n) => n,
            Err(e) => break e.to_string(),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        let mut bad = None;
        {
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            loop {
                match it.next() {
                    Some(Ok(v)) => {
                        consumed = it.byte_offset();
                        let Some(c) = conn.upgrade() else { return };
                        dispatch(&c, v, &echo);
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        bad = Some(e.to_string());
                        break;
                    }
                    None => break,
                }
            }
        }
        if let Some(e) = bad {
            break format!("unparsable message: {e}");
        }
        buf.drain(..consumed);
    };
    if let Some(c) = conn.upgrade() {
        tracing::warn!(endpoint = %c.endpoint, reason = %why, "OVSDB connection lost");
        c.fail_all(&why);
    }
}

/// An OVSDB client that connects on first use and reconnects after a failure.
pub struct Client {
    endpoint: Endpoint,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.to_string())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client for `endpoint`; every request gives up after `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Self {
        Client {
            endpoint,
            timeout,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<Arc<Conn>, OvsError> {
        let ep = self.endpoint.to_string();
        let err = |source| OvsError::Connect {
            endpoint: ep.clone(),
            source,
        };
        let (r, w): (
            Box<dyn AsyncRead + Send + Unpin>,
            Box<dyn AsyncWrite + Send + Unpin>,
        ) = match &self.endpoint {
            Endpoint::Unix(p) => {
                let s = tokio::time::timeout(self.timeout, tokio::net::UnixStream::connect(p))
                    .await
                    .map_err(|_| {
                        OvsError::Timeout(format!("connecting to OVSDB at {ep} timed out"))
                    })?
                    .map_err(err)?;
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Endpoint::Tcp(a) => {
                let s = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(a))
                    .await
                    .map_err(|_| {
                        OvsError::Timeout(format!("connecting to OVSDB at {ep} timed out"))
                    })?
                    .map_err(err)?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
        };
        let (cfg_tx, _) = watch::channel(-1i64);
        let (echo_tx, mut echo_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let conn = Arc::new_cyclic(|weak: &std::sync::Weak<Conn>| {
            let reader = tokio::spawn(read_loop(r, weak.clone(), echo_tx));
            Conn {
                endpoint: ep.clone(),
                writer: tokio::sync::Mutex::new(w),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                alive: AtomicBool::new(true),
                cur_cfg: cfg_tx,
                reader,
            }
        });
        // echo replies go out through the same writer
        let weak = Arc::downgrade(&conn);
        tokio::spawn(async move {
            while let Some(reply) = echo_rx.recv().await {
                let Some(c) = weak.upgrade() else { break };
                if c.send(&reply).await.is_err() {
                    break;
                }
            }
        });
        let initial = conn
            .call(
                "monitor",
                json!([DB, "ironic-rs-cur-cfg", {DB: {"columns": ["cur_cfg"]}}]),
                self.timeout,
            )
            .await?;
        note_cfg(&initial, &conn.cur_cfg);
        Ok(conn)
    }

    async fn conn(&self) -> Result<Arc<Conn>, OvsError> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref()
            && c.alive.load(Ordering::SeqCst)
        {
            return Ok(c.clone());
        }
        let c = self.connect().await?;
        *g = Some(c.clone());
        Ok(c)
    }

    /// Run one transaction; the operations' results, or the first failed
    /// operation's error.
    pub async fn transact(&self, ops: Vec<Value>) -> Result<Vec<Value>, OvsError> {
        let conn = self.conn().await?;
        let mut params = vec![json!(DB)];
        params.extend(ops);
        let res = conn
            .call("transact", Value::Array(params), self.timeout)
            .await?;
        let results = res
            .as_array()
            .cloned()
            .ok_or_else(|| OvsError::Protocol(format!("transact result is not an array: {res}")))?;
        for r in &results {
            if let Some(e) = r.get("error").and_then(Value::as_str) {
                return Err(OvsError::Op {
                    error: e.to_owned(),
                    details: r.get("details").and_then(Value::as_str).map(str::to_owned),
                });
            }
        }
        // an error after the operations (e.g. a commit failure) comes as an extra element
        Ok(results)
    }

    /// Wait until ovs-vswitchd has applied configuration `next_cfg` (its `cur_cfg`
    /// reached it), within `timeout`.
    pub async fn wait_applied(&self, next_cfg: i64, timeout: Duration) -> Result<(), OvsError> {
        let conn = self.conn().await?;
        let mut rx = conn.cur_cfg.subscribe();
        let wait = rx.wait_for(|c| *c >= next_cfg);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(OvsError::Closed(conn.endpoint.clone())),
            Err(_) => Err(OvsError::Timeout(format!(
                "ovs-vswitchd did not apply the change within {timeout:?} (cur_cfg {} < next_cfg {next_cfg}); is ovs-vswitchd running?",
                *conn.cur_cfg.borrow()
            ))),
        }
    }
}
