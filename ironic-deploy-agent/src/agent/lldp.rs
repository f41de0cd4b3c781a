//! LLDP, as IPA's `netutils.get_lldp_info` does it: listen with a raw packet socket
//! for LLDP frames (ethertype 0x88cc) on the node's NICs until each has heard one
//! or the timeout passes, and keep each frame's TLVs. The conductor turns the
//! chassis id, port id and system name into the port's `local_link_connection`
//! ([`local_link_connection`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType, recvfrom, setsockopt, socket,
    sockopt,
};
use serde_json::{Value, json};

/// The LLDP ethertype.
pub const ETHERTYPE: u16 = 0x88cc;
/// TLV types (IEEE 802.1AB).
pub const TLV_CHASSIS_ID: u8 = 1;
/// Port ID TLV.
pub const TLV_PORT_ID: u8 = 2;
/// System name TLV.
pub const TLV_SYSTEM_NAME: u8 = 5;

/// The TLVs `(type, value)` heard on each interface (an empty list: nothing heard).
pub type LldpByInterface = BTreeMap<String, Vec<(u8, Vec<u8>)>>;

/// Split an LLDPDU (the frame after the Ethernet header) into TLVs, stopping at
/// the End TLV; a truncated TLV ends the list.
pub fn parse_tlvs(mut buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while buf.len() >= 2 {
        let hdr = u16::from_be_bytes([buf[0], buf[1]]);
        let (t, len) = ((hdr >> 9) as u8, (hdr & 0x1ff) as usize);
        if t == 0 {
            break;
        }
        let Some(v) = buf.get(2..2 + len) else { break };
        out.push((t, v.to_vec()));
        buf = &buf[2 + len..];
    }
    out
}

/// The LLDPDU of an Ethernet frame, if it is LLDP (tolerating one 802.1Q tag).
pub fn lldpdu(frame: &[u8]) -> Option<&[u8]> {
    let mut off = 12;
    let mut et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    if et == 0x8100 {
        off += 4;
        et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    (et == ETHERTYPE).then(|| &frame[off + 2..])
}

/// TLVs as IPA serialises them: `[[type, "hex"], ...]`.
pub fn to_json(tlvs: &[(u8, Vec<u8>)]) -> Value {
    Value::Array(
        tlvs.iter()
            .map(|(t, v)| json!([t, v.iter().map(|b| format!("{b:02x}")).collect::<String>()]))
            .collect(),
    )
}

/// TLVs back from IPA's JSON form (entries that do not parse are skipped).
pub fn from_json(v: &Value) -> Vec<(u8, Vec<u8>)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let t = e.get(0)?.as_u64()? as u8;
            let hex = e.get(1)?.as_str()?;
            if hex.len() % 2 != 0 {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            Some((t, bytes?))
        })
        .collect()
}

fn mac(b: &[u8]) -> Option<String> {
    (b.len() == 6).then(|| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

fn text(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b)
        .trim_matches(char::from(0))
        .trim()
        .to_owned();
    (!s.is_empty()).then_some(s)
}

/// Ironic's `local-link-connection` hook: `switch_id` from a MAC-address chassis id
/// (subtype 4; other subtypes are not switch ids), `port_id` from the port id (a MAC
/// for subtype 3, else its text), `switch_info` from the system name.
pub fn local_link_connection(tlvs: &[(u8, Vec<u8>)]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (t, v) in tlvs {
        let Some((&sub, val)) = v.split_first() else {
            continue;
        };
        match *t {
            TLV_CHASSIS_ID if sub == 4 => {
                if let Some(m) = mac(val) {
                    out.entry("switch_id").or_insert(json!(m));
                }
            }
            TLV_PORT_ID => {
                let p = if sub == 3 { mac(val) } else { text(val) };
                if let Some(p) = p {
                    out.entry("port_id").or_insert(json!(p));
                }
            }
            TLV_SYSTEM_NAME => {
                if let Some(n) = text(v) {
                    out.entry("switch_info").or_insert(json!(n));
                }
            }
            _ => {}
        }
    }
    out
}

fn ifindex(name: &str) -> Option<usize> {
    // in the calling thread's network namespace (sysfs shows the mounter's)
    nix::net::if_::if_nametoindex(name).ok().map(|i| i as usize)
}

/// Listen on `interfaces` (in the calling thread's network namespace) until each
/// heard an LLDP frame or `timeout` passed. Interfaces are put in promiscuous mode
/// meanwhile (with `ip`, as IPA does with an ioctl), so that a NIC filtering
/// multicast still hears the nearest-bridge address 01:80:c2:00:00:0e.
pub fn collect(interfaces: &[String], timeout: Duration) -> std::io::Result<LldpByInterface> {
    let by_index: BTreeMap<usize, String> = interfaces
        .iter()
        .filter_map(|n| Some((ifindex(n)?, n.clone())))
        .collect();
    let mut out: LldpByInterface = interfaces.iter().map(|n| (n.clone(), Vec::new())).collect();
    if by_index.is_empty() {
        return Ok(out);
    }
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(std::io::Error::from)?;
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(0, 200_000),
    )
    .map_err(std::io::Error::from)?;
    let promisc = |on: &str| {
        for n in by_index.values() {
            let _ = std::process::Command::new("ip")
                .args(["link", "set", "dev", n, "promisc", on])
                .output();
        }
    };
    promisc("on");
    let deadline = Instant::now() + timeout;
    let mut heard = std::collections::BTreeSet::new();
    let mut buf = vec![0u8; 9216];
    use std::os::fd::AsRawFd;
    while Instant::now() < deadline && heard.len() < by_index.len() {
        match recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf) {
            Ok((n, Some(from))) => {
                let Some(name) = by_index.get(&from.ifindex()) else {
                    continue;
                };
                if heard.contains(name) {
                    continue;
                }
                if let Some(pdu) = lldpdu(&buf[..n]) {
                    tracing::info!(interface = %name, "LLDP frame received");
                    out.insert(name.clone(), parse_tlvs(pdu));
                    heard.insert(name.clone());
                }
            }
            Ok((_, None)) => {}
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => {
                promisc("off");
                return Err(e.into());
            }
        }
    }
    promisc("off");
    if heard.len() < by_index.len() {
        tracing::warn!(
            silent = ?by_index.values().filter(|n| !heard.contains(*n)).collect::<Vec<_>>(),
            "no LLDP heard on some interfaces within {timeout:?}"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An LLDPDU as a switch sends it: chassis MAC, port ifname, TTL, system name, End.
    fn pdu() -> Vec<u8> {
        let tlv = |t: u8, v: &[u8]| {
            let h = ((t as u16) << 9) | v.len() as u16;
            let mut o = h.to_be_bytes().to_vec();
            o.extend_from_slice(v);
            o
        };
        let mut p = Vec::new();
        p.extend(tlv(1, &[4, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]));
        p.extend(tlv(2, b"\x05Ethernet1/7"));
        p.extend(tlv(3, &[0, 120]));
        p.extend(tlv(5, b"tor-7"));
        p.extend(tlv(0, &[]));
        p
    }

    #[test]
    fn frames_become_local_link_connections() {
        let mut frame = vec![
            0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x52, 0x54, 0, 1, 2, 3, 0x88, 0xcc,
        ];
        frame.extend(pdu());
        let tlvs = parse_tlvs(lldpdu(&frame).unwrap());
        assert_eq!(tlvs.len(), 4);
        let round = from_json(&to_json(&tlvs));
        assert_eq!(round, tlvs);
        let llc = local_link_connection(&round);
        assert_eq!(llc["switch_id"], "52:54:00:aa:bb:cc");
        assert_eq!(llc["port_id"], "Ethernet1/7");
        assert_eq!(llc["switch_info"], "tor-7");
        // not LLDP, truncated, or a chassis id that is not a MAC
        assert!(lldpdu(&[0; 14]).is_none());
        assert!(parse_tlvs(&[0x02, 0x10, 1]).is_empty());
        let llc = local_link_connection(&[(1, b"\x07name".to_vec())]);
        assert!(llc.get("switch_id").is_none());
    }
}
