//! The conductor: the engine that embedders drive.
//!
//! A [`Conductor`] owns a [`Store`], an [`InterfaceRegistry`] and a bounded pool of
//! workers. Its methods are the operations of Ironic's conductor: node and port
//! CRUD, every provisioning verb, power and management actions, the agent's
//! lookup and heartbeat, allocations. Long operations return as soon as the node's
//! state has changed (HTTP 202 semantics) and continue on a worker that holds the
//! node's exclusive lock; watch them through [`Conductor::subscribe`] or by reading
//! the node.
//!
//! ```
//! # async fn demo() -> ironic_core::Result<()> {
//! use std::sync::Arc;
//! use ironic_core::conductor::{Conductor, ConductorConfig, ProvisionRequest};
//! use ironic_core::store::MemoryStore;
//! use ironic_core::{fake, InterfaceRegistry, Node};
//!
//! let mut registry = InterfaceRegistry::with_noop();
//! fake::register(&mut registry, fake::FakeConfig::default());
//! let conductor = Conductor::start(Arc::new(MemoryStore::new()), registry, ConductorConfig::default()).await?;
//! let node = conductor.create_node(Node::new("fake-hardware")).await?;
//! conductor.provision(&node.uuid.into(), ProvisionRequest::new("manage")).await?;
//! conductor.shutdown().await;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod allocations;
mod budget;
mod cache;
mod cluster;
mod console;
mod heartbeat;
mod job;
mod media;
mod nodes;
mod periodic;
mod power;
mod provision;
mod resources;
pub mod ring;
mod shared;
mod steps;
mod types;
mod wait;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use budget::{WaitInfo, over_budget, time_in_state, wait_info};
pub use cluster::RemoteOwner;
pub use steps::{RESERVED_STEPS, UserStep, parse_user_steps};
pub use types::{
    LookupResult, NodeEvent, ProvisionRequest, ResourceAction, ResourceEvent, ResourceKind,
    ValidationResult,
};
pub use wait::WaitError;

use crate::error::{Error, Result};
use crate::hardware::InterfaceRegistry;
use crate::observe::{NoopObserver, Observer};
use crate::store::{Store, StoreError};

/// The conductor's settings. `Default::default()` gives Ironic's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConductorConfig {
    /// Host name recorded in reservations and the conductors table.
    pub host: String,
    /// Conductor group.
    pub conductor_group: String,
    /// URL the ramdisk agent calls (`ipa-api-url`), passed to drivers in `TaskEnv`.
    pub api_url: Option<String>,
    /// Where the other conductors sharing the store reach this one to hand it the
    /// operations on the nodes it owns (Ironic's RPC to the owner's topic),
    /// recorded in its conductor record; see [`Conductor::remote_owner`]. `None`:
    /// it cannot be reached, and operations on its nodes run where they are asked.
    pub url: Option<String>,
    /// Free-form settings passed to drivers in `TaskEnv.settings`.
    pub settings: BTreeMap<String, String>,
    /// Size of the worker pool (`workers_pool_size`, 300). A full pool refuses new
    /// operations with [`Error::NoFreeWorker`].
    pub max_concurrent_operations: usize,
    /// Run automated cleaning on `provide` and after undeploy (true).
    pub automated_clean: bool,
    /// Allow `provide`, and ignore heartbeats instead of failing, for nodes in
    /// maintenance (true).
    pub allow_provisioning_in_maintenance: bool,
    /// Power-state sync period (120 s; `Duration::ZERO` disables).
    pub power_state_sync_interval: Duration,
    /// Failed power reads before a node goes into maintenance (3).
    pub power_state_sync_max_retries: u32,
    /// Force the recorded power state onto the hardware when they differ (true,
    /// Ironic's `force_power_state_during_sync`); false records what the BMC says.
    pub force_power_state_during_sync: bool,
    /// How many nodes the power sync reads at once (8).
    pub sync_power_state_workers: usize,
    /// Power failure recovery period (300 s; zero disables).
    pub power_failure_recovery_interval: Duration,
    /// Period of the callback-timeout checks (60 s; zero disables).
    pub check_provision_state_interval: Duration,
    /// `wait call-back` timeout (1800 s; zero disables).
    pub deploy_callback_timeout: Duration,
    /// `clean wait` timeout (1800 s; zero disables).
    pub clean_callback_timeout: Duration,
    /// `inspect wait` timeout (1800 s; zero disables).
    pub inspect_wait_timeout: Duration,
    /// `rescue wait` timeout (1800 s; zero disables).
    pub rescue_callback_timeout: Duration,
    /// `service wait` timeout (1800 s; zero disables).
    pub service_callback_timeout: Duration,
    /// Default timeout of power actions (60 s).
    pub power_state_change_timeout: Duration,
    /// Attempts to take a node's exclusive lock (3).
    pub node_locked_retry_attempts: u32,
    /// Pause between them (1 s).
    pub node_locked_retry_interval: Duration,
    /// Keep-alive period of the conductor record (10 s). Each keep-alive also reads
    /// every conductor's record and rebuilds the hash rings when the live set changed.
    pub conductor_heartbeat_interval: Duration,
    /// A conductor whose record was not stamped for this long is offline (60 s,
    /// Ironic's `[conductor]heartbeat_timeout`): it leaves the hash rings and its
    /// nodes are taken over.
    pub heartbeat_timeout: Duration,
    /// Period of the takeover check (180 s, Ironic's
    /// `[conductor]sync_local_state_interval`; zero disables the periodic check):
    /// `active` nodes this conductor owns whose boot configuration another
    /// conductor prepared (`conductor_affinity`) get it prepared here. The check
    /// also runs at once whenever the hash rings change; the periodic run retries
    /// the takeovers that failed or found the node locked.
    pub sync_local_state_interval: Duration,
    /// Forget a conductor (or API-only front end) offline for longer than this
    /// once it holds no node lock (1 day; zero keeps offline conductors forever,
    /// as Ironic does). A forgotten conductor that comes back registers again.
    /// Not an Ironic setting.
    pub forget_offline_after: Duration,
    /// Points of each conductor on a hash ring (32 = `2^hash_partition_exponent`
    /// with Ironic's exponent 5). Every conductor sharing a store must use the same.
    pub hash_ring_partitions: usize,
    /// Whether this conductor owns nodes (true). False for a front end that only
    /// follows the membership: it registers with no hardware types (so its death
    /// is seen and the owners release the locks it held), is on no hash ring, runs
    /// no periodic node task and takes over nothing; operations called on it still
    /// run here, under the node's lock in the store.
    pub takes_work: bool,
    /// History events kept per node (300).
    pub node_history_max_entries: usize,
    /// Attempts of a conductor-initiated read that fails with a retryable error
    /// (the power-state read of verification) (3). Power *actions* are never
    /// re-sent by the conductor, as in Ironic: see
    /// [`PowerInterface`](crate::driver::PowerInterface)'s contract.
    pub retryable_error_attempts: u32,
    /// Pause before the second attempt, doubled for each further one (1 s).
    pub retryable_error_backoff: Duration,
    /// Refuse agent heartbeats whose `callback_url` is not `https://` (false here;
    /// Ironic's `[agent]require_tls` defaults to true).
    pub require_agent_tls: bool,
    /// Read the node's health from its management interface during the power-state
    /// sync and record it in `node.health` (API 1.109), with changes in the node's
    /// history (true, Ironic's `[conductor]enable_health_monitoring`).
    pub enable_health_monitoring: bool,
    /// Time budget per provision state, a service-level objective (none by
    /// default): a node longer than its state's budget is logged once (a warning
    /// naming the node, the state, the time and what it waits for), recorded in
    /// its history and reported to the observer; metrics exporters count such
    /// nodes with [`over_budget`]. Not an Ironic setting.
    pub state_budgets: BTreeMap<crate::states::ProvisionState, Duration>,
    /// How often the budgets are checked (60 s; zero disables the check).
    pub state_budget_check_interval: Duration,
    /// How often consoles whose session expired are stopped
    /// ([`Conductor::expire_console_sessions`]; Ironic's
    /// `[vnc] expire_console_session_interval`, 120 s; zero disables the check).
    pub console_session_check_interval: Duration,
    /// The inspection rule engine: secret masking, the operator's built-in
    /// rules and the HTTP client of `api-call` actions (Ironic's
    /// `[inspection_rules]`).
    pub inspection_rules: crate::inspection_rules::RulesConfig,
}

impl Default for ConductorConfig {
    fn default() -> Self {
        let min = Duration::from_secs;
        ConductorConfig {
            host: std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned()),
            conductor_group: String::new(),
            api_url: None,
            url: None,
            settings: BTreeMap::new(),
            max_concurrent_operations: 300,
            automated_clean: true,
            allow_provisioning_in_maintenance: true,
            power_state_sync_interval: min(120),
            power_state_sync_max_retries: 3,
            force_power_state_during_sync: true,
            sync_power_state_workers: 8,
            power_failure_recovery_interval: min(300),
            check_provision_state_interval: min(60),
            deploy_callback_timeout: min(1800),
            clean_callback_timeout: min(1800),
            inspect_wait_timeout: min(1800),
            rescue_callback_timeout: min(1800),
            service_callback_timeout: min(1800),
            power_state_change_timeout: min(60),
            node_locked_retry_attempts: 3,
            node_locked_retry_interval: min(1),
            conductor_heartbeat_interval: min(10),
            heartbeat_timeout: min(60),
            sync_local_state_interval: min(180),
            forget_offline_after: min(86_400),
            hash_ring_partitions: ring::DEFAULT_PARTITIONS,
            takes_work: true,
            node_history_max_entries: 300,
            retryable_error_attempts: 3,
            retryable_error_backoff: min(1),
            require_agent_tls: false,
            enable_health_monitoring: true,
            state_budgets: BTreeMap::new(),
            state_budget_check_interval: min(60),
            console_session_check_interval: min(120),
            inspection_rules: Default::default(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, ident } => Error::NotFound { kind, ident },
            StoreError::Duplicate(m) => Error::Conflict(m),
            StoreError::Locked { node, holder } => Error::NodeLocked {
                node: node.to_string(),
                holder,
            },
            StoreError::Backend(m) => Error::Store(m),
        }
    }
}

pub(crate) struct Inner {
    store: Arc<dyn Store>,
    registry: InterfaceRegistry,
    config: ConductorConfig,
    events: broadcast::Sender<NodeEvent>,
    resource_events: broadcast::Sender<ResourceEvent>,
    /// This conductor's events for the others sharing the store.
    outbox: Option<shared::Outbox>,
    workers: Arc<Semaphore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    accepting: AtomicBool,
    periodics: TaskTracker,
    power_failures: std::sync::Mutex<std::collections::HashMap<crate::ids::NodeId, u32>>,
    observer: Arc<dyn Observer>,
    budgets: budget::Budgets,
    membership: std::sync::RwLock<Arc<cluster::Membership>>,
    /// Takeover work the keep-alive found, done by the takeover task (never by
    /// the keep-alive itself, which must keep stamping while nodes are taken over).
    takeover: cluster::TakeoverQueue,
}

/// The engine. Cheap to clone (an `Arc` inside); every clone drives the same conductor.
#[derive(Clone)]
pub struct Conductor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Conductor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conductor")
            .field("host", &self.inner.config.host)
            .field("store", &self.inner.store)
            .finish()
    }
}

impl Conductor {
    /// Start a conductor: register it in the conductors table, clear reservations
    /// left under its host name, fail nodes a crash left in transient states
    /// (`STUCK_STATES_TREATED_AS_FAIL`), resume the allocations it left
    /// `allocating`, and spawn the periodic tasks.
    pub async fn start(
        store: Arc<dyn Store>,
        registry: InterfaceRegistry,
        config: ConductorConfig,
    ) -> Result<Conductor> {
        Self::start_with(store, registry, config, Arc::new(NoopObserver)).await
    }

    /// [`Conductor::start`], reporting what the conductor does to `observer`
    /// (state changes, steps, heartbeats, lock waits, nodes over their state's
    /// budget) and wrapping the registry's power and management implementations so
    /// that every driver call is reported too ([`InterfaceRegistry::observe`]),
    /// and the store so that every store call is timed ([`crate::observe::ObservedStore`]).
    /// Deploy interfaces find the observer in [`TaskEnv::observer`](crate::driver::TaskEnv::observer).
    pub async fn start_observed(
        store: Arc<dyn Store>,
        mut registry: InterfaceRegistry,
        config: ConductorConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Conductor> {
        registry.observe(observer.clone());
        let store = Arc::new(crate::observe::ObservedStore::new(store, observer.clone()));
        Self::start_with(store, registry, config, observer).await
    }

    async fn start_with(
        store: Arc<dyn Store>,
        registry: InterfaceRegistry,
        config: ConductorConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Conductor> {
        if config.max_concurrent_operations == 0 {
            return Err(Error::Invalid(
                "max_concurrent_operations must be at least 1".to_owned(),
            ));
        }
        if config.hash_ring_partitions == 0 {
            return Err(Error::Invalid(
                "hash_ring_partitions must be at least 1".to_owned(),
            ));
        }
        let (events, _) = broadcast::channel(4096);
        let (resource_events, _) = broadcast::channel(1024);
        let cancel = CancellationToken::new();
        let outbox = shared::start(&store, &config.host, &events, &resource_events, &cancel);
        let c = Conductor {
            inner: Arc::new(Inner {
                workers: Arc::new(Semaphore::new(config.max_concurrent_operations)),
                store,
                registry,
                config,
                events,
                resource_events,
                outbox,
                tracker: TaskTracker::new(),
                cancel,
                accepting: AtomicBool::new(true),
                periodics: TaskTracker::new(),
                power_failures: Default::default(),
                observer,
                budgets: Default::default(),
                membership: Default::default(),
                takeover: Default::default(),
            }),
        };
        // API-only front ends register too (with no hardware types), so the
        // locks one holds when it dies are released; a restarted one recovers
        // what its previous run left locked, as a conductor does.
        c.register_at_start().await?;
        c.refresh_membership().await;
        c.recover_on_start().await?;
        if c.config().takes_work {
            c.resume_allocations().await?;
        }
        c.spawn_periodics();
        if c.config().takes_work {
            // Ironic's `_start_consoles`, in a worker: a slow BMC does not hold
            // up the start.
            let c2 = c.clone();
            c.inner
                .tracker
                .spawn(async move { c2.start_consoles().await });
        }
        tracing::info!(host = %c.config().host, "conductor started");
        Ok(c)
    }

    /// Stop: refuse new operations ([`Error::ShuttingDown`]), wait for every
    /// in-flight operation to finish and release its lock, stop the periodic tasks,
    /// release any reservation still held under this host and mark the conductor
    /// offline. Nodes waiting for a callback stay in their wait state; a new
    /// conductor picks them up.
    pub async fn shutdown(&self) {
        if !self.inner.accepting.swap(false, Ordering::SeqCst) {
            self.inner.tracker.wait().await;
            return;
        }
        tracing::info!(host = %self.config().host, "conductor shutting down");
        self.inner.cancel.cancel();
        self.inner.periodics.close();
        self.inner.periodics.wait().await;
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        self.stop_all_consoles().await;
        let host = &self.config().host;
        match self.store().clear_reservations(host).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(host = %host, released = n, "released leftover reservations"),
            Err(e) => tracing::error!(host = %host, error = %e, "could not release reservations"),
        }
        if let Err(e) = self.store().delete_conductor(host).await {
            tracing::warn!(host = %host, error = %e, "could not unregister the conductor");
        }
        tracing::info!(host = %host, "conductor stopped");
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The interface registry.
    pub fn registry(&self) -> &InterfaceRegistry {
        &self.inner.registry
    }

    /// The configuration.
    pub fn config(&self) -> &ConductorConfig {
        &self.inner.config
    }

    /// The observer given to [`Conductor::start_observed`] (a no-op otherwise).
    pub fn observer(&self) -> &dyn Observer {
        &*self.inner.observer
    }

    /// Watch nodes change.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Watch chassis, deploy templates, allocations, volume connectors/targets and
    /// runbooks change.
    pub fn subscribe_resources(&self) -> broadcast::Receiver<ResourceEvent> {
        self.inner.resource_events.subscribe()
    }

    /// How many operations are running on workers right now.
    pub fn running_operations(&self) -> usize {
        self.config().max_concurrent_operations - self.inner.workers.available_permits()
    }

    /// Run `op` again while it fails with a retryable error, up to
    /// `retryable_error_attempts` times, backing off exponentially.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        mut op: F,
    ) -> std::result::Result<T, crate::DriverError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, crate::DriverError>>,
    {
        let attempts = self.config().retryable_error_attempts.max(1);
        let mut pause = self.config().retryable_error_backoff;
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tracing::warn!(operation = what, attempt, error = %e, "retryable driver error; retrying");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    pub(crate) fn emit(&self, e: NodeEvent) {
        if let Some(out) = &self.inner.outbox {
            out.node(&e);
        }
        let _ = self.inner.events.send(e);
    }

    pub(crate) fn emit_resource(&self, e: ResourceEvent) {
        if let Some(out) = &self.inner.outbox {
            out.resource(&e);
        }
        let _ = self.inner.resource_events.send(e);
    }

    pub(crate) fn check_accepting(&self) -> Result<()> {
        if self.inner.accepting.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Error::ShuttingDown)
        }
    }
}
