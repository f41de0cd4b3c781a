//! An async IPMI v2.0 RMCP+ session on tokio.
//!
//! * Open Session, RAKP 1-4 with cipher suite 3 (SHA1) or 17 (SHA256), optional Kg;
//!   the BMC's RAKP 2 code is checked before anything is sent that depends on it, so
//!   a wrong password is reported as such.
//! * Set Session Privilege Level right after activation (sessions start at USER).
//! * Every request is retransmitted on loss (a fresh session sequence number each
//!   time, the same IPMI sequence number so a late reply still matches).
//! * Inbound packets are accepted only when their AuthCode verifies, their session
//!   ID is ours, their sequence number is inside the sliding window and not a replay,
//!   and the IPMI reply matches the request; anything else is dropped and logged.
//! * Close Session on the way out.
//!
//! All I/O is on a tokio `UdpSocket`; nothing blocks a worker thread.

pub mod crypto;
pub mod packet;

use std::net::SocketAddr;
use std::time::Duration;

use ironic_core::Secret;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use crate::error::Error;
use crypto::{CipherSuite, SessionKeys, mac_eq};
use packet::{Response, SeqWindow, payload};

/// IPMI privilege levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Privilege {
    /// CALLBACK.
    Callback = 1,
    /// USER.
    User = 2,
    /// OPERATOR.
    Operator = 3,
    /// ADMINISTRATOR.
    Administrator = 4,
}

impl Privilege {
    /// Ironic's name (`ipmi_priv_level`).
    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Callback => "CALLBACK",
            Privilege::User => "USER",
            Privilege::Operator => "OPERATOR",
            Privilege::Administrator => "ADMINISTRATOR",
        }
    }

    /// Parse Ironic's names, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "CALLBACK" => Some(Privilege::Callback),
            "USER" => Some(Privilege::User),
            "OPERATOR" => Some(Privilege::Operator),
            "ADMINISTRATOR" | "ADMIN" => Some(Privilege::Administrator),
            _ => None,
        }
    }
}

/// Where and how to open a session.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `host:port` as configured, for messages.
    pub bmc: String,
    /// Resolved address.
    pub addr: SocketAddr,
    /// User name (at most 16 bytes; empty = anonymous).
    pub user: String,
    /// Password (Kuid).
    pub password: Secret,
    /// BMC key Kg as hex, when the BMC has one (validated by the config parser).
    pub kg: Option<Secret>,
    /// Cipher suite.
    pub suite: CipherSuite,
    /// Privilege to raise the session to.
    pub privilege: Privilege,
    /// How long to wait for a reply before retransmitting.
    pub packet_timeout: Duration,
    /// Retransmissions after the first send.
    pub packet_retries: u32,
}

/// What a receive check decided about one packet.
enum Verdict<T> {
    /// The reply we wait for.
    Accept(T),
    /// Not ours or not valid: drop it and keep waiting.
    Ignore(String),
    /// A definite answer that ends the exchange with an error.
    Fail(Error),
}

/// Send what `build` makes, wait for a packet that `check` accepts, retransmitting
/// after every `packet_timeout` up to `packet_retries` times.
async fn exchange<S, T>(
    sock: &UdpSocket,
    t: &Target,
    retries: u32,
    what: &str,
    state: &mut S,
    mut build: impl FnMut(&mut S, u32) -> Vec<u8>,
    mut check: impl FnMut(&mut S, &[u8], u32) -> Verdict<T>,
) -> Result<T, Error> {
    let mut buf = vec![0u8; 4096];
    let mut last_reject: Option<String> = None;
    let mut io_err: Option<std::io::Error> = None;
    for attempt in 0..=retries {
        let pkt = build(state, attempt);
        let deadline = Instant::now() + t.packet_timeout;
        if let Err(e) = sock.send(&pkt).await {
            tracing::debug!(bmc = %t.bmc, error = %e, "IPMI send failed");
            io_err = Some(e);
            tokio::time::sleep_until(deadline).await;
            continue;
        }
        loop {
            match timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    // e.g. ICMP port unreachable reported on a connected socket
                    tracing::debug!(bmc = %t.bmc, error = %e, "IPMI receive failed");
                    io_err = Some(e);
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => match check(state, &buf[..n], attempt) {
                    Verdict::Accept(v) => return Ok(v),
                    Verdict::Fail(e) => return Err(e),
                    Verdict::Ignore(reason) => {
                        tracing::debug!(bmc = %t.bmc, %what, %reason, "dropped packet from BMC");
                        last_reject = Some(reason);
                    }
                },
            }
        }
        tracing::debug!(bmc = %t.bmc, %what, attempt, "no reply, retransmitting");
    }
    Err(if let Some(detail) = last_reject {
        Error::BadReply {
            bmc: t.bmc.clone(),
            what: what.to_owned(),
            detail,
        }
    } else if let Some(source) = io_err {
        Error::Unreachable {
            bmc: t.bmc.clone(),
            source,
        }
    } else {
        Error::Timeout {
            bmc: t.bmc.clone(),
            what: what.to_owned(),
            attempts: retries + 1,
        }
    })
}

fn session_refused(t: &Target, stage: &'static str, status: u8) -> Error {
    match status {
        0x04 | 0x05 | 0x06 | 0x07 | 0x10 | 0x11 => Error::CipherSuite {
            bmc: t.bmc.clone(),
            suite: t.suite.id(),
            status,
        },
        0x0D | 0x0C => Error::AuthFailed {
            bmc: t.bmc.clone(),
            user: t.user.clone(),
            reason: format!("the BMC does not know this user at {stage}"),
        },
        0x0F => Error::AuthFailed {
            bmc: t.bmc.clone(),
            user: t.user.clone(),
            reason: format!("the BMC rejected the key exchange at {stage} (wrong password or Kg)"),
        },
        0x09 | 0x0A => Error::Privilege {
            bmc: t.bmc.clone(),
            user: t.user.clone(),
            level: t.privilege.as_str(),
            detail: packet::rmcp_status_text(status).to_owned(),
        },
        _ => Error::SessionRefused {
            bmc: t.bmc.clone(),
            user: t.user.clone(),
            stage,
            status,
        },
    }
}

fn random_nonzero_u32() -> u32 {
    let mut r = rand::rng();
    loop {
        let v: u32 = r.random();
        if v != 0 {
            return v;
        }
    }
}

/// An established RMCP+ session.
#[derive(Debug)]
pub(crate) struct Session {
    sock: UdpSocket,
    target: Target,
    st: State,
}

#[derive(Debug)]
struct State {
    keys: SessionKeys,
    bmc_sid: u32,
    console_sid: u32,
    out_seq: u32,
    window: SeqWindow,
    rq_seq: u8,
}

impl State {
    fn seal(&mut self, payload_type: u8, plain: &[u8]) -> Vec<u8> {
        self.out_seq = self.out_seq.wrapping_add(1).max(1);
        let mut iv = [0u8; 16];
        rand::rng().fill(&mut iv);
        let enc = self.keys.encrypt(plain, iv);
        let keys = &self.keys;
        packet::build_frame(
            payload_type,
            true,
            self.bmc_sid,
            self.out_seq,
            &enc,
            Some(&|b: &[u8]| keys.auth_code(b)),
        )
    }

    /// Integrity, session ID, sequence window, then decryption. The window only
    /// moves for packets whose AuthCode verified.
    fn open(&mut self, pkt: &[u8], icv_len: usize) -> Result<(u8, Vec<u8>), String> {
        let f = packet::parse_frame(pkt, icv_len).map_err(|e| e.to_string())?;
        if !f.authenticated {
            return Err("unauthenticated packet inside the session".into());
        }
        if f.session_id != self.console_sid {
            return Err(format!("packet for session 0x{:08x}", f.session_id));
        }
        if !mac_eq(&self.keys.auth_code(f.signed), f.auth_code) {
            return Err("integrity check failed".into());
        }
        if !self.window.accept(f.seq) {
            return Err(format!(
                "session sequence number {} replayed or outside the window",
                f.seq
            ));
        }
        let plain = if f.encrypted {
            self.keys.decrypt(f.payload)?
        } else {
            f.payload.to_vec()
        };
        Ok((f.payload_type, plain))
    }
}

impl Session {
    /// Open, authenticate and raise the privilege of a new session.
    pub async fn open(t: &Target) -> Result<Session, Error> {
        let unreachable = |source| Error::Unreachable {
            bmc: t.bmc.clone(),
            source,
        };
        let bind: SocketAddr = if t.addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await.map_err(unreachable)?;
        sock.connect(t.addr).await.map_err(unreachable)?;

        let console_sid = random_nonzero_u32();
        let alg = t.suite.algorithms();
        let priv_byte = t.privilege as u8;
        let retries = t.packet_retries;

        // Open Session Request / Response. A fresh tag per transmission; only the
        // answer to the latest one counts.
        let mut tag = 0u8;
        let osr = exchange(
            &sock,
            t,
            retries,
            "RMCP+ Open Session Request",
            &mut tag,
            |tag, attempt| {
                *tag = attempt as u8;
                let p = packet::open_session_request(*tag, priv_byte, console_sid, alg);
                packet::build_frame(payload::OPEN_SESSION_REQUEST, false, 0, 0, &p, None)
            },
            |tag, pkt, _| {
                let f = match packet::parse_frame(pkt, 0) {
                    Ok(f) => f,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if f.payload_type != payload::OPEN_SESSION_RESPONSE {
                    return Verdict::Ignore(format!("payload type 0x{:02x}", f.payload_type));
                }
                let r = match packet::parse_open_session_response(f.payload) {
                    Ok(r) => r,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if r.console_sid.is_some_and(|s| s != console_sid) || r.tag != *tag {
                    return Verdict::Ignore("stale Open Session Response".into());
                }
                if r.status != 0 {
                    return Verdict::Fail(session_refused(t, "Open Session", r.status));
                }
                if r.bmc_sid == 0 {
                    return Verdict::Ignore("Open Session Response with session ID 0".into());
                }
                if r.algorithms != Some(alg) {
                    // Stock pyghmi answers suite 3 whatever was asked: a definite no.
                    // Anything else may be a damaged packet (nothing protects it yet).
                    if [CipherSuite::Suite3, CipherSuite::Suite17]
                        .iter()
                        .any(|s| r.algorithms == Some(s.algorithms()))
                    {
                        return Verdict::Fail(Error::CipherSuite {
                            bmc: t.bmc.clone(),
                            suite: t.suite.id(),
                            status: 0x11,
                        });
                    }
                    return Verdict::Ignore(format!(
                        "Open Session Response with unknown algorithms {:?}",
                        r.algorithms
                    ));
                }
                Verdict::Accept(r)
            },
        )
        .await?;
        let bmc_sid = osr.bmc_sid;

        // RAKP 1 / 2
        let mut rm = [0u8; 16];
        rand::rng().fill(&mut rm);
        let role = priv_byte | 0x10; // name-only lookup
        let user = t.user.as_bytes();
        let ulen = [role, user.len() as u8];
        let mut tag = 0u8;
        let rakp2 = exchange(
            &sock,
            t,
            retries,
            "RAKP 1",
            &mut tag,
            |tag, attempt| {
                *tag = attempt as u8;
                let p = packet::rakp1(*tag, bmc_sid, &rm, role, user);
                packet::build_frame(payload::RAKP1, false, 0, 0, &p, None)
            },
            |tag, pkt, _| {
                let f = match packet::parse_frame(pkt, 0) {
                    Ok(f) => f,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if f.payload_type != payload::RAKP2 {
                    return Verdict::Ignore(format!("payload type 0x{:02x}", f.payload_type));
                }
                let r = match packet::parse_rakp2(f.payload) {
                    Ok(r) => r,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if r.console_sid.is_some_and(|s| s != console_sid) || r.tag != *tag {
                    return Verdict::Ignore("stale RAKP 2".into());
                }
                if r.status != 0 {
                    return Verdict::Fail(session_refused(t, "RAKP 2", r.status));
                }
                Verdict::Accept(r)
            },
        )
        .await
        .map_err(|e| match e {
            // pyghmi, for one, stays silent when it does not know the user
            Error::Timeout {
                bmc,
                what,
                attempts,
            } => Error::Timeout {
                bmc,
                what: format!(
                    "{what} (a BMC may stay silent when it does not know user '{}')",
                    t.user
                ),
                attempts,
            },
            e => e,
        })?;

        let kuid = t.password.expose().as_bytes();
        let expected = t.suite.hmac(
            kuid,
            &[
                &console_sid.to_le_bytes(),
                &bmc_sid.to_le_bytes(),
                &rm,
                &rakp2.rc,
                &rakp2.guid,
                &ulen,
                user,
            ],
        );
        if !mac_eq(&rakp2.auth_code, &expected) {
            // Tell the BMC so it can drop the half-open session; no answer expected.
            let p = packet::rakp3(0, 0x0F, bmc_sid, &[]);
            let _ = sock
                .send(&packet::build_frame(payload::RAKP3, false, 0, 0, &p, None))
                .await;
            return Err(Error::AuthFailed {
                bmc: t.bmc.clone(),
                user: t.user.clone(),
                reason: "the BMC's RAKP 2 key exchange code does not match the password \
                         (wrong password)"
                    .into(),
            });
        }

        // Session keys
        let kg = t.kg.as_ref().and_then(|k| hex::decode(k.expose()).ok());
        let sik = t.suite.hmac(
            kg.as_deref().unwrap_or(kuid),
            &[&rm, &rakp2.rc, &ulen, user],
        );
        let rakp3_code = t
            .suite
            .hmac(kuid, &[&rakp2.rc, &console_sid.to_le_bytes(), &ulen, user]);
        let mut expected_icv = t
            .suite
            .hmac(&sik, &[&rm, &bmc_sid.to_le_bytes(), &rakp2.guid]);
        expected_icv.truncate(t.suite.icv_len());

        // RAKP 3 / 4
        let mut tag = 0u8;
        exchange(
            &sock,
            t,
            retries,
            "RAKP 3",
            &mut tag,
            |tag, attempt| {
                *tag = attempt as u8;
                let p = packet::rakp3(*tag, 0, bmc_sid, &rakp3_code);
                packet::build_frame(payload::RAKP3, false, 0, 0, &p, None)
            },
            |tag, pkt, _| {
                let f = match packet::parse_frame(pkt, 0) {
                    Ok(f) => f,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if f.payload_type != payload::RAKP4 {
                    return Verdict::Ignore(format!("payload type 0x{:02x}", f.payload_type));
                }
                let r = match packet::parse_rakp4(f.payload) {
                    Ok(r) => r,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if r.console_sid.is_some_and(|s| s != console_sid) || r.tag != *tag {
                    return Verdict::Ignore("stale RAKP 4".into());
                }
                if r.status != 0 {
                    return Verdict::Fail(session_refused(t, "RAKP 4", r.status));
                }
                if !mac_eq(&r.icv, &expected_icv) {
                    return Verdict::Fail(Error::AuthFailed {
                        bmc: t.bmc.clone(),
                        user: t.user.clone(),
                        reason: "the RAKP 4 integrity check value does not verify \
                                 (wrong BMC key Kg)"
                            .into(),
                    });
                }
                Verdict::Accept(())
            },
        )
        .await?;

        let mut s = Session {
            sock,
            target: t.clone(),
            st: State {
                keys: SessionKeys::derive(t.suite, &sik),
                bmc_sid,
                console_sid,
                out_seq: 0,
                window: SeqWindow::default(),
                rq_seq: 0,
            },
        };
        if t.privilege != Privilege::User {
            let r = s
                .command(0x06, 0x3B, &[priv_byte], "Set Session Privilege Level")
                .await?;
            if r.completion != 0 {
                return Err(Error::Privilege {
                    bmc: t.bmc.clone(),
                    user: t.user.clone(),
                    level: t.privilege.as_str(),
                    detail: match r.completion {
                        0x80 => "level not available for this user".into(),
                        0x81 => "level exceeds the user's or channel's limit".into(),
                        c => format!(
                            "completion code 0x{c:02x} ({})",
                            crate::error::completion_text(c)
                        ),
                    },
                });
            }
        }
        tracing::debug!(bmc = %t.bmc, user = %t.user, suite = t.suite.id(), "IPMI session open");
        Ok(s)
    }

    /// Send one IPMI request and wait for its response (any completion code).
    pub async fn command(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
        what: &str,
    ) -> Result<Response, Error> {
        self.command_with_retries(netfn, cmd, data, what, self.target.packet_retries)
            .await
    }

    async fn command_with_retries(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
        what: &str,
        retries: u32,
    ) -> Result<Response, Error> {
        self.st.rq_seq = self.st.rq_seq % 63 + 1;
        let rq_seq = self.st.rq_seq;
        let msg = packet::encode_request(netfn, cmd, rq_seq, data);
        let icv_len = self.target.suite.icv_len();
        exchange(
            &self.sock,
            &self.target,
            retries,
            what,
            &mut self.st,
            |st, _| st.seal(payload::IPMI, &msg),
            |st, pkt, _| {
                let plain = match st.open(pkt, icv_len) {
                    Ok((payload::IPMI, plain)) => plain,
                    Ok((pt, _)) => return Verdict::Ignore(format!("payload type 0x{pt:02x}")),
                    Err(e) => return Verdict::Ignore(e),
                };
                let r = match packet::decode_response(&plain) {
                    Ok(r) => r,
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                if r.rq_seq != rq_seq || r.cmd != cmd || r.netfn != netfn | 1 {
                    return Verdict::Ignore(format!(
                        "stale reply (seq {}, netfn 0x{:02x}, cmd 0x{:02x})",
                        r.rq_seq, r.netfn, r.cmd
                    ));
                }
                Verdict::Accept(r)
            },
        )
        .await
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The session's socket (connected to the BMC), for payloads other than IPMI
    /// messages (SOL).
    pub fn socket(&self) -> &UdpSocket {
        &self.sock
    }

    /// An encrypted, authenticated packet carrying `plain` as `payload_type`.
    pub fn seal(&mut self, payload_type: u8, plain: &[u8]) -> Vec<u8> {
        self.st.seal(payload_type, plain)
    }

    /// Check and decrypt a packet from the BMC: (payload type, plaintext).
    pub fn open_packet(&mut self, pkt: &[u8]) -> Result<(u8, Vec<u8>), String> {
        let icv_len = self.target.suite.icv_len();
        self.st.open(pkt, icv_len)
    }

    /// Close the session (best effort, one retransmission at most).
    pub async fn close(mut self) {
        let sid = self.st.bmc_sid.to_le_bytes();
        match self
            .command_with_retries(0x06, 0x3C, &sid, "Close Session", 1)
            .await
        {
            Ok(r) if r.completion == 0 => {
                tracing::debug!(bmc = %self.target.bmc, "IPMI session closed")
            }
            Ok(r) => {
                tracing::debug!(bmc = %self.target.bmc, code = r.completion, "Close Session refused")
            }
            Err(e) => tracing::debug!(bmc = %self.target.bmc, error = %e, "Close Session failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ends of one session: what `a` seals, `b` opens.
    fn pair(suite: CipherSuite) -> (State, State) {
        let keys = SessionKeys::derive(suite, b"sik");
        let mk = |bmc_sid, console_sid| State {
            keys: keys.clone(),
            bmc_sid,
            console_sid,
            out_seq: 0,
            window: SeqWindow::default(),
            rq_seq: 0,
        };
        (mk(0x1111, 0x2222), mk(0x2222, 0x1111))
    }

    #[test]
    fn sealed_packets_open_once_and_tampering_is_caught() {
        for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
            let (mut a, mut b) = pair(suite);
            let icv = suite.icv_len();
            let p1 = a.seal(payload::IPMI, b"first");
            let p2 = a.seal(payload::SOL, b"second");
            assert_eq!(
                b.open(&p2, icv).unwrap(),
                (payload::SOL, b"second".to_vec())
            );
            // an older packet inside the window is still accepted, once
            assert_eq!(
                b.open(&p1, icv).unwrap(),
                (payload::IPMI, b"first".to_vec())
            );
            assert!(b.open(&p1, icv).unwrap_err().contains("replayed"));
            // any flipped byte fails the integrity check (or the frame parser)
            let p3 = a.seal(payload::IPMI, b"third");
            for i in 4..p3.len() {
                let mut bad = p3.clone();
                bad[i] ^= 0x01;
                assert!(b.open(&bad, icv).is_err(), "byte {i} flipped was accepted");
            }
            assert!(b.open(&p3, icv).is_ok());
            // a packet for another session
            let (mut c, _) = pair(suite);
            c.bmc_sid = 0x3333;
            assert!(b.open(&c.seal(payload::IPMI, b"x"), icv).is_err());
            // sealed with other keys
            let mut d = State {
                keys: SessionKeys::derive(suite, b"other"),
                ..pair(suite).0
            };
            assert!(
                b.open(&d.seal(payload::IPMI, b"x"), icv)
                    .unwrap_err()
                    .contains("integrity")
            );
        }
    }
}
