//! [`IpmiConsole`]: the serial console over IPMI Serial-over-LAN, served on a TCP
//! port like Ironic's `ipmitool-socat` (registered under that name).
//!
//! `start_console` listens on `console_bind:ipmi_terminal_port`; each TCP client in
//! turn gets its own RMCP+ session with the SOL payload activated, bridged both ways:
//! characters from the client are sent in SOL packets (retransmitted until the BMC
//! acknowledges them), characters from the BMC are acknowledged and written to the
//! client. The session is deactivated and closed when the client leaves or the
//! console is stopped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use ironic_core::driver::{BaseInterface, ConsoleInfo, ConsoleInterface, PropertyDoc, Task};
use ironic_core::{DriverError, ErrorKind, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::client::open_session;
use crate::config::{IpmiConfig, IpmiDriverInfo, PROPERTIES};
use crate::error::Error;
use crate::session::Session;
use crate::session::packet::{self, payload};

/// Ironic's name for this console interface.
pub const CONSOLE_NAME: &str = "ipmitool-socat";

struct Running {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Serial console over SOL, served on TCP (`ipmitool-socat`).
pub struct IpmiConsole {
    config: IpmiConfig,
    running: Mutex<HashMap<NodeId, Running>>,
}

impl std::fmt::Debug for IpmiConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running: Vec<String> = self
            .running
            .lock()
            .map(|m| m.values().map(|r| r.addr.to_string()).collect())
            .unwrap_or_default();
        f.debug_struct("IpmiConsole")
            .field("running", &running)
            .finish()
    }
}

impl Drop for IpmiConsole {
    fn drop(&mut self) {
        if let Ok(m) = self.running.get_mut() {
            for r in m.values() {
                r.cancel.cancel();
            }
        }
    }
}

impl IpmiConsole {
    /// A console interface with these settings (`console_bind`, timers).
    pub fn new(config: IpmiConfig) -> Self {
        IpmiConsole {
            config,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn info(&self, task: &Task) -> Result<(IpmiDriverInfo, u16), DriverError> {
        let info = IpmiDriverInfo::from_node(&task.node, &self.config)?;
        let port = info.terminal_port.ok_or_else(|| {
            DriverError::from(Error::MissingKey {
                key: "ipmi_terminal_port",
                detail: "The serial console needs a TCP port.".into(),
            })
        })?;
        Ok((info, port))
    }

    fn take(&self, node: &NodeId) -> Option<Running> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node)
    }
}

#[async_trait]
impl BaseInterface for IpmiConsole {
    fn properties(&self) -> Vec<PropertyDoc> {
        PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.info(task).map(|_| ())
    }
}

#[async_trait]
impl ConsoleInterface for IpmiConsole {
    async fn start_console(&self, task: &mut Task) -> Result<(), DriverError> {
        let (info, port) = self.info(task)?;
        let addr = SocketAddr::new(self.config.console_bind, port);
        let uuid = task.node.uuid;
        if let Some(r) = self.take(&uuid) {
            if r.addr == addr && !r.task.is_finished() {
                self.running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(uuid, r);
                return Ok(());
            }
            r.cancel.cancel();
            let _ = r.task.await;
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            DriverError::new(
                ErrorKind::Conflict,
                format!("Cannot listen on {addr} for the serial console of node {uuid}: {e}"),
            )
        })?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, info, cancel.clone()));
        tracing::info!(node = %uuid, %addr, "serial console started");
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uuid, Running { addr, cancel, task });
        Ok(())
    }

    async fn stop_console(&self, task: &mut Task) -> Result<(), DriverError> {
        if let Some(r) = self.take(&task.node.uuid) {
            r.cancel.cancel();
            let _ = r.task.await;
            tracing::info!(node = %task.node.uuid, addr = %r.addr, "serial console stopped");
        }
        Ok(())
    }

    async fn get_console(&self, task: &Task) -> Result<ConsoleInfo, DriverError> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get(&task.node.uuid) {
            Some(r) if !r.task.is_finished() => Ok(ConsoleInfo {
                kind: "socat".into(),
                url: format!("tcp://{}", r.addr),
            }),
            _ => Err(DriverError::new(
                ErrorKind::Conflict,
                format!(
                    "The serial console of node {} is not started",
                    task.node.uuid
                ),
            )),
        }
    }
}

/// Accept TCP clients one at a time and bridge each to a SOL session.
async fn serve(listener: TcpListener, info: IpmiDriverInfo, cancel: CancellationToken) {
    loop {
        let mut stream = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, peer)) => {
                    tracing::debug!(bmc = %info.bmc(), %peer, "console client connected");
                    s
                }
                Err(e) => {
                    tracing::warn!(error = %e, "console accept failed");
                    continue;
                }
            },
        };
        match open_session(&info, info.cipher_suite).await {
            Ok((session, _)) => {
                if let Err(e) = bridge(session, &mut stream, &cancel).await {
                    tracing::warn!(bmc = %info.bmc(), error = %e, "serial console ended");
                    let _ = stream
                        .write_all(format!("\r\n[console: {e}]\r\n").as_bytes())
                        .await;
                }
            }
            Err(e) => {
                let _ = stream
                    .write_all(format!("[console: {e}]\r\n").as_bytes())
                    .await;
            }
        }
        let _ = stream.shutdown().await;
    }
}

/// An SOL packet: sequence, ack, accepted count, operation/status, data.
fn sol_packet(seq: u8, ack: u8, accepted: u8, data: &[u8]) -> Vec<u8> {
    let mut p = vec![seq & 0x0F, ack & 0x0F, accepted, 0];
    p.extend_from_slice(data);
    p
}

struct Outstanding {
    seq: u8,
    data: Vec<u8>,
    deadline: Instant,
    tries: u32,
}

/// Activate SOL on `session` and copy characters both ways until the client leaves,
/// the BMC deactivates the payload or `cancel` fires.
async fn bridge(
    mut session: Session,
    stream: &mut TcpStream,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let bmc = session.target().bmc.clone();
    let r = session
        .command(
            0x06,
            0x48,
            &[0x01, 0x01, 0xC0, 0, 0, 0],
            "Activate Payload (SOL)",
        )
        .await?;
    if r.completion != 0 {
        let detail = match r.completion {
            0x80 => "SOL is already active on another session".to_owned(),
            0x81 => "SOL is disabled on this BMC".to_owned(),
            c => crate::error::completion_text(c).to_owned(),
        };
        session.close().await;
        return Err(Error::Unexpected {
            bmc,
            what: "Activate Payload (SOL)",
            detail,
        });
    }
    // [aux 4][inbound size 2][outbound size 2][port 2][vlan 2]
    let max_chunk = r
        .data
        .get(4..6)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        .filter(|n| *n > 4)
        .map(|n| (n - 4).min(255))
        .unwrap_or(64);
    if let Some(port) = r.data.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]]))
        && port != 0
        && port != session.target().addr.port()
    {
        let mut addr = session.target().addr;
        addr.set_port(port);
        session
            .socket()
            .connect(addr)
            .await
            .map_err(|source| Error::Unreachable {
                bmc: bmc.clone(),
                source,
            })?;
    }
    let timeout = session.target().packet_timeout;
    let retries = session.target().packet_retries;
    let keepalive_every = std::time::Duration::from_secs(20);

    let mut queue: VecDeque<u8> = VecDeque::new();
    let mut pending: Option<Outstanding> = None;
    let mut out_seq: u8 = 0;
    let mut last_in: Option<(u8, usize)> = None;
    let mut keepalive_at = Instant::now() + keepalive_every;
    let mut tbuf = vec![0u8; 1024];
    let mut ubuf = vec![0u8; 2048];
    let mut client_open = true;
    let result = loop {
        // send queued characters when nothing is in flight
        if pending.is_none() && !queue.is_empty() {
            out_seq = out_seq % 15 + 1;
            let n = queue.len().min(max_chunk);
            let data: Vec<u8> = queue.drain(..n).collect();
            let pkt = session.seal(payload::SOL, &sol_packet(out_seq, 0, 0, &data));
            let _ = session.socket().send(&pkt).await;
            pending = Some(Outstanding {
                seq: out_seq,
                data,
                deadline: Instant::now() + timeout,
                tries: 0,
            });
        }
        if !client_open && pending.is_none() && queue.is_empty() {
            break Ok(());
        }
        let resend_at = pending.as_ref().map(|p| p.deadline);
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            n = stream.read(&mut tbuf), if client_open && queue.len() < 64 * 1024 => match n {
                Ok(0) | Err(_) => client_open = false,
                Ok(n) => queue.extend(&tbuf[..n]),
            },
            r = session.socket().recv(&mut ubuf) => {
                let n = match r {
                    Ok(n) => n,
                    Err(source) => break Err(Error::Unreachable { bmc: bmc.clone(), source }),
                };
                let p = match session.open_packet(&ubuf[..n]) {
                    Ok((payload::SOL, p)) if p.len() >= 4 => p,
                    Ok(_) => continue, // keep-alive replies and the like
                    Err(reason) => {
                        tracing::debug!(%bmc, %reason, "dropped packet from BMC");
                        continue;
                    }
                };
                let (seq, ack, accepted, status) = (p[0] & 0x0F, p[1] & 0x0F, p[2] as usize, p[3]);
                if let Some(o) = pending.as_mut()
                    && ack == o.seq
                {
                    if status & 0x40 != 0 {
                        // NACK: the BMC could not take the data now; retry later
                        o.deadline = Instant::now() + timeout;
                    } else {
                        let rest = o.data.split_off(accepted.min(o.data.len()));
                        pending = None;
                        for b in rest.into_iter().rev() {
                            queue.push_front(b);
                        }
                    }
                }
                let data = &p[4..];
                if seq != 0 {
                    // a repeated packet (our ack was lost) is acknowledged, not written
                    if last_in != Some((seq, data.len())) {
                        stream.write_all(data).await.ok();
                        last_in = Some((seq, data.len()));
                    }
                    let ack = session.seal(payload::SOL, &sol_packet(0, seq, data.len().min(255) as u8, &[]));
                    let _ = session.socket().send(&ack).await;
                }
                if status & 0x10 != 0 {
                    break Ok(()); // the BMC deactivates SOL
                }
            }
            _ = sleep_until(resend_at.unwrap_or_else(Instant::now)), if resend_at.is_some() => {
                if let Some(o) = pending.as_mut() {
                    o.tries += 1;
                    if o.tries > retries {
                        break Err(Error::Timeout { bmc: bmc.clone(), what: "SOL data".into(), attempts: o.tries });
                    }
                    let pkt = session.seal(payload::SOL, &sol_packet(o.seq, 0, 0, &o.data));
                    let _ = session.socket().send(&pkt).await;
                    o.deadline = Instant::now() + timeout;
                }
            }
            _ = sleep_until(keepalive_at) => {
                let req = packet::encode_request(0x06, 0x01, 0x3F, &[]);
                let pkt = session.seal(payload::IPMI, &req);
                let _ = session.socket().send(&pkt).await;
                keepalive_at = Instant::now() + keepalive_every;
            }
        }
    };
    let _ = session
        .command(
            0x06,
            0x49,
            &[0x01, 0x01, 0, 0, 0, 0],
            "Deactivate Payload (SOL)",
        )
        .await;
    session.close().await;
    result
}
