//! The Redfish sessions this process holds at one BMC, across its clients.
//!
//! BMCs allow few sessions (iDRAC and iLO often 4 to 8, shared with the web UI
//! and other tools) and answer a login past their limit with an error (iDRAC:
//! 503, `RAC0218` "The maximum number of user sessions is reached"). A BMC
//! that hosts several systems with their own credentials (a chassis manager,
//! the lab's simulator) gets one client, and so one session, per credentials.
//! [`BmcSessions`] bounds what this process holds there: a client takes a slot
//! before it logs in and gives it back when its session is logged out. When
//! every slot is taken, a client that needs one waits, and a client that
//! finishes a request while others wait logs its session out (DELETE) and hands
//! its slot over; it logs in again, in turn, on its next request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::Holder;

/// The session slots of one BMC.
pub(crate) struct BmcSessions {
    limit: usize,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// The clients of this BMC (weakly: a dropped client leaves).
    holders: Mutex<Vec<Arc<Holder>>>,
    logins: AtomicU64,
    logouts: AtomicU64,
}

impl std::fmt::Debug for BmcSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcSessions")
            .field("limit", &self.limit)
            .field("in_use", &self.in_use())
            .finish_non_exhaustive()
    }
}

/// A session slot, held as long as the session lives.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// Decrements the waiters' count when a wait ends, however it ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BmcSessions {
    /// Slots for `limit` sessions (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        BmcSessions {
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            waiting: AtomicUsize::new(0),
            holders: Mutex::new(Vec::new()),
            logins: AtomicU64::new(0),
            logouts: AtomicU64::new(0),
        }
    }

    /// The most sessions held at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Record a client of this BMC (forgetting those that are gone).
    pub(crate) fn register(&self, holder: Holder) {
        if let Ok(mut h) = self.holders.lock() {
            h.retain(|x| x.alive());
            h.push(Arc::new(holder));
        }
    }

    /// The clients of this BMC.
    pub(crate) fn holders(&self) -> Vec<Arc<Holder>> {
        self.holders.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// A free slot, if there is one.
    pub(crate) fn try_acquire(&self) -> Option<Slot> {
        self.slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| Slot { _permit: p })
    }

    /// A slot, waiting at most `patience` for one to be handed over.
    pub(crate) async fn acquire(&self, patience: Duration) -> Option<Slot> {
        if let Some(slot) = self.try_acquire() {
            return Some(slot);
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _w = Waiting(&self.waiting);
        match tokio::time::timeout(patience, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Some(Slot { _permit: p }),
            _ => None,
        }
    }

    /// Whether a client waits for a slot (so an idle one should give its up).
    pub(crate) fn contended(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Sessions in use now (slots taken).
    pub(crate) fn in_use(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    pub(crate) fn logged_in(&self) {
        self.logins.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn logged_out(&self) {
        self.logouts.fetch_add(1, Ordering::Relaxed);
    }

    /// What [`SessionStats`] reports.
    pub(crate) fn stats(&self) -> SessionStats {
        SessionStats {
            limit: self.limit,
            open: self.in_use(),
            logins: self.logins.load(Ordering::Relaxed),
            logouts: self.logouts.load(Ordering::Relaxed),
        }
    }
}

/// The Redfish sessions of one BMC as this process sees them
/// ([`RedfishClient::session_stats`](super::RedfishClient::session_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// The most sessions held at once (`RedfishConfig::max_sessions_per_bmc`).
    pub limit: usize,
    /// Sessions held now.
    pub open: usize,
    /// Sessions created so far.
    pub logins: u64,
    /// Sessions this process logged out so far (DELETE of the session).
    pub logouts: u64,
}
