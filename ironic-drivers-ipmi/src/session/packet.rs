//! RMCP / IPMI v2.0 (RMCP+) wire format: pure, synchronous encoding and parsing.
//!
//! Nothing here trusts its input: every parser checks lengths before it reads and
//! returns a [`PacketError`] for anything it does not understand. The fuzz target
//! (`fuzz/fuzz_targets/packet.rs`) and the property tests below feed it arbitrary
//! bytes.

use std::fmt;

/// RMCP header for IPMI class messages (version 1.0, no RMCP ACK).
pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];
/// Authentication type byte that marks an RMCP+ (IPMI v2.0) session header.
pub const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;
/// Length of the IPMI v2.0 session header (auth type .. payload length).
pub const SESSION_HEADER_LEN: usize = 12;
/// BMC responder address.
pub const BMC_SLAVE_ADDR: u8 = 0x20;
/// Remote console software ID (requester address).
pub const REMOTE_SWID: u8 = 0x81;

/// RMCP+ payload types (IPMI v2.0 table 13-16).
pub mod payload {
    /// An IPMI message.
    pub const IPMI: u8 = 0x00;
    /// Serial over LAN.
    pub const SOL: u8 = 0x01;
    /// RMCP+ Open Session Request.
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    /// RMCP+ Open Session Response.
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    /// RAKP message 1.
    pub const RAKP1: u8 = 0x12;
    /// RAKP message 2.
    pub const RAKP2: u8 = 0x13;
    /// RAKP message 3.
    pub const RAKP3: u8 = 0x14;
    /// RAKP message 4.
    pub const RAKP4: u8 = 0x15;
}

/// Why a packet was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// A field holds a value this implementation does not accept.
    Invalid {
        /// What was being parsed.
        what: &'static str,
        /// Details.
        detail: String,
    },
}

impl PacketError {
    fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        PacketError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated { what, need, got } => {
                write!(f, "{what}: truncated ({got} bytes, need {need})")
            }
            PacketError::Invalid { what, detail } => write!(f, "{what}: {detail}"),
        }
    }
}

impl std::error::Error for PacketError {}

fn need(what: &'static str, b: &[u8], n: usize) -> Result<(), PacketError> {
    if b.len() < n {
        Err(PacketError::Truncated {
            what,
            need: n,
            got: b.len(),
        })
    } else {
        Ok(())
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The outer RMCP+ frame of a received packet, before integrity checking and
/// decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Payload type (6 bits).
    pub payload_type: u8,
    /// The payload is encrypted.
    pub encrypted: bool,
    /// The packet carries an AuthCode.
    pub authenticated: bool,
    /// Session ID (the receiver's: ours for packets from the BMC).
    pub session_id: u32,
    /// Session sequence number.
    pub seq: u32,
    /// The payload bytes (still encrypted when `encrypted`).
    pub payload: &'a [u8],
    /// The bytes the AuthCode covers (auth type through next header).
    pub signed: &'a [u8],
    /// The AuthCode (empty when not authenticated).
    pub auth_code: &'a [u8],
}

/// Parse an RMCP+ packet. `auth_code_len` is the AuthCode length of the session's
/// integrity algorithm (0 outside a session).
pub fn parse_frame(pkt: &[u8], auth_code_len: usize) -> Result<Frame<'_>, PacketError> {
    need("RMCP header", pkt, 4)?;
    if pkt[0] != 0x06 {
        return Err(PacketError::invalid(
            "RMCP header",
            format!("version 0x{:02x}", pkt[0]),
        ));
    }
    if pkt[3] & 0x1F != 0x07 {
        return Err(PacketError::invalid(
            "RMCP header",
            format!("class 0x{:02x} is not IPMI", pkt[3]),
        ));
    }
    let s = &pkt[4..];
    need("session header", s, SESSION_HEADER_LEN)?;
    if s[0] != AUTH_TYPE_RMCP_PLUS {
        return Err(PacketError::invalid(
            "session header",
            format!("auth type 0x{:02x} is not RMCP+", s[0]),
        ));
    }
    let pt = s[1];
    let payload_type = pt & 0x3F;
    if payload_type == 0x02 {
        return Err(PacketError::invalid(
            "session header",
            "OEM explicit payloads are not supported",
        ));
    }
    let session_id = le32(&s[2..6]);
    let seq = le32(&s[6..10]);
    let len = u16::from_le_bytes([s[10], s[11]]) as usize;
    let body = &s[SESSION_HEADER_LEN..];
    need("payload", body, len)?;
    let payload = &body[..len];
    let authenticated = pt & 0x40 != 0;
    let encrypted = pt & 0x80 != 0;
    if !authenticated {
        return Ok(Frame {
            payload_type,
            encrypted,
            authenticated,
            session_id,
            seq,
            payload,
            signed: &[],
            auth_code: &[],
        });
    }
    if auth_code_len == 0 {
        return Err(PacketError::invalid(
            "session trailer",
            "authenticated packet outside an authenticated session",
        ));
    }
    let trailer = &body[len..];
    need("session trailer", trailer, 2 + auth_code_len)?;
    let pad = trailer.len() - 2 - auth_code_len;
    if trailer[pad] as usize != pad {
        return Err(PacketError::invalid(
            "session trailer",
            format!("pad length {} but {} pad bytes", trailer[pad], pad),
        ));
    }
    if trailer[pad + 1] != 0x07 {
        return Err(PacketError::invalid(
            "session trailer",
            format!("next header 0x{:02x}", trailer[pad + 1]),
        ));
    }
    let signed_len = SESSION_HEADER_LEN + len + pad + 2;
    Ok(Frame {
        payload_type,
        encrypted,
        authenticated,
        session_id,
        seq,
        payload,
        signed: &s[..signed_len],
        auth_code: &trailer[pad + 2..],
    })
}

/// Computes the AuthCode over the signed part of a packet.
pub type AuthFn<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// Build an RMCP+ packet. When `auth` is given, the integrity pad, pad length and
/// next header are added and `auth(signed bytes)` supplies the AuthCode.
pub fn build_frame(
    payload_type: u8,
    encrypted: bool,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    auth: Option<AuthFn<'_>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + SESSION_HEADER_LEN + payload.len() + 32);
    out.extend_from_slice(&RMCP_HEADER);
    let mut pt = payload_type & 0x3F;
    if encrypted {
        pt |= 0x80;
    }
    if auth.is_some() {
        pt |= 0x40;
    }
    out.push(AUTH_TYPE_RMCP_PLUS);
    out.push(pt);
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    // An IPMI payload never comes near 64 KiB; saturate rather than wrap.
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    if let Some(auth) = auth {
        let covered = SESSION_HEADER_LEN + payload.len() + 2;
        let pad = (4 - covered % 4) % 4;
        out.extend(std::iter::repeat_n(0xFF, pad));
        out.push(pad as u8);
        out.push(0x07);
        let code = auth(&out[4..]);
        out.extend_from_slice(&code);
    }
    out
}

/// Two's complement checksum of an IPMI message part.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request in LAN framing (to the BMC at 0x20, LUN 0).
pub fn encode_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(7 + data.len());
    m.push(BMC_SLAVE_ADDR);
    m.push(netfn << 2);
    m.push(checksum(&m[0..2]));
    m.push(REMOTE_SWID);
    m.push((rq_seq & 0x3F) << 2);
    m.push(cmd);
    m.extend_from_slice(data);
    let c = checksum(&m[3..]);
    m.push(c);
    m
}

/// A decoded IPMI response message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Network function (odd: a response).
    pub netfn: u8,
    /// Requester sequence number echoed by the BMC.
    pub rq_seq: u8,
    /// Command.
    pub cmd: u8,
    /// Completion code.
    pub completion: u8,
    /// Response data after the completion code.
    pub data: Vec<u8>,
}

/// Parse an IPMI response in LAN framing, checking both checksums.
pub fn decode_response(m: &[u8]) -> Result<Response, PacketError> {
    need("IPMI response", m, 8)?;
    if checksum(&m[0..2]) != m[2] {
        return Err(PacketError::invalid("IPMI response", "bad header checksum"));
    }
    let last = m.len() - 1;
    if checksum(&m[3..last]) != m[last] {
        return Err(PacketError::invalid("IPMI response", "bad data checksum"));
    }
    let netfn = m[1] >> 2;
    if netfn & 1 == 0 {
        return Err(PacketError::invalid(
            "IPMI response",
            format!("netfn 0x{netfn:02x} is a request"),
        ));
    }
    Ok(Response {
        netfn,
        rq_seq: m[4] >> 2,
        cmd: m[5],
        completion: m[6],
        data: m[7..last].to_vec(),
    })
}

/// Algorithms proposed in an Open Session Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algorithms {
    /// Authentication algorithm (1 RAKP-HMAC-SHA1, 3 RAKP-HMAC-SHA256).
    pub auth: u8,
    /// Integrity algorithm (1 HMAC-SHA1-96, 4 HMAC-SHA256-128).
    pub integrity: u8,
    /// Confidentiality algorithm (1 AES-CBC-128).
    pub confidentiality: u8,
}

/// RMCP+ Open Session Request payload.
pub fn open_session_request(tag: u8, max_priv: u8, console_sid: u32, alg: Algorithms) -> Vec<u8> {
    let mut p = vec![tag, max_priv, 0, 0];
    p.extend_from_slice(&console_sid.to_le_bytes());
    for (kind, a) in [
        (0u8, alg.auth),
        (1, alg.integrity),
        (2, alg.confidentiality),
    ] {
        p.extend_from_slice(&[kind, 0, 0, 8, a, 0, 0, 0]);
    }
    p
}

/// RMCP+ Open Session Response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSessionResponse {
    /// Message tag.
    pub tag: u8,
    /// RMCP+ status code (0 = success).
    pub status: u8,
    /// Maximum privilege level granted.
    pub max_priv: u8,
    /// Our session ID, echoed (error replies may be too short to carry it).
    pub console_sid: Option<u32>,
    /// The BMC's session ID (only meaningful on success).
    pub bmc_sid: u32,
    /// Algorithms the BMC chose (only on success).
    pub algorithms: Option<Algorithms>,
}

fn opt_sid(p: &[u8]) -> Option<u32> {
    p.get(4..8).map(le32)
}

/// Parse an Open Session Response. On error status the BMC may send as little as
/// the tag and the status (ipmi_sim does).
pub fn parse_open_session_response(p: &[u8]) -> Result<OpenSessionResponse, PacketError> {
    need("Open Session Response", p, 2)?;
    let tag = p[0];
    let status = p[1];
    let console_sid = opt_sid(p);
    if status != 0 {
        return Ok(OpenSessionResponse {
            tag,
            status,
            max_priv: p.get(2).copied().unwrap_or(0),
            console_sid,
            bmc_sid: 0,
            algorithms: None,
        });
    }
    need("Open Session Response", p, 36)?;
    let bmc_sid = le32(&p[8..12]);
    let mut algs = [0u8; 3];
    for (i, a) in algs.iter_mut().enumerate() {
        let rec = &p[12 + i * 8..20 + i * 8];
        if rec[0] != i as u8 {
            return Err(PacketError::invalid(
                "Open Session Response",
                format!("algorithm record {i} has type {}", rec[0]),
            ));
        }
        *a = rec[4] & 0x3F;
    }
    Ok(OpenSessionResponse {
        tag,
        status,
        max_priv: p[2],
        console_sid,
        bmc_sid,
        algorithms: Some(Algorithms {
            auth: algs[0],
            integrity: algs[1],
            confidentiality: algs[2],
        }),
    })
}

/// RAKP Message 1 payload.
pub fn rakp1(tag: u8, bmc_sid: u32, rm: &[u8; 16], role: u8, user: &[u8]) -> Vec<u8> {
    let mut p = vec![tag, 0, 0, 0];
    p.extend_from_slice(&bmc_sid.to_le_bytes());
    p.extend_from_slice(rm);
    p.push(role);
    p.extend_from_slice(&[0, 0]);
    p.push(user.len() as u8);
    p.extend_from_slice(user);
    p
}

/// RAKP Message 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rakp2 {
    /// Message tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// Our session ID, echoed (error replies may be too short to carry it).
    pub console_sid: Option<u32>,
    /// The BMC's random number Rc.
    pub rc: [u8; 16],
    /// The BMC's GUID.
    pub guid: [u8; 16],
    /// Key exchange authentication code.
    pub auth_code: Vec<u8>,
}

/// Parse RAKP Message 2.
pub fn parse_rakp2(p: &[u8]) -> Result<Rakp2, PacketError> {
    need("RAKP 2", p, 2)?;
    let tag = p[0];
    let status = p[1];
    let console_sid = opt_sid(p);
    if status != 0 {
        return Ok(Rakp2 {
            tag,
            status,
            console_sid,
            rc: [0; 16],
            guid: [0; 16],
            auth_code: Vec::new(),
        });
    }
    need("RAKP 2", p, 40)?;
    let mut rc = [0u8; 16];
    rc.copy_from_slice(&p[8..24]);
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&p[24..40]);
    Ok(Rakp2 {
        tag,
        status,
        console_sid,
        rc,
        guid,
        auth_code: p[40..].to_vec(),
    })
}

/// RAKP Message 3 payload.
pub fn rakp3(tag: u8, status: u8, bmc_sid: u32, auth_code: &[u8]) -> Vec<u8> {
    let mut p = vec![tag, status, 0, 0];
    p.extend_from_slice(&bmc_sid.to_le_bytes());
    p.extend_from_slice(auth_code);
    p
}

/// RAKP Message 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rakp4 {
    /// Message tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// Our session ID, echoed (error replies may be too short to carry it).
    pub console_sid: Option<u32>,
    /// Integrity check value.
    pub icv: Vec<u8>,
}

/// Parse RAKP Message 4.
pub fn parse_rakp4(p: &[u8]) -> Result<Rakp4, PacketError> {
    need("RAKP 4", p, 2)?;
    if p[1] == 0 {
        need("RAKP 4", p, 8)?;
    }
    Ok(Rakp4 {
        tag: p[0],
        status: p[1],
        console_sid: opt_sid(p),
        icv: p.get(8..).unwrap_or_default().to_vec(),
    })
}

/// Text for an RMCP+ status code (IPMI v2.0 table 13-15).
pub fn rmcp_status_text(code: u8) -> &'static str {
    match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources to create a session at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized GUID",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// Sliding-window check of inbound session sequence numbers (IPMI v2.0 6.12.13):
/// rejects zero, replays, and numbers too far behind the highest seen.
#[derive(Clone, Debug, Default)]
pub struct SeqWindow {
    highest: u32,
    /// Bit i set: `highest - i` was seen (bit 0 is `highest`).
    seen: u32,
}

impl SeqWindow {
    /// Width of the window behind the highest number.
    pub const WIDTH: u32 = 32;

    /// Whether `seq` is acceptable; records it when it is.
    pub fn accept(&mut self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        if self.highest == 0 {
            self.highest = seq;
            self.seen = 1;
            return true;
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < 0x8000_0000 {
            // newer: slide the window
            self.seen = if ahead >= Self::WIDTH {
                0
            } else {
                self.seen << ahead
            } | 1;
            self.highest = seq;
            return true;
        }
        let behind = self.highest.wrapping_sub(seq);
        if behind >= Self::WIDTH {
            return false;
        }
        let bit = 1u32 << behind;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_has_valid_checksums_and_round_trips_as_response() {
        let rq = encode_request(0x00, 0x01, 5, &[]);
        assert_eq!(rq[0], 0x20);
        assert_eq!(checksum(&rq[0..3]), 0);
        assert_eq!(checksum(&rq[3..]), 0);
        // build the matching response
        let mut rs = vec![0x81, (0x01 << 2), 0];
        rs[2] = checksum(&rs[0..2]);
        rs.extend_from_slice(&[0x20, 5 << 2, 0x01, 0x00, 0x41, 0x00, 0x00]);
        let c = checksum(&rs[3..]);
        rs.push(c);
        let r = decode_response(&rs).unwrap();
        assert_eq!((r.netfn, r.rq_seq, r.cmd, r.completion), (1, 5, 1, 0));
        assert_eq!(r.data, vec![0x41, 0, 0]);
        rs[7] ^= 1;
        assert!(decode_response(&rs).is_err());
    }

    #[test]
    fn frame_round_trip_with_auth_code() {
        let auth = |b: &[u8]| vec![b.len() as u8; 12];
        let pkt = build_frame(payload::IPMI, true, 0x11223344, 9, &[1, 2, 3], Some(&auth));
        let f = parse_frame(&pkt, 12).unwrap();
        assert!(f.encrypted && f.authenticated);
        assert_eq!(f.session_id, 0x11223344);
        assert_eq!(f.seq, 9);
        assert_eq!(f.payload, &[1, 2, 3]);
        assert_eq!(f.signed.len() % 4, 0);
        assert_eq!(f.auth_code, &[f.signed.len() as u8; 12][..]);
        // wrong auth code length is detected
        assert!(parse_frame(&pkt, 16).is_err());
    }

    #[test]
    fn seq_window_rejects_replays_and_old_numbers() {
        let mut w = SeqWindow::default();
        assert!(!w.accept(0));
        assert!(w.accept(10));
        assert!(!w.accept(10));
        assert!(w.accept(12));
        assert!(w.accept(11));
        assert!(!w.accept(11));
        assert!(w.accept(100));
        assert!(!w.accept(50));
        assert!(w.accept(90));
        assert!(!w.accept(90));
        assert!(w.accept(1_000_000));
        assert!(!w.accept(90));
    }

    #[test]
    fn open_session_response_error_status_is_short() {
        let r = parse_open_session_response(&[7, 0x11, 0, 0, 1, 0, 0, 0]).unwrap();
        assert_eq!(r.status, 0x11);
        assert_eq!(r.console_sid, Some(1));
        assert!(r.algorithms.is_none());
        // ipmi_sim sends only the tag and the status
        let r = parse_open_session_response(&[0, 0x04]).unwrap();
        assert_eq!((r.status, r.console_sid), (0x04, None));
        assert!(parse_open_session_response(&[0, 0, 0, 0, 1, 0, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), alen in 0usize..40) {
            let _ = parse_frame(&bytes, alen);
            let _ = decode_response(&bytes);
            let _ = parse_open_session_response(&bytes);
            let _ = parse_rakp2(&bytes);
            let _ = parse_rakp4(&bytes);
        }

        #[test]
        fn frames_with_a_valid_prefix_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..80), pt in any::<u8>(), len in any::<u16>()) {
            let mut pkt = vec![0x06, 0, 0xff, 0x07, 0x06, pt, 1, 0, 0, 0, 1, 0, 0, 0];
            pkt.extend_from_slice(&len.to_le_bytes());
            pkt.extend_from_slice(&tail);
            let _ = parse_frame(&pkt, 12);
            let _ = parse_frame(&pkt, 16);
        }
    }
}
