//! An IPMI v2.0 BMC simulator: RMCP+ (lanplus) on UDP, loopback, one socket per server.
//!
//! Sessions: Get Channel Authentication Capabilities (v1.5 or RMCP+ framing), Get Channel
//! Cipher Suites, Open Session, RAKP 1-4 with RAKP-HMAC-SHA1, HMAC-SHA1-96 integrity and
//! AES-CBC-128 confidentiality (cipher suite 3; suite 2 without encryption), Set Session
//! Privilege Level (sessions start at USER), Close Session. Commands: Get Device ID, Get
//! System GUID, Get Chassis Status, Chassis Control, Set/Get System Boot Options, acting
//! on the shared [`SimServer`]. Faults: latency and flaky (datagrams dropped) per server,
//! wrong password (RAKP 2 computed with another password, so the client's check fails,
//! as with a changed password), stuck (Chassis Control accepted, nothing happens).

pub mod commands;
pub mod crypto;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::SimServer;
use commands::{BootParams, SessionCtx, SessionEffect, privilege};
use crypto::{ICV_LEN, Rakp, SessionKeys};
use wire::{Inbound, Request, V20, payload};

/// Sessions idle this long are closed (IPMI's usual session timeout).
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many sessions at once (a real BMC has a handful; this is generous).
pub const MAX_SESSIONS: usize = 32;

/// A running IPMI simulator; stops when dropped or on [`IpmiSim::shutdown`].
#[derive(Debug)]
pub struct IpmiSim {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl IpmiSim {
    /// Binds a UDP socket on `addr` (port 0 for any) and answers for `server`.
    pub async fn start(addr: SocketAddr, server: SimServer) -> std::io::Result<IpmiSim> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let addr = socket.local_addr()?;
        let guid = *uuid::Uuid::new_v5(&server.spec().uuid, b"ipmi-guid").as_bytes();
        let bmc = Arc::new(Bmc {
            server,
            guid,
            state: Mutex::new(BmcState::default()),
        });
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            loop {
                let (n, peer) = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = socket.recv_from(&mut buf) => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::debug!(error = %e, "IPMI simulator: receive failed");
                            continue;
                        }
                    },
                };
                let pkt = buf[..n].to_vec();
                let faults = bmc.server.faults();
                if faults.roll_flaky() {
                    tracing::debug!(server = %bmc.server.spec().name, "flaky: datagram dropped");
                    continue;
                }
                if faults.latency.is_zero() {
                    respond(&bmc, &socket, &pkt, peer).await;
                } else {
                    let (bmc, socket) = (bmc.clone(), socket.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(faults.latency).await;
                        respond(&bmc, &socket, &pkt, peer).await;
                    });
                }
            }
        });
        tracing::debug!(%addr, "IPMI simulator listening");
        Ok(IpmiSim {
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops answering and waits for the socket task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn respond(bmc: &Bmc, socket: &UdpSocket, pkt: &[u8], peer: SocketAddr) {
    let reply = bmc.handle(pkt, peer);
    if let Some(reply) = reply
        && let Err(e) = socket.send_to(&reply, peer).await
    {
        tracing::debug!(error = %e, %peer, "IPMI simulator: send failed");
    }
}

enum Phase {
    /// Open Session answered; waiting for RAKP 1.
    Opened,
    /// RAKP 2 sent; waiting for RAKP 3.
    Rakp2Sent {
        console_rand: [u8; 16],
        bmc_rand: [u8; 16],
        role: u8,
        user: Vec<u8>,
        kuid: [u8; 20],
    },
    /// Session active.
    Active { keys: SessionKeys, privilege: u8 },
}

struct Session {
    console_sid: u32,
    peer: SocketAddr,
    max_privilege: u8,
    encrypt: bool,
    phase: Phase,
    out_seq: u32,
    last_seen: Instant,
}

#[derive(Default)]
struct BmcState {
    sessions: HashMap<u32, Session>,
    params: BootParams,
}

struct Bmc {
    server: SimServer,
    guid: [u8; 16],
    state: Mutex<BmcState>,
}

/// RMCP+ status codes used here (IPMI v2.0 table 13-15).
mod status {
    pub const OK: u8 = 0x00;
    pub const NO_RESOURCES: u8 = 0x01;
    pub const INVALID_SESSION: u8 = 0x02;
    pub const INVALID_ROLE: u8 = 0x09;
    pub const UNAUTHORIZED_ROLE: u8 = 0x0A;
    pub const INVALID_NAME_LENGTH: u8 = 0x0C;
    pub const UNAUTHORIZED_NAME: u8 = 0x0D;
    pub const INVALID_ICV: u8 = 0x0F;
    pub const NO_CIPHER_SUITE: u8 = 0x11;
    pub const ILLEGAL_PARAMETER: u8 = 0x12;
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    for x in &mut b {
        *x = rand::random();
    }
    b
}

impl Bmc {
    fn handle(&self, pkt: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        let parsed = match wire::parse(pkt, ICV_LEN) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(server = %self.server.spec().name, error = %e, "IPMI: datagram ignored");
                return None;
            }
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.sessions
            .retain(|_, s| s.last_seen.elapsed() < SESSION_IDLE_TIMEOUT);
        match parsed {
            Inbound::AsfPing { tag } => Some(wire::asf_pong(tag)),
            Inbound::V15 { msg } => {
                let req = Request::parse(msg).ok()?;
                if !commands::allowed_pre_session(&req) {
                    return None;
                }
                let (code, data, _) =
                    commands::handle(&self.server, &self.guid, &mut st.params, &req, None);
                Some(wire::build_v15(&req.respond(code, &data)))
            }
            Inbound::V20(v) if v.session_id == 0 => self.pre_session(&mut st, &v, peer),
            Inbound::V20(v) => self.in_session(&mut st, &v, peer),
        }
    }

    fn pre_session(&self, st: &mut BmcState, v: &V20<'_>, peer: SocketAddr) -> Option<Vec<u8>> {
        if v.authenticated || v.encrypted {
            return None;
        }
        let reply = |pt: u8, body: &[u8]| Some(wire::build_v20(pt, false, 0, 0, body, None));
        match v.payload_type {
            payload::IPMI => {
                let req = Request::parse(v.payload).ok()?;
                if !commands::allowed_pre_session(&req) {
                    return None;
                }
                let (code, data, _) =
                    commands::handle(&self.server, &self.guid, &mut st.params, &req, None);
                reply(payload::IPMI, &req.respond(code, &data))
            }
            payload::OPEN_SESSION_REQUEST => {
                let body = self.open_session(st, v.payload, peer)?;
                reply(payload::OPEN_SESSION_RESPONSE, &body)
            }
            payload::RAKP1 => {
                let body = self.rakp1(st, v.payload)?;
                reply(payload::RAKP2, &body)
            }
            payload::RAKP3 => {
                let body = self.rakp3(st, v.payload)?;
                reply(payload::RAKP4, &body)
            }
            _ => None,
        }
    }

    fn open_session(&self, st: &mut BmcState, p: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        if p.len() < 8 {
            return None;
        }
        let tag = p[0];
        let console_sid = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let refuse = |code: u8| {
            let mut out = vec![tag, code, 0, 0];
            out.extend_from_slice(&console_sid.to_le_bytes());
            Some(out)
        };
        if p.len() < 32 {
            return refuse(status::ILLEGAL_PARAMETER);
        }
        let requested = p[1] & 0x0F;
        if requested > privilege::ADMIN {
            return refuse(status::INVALID_ROLE);
        }
        // Each algorithm payload: type, 2 reserved, length, algorithm, 3 reserved.
        // Length 0 means "BMC, choose".
        let alg = |i: usize, ty: u8| -> Option<Option<u8>> {
            let a = &p[8 + i * 8..16 + i * 8];
            if a[0] != ty {
                return None;
            }
            Some(if a[3] == 0 { None } else { Some(a[4] & 0x3F) })
        };
        let (Some(auth), Some(integrity), Some(conf)) = (alg(0, 0), alg(1, 1), alg(2, 2)) else {
            return refuse(status::ILLEGAL_PARAMETER);
        };
        let auth = auth.unwrap_or(1);
        let integrity = integrity.unwrap_or(1);
        let conf = conf.unwrap_or(1);
        if auth != 1 || integrity != 1 || conf > 1 {
            return refuse(status::NO_CIPHER_SUITE);
        }
        if st.sessions.len() >= MAX_SESSIONS {
            return refuse(status::NO_RESOURCES);
        }
        let bmc_sid = loop {
            let sid: u32 = rand::random();
            if sid != 0 && !st.sessions.contains_key(&sid) {
                break sid;
            }
        };
        let max_privilege = if requested == 0 {
            privilege::ADMIN
        } else {
            requested
        };
        st.sessions.insert(
            bmc_sid,
            Session {
                console_sid,
                peer,
                max_privilege,
                encrypt: conf == 1,
                phase: Phase::Opened,
                out_seq: 0,
                last_seen: Instant::now(),
            },
        );
        let mut out = vec![tag, status::OK, max_privilege, 0];
        out.extend_from_slice(&console_sid.to_le_bytes());
        out.extend_from_slice(&bmc_sid.to_le_bytes());
        for (ty, a) in [(0u8, auth), (1, integrity), (2, conf)] {
            out.extend_from_slice(&[ty, 0, 0, 8, a, 0, 0, 0]);
        }
        Some(out)
    }

    fn rakp1(&self, st: &mut BmcState, p: &[u8]) -> Option<Vec<u8>> {
        if p.len() < 28 {
            return None;
        }
        let tag = p[0];
        let bmc_sid = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let session = st.sessions.get_mut(&bmc_sid)?;
        let console_sid = session.console_sid;
        let refuse = |code: u8| {
            let mut out = vec![tag, code, 0, 0];
            out.extend_from_slice(&console_sid.to_le_bytes());
            Some(out)
        };
        if !matches!(session.phase, Phase::Opened) {
            st.sessions.remove(&bmc_sid);
            return refuse(status::INVALID_SESSION);
        }
        let mut console_rand = [0u8; 16];
        console_rand.copy_from_slice(&p[8..24]);
        let role = p[24];
        let user_len = p[27] as usize;
        if user_len > 16 || p.len() < 28 + user_len {
            st.sessions.remove(&bmc_sid);
            return refuse(status::INVALID_NAME_LENGTH);
        }
        let user = p[28..28 + user_len].to_vec();
        let wanted = role & 0x0F;
        if wanted == 0 || wanted > privilege::ADMIN {
            st.sessions.remove(&bmc_sid);
            return refuse(status::INVALID_ROLE);
        }
        if wanted > session.max_privilege {
            st.sessions.remove(&bmc_sid);
            return refuse(status::UNAUTHORIZED_ROLE);
        }
        if user != self.server.spec().username.as_bytes() {
            tracing::info!(server = %self.server.spec().name, "IPMI: unknown user name");
            st.sessions.remove(&bmc_sid);
            return refuse(status::UNAUTHORIZED_NAME);
        }
        // With `wrong_password` injected the BMC holds another password than the one
        // enrolled: its RAKP 2 code will not verify on the client.
        let kuid = match self.server.bmc_password() {
            Some(pw) => crypto::user_key(pw.expose()),
            None => random_bytes::<20>(),
        };
        let bmc_rand = random_bytes::<16>();
        let rakp = Rakp {
            console_sid,
            bmc_sid,
            console_rand,
            bmc_rand,
            bmc_guid: self.guid,
            role,
            user: &user,
        };
        let code = rakp.rakp2_code(&kuid);
        session.max_privilege = wanted;
        session.phase = Phase::Rakp2Sent {
            console_rand,
            bmc_rand,
            role,
            user,
            kuid,
        };
        session.last_seen = Instant::now();
        let mut out = vec![tag, status::OK, 0, 0];
        out.extend_from_slice(&console_sid.to_le_bytes());
        out.extend_from_slice(&bmc_rand);
        out.extend_from_slice(&self.guid);
        out.extend_from_slice(&code);
        Some(out)
    }

    fn rakp3(&self, st: &mut BmcState, p: &[u8]) -> Option<Vec<u8>> {
        if p.len() < 8 {
            return None;
        }
        let tag = p[0];
        let console_status = p[1];
        let bmc_sid = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        let session = st.sessions.get_mut(&bmc_sid)?;
        let console_sid = session.console_sid;
        let refuse = |code: u8| {
            let mut out = vec![tag, code, 0, 0];
            out.extend_from_slice(&console_sid.to_le_bytes());
            Some(out)
        };
        let Phase::Rakp2Sent {
            console_rand,
            bmc_rand,
            role,
            ref user,
            kuid,
        } = session.phase
        else {
            st.sessions.remove(&bmc_sid);
            return refuse(status::INVALID_SESSION);
        };
        if console_status != status::OK {
            // The console refused our RAKP 2 (e.g. wrong password): forget the session.
            st.sessions.remove(&bmc_sid);
            return None;
        }
        let rakp = Rakp {
            console_sid,
            bmc_sid,
            console_rand,
            bmc_rand,
            bmc_guid: self.guid,
            role,
            user,
        };
        let expected = rakp.rakp3_code(&kuid);
        if p.len() < 8 + expected.len()
            || !crypto::codes_equal(&p[8..8 + expected.len()], &expected)
        {
            tracing::info!(server = %self.server.spec().name, "IPMI: RAKP 3 code invalid (wrong password)");
            st.sessions.remove(&bmc_sid);
            return refuse(status::INVALID_ICV);
        }
        let sik = rakp.sik(&kuid);
        let icv = rakp.rakp4_icv(&sik);
        // Sessions start at USER (or below, if that is all that was asked for).
        let privilege = session.max_privilege.min(privilege::USER);
        session.phase = Phase::Active {
            keys: crypto::session_keys(&sik),
            privilege,
        };
        session.last_seen = Instant::now();
        tracing::debug!(server = %self.server.spec().name, "IPMI: session active");
        let mut out = vec![tag, status::OK, 0, 0];
        out.extend_from_slice(&console_sid.to_le_bytes());
        out.extend_from_slice(&icv);
        Some(out)
    }

    fn in_session(&self, st: &mut BmcState, v: &V20<'_>, peer: SocketAddr) -> Option<Vec<u8>> {
        if v.payload_type != payload::IPMI {
            return None;
        }
        let BmcState { sessions, params } = st;
        let session = sessions.get_mut(&v.session_id)?;
        let Phase::Active {
            ref keys,
            privilege,
        } = session.phase
        else {
            return None;
        };
        // Integrity is mandatory in these suites; encryption when negotiated.
        if !v.authenticated
            || v.encrypted != session.encrypt
            || session.peer != peer
            || !crypto::codes_equal(&keys.auth_code(v.signed), v.auth_code)
        {
            tracing::debug!(server = %self.server.spec().name, "IPMI: packet failed the session's integrity check");
            return None;
        }
        let plain = if v.encrypted {
            keys.decrypt(v.payload).ok()?
        } else {
            v.payload.to_vec()
        };
        let req = Request::parse(&plain).ok()?;
        let ctx = SessionCtx {
            bmc_sid: v.session_id,
            privilege,
            max_privilege: session.max_privilege,
        };
        let (code, data, effect) =
            commands::handle(&self.server, &self.guid, params, &req, Some(ctx));
        let msg = req.respond(code, &data);
        session.out_seq = session.out_seq.wrapping_add(1).max(1);
        session.last_seen = Instant::now();
        let keys = keys.clone();
        let body = if session.encrypt {
            keys.encrypt(&msg, random_bytes::<16>())
        } else {
            msg
        };
        let sign = |b: &[u8]| keys.auth_code(b);
        let reply = wire::build_v20(
            payload::IPMI,
            session.encrypt,
            session.console_sid,
            session.out_seq,
            &body,
            Some(&sign),
        );
        match effect {
            SessionEffect::None => {}
            SessionEffect::SetPrivilege(p) => {
                if let Phase::Active { privilege, .. } = &mut session.phase {
                    *privilege = p;
                }
            }
            SessionEffect::Close(sid) => {
                sessions.remove(&sid);
            }
        }
        Some(reply)
    }
}
