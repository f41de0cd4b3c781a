//! The client: one worker task per BMC that owns the BMC's session and runs its
//! commands one at a time, keeps the session alive while it is in use and closes it
//! when idle; callers get bounded retries with backoff on retryable errors.

use std::collections::HashMap;
use std::sync::Mutex;

use ironic_core::Secret;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};

use crate::config::{IpmiConfig, IpmiDriverInfo};
use crate::error::Error;
use crate::session::crypto::CipherSuite;
use crate::session::packet::Response;
use crate::session::{Privilege, Session, Target};

/// What identifies a BMC session (secrets are compared separately).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BmcKey {
    address: String,
    port: u16,
    user: String,
    privilege: Privilege,
    suite: Option<CipherSuite>,
}

struct Handle {
    tx: mpsc::Sender<Job>,
    password: Secret,
    kg: Option<Secret>,
}

/// One IPMI request.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub netfn: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
    /// What it is, for messages ("Get Chassis Status").
    pub what: &'static str,
}

impl Request {
    pub fn new(netfn: u8, cmd: u8, data: impl Into<Vec<u8>>, what: &'static str) -> Self {
        Request {
            netfn,
            cmd,
            data: data.into(),
            what,
        }
    }
}

struct Job {
    req: Request,
    reply: oneshot::Sender<Result<Response, Error>>,
}

/// Sessions to every BMC the driver talks to. Cheap to share (`Arc`).
pub(crate) struct IpmiClient {
    config: IpmiConfig,
    bmcs: Mutex<HashMap<BmcKey, Handle>>,
}

impl std::fmt::Debug for IpmiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.bmcs.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("IpmiClient")
            .field("config", &self.config)
            .field("bmcs", &n)
            .finish()
    }
}

impl IpmiClient {
    pub fn new(config: IpmiConfig) -> Self {
        IpmiClient {
            config,
            bmcs: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &IpmiConfig {
        &self.config
    }

    /// Run a request; succeed only on completion code 0 and return the data.
    /// Retryable failures are retried with backoff until `command_retry_timeout`.
    pub async fn call(&self, info: &IpmiDriverInfo, req: Request) -> Result<Vec<u8>, Error> {
        let r = self.call_raw(info, req.clone()).await?;
        if r.completion != 0 {
            return Err(Error::Completion {
                bmc: info.bmc(),
                what: req.what,
                code: r.completion,
            });
        }
        Ok(r.data)
    }

    /// Run a request and return the response whatever its completion code
    /// (retrying retryable completion codes).
    pub async fn call_raw(&self, info: &IpmiDriverInfo, req: Request) -> Result<Response, Error> {
        let bound = info.command_retry_timeout;
        let deadline = Instant::now() + bound;
        let mut backoff = self.config.retry_backoff;
        let mut last: Option<Error> = None;
        loop {
            let res = match timeout_at(deadline, self.call_once(info, req.clone())).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Error::Deadline {
                        bmc: info.bmc(),
                        what: req.what.to_owned(),
                        bound,
                        last: last
                            .map(|e| format!(" (last error: {e})"))
                            .unwrap_or_default(),
                    });
                }
            };
            let err = match res {
                Ok(r) if r.completion == 0 => return Ok(r),
                Ok(r) => {
                    let e = Error::Completion {
                        bmc: info.bmc(),
                        what: req.what,
                        code: r.completion,
                    };
                    if !e.is_retryable() {
                        return Ok(r);
                    }
                    e
                }
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            if Instant::now() + backoff >= deadline {
                return Err(err);
            }
            tracing::info!(bmc = %info.bmc(), what = req.what, error = %err, backoff_ms = backoff.as_millis() as u64, "retrying IPMI command");
            sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.retry_backoff_max);
            last = Some(err);
        }
    }

    async fn call_once(&self, info: &IpmiDriverInfo, req: Request) -> Result<Response, Error> {
        // A worker that just went idle closes its queue; then start a new one.
        for _ in 0..3 {
            let tx = self.worker_for(info);
            let (reply, rx) = oneshot::channel();
            if tx
                .send(Job {
                    req: req.clone(),
                    reply,
                })
                .await
                .is_err()
            {
                continue;
            }
            match rx.await {
                Ok(r) => return r,
                Err(_) => continue,
            }
        }
        Err(Error::Timeout {
            bmc: info.bmc(),
            what: format!("{} (the session worker stopped)", req.what),
            attempts: 3,
        })
    }

    fn worker_for(&self, info: &IpmiDriverInfo) -> mpsc::Sender<Job> {
        let key = BmcKey {
            address: info.address.clone(),
            port: info.port,
            user: info.username.clone(),
            privilege: info.priv_level,
            suite: info.cipher_suite,
        };
        let mut map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(&key)
            && !h.tx.is_closed()
            && h.password == info.password
            && h.kg == info.kg
        {
            return h.tx.clone();
        }
        map.retain(|_, h| !h.tx.is_closed());
        let (tx, rx) = mpsc::channel(256);
        let worker = Worker {
            info: info.clone(),
            config: self.config.clone(),
            session: None,
            suite: info.cipher_suite,
        };
        tokio::spawn(worker.run(rx));
        map.insert(
            key,
            Handle {
                tx: tx.clone(),
                password: info.password.clone(),
                kg: info.kg.clone(),
            },
        );
        tx
    }

    /// Number of BMCs with a live worker (for tests and metrics).
    #[allow(dead_code)]
    pub fn live_workers(&self) -> usize {
        let map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|h| !h.tx.is_closed()).count()
    }
}

/// Owns one BMC's session.
struct Worker {
    info: IpmiDriverInfo,
    config: IpmiConfig,
    session: Option<Session>,
    /// The suite that works (found by trying 17 then 3 when not configured).
    suite: Option<CipherSuite>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut last_job = Instant::now();
        let mut last_io = Instant::now();
        loop {
            let idle_at = last_job + self.config.session_idle_timeout;
            let keepalive_at = last_io + self.config.keepalive_interval;
            let keepalive = self.session.is_some() && keepalive_at < idle_at;
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => {
                        self.serve(job).await;
                        last_job = Instant::now();
                        last_io = last_job;
                    }
                    None => break,
                },
                _ = sleep_until(keepalive_at), if keepalive => {
                    self.keepalive().await;
                    last_io = Instant::now();
                }
                _ = sleep_until(idle_at) => {
                    // Refuse new jobs, finish queued ones, then stop.
                    rx.close();
                    while let Some(job) = rx.recv().await {
                        self.serve(job).await;
                    }
                    break;
                }
            }
        }
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }

    async fn keepalive(&mut self) {
        if let Some(s) = self.session.as_mut()
            && let Err(e) = s
                .command(0x06, 0x01, &[], "keep-alive (Get Device ID)")
                .await
        {
            tracing::debug!(bmc = %self.info.bmc(), error = %e, "keep-alive failed; dropping the session");
            self.session = None;
        }
    }

    async fn serve(&mut self, job: Job) {
        if job.reply.is_closed() {
            return; // the caller gave up
        }
        let res = self.execute(&job.req).await;
        let _ = job.reply.send(res);
    }

    async fn execute(&mut self, req: &Request) -> Result<Response, Error> {
        let reused = self.session.is_some();
        if !reused {
            self.session = Some(self.open().await?);
        }
        let Some(s) = self.session.as_mut() else {
            unreachable!("session was just opened")
        };
        match s.command(req.netfn, req.cmd, &req.data, req.what).await {
            Ok(r) => Ok(r),
            Err(e) if reused && e.is_retryable() => {
                // The BMC may have dropped an idle session: open a new one once.
                tracing::debug!(bmc = %self.info.bmc(), error = %e, "reused session failed; re-opening");
                self.session = None;
                let mut s = self.open().await?;
                let r = s.command(req.netfn, req.cmd, &req.data, req.what).await;
                match r {
                    Ok(r) => {
                        self.session = Some(s);
                        Ok(r)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                self.session = None;
                Err(e)
            }
        }
    }

    async fn open(&mut self) -> Result<Session, Error> {
        let (s, suite) = open_session(&self.info, self.suite).await?;
        self.suite = Some(suite);
        Ok(s)
    }
}

async fn target(info: &IpmiDriverInfo, suite: CipherSuite) -> Result<Target, Error> {
    let bmc = info.bmc();
    let mut addrs = tokio::net::lookup_host((info.address.as_str(), info.port))
        .await
        .map_err(|source| Error::Unreachable {
            bmc: bmc.clone(),
            source,
        })?;
    let addr = addrs.next().ok_or_else(|| Error::Unreachable {
        bmc: bmc.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolves to nothing",
        ),
    })?;
    Ok(Target {
        bmc,
        addr,
        user: info.username.clone(),
        password: info.password.clone(),
        kg: info.kg.clone(),
        suite,
        privilege: info.priv_level,
        packet_timeout: info.packet_timeout,
        packet_retries: info.packet_retries,
    })
}

/// Open a session with `suite`, or when `None` with suite 17 and, if the BMC refuses
/// it, suite 3. Returns the suite that worked.
pub(crate) async fn open_session(
    info: &IpmiDriverInfo,
    suite: Option<CipherSuite>,
) -> Result<(Session, CipherSuite), Error> {
    match suite {
        Some(suite) => Ok((Session::open(&target(info, suite).await?).await?, suite)),
        None => match Session::open(&target(info, CipherSuite::Suite17).await?).await {
            Ok(s) => Ok((s, CipherSuite::Suite17)),
            Err(Error::CipherSuite { .. }) => {
                let s = Session::open(&target(info, CipherSuite::Suite3).await?).await?;
                tracing::debug!(bmc = %info.bmc(), "BMC has no cipher suite 17; using 3");
                Ok((s, CipherSuite::Suite3))
            }
            Err(e) => Err(e),
        },
    }
}
