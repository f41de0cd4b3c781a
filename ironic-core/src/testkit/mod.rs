//! The driver conformance kit (feature `testkit`), in the manner of object_store's
//! `integration` module: one `pub async fn` per behaviour of the driver contract,
//! for power, management, boot, deploy and switch implementations. Each rule of a
//! trait's `# Contract` section is a behaviour here. A behaviour panics with a
//! message naming the broken rule, or returns an [`Outcome`]:
//! [`Outcome::NotApplicable`] when the driver (or the fixture) does not offer what
//! the behaviour needs (e.g. soft power off missing from
//! `get_supported_power_states`, or no way to make the BMC stuck).
//!
//! Every in-tree driver runs the kit against a real peer (BMC emulators, boot
//! servers); vendors run it against their hardware or simulator; the fakes run all
//! of it (`tests/testkit_fakes.rs`), and a set of deliberately broken drivers
//! proves that each behaviour catches the breakage it is about
//! (`tests/testkit_catches.rs`), which keeps the kit honest.
//!
//! ```no_run
//! # async fn f(power: &dyn ironic_core::driver::PowerInterface, mgmt: &dyn ironic_core::driver::ManagementInterface, task: ironic_core::driver::Task) {
//! use ironic_core::testkit::{self, BmcFixture};
//! let fixture = BmcFixture::new(task)
//!     // where the driver reads the BMC address, so the kit can point it elsewhere
//!     .with_address(|t, addr| {
//!         t.node.driver_info.insert("toy_address", addr.to_string());
//!     })
//!     // the password the kit replaces by a wrong one
//!     .with_password_key("toy_password");
//! let report = testkit::run_power_suite(power, &fixture).await;
//! report.print();
//! testkit::run_management_suite(mgmt, &fixture).await;
//! # }
//! ```
//!
//! ## What the fixture tells the kit
//! A [`BmcFixture`] is the task (a node whose `driver_info` reaches the BMC) plus
//! optional hooks. Without a hook, the behaviours that need it are not applicable
//! and the report says so:
//! * [`with_address`](BmcFixture::with_address): how to point the driver at
//!   another address; enables `validate_never_contacts_bmc` and the unreachable
//!   and silent BMC behaviours.
//! * [`with_password_key`](BmcFixture::with_password_key): the `driver_info` key of
//!   the password; enables the wrong-credentials behaviours and sharpens the
//!   secrets check.
//! * [`with_stall`](BmcFixture::with_stall): how to make the BMC stuck (accept power
//!   commands, never change state) and free it again; enables the power-action
//!   timeout behaviour. Simulators offer it (the fakes'
//!   [`FakeControl::set_power_stuck`](crate::fake::FakeControl::set_power_stuck),
//!   the lab's `stuck` fault, an `ipmi_sim` chassis script that ignores commands).
//!
//! ## Failure at every step
//! [`FaultInjector`] wraps a registry's power, management, boot, deploy and
//! network implementations (yours and the fakes alike); the lifecycle
//! behaviours [`fails_cleanly_at_every_call`] and [`every_call_is_idempotent`]
//! record every driver call of each [`Transition`] (manage, provide, deploy,
//! undeploy), fail each in turn and check that the node lands in Ironic's
//! failure state, unlocked, with `last_error` saying what failed, and that the
//! retry succeeds; then run every call twice. See [`LifecycleFixture`].
//!
//! ## Real hardware latency
//! Nothing here assumes a change is instant: after each action the kit polls the
//! state (`get_power_state`, `get_boot_device`, ...) every [`Patience::interval`]
//! until it reads what the action asked for or [`Patience::timeout`] passes, and
//! it tolerates retryable read errors meanwhile. The one exception is the central
//! power rule: once `set_power_state` returned, the *first* successful read must
//! show the state. The default patience (120 s, polling every 500 ms) suits
//! emulators and most BMCs; give slow hardware more.
//!
//! ## What the task must look like
//! The kit works on the [`Task`] you give it: a node whose `driver_info` points at
//! the BMC (and, for boot and deploy, whatever those need). Behaviours that only
//! read do not change the node; power behaviours leave the node powered off.
//!
//! ## Stability
//! The kit is part of ironic-core's public API and follows its semver, with one
//! difference: a minor release may add behaviours to the `run_*_suite`
//! functions and make existing behaviours stricter where the contract already
//! said so (a driver that passed may then fail; its tests, not its users, see
//! it). Behaviour functions are not removed or renamed within a major version.

mod boot;
mod capture;
mod deploy;
mod inject;
mod lifecycle;
mod management;
mod power;
mod switch;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use boot::*;
pub use deploy::*;
pub use inject::*;
pub use lifecycle::*;
pub use management::*;
pub use power::*;
pub use switch::*;

use crate::driver::{BaseInterface, Task};
use crate::error::{DriverError, ErrorKind};
use crate::secret::is_secret_key;

/// What a behaviour check concluded (failures panic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The behaviour holds.
    Passed,
    /// The driver does not declare what the behaviour needs; nothing was checked.
    NotApplicable(String),
}

impl Outcome {
    fn na(why: impl Into<String>) -> Self {
        Outcome::NotApplicable(why.into())
    }
}

/// How long to wait for hardware to reach a requested state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patience {
    /// Give up after this long (default 120 s).
    pub timeout: Duration,
    /// Poll this often (default 500 ms).
    pub interval: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            timeout: Duration::from_secs(120),
            interval: Duration::from_millis(500),
        }
    }
}

impl Patience {
    /// Poll `read` until `accept` holds for its value, tolerating retryable errors;
    /// panic with `what` and the last value or error when time is up.
    pub async fn poll<T, F, Fut>(&self, what: &str, mut read: F, accept: impl Fn(&T) -> bool) -> T
    where
        T: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DriverError>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let last = match read().await {
                Ok(v) if accept(&v) => return v,
                Ok(v) => format!("last read {v:?}"),
                Err(e) if e.is_retryable() => format!("last error {e} (retryable)"),
                Err(e) => panic!("{what}: reading failed with a non-retryable error: {e}"),
            };
            if tokio::time::Instant::now() >= deadline {
                panic!("{what}: not reached within {:?}; {last}", self.timeout);
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

type PointAt = Arc<dyn Fn(&mut Task, SocketAddr) + Send + Sync>;
type Stall = Arc<dyn Fn(bool) + Send + Sync>;

/// The BMC under test: a task that reaches it, how patient to be, and optional
/// hooks that let the kit provoke the failures the contract speaks about (see the
/// [module docs](self)).
#[derive(Clone)]
pub struct BmcFixture {
    /// A task over a node whose `driver_info` reaches the BMC and validates.
    pub task: Task,
    /// How long to wait for the hardware.
    pub patience: Patience,
    /// The timeout the kit gives power actions that cannot succeed (a stuck BMC):
    /// the action must fail about then (default 2 s).
    pub action_timeout: Duration,
    point_at: Option<PointAt>,
    password_key: Option<String>,
    stall: Option<Stall>,
}

impl fmt::Debug for BmcFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BmcFixture")
            .field("node", &self.task.node.uuid)
            .field("patience", &self.patience)
            .field("action_timeout", &self.action_timeout)
            .field("address_hook", &self.point_at.is_some())
            .field("password_key", &self.password_key)
            .field("stall_hook", &self.stall.is_some())
            .finish()
    }
}

impl BmcFixture {
    /// A fixture over `task` with default patience and no hooks.
    pub fn new(task: Task) -> Self {
        BmcFixture {
            task,
            patience: Patience::default(),
            action_timeout: Duration::from_secs(2),
            point_at: None,
            password_key: None,
            stall: None,
        }
    }

    /// Set the patience.
    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.patience = patience;
        self
    }

    /// Set the timeout of power actions that must fail.
    pub fn with_action_timeout(mut self, timeout: Duration) -> Self {
        self.action_timeout = timeout;
        self
    }

    /// How to write a BMC address into the task's `driver_info`, the way the driver
    /// reads it.
    pub fn with_address(
        mut self,
        point_at: impl Fn(&mut Task, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.point_at = Some(Arc::new(point_at));
        self
    }

    /// The `driver_info` key that holds the BMC password.
    pub fn with_password_key(mut self, key: impl Into<String>) -> Self {
        self.password_key = Some(key.into());
        self
    }

    /// How to make the BMC stuck (`true`: it accepts power commands but its power
    /// state no longer changes) and free it again (`false`).
    pub fn with_stall(mut self, stall: impl Fn(bool) + Send + Sync + 'static) -> Self {
        self.stall = Some(Arc::new(stall));
        self
    }

    /// The task pointed at `addr`, if the fixture knows how.
    pub(crate) fn pointed_at(&self, addr: SocketAddr) -> Option<Task> {
        let f = self.point_at.as_ref()?;
        let mut t = self.task.clone();
        f(&mut t, addr);
        Some(t)
    }

    /// The task with a wrong password (the kit's canary), if the fixture knows the key.
    pub(crate) fn with_wrong_password(&self) -> Option<Task> {
        let key = self.password_key.as_ref()?;
        let mut t = self.task.clone();
        t.node.driver_info.insert(key.as_str(), CANARY);
        Some(t)
    }

    /// Make the BMC stuck or free it; `false` when the fixture cannot.
    pub(crate) fn stall(&self, stuck: bool) -> bool {
        match &self.stall {
            Some(f) => {
                f(stuck);
                true
            }
            None => false,
        }
    }

    /// Every secret the driver must never reveal: the secret-looking values of the
    /// task's `driver_info` (and the password key's), and the kit's canary.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = vec![CANARY.to_owned()];
        for (k, v) in &self.task.node.driver_info.0 {
            let secret = is_secret_key(k) || self.password_key.as_deref() == Some(k.as_str());
            if let (true, Some(s)) = (secret, v.as_str()) {
                // very short values would match ordinary words
                if s.len() >= 4 {
                    out.push(s.to_owned());
                }
            }
        }
        out
    }
}

/// The wrong password the kit uses: distinctive, so that it can be searched for in
/// everything the driver says.
pub const CANARY: &str = "kit-canary-Zq7xW2pV9";

/// A loopback address where nothing listens (TCP and UDP): connections are refused.
pub(crate) fn closed_address() -> SocketAddr {
    let (tcp, udp) = bind_pair();
    let a = tcp.local_addr().expect("local addr");
    drop((tcp, udp));
    a
}

/// A loopback address that accepts TCP connections and UDP datagrams and never
/// answers, for as long as the returned guard lives.
pub(crate) fn silent_address() -> (SocketAddr, (std::net::TcpListener, std::net::UdpSocket)) {
    let (tcp, udp) = bind_pair();
    (tcp.local_addr().expect("local addr"), (tcp, udp))
}

/// The results of a suite, by behaviour name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `(behaviour, outcome)` in the order they ran.
    pub results: Vec<(&'static str, Outcome)>,
}

impl Report {
    pub(crate) fn add(&mut self, name: &'static str, o: Outcome) {
        tracing::info!(behaviour = name, outcome = ?o, "testkit");
        self.results.push((name, o));
    }

    /// How many behaviours passed.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, o)| *o == Outcome::Passed)
            .count()
    }

    /// The behaviours that did not apply, with why.
    pub fn not_applicable(&self) -> Vec<(&'static str, String)> {
        self.results
            .iter()
            .filter_map(|(n, o)| match o {
                Outcome::NotApplicable(w) => Some((*n, w.clone())),
                Outcome::Passed => None,
            })
            .collect()
    }

    /// Print one line per behaviour to stderr (test output).
    pub fn print(&self) {
        for (n, o) in &self.results {
            match o {
                Outcome::Passed => eprintln!("testkit: {n}: passed"),
                Outcome::NotApplicable(w) => eprintln!("testkit: {n}: not applicable ({w})"),
            }
        }
    }
}

/// `validate` must never contact the BMC: the kit listens on a loopback TCP and
/// UDP port (the same number), `point_at` writes that address into the task's
/// `driver_info` the way the driver reads it, and after `validate` returned nothing
/// may have arrived on either socket. (No timing is asserted; a validate that
/// blocks longer than 60 s fails as blocked.)
pub async fn validate_never_contacts_bmc(
    iface: &dyn BaseInterface,
    task: &Task,
    point_at: impl FnOnce(&mut Task, std::net::SocketAddr),
) -> Outcome {
    let (tcp, udp) = bind_pair();
    let addr = tcp.local_addr().expect("local addr");
    tcp.set_nonblocking(true).expect("nonblocking");
    udp.set_nonblocking(true).expect("nonblocking");
    let mut t = task.clone();
    point_at(&mut t, addr);
    // validate is synchronous: run it where blocking is allowed, and bound it.
    let res = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let started = std::time::Instant::now();
            let r = iface.validate(&t);
            (r, started.elapsed())
        });
        h.join().expect("validate panicked")
    });
    let (r, took) = res;
    assert!(
        took < Duration::from_secs(60),
        "validate blocked for {took:?}: it must not do I/O"
    );
    // a connection attempt or datagram sent during validate is queued by now
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut buf = [0u8; 16];
    assert!(
        tcp.accept().is_err(),
        "validate opened a TCP connection to the BMC address {addr} (result {r:?})"
    );
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "validate sent a UDP datagram to the BMC address {addr} (result {r:?})"
    );
    Outcome::Passed
}

/// [`validate_never_contacts_bmc`] through a fixture's address hook (not
/// applicable without one).
pub async fn validate_never_contacts_bmc_with(
    iface: &dyn BaseInterface,
    f: &BmcFixture,
) -> Outcome {
    match &f.point_at {
        Some(point_at) => validate_never_contacts_bmc(iface, &f.task, |t, a| point_at(t, a)).await,
        None => {
            Outcome::na("the fixture cannot point the driver elsewhere (BmcFixture::with_address)")
        }
    }
}

fn bind_pair() -> (std::net::TcpListener, std::net::UdpSocket) {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return (tcp, udp);
        }
    }
    panic!("could not bind a TCP and UDP port pair on 127.0.0.1");
}

/// For every required property the interface declares
/// ([`BaseInterface::properties`]), `validate` on a copy of the task without that
/// `driver_info` key must fail with a missing/invalid-parameter error that names
/// the key. Start from a task that validates.
pub fn validate_reports_missing_keys(iface: &dyn BaseInterface, task: &Task) -> Outcome {
    if let Err(e) = iface.validate(task) {
        panic!("validate_reports_missing_keys needs a task that validates; it failed: {e}");
    }
    let required: Vec<_> = iface
        .properties()
        .into_iter()
        .filter(|p| p.required)
        .collect();
    if required.is_empty() {
        return Outcome::na("the interface declares no required driver_info property");
    }
    let mut checked = 0;
    for p in required {
        let mut t = task.clone();
        if t.node.driver_info.0.remove(p.name).is_none() {
            continue;
        }
        checked += 1;
        let e = iface.validate(&t).err().unwrap_or_else(|| {
            panic!(
                "validate passed without the required driver_info key {:?}",
                p.name
            )
        });
        assert!(
            matches!(
                e.kind(),
                ErrorKind::MissingParameter | ErrorKind::InvalidParameter
            ),
            "validate without {:?} failed with kind {} instead of missing/invalid parameter: {e}",
            p.name,
            e.kind()
        );
        assert!(
            e.message().contains(p.name),
            "validate's error does not name the missing key {:?}: {e}",
            p.name
        );
    }
    if checked == 0 {
        return Outcome::na(
            "the task's driver_info has none of the required keys (defaults elsewhere)",
        );
    }
    Outcome::Passed
}
