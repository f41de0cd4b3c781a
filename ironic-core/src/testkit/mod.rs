//! The driver conformance kit (feature `testkit`), in the manner of object_store's
//! `integration` module: one `pub async fn` per behaviour of the driver contract,
//! for power, management, boot and deploy implementations. Each panics with a
//! message naming the broken rule, or returns an [`Outcome`]:
//! [`Outcome::NotApplicable`] when the driver declares it does not have the
//! capability the behaviour needs (e.g. soft power off missing from
//! `get_supported_power_states`).
//!
//! Every in-tree driver runs the kit against a real peer (BMC emulators, boot
//! servers); vendors run it against their hardware or simulator; the fakes run all
//! of it (`tests/testkit_fakes.rs`), which keeps the kit honest.
//!
//! ```no_run
//! # async fn f(power: &dyn ironic_core::driver::PowerInterface, mgmt: &dyn ironic_core::driver::ManagementInterface, task: &ironic_core::driver::Task) {
//! use ironic_core::testkit::{self, Patience};
//! let report = testkit::run_power_suite(power, task, &Patience::default()).await;
//! report.print();
//! testkit::run_management_suite(mgmt, task, &Patience::default()).await;
//! # }
//! ```
//!
//! ## Real hardware latency
//! Nothing here assumes a change is instant: after each action the kit polls the
//! state (`get_power_state`, `get_boot_device`, ...) every [`Patience::interval`]
//! until it reads what the action asked for or [`Patience::timeout`] passes, and
//! it tolerates retryable read errors meanwhile. The default (120 s, polling every
//! 500 ms) suits emulators and most BMCs; give slow hardware more. Behaviour
//! functions called one by one use [`Patience::default`]; the `run_*_suite`
//! functions take a `Patience`.
//!
//! ## What the task must look like
//! The kit works on the [`Task`] you give it: a node whose `driver_info` points at
//! the BMC (and, for boot and deploy, whatever those need). Behaviours that only
//! read do not change the node; power behaviours leave the node powered off.

mod boot;
mod deploy;
mod management;
mod power;
mod switch;

use std::time::Duration;

pub use boot::*;
pub use deploy::*;
pub use management::*;
pub use power::*;
pub use switch::*;

use crate::driver::{BaseInterface, Task};
use crate::error::{DriverError, ErrorKind};

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
