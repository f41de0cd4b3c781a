//! Faults: unreachable BMCs, lossy and corrupting networks, replayed packets and
//! BMCs that answer garbage. The driver must stay within its bounds, succeed where
//! a retry can succeed, and never panic.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peers::{IpmiSim, ipmitool};
use common::{config, interfaces, task};
use ironic_core::driver::BootDevice;
use ironic_core::{ErrorKind, PowerAction, PowerState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

/// What the proxy does with one packet.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Pass,
    Drop,
    /// Flip one byte.
    Corrupt,
    /// Send it twice, and the previous packet of that direction again.
    Replay,
}

/// Decides the fate of a packet: (rng, from the BMC, the packet).
type Policy = Arc<dyn Fn(&mut StdRng, bool, &[u8]) -> Fate + Send + Sync>;

/// A UDP proxy on 127.0.0.1 in front of `upstream` that applies `policy` to every
/// packet (`true` = from the BMC). Returns its port; it runs until the test ends.
async fn proxy(upstream: u16, seed: u64, policy: Policy) -> u16 {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let port = front.local_addr().unwrap().port();
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
    let backs: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut last_up: Option<Vec<u8>> = None;
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else {
                return;
            };
            let pkt = buf[..n].to_vec();
            let back = {
                let mut map = backs.lock().await;
                if let Some(b) = map.get(&client) {
                    b.clone()
                } else {
                    let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    b.connect(("127.0.0.1", upstream)).await.unwrap();
                    map.insert(client, b.clone());
                    // replies from the BMC to this client
                    let (b2, front2, rng2, policy2) =
                        (b.clone(), front.clone(), rng.clone(), policy.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        let mut last: Option<Vec<u8>> = None;
                        while let Ok(n) = b2.recv(&mut buf).await {
                            let mut pkt = buf[..n].to_vec();
                            let fate = policy2(&mut *rng2.lock().await, true, &pkt);
                            match fate {
                                Fate::Drop => continue,
                                Fate::Corrupt => {
                                    let i = rng2.lock().await.random_range(0..pkt.len());
                                    pkt[i] ^= 0x5A;
                                }
                                Fate::Replay => {
                                    if let Some(old) = &last {
                                        let _ = front2.send_to(old, client).await;
                                    }
                                    let _ = front2.send_to(&pkt, client).await;
                                }
                                Fate::Pass => {}
                            }
                            let _ = front2.send_to(&pkt, client).await;
                            last = Some(buf[..n].to_vec());
                        }
                    });
                    b
                }
            };
            let fate = policy(&mut *rng.lock().await, false, &pkt);
            match fate {
                Fate::Drop => continue,
                Fate::Replay => {
                    if let Some(old) = &last_up {
                        let _ = back.send(old).await;
                    }
                }
                Fate::Corrupt | Fate::Pass => {}
            }
            let _ = back.send(&pkt).await;
            last_up = Some(pkt);
        }
    });
    port
}

fn through(sim: &IpmiSim, port: u16) -> serde_json::Value {
    let mut info = sim.driver_info();
    info["ipmi_port"] = port.into();
    info["ipmi_packet_timeout"] = 0.3.into();
    info["ipmi_packet_retries"] = 6.into();
    info["ipmi_command_retry_timeout"] = 60.into();
    info
}

/// Power on and off, boot device, sensors: the work a conductor does.
async fn exercise(info: serde_json::Value, sim: &IpmiSim) {
    let (power, mgmt) = interfaces(config());
    let t = task(info);
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    mgmt.set_boot_device(&t, BootDevice::Pxe, false)
        .await
        .unwrap();
    assert_eq!(
        mgmt.get_boot_device(&t).await.unwrap().boot_device,
        Some(BootDevice::Pxe)
    );
    let sensors = mgmt.get_sensors_data(&t).await.unwrap();
    assert!(sensors["Temperature"].get("CPU Temp (0x1)").is_some());
    power
        .set_power_state(&t, PowerAction::PowerOff, None)
        .await
        .unwrap();
    assert!(ipmitool(sim.port, 3, &["power", "status"]).contains("is off"));
}

#[tokio::test]
async fn a_bmc_dropping_a_third_of_packets_still_works() {
    let sim = IpmiSim::start();
    let port = proxy(
        sim.port,
        7,
        Arc::new(|r, _, _| {
            if r.random_bool(0.3) {
                Fate::Drop
            } else {
                Fate::Pass
            }
        }),
    )
    .await;
    exercise(through(&sim, port), &sim).await;
}

#[tokio::test]
async fn corrupted_replies_are_dropped_and_retransmitted() {
    let sim = IpmiSim::start();
    let port = proxy(
        sim.port,
        11,
        // Only session packets carry an AuthCode; session setup packets have no
        // protection in RMCP+, so damaging them is not something a client can detect.
        Arc::new(|r, from_bmc, pkt| {
            if from_bmc && pkt.get(5).is_some_and(|b| b & 0x40 != 0) && r.random_bool(0.3) {
                Fate::Corrupt
            } else {
                Fate::Pass
            }
        }),
    )
    .await;
    exercise(through(&sim, port), &sim).await;
}

#[tokio::test]
async fn replayed_and_duplicated_packets_are_ignored() {
    let sim = IpmiSim::start();
    let port = proxy(
        sim.port,
        13,
        Arc::new(|r, _, _| {
            if r.random_bool(0.5) {
                Fate::Replay
            } else {
                Fate::Pass
            }
        }),
    )
    .await;
    exercise(through(&sim, port), &sim).await;
}

#[tokio::test]
async fn a_silent_bmc_times_out_within_the_bound_and_is_retryable() {
    // bound but never answering: packets vanish
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let (power, _) = interfaces(config());
    let info = serde_json::json!({
        "ipmi_address": "127.0.0.1", "ipmi_port": port,
        "ipmi_username": "admin", "ipmi_password": "pw",
        "ipmi_packet_timeout": 0.2, "ipmi_packet_retries": 1,
        "ipmi_command_retry_timeout": 2,
    });
    let start = Instant::now();
    let e = power.get_power_state(&task(info)).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    // bounded by ipmi_command_retry_timeout (2 s), with slack for a loaded machine
    assert!(took < Duration::from_secs(6), "took {took:?}");
    drop(hole);
}

#[tokio::test]
async fn a_closed_port_is_retryable() {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let (power, _) = interfaces(config());
    let info = serde_json::json!({
        "ipmi_address": "127.0.0.1", "ipmi_port": port,
        "ipmi_packet_timeout": 0.2, "ipmi_packet_retries": 1,
        "ipmi_command_retry_timeout": 1.5,
    });
    let e = power.get_power_state(&task(info)).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Timeout),
        "{e:?}"
    );
}

#[tokio::test]
async fn unresolvable_host_is_reported() {
    let (power, _) = interfaces(config());
    let info = serde_json::json!({
        "ipmi_address": "no-such-bmc.invalid",
        "ipmi_command_retry_timeout": 1,
    });
    let e = power.get_power_state(&task(info)).await.unwrap_err();
    assert!(e.to_string().contains("no-such-bmc.invalid"), "{e}");
}

/// A fake BMC that answers every packet with what `reply` makes of it.
async fn garbage_bmc(reply: impl Fn(&[u8], &mut StdRng) -> Vec<u8> + Send + 'static) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(3);
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            for _ in 0..3 {
                let r = reply(&buf[..n], &mut rng);
                let _ = sock.send_to(&r, from).await;
            }
        }
    });
    port
}

async fn against(port: u16) -> ironic_core::DriverError {
    let (power, _) = interfaces(config());
    let info = serde_json::json!({
        "ipmi_address": "127.0.0.1", "ipmi_port": port,
        "ipmi_username": "admin", "ipmi_password": "pw", "ipmi_cipher_suite": 3,
        "ipmi_packet_timeout": 0.1, "ipmi_packet_retries": 2,
        "ipmi_command_retry_timeout": 1,
    });
    power.get_power_state(&task(info)).await.unwrap_err()
}

#[tokio::test]
async fn malformed_replies_give_an_error_not_a_panic() {
    // random bytes
    let e = against(
        garbage_bmc(|_, r| {
            let n = r.random_range(0..120);
            (0..n).map(|_| r.random()).collect()
        })
        .await,
    )
    .await;
    assert!(e.is_retryable(), "{e:?}");
    // an RMCP+ header claiming a huge payload, then nothing
    let e = against(
        garbage_bmc(|_, _| vec![6, 0, 0xff, 7, 6, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).await,
    )
    .await;
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("truncated"), "{e}");
    // a well-formed Open Session Response that echoes our session ID, then random
    // RAKP 2 bodies of every length
    let e = against(
        garbage_bmc(|req, r| {
            let sid = req.get(20..24).unwrap_or(&[0; 4]).to_vec();
            let ptype = req.get(5).copied().unwrap_or(0);
            let mut p = if ptype == 0x10 {
                let mut p = vec![req.get(16).copied().unwrap_or(0), 0, 4, 0];
                p.extend_from_slice(&sid);
                p.extend_from_slice(&[1, 2, 3, 4]);
                for (k, a) in [(0u8, 1u8), (1, 1), (2, 1)] {
                    p.extend_from_slice(&[k, 0, 0, 8, a, 0, 0, 0]);
                }
                p
            } else {
                let n = r.random_range(0..60);
                (0..n).map(|_| r.random()).collect()
            };
            let mut pkt = vec![6, 0, 0xff, 7, 6, ptype + 1, 0, 0, 0, 0, 0, 0, 0, 0];
            pkt.extend_from_slice(&(p.len() as u16).to_le_bytes());
            pkt.append(&mut p);
            pkt
        })
        .await,
    )
    .await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Protocol
                | ErrorKind::Timeout
                | ErrorKind::Unauthenticated
                | ErrorKind::Other
        ),
        "{e:?}"
    );
}
