//! RMCP / IPMI v1.5 / RMCP+ (IPMI v2.0) framing and IPMI messages, BMC side.
//! Everything received is parsed with bounds checks: a malformed datagram is an error,
//! never a panic.

//! The RMCP+ framing (session header, integrity trailer), the payload types and
//! the message checksum are ironic-drivers-ipmi's (`session::packet`): the driver
//! and this simulator share them. What only a BMC does (answer ASF pings and
//! v1.5 pre-session requests, parse requests and build responses) is here.

use ironic_drivers_ipmi::session::packet;
pub use packet::{Frame as V20, build_frame as build_v20, checksum, payload};

/// RMCP header of an IPMI datagram: version 6, no ACK, class IPMI.
pub const RMCP_IPMI: [u8; 4] = packet::RMCP_HEADER;
/// The ASF IANA enterprise number (RMCP ping/pong).
const ASF_IANA: [u8; 4] = [0x00, 0x00, 0x11, 0xBE];

/// Why a datagram was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Too short for what it claims to hold.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Something this BMC does not speak.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A checksum or trailer is wrong.
    #[error("corrupt {0}")]
    Corrupt(&'static str),
    /// The RMCP+ frame is malformed.
    #[error("{0}")]
    Frame(String),
}

fn need(b: &[u8], n: usize, what: &'static str) -> Result<(), WireError> {
    if b.len() < n {
        Err(WireError::Truncated(what))
    } else {
        Ok(())
    }
}

/// A parsed datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// An ASF presence ping.
    AsfPing {
        /// Message tag to echo.
        tag: u8,
    },
    /// An IPMI v1.5 message without authentication (only used pre-session).
    V15 {
        /// The IPMI message.
        msg: &'a [u8],
    },
    /// An RMCP+ packet.
    V20(V20<'a>),
}

/// Parses a datagram (`auth_code_len`: the integrity code length of the session).
pub fn parse(pkt: &[u8], auth_code_len: usize) -> Result<Inbound<'_>, WireError> {
    need(pkt, 4, "RMCP header")?;
    if pkt[0] != 0x06 {
        return Err(WireError::Unsupported("RMCP version"));
    }
    match pkt[3] & 0x1F {
        0x06 => {
            let asf = &pkt[4..];
            need(asf, 8, "ASF message")?;
            if asf[..4] != ASF_IANA || asf[4] != 0x80 {
                return Err(WireError::Unsupported("ASF message type"));
            }
            Ok(Inbound::AsfPing { tag: asf[5] })
        }
        0x07 => {
            let s = &pkt[4..];
            need(s, 1, "session header")?;
            match s[0] {
                0x00 => {
                    // v1.5, auth type none: type(1) seq(4) id(4) len(1) msg
                    need(s, 10, "IPMI v1.5 session header")?;
                    let len = s[9] as usize;
                    need(&s[10..], len, "IPMI v1.5 message")?;
                    Ok(Inbound::V15 {
                        msg: &s[10..10 + len],
                    })
                }
                0x06 => packet::parse_frame(pkt, auth_code_len)
                    .map(Inbound::V20)
                    .map_err(|e| WireError::Frame(e.to_string())),
                _ => Err(WireError::Unsupported("IPMI v1.5 authentication type")),
            }
        }
        _ => Err(WireError::Unsupported("RMCP message class")),
    }
}

/// An ASF pong answering a ping with `tag`: IPMI supported.
pub fn asf_pong(tag: u8) -> Vec<u8> {
    let mut out = vec![0x06, 0x00, 0xFF, 0x06];
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[0x40, tag, 0x00, 0x10]);
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&[0x81, 0x00]);
    out.extend_from_slice(&[0; 6]);
    out
}

/// An IPMI v1.5 datagram with no authentication (for pre-session answers).
pub fn build_v15(msg: &[u8]) -> Vec<u8> {
    let mut out = RMCP_IPMI.to_vec();
    out.push(0x00);
    out.extend_from_slice(&[0; 8]);
    out.push(msg.len() as u8);
    out.extend_from_slice(msg);
    out
}

/// An IPMI request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Responder address (the BMC, 0x20).
    pub rs_addr: u8,
    /// Network function.
    pub netfn: u8,
    /// Responder LUN.
    pub rs_lun: u8,
    /// Requester address.
    pub rq_addr: u8,
    /// Requester sequence number.
    pub rq_seq: u8,
    /// Requester LUN.
    pub rq_lun: u8,
    /// Command.
    pub cmd: u8,
    /// Request data.
    pub data: Vec<u8>,
}

impl Request {
    /// Parses and checks both checksums.
    pub fn parse(m: &[u8]) -> Result<Request, WireError> {
        need(m, 7, "IPMI message")?;
        if checksum(&m[..2]) != m[2] {
            return Err(WireError::Corrupt("IPMI header checksum"));
        }
        let last = m.len() - 1;
        if checksum(&m[3..last]) != m[last] {
            return Err(WireError::Corrupt("IPMI data checksum"));
        }
        Ok(Request {
            rs_addr: m[0],
            netfn: m[1] >> 2,
            rs_lun: m[1] & 3,
            rq_addr: m[3],
            rq_seq: m[4] >> 2,
            rq_lun: m[4] & 3,
            cmd: m[5],
            data: m[6..last].to_vec(),
        })
    }

    /// The response message with `completion` and `data`.
    pub fn respond(&self, completion: u8, data: &[u8]) -> Vec<u8> {
        let mut m = vec![self.rq_addr, ((self.netfn | 1) << 2) | self.rq_lun];
        m.push(checksum(&m));
        m.extend_from_slice(&[
            self.rs_addr,
            (self.rq_seq << 2) | self.rs_lun,
            self.cmd,
            completion,
        ]);
        m.extend_from_slice(data);
        let c = checksum(&m[3..]);
        m.push(c);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_bytes(netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        let mut m = vec![0x20, netfn << 2];
        m.push(checksum(&m));
        m.extend_from_slice(&[0x81, 5 << 2, cmd]);
        m.extend_from_slice(data);
        let c = checksum(&m[3..]);
        m.push(c);
        m
    }

    #[test]
    fn requests_round_trip_into_responses() {
        let raw = request_bytes(0x06, 0x38, &[0x8E, 0x04]);
        let req = Request::parse(&raw).unwrap();
        assert_eq!(
            (req.netfn, req.cmd, req.rq_seq, req.data.as_slice()),
            (6, 0x38, 5, &[0x8E, 4][..])
        );
        let resp = req.respond(0, &[1, 2]);
        assert_eq!(checksum(&resp[..3]), 0);
        assert_eq!(checksum(&resp[3..]), 0);
        assert_eq!(resp[1] >> 2, 7);
        let mut bad = raw.clone();
        bad[6] ^= 1;
        assert!(Request::parse(&bad).is_err());
    }

    #[test]
    fn v20_frames_round_trip_with_integrity() {
        let sign = |b: &[u8]| vec![b.len() as u8; 12];
        for len in 0..9 {
            let payload: Vec<u8> = (0..len).collect();
            let pkt = build_v20(0, true, 0xAABBCCDD, 7, &payload, Some(&sign));
            let Inbound::V20(v) = parse(&pkt, 12).unwrap() else {
                panic!("v20")
            };
            assert_eq!(v.payload, &payload[..]);
            assert!(v.encrypted && v.authenticated);
            assert_eq!((v.session_id, v.seq), (0xAABBCCDD, 7));
            assert_eq!(v.signed.len() % 4, 0);
            assert_eq!(v.auth_code, &sign(v.signed)[..]);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let sign = |_: &[u8]| vec![0u8; 12];
        let pkts = [
            build_v20(0, false, 1, 1, &[1, 2, 3], Some(&sign)),
            build_v15(&request_bytes(6, 0x38, &[0x8E, 4])),
            asf_pong(3),
        ];
        for pkt in pkts {
            for cut in 0..pkt.len() {
                let _ = parse(&pkt[..cut], 12);
            }
        }
        assert!(parse(&[0x06, 0, 0xFF, 0x07, 0x06, 0x40], 12).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(mut pkt in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), class in 0u8..3) {
            // Bias towards headers this parser goes deeper into.
            let heads: [&[u8]; 3] = [&[0x06, 0, 0xFF, 0x07, 0x06], &[0x06, 0, 0xFF, 0x07, 0x00], &[0x06, 0, 0xFF, 0x06]];
            let head = heads[class as usize];
            for (i, b) in head.iter().enumerate() {
                if i < pkt.len() { pkt[i] = *b; }
            }
            let _ = parse(&pkt, 12);
            let _ = Request::parse(&pkt);
        }
    }
}
