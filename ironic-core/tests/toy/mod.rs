//! A toy BMC on loopback TCP and a toy driver for it: the correct driver passes the
//! whole conformance kit, and each [`Broken`] variant breaks one rule of the
//! contract so that the tests can prove the kit catches it.
//!
//! The BMC speaks one request per connection: a line with the password, a line
//! with the command (`POWER ON`, `POWER OFF`, `RESET`, `POWER?`, `BOOT <dev>
//! <persistent>`, `BOOT?`); it answers one line, `OK <value>`, `ERR AUTH` or
//! `ERR <why>`. Power changes take effect `latency` after the command, like a
//! real BMC's, unless the BMC is stuck.

#![allow(dead_code)]

pub mod kits;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, BootDevice, BootDeviceInfo, ManagementInterface, PowerInterface,
    PowerInterfaceExt, PropertyDoc, Task,
};
use ironic_core::model::JsonMap;
use ironic_core::{DriverError, ErrorKind, Node, PowerAction, PowerState, Secret};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const PASSWORD: &str = "toy-bmc-pw-4417";

#[derive(Debug, Default)]
struct BmcState {
    on: bool,
    boot: Option<(String, bool)>,
    stuck: bool,
    /// Bumped by every power command: a delayed change applies only if no later
    /// command came in between.
    generation: u64,
}

/// The toy BMC: a TCP service on 127.0.0.1.
#[derive(Clone)]
pub struct ToyBmc {
    pub addr: SocketAddr,
    state: Arc<Mutex<BmcState>>,
    commands: Arc<AtomicU64>,
}

impl ToyBmc {
    /// Start one; power changes take `latency` to show.
    pub async fn start(latency: Duration) -> ToyBmc {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bmc = ToyBmc {
            addr: listener.local_addr().unwrap(),
            // Like real BMCs, it reports a boot device from the start.
            state: Arc::new(Mutex::new(BmcState {
                boot: Some(("disk".to_owned(), true)),
                ..BmcState::default()
            })),
            commands: Arc::default(),
        };
        let b = bmc.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let b = b.clone();
                tokio::spawn(async move { b.serve(conn, latency).await });
            }
        });
        bmc
    }

    async fn serve(&self, conn: TcpStream, latency: Duration) {
        let (r, mut w) = conn.into_split();
        let mut lines = BufReader::new(r).lines();
        let (Ok(Some(pw)), Ok(Some(cmd))) = (lines.next_line().await, lines.next_line().await)
        else {
            return;
        };
        let reply = if pw != PASSWORD {
            "ERR AUTH".to_owned()
        } else {
            self.command(&cmd, latency)
        };
        let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
    }

    fn command(&self, cmd: &str, latency: Duration) -> String {
        let mut s = self.state.lock().unwrap();
        let power = |s: &mut BmcState, on: bool| {
            self.commands.fetch_add(1, Ordering::SeqCst);
            s.generation += 1;
            if s.stuck {
                return;
            }
            let (state, generation) = (self.state.clone(), s.generation);
            tokio::spawn(async move {
                tokio::time::sleep(latency).await;
                let mut s = state.lock().unwrap();
                if s.generation == generation && !s.stuck {
                    s.on = on;
                }
            });
        };
        match cmd.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["POWER", "ON"] => power(&mut s, true),
            ["POWER", "OFF"] => power(&mut s, false),
            ["RESET"] => {
                // off at once, on again after the latency
                s.on = s.on && s.stuck;
                power(&mut s, true)
            }
            ["POWER?"] => {}
            ["BOOT", dev, pers] => s.boot = Some(((*dev).to_owned(), *pers == "1")),
            ["BOOT?"] => {
                return match &s.boot {
                    Some((d, p)) => format!("OK {d} {}", u8::from(*p)),
                    None => "OK none 0".to_owned(),
                };
            }
            _ => return format!("ERR unknown command {cmd:?}"),
        }
        format!("OK {}", if s.on { "ON" } else { "OFF" })
    }

    /// Make the BMC stuck (power commands accepted, nothing changes) or free it.
    pub fn set_stuck(&self, stuck: bool) {
        self.state.lock().unwrap().stuck = stuck;
    }

    /// Power commands received so far.
    pub fn power_commands(&self) -> u64 {
        self.commands.load(Ordering::SeqCst)
    }

    /// A node of hardware type `toy-hardware` with this BMC in its driver_info.
    pub fn node(&self) -> Node {
        let mut n = Node::new("toy-hardware");
        n.driver_info.insert("toy_address", self.addr.to_string());
        n.driver_info.insert("toy_password", PASSWORD);
        n
    }
}

/// One deliberate breakage of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The correct driver.
    Nothing,
    // power
    /// Sends the command and returns without waiting for the state.
    ReturnsBeforeReached,
    /// Waits with its own long timeout instead of the one it is given.
    IgnoresTimeout,
    /// An action's timeout is marked retryable.
    RetryableTimeout,
    /// An action's timeout has kind `Other`.
    TimeoutAsOther,
    /// Reports success after its timeout although the state was not reached.
    OkWhenNotReached,
    /// Wrong credentials are marked retryable.
    RetryableAuth,
    /// Wrong credentials have kind `Other`.
    AuthAsOther,
    /// The password in the error message.
    PasswordInError,
    /// The password in a debug log.
    PasswordInLog,
    /// The password in the interface's `Debug` (a credentials cache).
    PasswordInDebug,
    /// A reboot of an off node leaves it off.
    RebootLeavesOff,
    /// Asking for the current state fails.
    NotIdempotent,
    /// Soft power off is not declared but accepted.
    AcceptsUndeclared,
    /// A refused action is marked retryable.
    RetryableRefusal,
    /// validate opens a connection to the BMC.
    ValidateContactsBmc,
    /// validate's error does not name the missing key.
    ValidateVague,
    /// A refused connection has kind `Other`.
    UnreachableAsOther,
    /// No read timeout: a silent BMC blocks forever.
    HangsOnSilentBmc,
    // management
    /// An unsupported boot device has kind `Other`.
    DeviceRefusalAsOther,
    /// set_boot_device does nothing.
    IgnoresBootDevice,
    /// Always reports a persistent boot device.
    PersistentAlways,
    /// An optional method it lacks fails with kind `Other`.
    OptionalAsOther,
}

#[derive(Debug, thiserror::Error)]
enum ToyError {
    #[error("cannot connect to the toy BMC at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("the toy BMC at {0} did not answer within {1:?}")]
    Silent(String, Duration),
    #[error("the toy BMC at {0} refused the credentials")]
    Auth(String),
    #[error("the toy BMC at {0} refused the password {1}")]
    AuthWithPassword(String, String),
    #[error("the toy BMC at {0} answered {1:?}")]
    Reply(String, String),
}

fn kind_of(e: &ToyError) -> ErrorKind {
    match e {
        ToyError::Connect(..) => ErrorKind::Unreachable,
        ToyError::Silent(..) => ErrorKind::Timeout,
        ToyError::Auth(..) | ToyError::AuthWithPassword(..) => ErrorKind::Unauthenticated,
        ToyError::Reply(..) => ErrorKind::Protocol,
    }
}

/// The toy driver (power and management), possibly broken.
pub struct ToyDriver {
    broken: Broken,
    seen: Mutex<Vec<String>>,
}

impl std::fmt::Debug for ToyDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ToyDriver");
        d.field("broken", &self.broken);
        if self.broken == Broken::PasswordInDebug {
            d.field("credentials_cache", &self.seen.lock().unwrap());
        }
        d.finish()
    }
}

struct Info {
    address: String,
    password: Secret,
}

impl ToyDriver {
    pub fn new(broken: Broken) -> Arc<ToyDriver> {
        Arc::new(ToyDriver {
            broken,
            seen: Mutex::default(),
        })
    }

    fn info(&self, task: &Task) -> Result<Info, DriverError> {
        let di = &task.node.driver_info;
        let address = di.get_str("toy_address").ok_or_else(|| {
            if self.broken == Broken::ValidateVague {
                DriverError::missing("the BMC address is missing")
            } else {
                DriverError::missing("Missing the toy_address key in driver_info")
            }
        })?;
        let password = Secret::new(di.get_str("toy_password").unwrap_or_default());
        Ok(Info { address, password })
    }

    fn error(&self, e: ToyError, action: bool) -> DriverError {
        let mut kind = kind_of(&e);
        let mut retryable = kind.default_retryable();
        match (&e, self.broken) {
            (ToyError::Auth(..), Broken::RetryableAuth) => retryable = true,
            (ToyError::Auth(..), Broken::AuthAsOther) => kind = ErrorKind::Other,
            (ToyError::Connect(..), Broken::UnreachableAsOther) => {
                kind = ErrorKind::Other;
                retryable = false;
            }
            _ => {}
        }
        if action && kind == ErrorKind::Timeout {
            retryable = false;
        }
        DriverError::new(kind, e.to_string()).with_retryable(retryable)
    }

    async fn request(&self, i: &Info, cmd: &str) -> Result<String, ToyError> {
        if self.broken == Broken::PasswordInLog {
            tracing::debug!(address = %i.address, password = %i.password.expose(), "toy request");
        } else {
            tracing::debug!(address = %i.address, command = cmd, "toy request");
        }
        if self.broken == Broken::PasswordInDebug {
            self.seen
                .lock()
                .unwrap()
                .push(format!("{}:{}", i.address, i.password.expose()));
        }
        let limit = Duration::from_millis(500);
        let exchange = async {
            let mut s = TcpStream::connect(&i.address)
                .await
                .map_err(|e| ToyError::Connect(i.address.clone(), e))?;
            s.write_all(format!("{}\n{cmd}\n", i.password.expose()).as_bytes())
                .await
                .map_err(|e| ToyError::Connect(i.address.clone(), e))?;
            let mut line = String::new();
            BufReader::new(s)
                .read_line(&mut line)
                .await
                .map_err(|e| ToyError::Connect(i.address.clone(), e))?;
            Ok::<_, ToyError>(line.trim().to_owned())
        };
        let line = if self.broken == Broken::HangsOnSilentBmc {
            exchange.await?
        } else {
            tokio::time::timeout(limit, exchange)
                .await
                .map_err(|_| ToyError::Silent(i.address.clone(), limit))??
        };
        match line.strip_prefix("OK ") {
            Some(v) => Ok(v.to_owned()),
            None if line == "ERR AUTH" && self.broken == Broken::PasswordInError => Err(
                ToyError::AuthWithPassword(i.address.clone(), i.password.expose().to_owned()),
            ),
            None if line == "ERR AUTH" => Err(ToyError::Auth(i.address.clone())),
            None => Err(ToyError::Reply(i.address.clone(), line)),
        }
    }

    async fn send(&self, task: &Task, cmd: &str, action: bool) -> Result<String, DriverError> {
        let i = self.info(task)?;
        self.request(&i, cmd)
            .await
            .map_err(|e| self.error(e, action))
    }

    async fn act(
        &self,
        task: &Task,
        cmd: &str,
        want: PowerState,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        self.send(task, cmd, true).await?;
        if self.broken == Broken::ReturnsBeforeReached {
            return Ok(());
        }
        let timeout = match (self.broken, timeout) {
            (Broken::IgnoresTimeout, _) | (_, None) => Duration::from_secs(60),
            (_, Some(t)) => t,
        };
        let r = self
            .wait_for_power_state(task, want, timeout, Duration::from_millis(20))
            .await;
        match (r, self.broken) {
            (Err(e), Broken::RetryableTimeout) if e.kind() == ErrorKind::Timeout => {
                Err(e.with_retryable(true))
            }
            (Err(e), Broken::TimeoutAsOther) if e.kind() == ErrorKind::Timeout => {
                Err(DriverError::other(e.to_string()))
            }
            (Err(e), Broken::OkWhenNotReached) if e.kind() == ErrorKind::Timeout => Ok(()),
            (r, _) => r,
        }
    }
}

#[async_trait]
impl BaseInterface for ToyDriver {
    fn properties(&self) -> Vec<PropertyDoc> {
        vec![
            PropertyDoc::required("toy_address", "host:port of the toy BMC."),
            PropertyDoc::optional("toy_password", "Password of the toy BMC."),
        ]
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        let i = self.info(task)?;
        if self.broken == Broken::ValidateContactsBmc {
            let _ = std::net::TcpStream::connect(&i.address);
        }
        i.address.parse::<SocketAddr>().map_err(|_| {
            DriverError::invalid(format!("toy_address {:?} is not host:port", i.address))
        })?;
        Ok(())
    }
}

#[async_trait]
impl PowerInterface for ToyDriver {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        match self.send(task, "POWER?", false).await?.as_str() {
            "ON" => Ok(PowerState::On),
            "OFF" => Ok(PowerState::Off),
            other => Err(DriverError::new(
                ErrorKind::Protocol,
                format!("unexpected power state {other:?}"),
            )),
        }
    }

    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        if self.broken == Broken::NotIdempotent {
            let now = self.get_power_state(task).await?;
            if now == action.resulting_state() {
                return Err(DriverError::new(
                    ErrorKind::Conflict,
                    format!("the node is already {now}"),
                ));
            }
        }
        match action {
            PowerAction::PowerOn => self.act(task, "POWER ON", PowerState::On, timeout).await,
            PowerAction::PowerOff => self.act(task, "POWER OFF", PowerState::Off, timeout).await,
            PowerAction::Reboot => self.reboot(task, timeout).await,
            PowerAction::SoftPowerOff if self.broken == Broken::AcceptsUndeclared => {
                self.act(task, "POWER OFF", PowerState::Off, timeout).await
            }
            other => Err(DriverError::unsupported(format!("{other} on a toy BMC"))
                .with_retryable(self.broken == Broken::RetryableRefusal)),
        }
    }

    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError> {
        if self.broken == Broken::RebootLeavesOff
            && self.get_power_state(task).await? == PowerState::Off
        {
            return Ok(());
        }
        self.act(task, "RESET", PowerState::On, timeout).await
    }
}

fn device_name(d: BootDevice) -> &'static str {
    d.as_str()
}

#[async_trait]
impl ManagementInterface for ToyDriver {
    async fn get_supported_boot_devices(
        &self,
        _task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        Ok(vec![BootDevice::Pxe, BootDevice::Disk])
    }

    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        if !matches!(device, BootDevice::Pxe | BootDevice::Disk) {
            let msg = format!("The toy BMC cannot boot from {device}");
            return Err(if self.broken == Broken::DeviceRefusalAsOther {
                DriverError::other(msg)
            } else {
                DriverError::invalid(msg)
            });
        }
        if self.broken == Broken::IgnoresBootDevice {
            return Ok(());
        }
        let cmd = format!("BOOT {} {}", device_name(device), u8::from(persistent));
        self.send(task, &cmd, false).await.map(|_| ())
    }

    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError> {
        let v = self.send(task, "BOOT?", false).await?;
        let mut parts = v.split_whitespace();
        let dev = parts.next().and_then(|d| d.parse().ok());
        let persistent = parts.next() == Some("1") || self.broken == Broken::PersistentAlways;
        Ok(BootDeviceInfo {
            boot_device: dev,
            persistent: Some(persistent),
        })
    }

    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        let _ = task;
        if self.broken == Broken::OptionalAsOther {
            Err(DriverError::other("sensors are not implemented"))
        } else {
            Err(DriverError::unsupported("The toy BMC has no sensors"))
        }
    }
}
