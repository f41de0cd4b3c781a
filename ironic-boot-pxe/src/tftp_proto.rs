//! TFTP packets (RFC 1350) and option negotiation (RFC 2347, 2348, 2349, 7440)
//! for a read-only server.

use std::time::Duration;

/// Opcodes.
pub(crate) const RRQ: u16 = 1;
pub(crate) const WRQ: u16 = 2;
pub(crate) const DATA: u16 = 3;
pub(crate) const ACK: u16 = 4;
pub(crate) const ERROR: u16 = 5;
pub(crate) const OACK: u16 = 6;

/// Error codes (RFC 1350 §5, RFC 2347).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum ErrorCode {
    /// Not defined, see the message.
    Undefined = 0,
    /// File not found.
    FileNotFound = 1,
    /// Access violation.
    AccessViolation = 2,
    /// Illegal TFTP operation.
    IllegalOperation = 4,
}

/// An ERROR packet.
pub(crate) fn error_packet(code: ErrorCode, msg: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + msg.len());
    p.extend_from_slice(&ERROR.to_be_bytes());
    p.extend_from_slice(&(code as u16).to_be_bytes());
    // The message is NUL-terminated netascii: keep it to printable ASCII.
    p.extend(
        msg.bytes()
            .map(|b| if (0x20..0x7f).contains(&b) { b } else { b'?' }),
    );
    p.push(0);
    p
}

/// Transfer mode of a read request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Bytes as they are.
    Octet,
    /// Lines converted to CR LF, a lone CR to CR NUL (RFC 764).
    Netascii,
}

/// A parsed read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadRequest {
    /// The file name as sent (UTF-8).
    pub filename: String,
    /// Transfer mode.
    pub mode: Mode,
    /// `blksize` asked for (valid values only: 8..=65464).
    pub blksize: Option<u16>,
    /// `timeout` asked for, seconds (1..=255).
    pub timeout: Option<u8>,
    /// `tsize` asked for (a read request carries 0).
    pub tsize: bool,
    /// `windowsize` asked for (1..=65535).
    pub windowsize: Option<u16>,
}

/// What a datagram to the server's port is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// A read request.
    Read(ReadRequest),
    /// Answer with this error (a malformed or refused packet).
    Refuse {
        /// Error code.
        code: ErrorCode,
        /// Error message (sent to the client).
        message: &'static str,
        /// The packet was malformed (not merely refused).
        malformed: bool,
    },
    /// Say nothing (an ERROR packet: never answer an error with an error).
    Ignore,
}

fn malformed(message: &'static str) -> Request {
    Request::Refuse {
        code: ErrorCode::IllegalOperation,
        message,
        malformed: true,
    }
}

/// Split a NUL-terminated string off `input`.
fn nul_str(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let pos = input.iter().position(|c| *c == 0)?;
    Some((&input[..pos], &input[pos + 1..]))
}

/// Parse a datagram received on the server's port.
pub(crate) fn parse_request(data: &[u8]) -> Request {
    let Some(op) = data.get(..2) else {
        return malformed("Malformed packet: too short");
    };
    let rest = &data[2..];
    match u16::from_be_bytes([op[0], op[1]]) {
        RRQ => parse_read(rest),
        WRQ => Request::Refuse {
            code: ErrorCode::AccessViolation,
            message: "Access violation: the server is read-only",
            malformed: false,
        },
        ERROR => Request::Ignore,
        DATA | ACK | OACK => malformed("Illegal TFTP operation: not a request"),
        _ => malformed("Illegal TFTP operation: unknown opcode"),
    }
}

fn parse_read(rest: &[u8]) -> Request {
    let Some((name, rest)) = nul_str(rest) else {
        return malformed("Malformed request: file name not NUL-terminated");
    };
    let Some((mode, mut opts)) = nul_str(rest) else {
        return malformed("Malformed request: mode not NUL-terminated");
    };
    let mode = if mode.eq_ignore_ascii_case(b"octet") {
        Mode::Octet
    } else if mode.eq_ignore_ascii_case(b"netascii") {
        Mode::Netascii
    } else if mode.eq_ignore_ascii_case(b"mail") {
        return malformed("Mail mode is not supported");
    } else {
        return malformed("Unknown transfer mode");
    };
    let Ok(filename) = std::str::from_utf8(name) else {
        return Request::Refuse {
            code: ErrorCode::AccessViolation,
            message: "Access violation: file name is not UTF-8",
            malformed: false,
        };
    };
    let mut req = ReadRequest {
        filename: filename.to_owned(),
        mode,
        blksize: None,
        timeout: None,
        tsize: false,
        windowsize: None,
    };
    // Options (RFC 2347): name/value pairs. Unknown options and values out of
    // range are ignored (not acknowledged), as the RFCs allow; a list that is
    // not made of NUL-terminated pairs is malformed. Some clients pad the
    // request with NULs: trailing NULs are accepted.
    while !opts.is_empty() && opts.iter().any(|b| *b != 0) {
        let Some((name, rest)) = nul_str(opts) else {
            return malformed("Malformed request: option not NUL-terminated");
        };
        let Some((value, rest)) = nul_str(rest) else {
            return malformed("Malformed request: option without a value");
        };
        opts = rest;
        let value = std::str::from_utf8(value).ok();
        let num = |max: u64| {
            value
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n <= max)
        };
        if name.eq_ignore_ascii_case(b"blksize") {
            req.blksize = num(65464).filter(|n| *n >= 8).map(|n| n as u16);
        } else if name.eq_ignore_ascii_case(b"timeout") {
            req.timeout = num(255).filter(|n| *n >= 1).map(|n| n as u8);
        } else if name.eq_ignore_ascii_case(b"tsize") {
            req.tsize = num(u64::MAX).is_some();
        } else if name.eq_ignore_ascii_case(b"windowsize") {
            req.windowsize = num(65535).filter(|n| *n >= 1).map(|n| n as u16);
        }
    }
    Request::Read(req)
}

/// What the server grants for a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// Bytes per DATA block.
    pub blksize: usize,
    /// Blocks sent before waiting for an acknowledgement.
    pub windowsize: usize,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// The OACK to send first (`None`: no option acknowledged, start with data).
    pub oack: Option<Vec<u8>>,
}

/// Grant what `req` asks within the server's limits. `size` is the file's
/// length when known (for `tsize`, octet mode only, as tftpd-hpa).
pub(crate) fn negotiate(
    req: &ReadRequest,
    size: Option<u64>,
    max_blksize: u16,
    max_windowsize: u16,
    default_timeout: Duration,
) -> Negotiated {
    let mut oack = Vec::new();
    let mut opt = |name: &str, value: String| {
        oack.extend_from_slice(name.as_bytes());
        oack.push(0);
        oack.extend_from_slice(value.as_bytes());
        oack.push(0);
    };
    let mut blksize = 512;
    if let Some(b) = req.blksize {
        blksize = b.min(max_blksize.clamp(8, 65464)) as usize;
        opt("blksize", blksize.to_string());
    }
    let mut timeout = default_timeout;
    if let Some(t) = req.timeout {
        timeout = Duration::from_secs(t.into());
        opt("timeout", t.to_string());
    }
    if req.tsize
        && req.mode == Mode::Octet
        && let Some(size) = size
    {
        opt("tsize", size.to_string());
    }
    let mut windowsize = 1;
    if let Some(w) = req.windowsize {
        windowsize = w.min(max_windowsize.max(1)) as usize;
        opt("windowsize", windowsize.to_string());
    }
    let oack = (!oack.is_empty()).then(|| {
        let mut p = OACK.to_be_bytes().to_vec();
        p.extend_from_slice(&oack);
        p
    });
    Negotiated {
        blksize,
        windowsize,
        timeout,
        oack,
    }
}

/// What a client sends during a transfer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// ACK of a block number.
    Ack(u16),
    /// The client gave up (ERROR packet), with its code.
    Error(u16),
    /// Anything else (ignored).
    Other,
}

/// Parse a datagram received on a transfer's socket.
pub(crate) fn parse_reply(data: &[u8]) -> Reply {
    if data.len() < 4 {
        return Reply::Other;
    }
    let n = u16::from_be_bytes([data[2], data[3]]);
    match u16::from_be_bytes([data[0], data[1]]) {
        ACK => Reply::Ack(n),
        ERROR => Reply::Error(n),
        _ => Reply::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(parts: &[&[u8]]) -> Vec<u8> {
        let mut p = RRQ.to_be_bytes().to_vec();
        for s in parts {
            p.extend_from_slice(s);
            p.push(0);
        }
        p
    }

    fn code(r: Request) -> (ErrorCode, bool) {
        match r {
            Request::Refuse {
                code, malformed, ..
            } => (code, malformed),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn malformed_requests_are_refused_with_illegal_operation() {
        let ill = (ErrorCode::IllegalOperation, true);
        assert_eq!(code(parse_request(b"")), ill);
        assert_eq!(code(parse_request(b"\x00")), ill);
        assert_eq!(code(parse_request(b"\x00\x09abc\x00octet\x00")), ill);
        assert_eq!(code(parse_request(b"\x00\x01abc")), ill);
        assert_eq!(code(parse_request(b"\x00\x01abc\x00octet")), ill);
        assert_eq!(code(parse_request(&rrq(&[b"abc", b"foo"]))), ill);
        assert_eq!(code(parse_request(&rrq(&[b"abc", b"mail"]))), ill);
        let mut odd = rrq(&[b"abc", b"octet", b"blksize"]);
        assert_eq!(code(parse_request(&odd)), ill);
        odd.extend_from_slice(b"1468");
        assert_eq!(code(parse_request(&odd)), ill);
        assert_eq!(code(parse_request(b"\x00\x04\x00\x01")), ill);
        assert_eq!(code(parse_request(b"\x00\x03\x00\x01data")), ill);
        assert_eq!(
            code(parse_request(b"\x00\x02abc\x00octet\x00")),
            (ErrorCode::AccessViolation, false)
        );
        assert_eq!(
            code(parse_request(&rrq(&[b"\xff\xfe", b"octet"]))),
            (ErrorCode::AccessViolation, false)
        );
        assert_eq!(parse_request(b"\x00\x05\x00\x01oops\x00"), Request::Ignore);
    }

    #[test]
    fn options_are_read_and_bad_values_ignored() {
        let Request::Read(r) = parse_request(&rrq(&[
            b"pxelinux.0",
            b"OCTET",
            b"BLKSIZE",
            b"1468",
            b"tsize",
            b"0",
            b"timeout",
            b"5",
            b"windowsize",
            b"16",
            b"unknown",
            b"x",
        ])) else {
            panic!()
        };
        assert_eq!(r.filename, "pxelinux.0");
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(r.blksize, Some(1468));
        assert_eq!(r.timeout, Some(5));
        assert!(r.tsize);
        assert_eq!(r.windowsize, Some(16));
        let Request::Read(r) = parse_request(&rrq(&[
            b"a",
            b"netascii",
            b"blksize",
            b"7",
            b"timeout",
            b"0",
            b"windowsize",
            b"65536",
            b"tsize",
            b"big",
        ])) else {
            panic!()
        };
        assert_eq!(r.mode, Mode::Netascii);
        assert_eq!(
            (r.blksize, r.timeout, r.windowsize, r.tsize),
            (None, None, None, false)
        );
        // Padding NULs after the last option are accepted.
        let mut padded = rrq(&[b"a", b"octet", b"blksize", b"512"]);
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(parse_request(&padded), Request::Read(_)));
    }

    #[test]
    fn negotiation_caps_and_echoes() {
        let req = ReadRequest {
            filename: "f".into(),
            mode: Mode::Octet,
            blksize: Some(65464),
            timeout: Some(2),
            tsize: true,
            windowsize: Some(100),
        };
        let n = negotiate(&req, Some(1234), 1468, 64, Duration::from_secs(3));
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.windowsize, 64);
        assert_eq!(n.timeout, Duration::from_secs(2));
        assert_eq!(
            n.oack.unwrap(),
            b"\x00\x06blksize\x001468\x00timeout\x002\x00tsize\x001234\x00windowsize\x0064\x00"
        );
        let plain = ReadRequest {
            blksize: None,
            timeout: None,
            tsize: false,
            windowsize: None,
            ..req.clone()
        };
        let n = negotiate(&plain, Some(1), 65464, 64, Duration::from_secs(3));
        assert_eq!((n.blksize, n.windowsize, n.oack), (512, 1, None));
        // tsize is not offered in netascii mode (the converted size is unknown).
        let ascii = ReadRequest {
            mode: Mode::Netascii,
            blksize: None,
            timeout: None,
            windowsize: None,
            ..req
        };
        assert_eq!(
            negotiate(&ascii, Some(9), 65464, 64, Duration::from_secs(3)).oack,
            None
        );
    }

    #[test]
    fn error_packets_are_well_formed() {
        assert_eq!(
            error_packet(ErrorCode::FileNotFound, "File not found"),
            b"\x00\x05\x00\x01File not found\x00"
        );
        assert_eq!(
            error_packet(ErrorCode::Undefined, "a\0b\u{e9}"),
            b"\x00\x05\x00\x00a?b??\x00"
        );
        assert_eq!(parse_reply(b"\x00\x04\x01\x02"), Reply::Ack(258));
        assert_eq!(parse_reply(b"\x00\x05\x00\x08x\x00"), Reply::Error(8));
        assert_eq!(parse_reply(b"\x00\x04\x01"), Reply::Other);
    }
}
