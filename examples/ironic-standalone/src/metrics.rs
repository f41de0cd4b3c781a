//! Prometheus metrics of the `ironic` binary (`GET /metrics`).
//!
//! [`Metrics`] is the conductor's [`Observer`] (events are counted as they
//! happen) and the API's request counter; the node gauges are read from the
//! store at scrape time. The text is OpenMetrics 1.0 (which Prometheus scrapes
//! natively; the classic text parsers read it too).
//!
//! Labels are bounded on purpose: states, interfaces, implementation and step
//! names, error kinds, API route templates and status codes, never a node. The
//! metrics (names as scraped):
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `ironic_nodes` | gauge | `provision_state` | nodes per provision state (every node in the store) |
//! | `ironic_nodes_by_power_state` | gauge | `power_state` | nodes per power state (`None` = unknown) |
//! | `ironic_nodes_in_maintenance` | gauge | | nodes in maintenance |
//! | `ironic_nodes_with_fault` | gauge | `fault` | nodes per fault |
//! | `ironic_nodes_over_budget` | gauge | `provision_state` | nodes past their state's time budget now |
//! | `ironic_state_budget_seconds` | gauge | `provision_state` | the configured budgets |
//! | `ironic_provision_state_duration_seconds` | histogram | `provision_state` | time spent in a state, observed when a node leaves it |
//! | `ironic_provision_state_transitions_total` | counter | `from`, `to` | state changes |
//! | `ironic_step_duration_seconds` | histogram | `kind`, `interface`, `step`, `result` | clean/deploy/service/verify steps, agent time included |
//! | `ironic_driver_call_duration_seconds` | histogram | `interface`, `implementation`, `method` | power and management calls (the BMC's latency) |
//! | `ironic_driver_call_errors_total` | counter | `interface`, `implementation`, `method`, `kind` | failed calls by error kind |
//! | `ironic_agent_heartbeats_total` | counter | `provision_state`, `result` | ramdisk agent heartbeats |
//! | `ironic_agent_request_duration_seconds` | histogram | `command`, `result` | the conductor's requests to ramdisk agents (`get_commands` = the status poll), retries included; `result` = `ok` or the error kind |
//! | `ironic_agent_command_duration_seconds` | histogram | `command`, `result` | asynchronous agent commands (`prepare_image`, `execute_clean_step`, ...) from their start to the heartbeat that found them `succeeded` or `failed` |
//! | `ironic_store_call_duration_seconds` | histogram | `op` | database latency per store method (`get_node`, `update_node`, `list_nodes`, ...) |
//! | `ironic_store_call_errors_total` | counter | `op` | failed store calls (a "not found" included) |
//! | `ironic_node_lock_wait_seconds` | histogram | `acquired` | time to take a node's lock, retries included |
//! | `ironic_state_budget_exceeded_total` | counter | `provision_state` | nodes that went past their state's budget |
//! | `ironic_conductor_workers_busy` | gauge | | operations running on the worker pool |
//! | `ironic_conductor_workers_max` | gauge | | the pool's size (`max_concurrent_operations`) |
//! | `ironic_api_requests_total` | counter | `method`, `route`, `status` | API requests (route = the path template) |
//! | `ironic_api_request_duration_seconds` | histogram | `method`, `route` | API latency |
//! | `ironic_metrics_scrape_duration_seconds` | gauge | | how long the previous scrape took to collect |
//!
//! The node gauges count every node in the store, so several conductors on one
//! database report the same values: aggregate them with `max`, not `sum`.

use std::time::{Duration, Instant};

use ironic_core::conductor::{Conductor, over_budget};
use ironic_core::observe::{
    AgentCall, AgentCallKind, DriverCall, HeartbeatSeen, LockWait, Observer, OverBudget, StateLeft,
    StepFinished, StoreCall,
};
use ironic_core::store::NodeQuery;
use ironic_core::{Node, ProvisionState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of Prometheus's classic text format (0.0.4).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus does;
/// `curl` and older tools get the classic text format).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text to Prometheus's classic text format: counters are named
/// with their `_total` suffix in `# HELP`/`# TYPE`, and `# UNIT`/`# EOF` go.
pub fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some(h) = help.take() {
                out.push_str(h);
                out.push('\n');
            }
            if rest.is_empty() {
                continue;
            }
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.splitn(2, ' ');
            let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            let renamed =
                (kind == "counter" && !name.ends_with("_total")).then(|| format!("{name}_total"));
            if let Some(h) = help.take() {
                match (
                    &renamed,
                    h.strip_prefix("# HELP ").and_then(|r| r.split_once(' ')),
                ) {
                    (Some(n), Some((_, text))) => {
                        out.push_str(&format!("# HELP {n} {text}\n"));
                    }
                    _ => {
                        out.push_str(h);
                        out.push('\n');
                    }
                }
            }
            match renamed {
                Some(n) => out.push_str(&format!("# TYPE {n} counter\n")),
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateL {
    provision_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PowerL {
    power_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultL {
    fault: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionL {
    from: String,
    to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepL {
    kind: String,
    interface: String,
    step: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallL {
    interface: String,
    implementation: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallErrL {
    interface: String,
    implementation: String,
    method: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeartbeatL {
    provision_state: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LockL {
    acquired: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiL {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteL {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpL {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentL {
    command: String,
    result: String,
}

type Hist<L> = Family<L, Histogram, fn() -> Histogram>;

fn tiny() -> Histogram {
    // 100 µs .. 2.5 s: store calls (an embedded SQLite answers in well under 1 ms)
    Histogram::new([
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 2.5,
    ])
}

fn short() -> Histogram {
    // 1 ms .. ~65 s: BMC calls, lock waits, API requests
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

fn long() -> Histogram {
    // 1 s .. 4 h: states and steps (image writes, cleaning)
    Histogram::new([
        1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
    ])
}

/// The metrics: an [`Observer`] for the conductor, a request counter for the
/// API, and the renderer of `GET /metrics`.
pub struct Metrics {
    registry: Registry,
    state_seconds: Hist<StateL>,
    transitions: Family<TransitionL, Counter>,
    step_seconds: Hist<StepL>,
    call_seconds: Hist<CallL>,
    call_errors: Family<CallErrL, Counter>,
    heartbeats: Family<HeartbeatL, Counter>,
    lock_seconds: Hist<LockL>,
    store_seconds: Hist<OpL>,
    store_errors: Family<OpL, Counter>,
    agent_request_seconds: Hist<AgentL>,
    agent_command_seconds: Hist<AgentL>,
    budget_exceeded: Family<StateL, Counter>,
    api_requests: Family<ApiL, Counter>,
    api_seconds: Hist<RouteL>,
    nodes: Family<StateL, Gauge>,
    power: Family<PowerL, Gauge>,
    maintenance: Gauge,
    faults: Family<FaultL, Gauge>,
    over_budget: Family<StateL, Gauge>,
    budgets: Family<StateL, Gauge<f64, std::sync::atomic::AtomicU64>>,
    workers_busy: Gauge,
    workers_max: Gauge,
    scrape_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    scrape: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, every family registered.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("ironic");
        let m = Metrics {
            registry: Registry::default(),
            state_seconds: Hist::new_with_constructor(long),
            transitions: Family::default(),
            step_seconds: Hist::new_with_constructor(long),
            call_seconds: Hist::new_with_constructor(short),
            call_errors: Family::default(),
            heartbeats: Family::default(),
            lock_seconds: Hist::new_with_constructor(short),
            store_seconds: Hist::new_with_constructor(tiny),
            store_errors: Family::default(),
            agent_request_seconds: Hist::new_with_constructor(short),
            agent_command_seconds: Hist::new_with_constructor(long),
            budget_exceeded: Family::default(),
            api_requests: Family::default(),
            api_seconds: Hist::new_with_constructor(short),
            nodes: Family::default(),
            power: Family::default(),
            maintenance: Gauge::default(),
            faults: Family::default(),
            over_budget: Family::default(),
            budgets: Family::default(),
            workers_busy: Gauge::default(),
            workers_max: Gauge::default(),
            scrape_seconds: Gauge::default(),
            scrape: tokio::sync::Mutex::new(()),
        };
        r.register(
            "nodes",
            "Nodes per provision state (every node in the store)",
            m.nodes.clone(),
        );
        r.register(
            "nodes_by_power_state",
            "Nodes per power state",
            m.power.clone(),
        );
        r.register(
            "nodes_in_maintenance",
            "Nodes in maintenance",
            m.maintenance.clone(),
        );
        r.register("nodes_with_fault", "Nodes per fault", m.faults.clone());
        r.register(
            "nodes_over_budget",
            "Nodes in their provision state for longer than the state's time budget",
            m.over_budget.clone(),
        );
        r.register(
            "state_budget_seconds",
            "Time budget per provision state ([conductor.state_budgets])",
            m.budgets.clone(),
        );
        r.register(
            "provision_state_duration_seconds",
            "Time spent in a provision state, observed when the node leaves it",
            m.state_seconds.clone(),
        );
        r.register(
            "provision_state_transitions",
            "Provision state changes",
            m.transitions.clone(),
        );
        r.register(
            "step_duration_seconds",
            "Clean, deploy, service and verify steps, from start to end (agent time included)",
            m.step_seconds.clone(),
        );
        r.register(
            "driver_call_duration_seconds",
            "Power and management interface calls (BMC latency)",
            m.call_seconds.clone(),
        );
        r.register(
            "driver_call_errors",
            "Failed power and management interface calls, by error kind",
            m.call_errors.clone(),
        );
        r.register(
            "agent_heartbeats",
            "Ramdisk agent heartbeats, by the node's state and what became of them",
            m.heartbeats.clone(),
        );
        r.register(
            "node_lock_wait_seconds",
            "Time to take a node's exclusive lock, retries included",
            m.lock_seconds.clone(),
        );
        r.register(
            "agent_request_duration_seconds",
            "Requests of the conductor to ramdisk agents, retries included, by command and result",
            m.agent_request_seconds.clone(),
        );
        r.register(
            "agent_command_duration_seconds",
            "Asynchronous agent commands, from their start to the heartbeat that found them finished",
            m.agent_command_seconds.clone(),
        );
        r.register(
            "store_call_duration_seconds",
            "Store (database) latency per method",
            m.store_seconds.clone(),
        );
        r.register(
            "store_call_errors",
            "Failed store calls per method (not found included)",
            m.store_errors.clone(),
        );
        r.register(
            "state_budget_exceeded",
            "Nodes that went past their provision state's time budget",
            m.budget_exceeded.clone(),
        );
        r.register(
            "conductor_workers_busy",
            "Operations running on the conductor's worker pool",
            m.workers_busy.clone(),
        );
        r.register(
            "conductor_workers_max",
            "Size of the conductor's worker pool",
            m.workers_max.clone(),
        );
        r.register(
            "api_requests",
            "API requests by method, route template and status",
            m.api_requests.clone(),
        );
        r.register(
            "api_request_duration_seconds",
            "API request latency by method and route template",
            m.api_seconds.clone(),
        );
        r.register(
            "metrics_scrape_duration_seconds",
            "Time the previous scrape took to read the store",
            m.scrape_seconds.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Count one API request. `route` is the matched path template
    /// (`/v1/nodes/{node_ident}`), never the raw path.
    pub fn api_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.api_requests
            .get_or_create(&ApiL {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.api_seconds
            .get_or_create(&RouteL {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Read the node gauges from `conductor`'s store and render every metric, in
    /// OpenMetrics text (or the classic format with `openmetrics` false).
    pub async fn render(&self, conductor: &Conductor, openmetrics: bool) -> Result<String, String> {
        let _one = self.scrape.lock().await;
        let start = Instant::now();
        let nodes = conductor
            .store()
            .list_nodes(&NodeQuery::default())
            .await
            .map_err(|e| format!("listing nodes for the metrics: {e}"))?;
        self.set_node_gauges(&nodes, conductor);
        let cfg = conductor.config();
        self.workers_busy.set(conductor.running_operations() as i64);
        self.workers_max.set(cfg.max_concurrent_operations as i64);
        self.scrape_seconds.set(start.elapsed().as_secs_f64());
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| format!("encoding the metrics: {e}"))?;
        Ok(if openmetrics { out } else { to_classic(&out) })
    }

    fn set_node_gauges(&self, nodes: &[Node], conductor: &Conductor) {
        let cfg = conductor.config();
        let now = ironic_core::model::now();
        let mut by_state = std::collections::HashMap::<ProvisionState, i64>::new();
        let mut by_power = std::collections::HashMap::<String, i64>::new();
        let mut by_fault = std::collections::HashMap::<&'static str, i64>::new();
        let mut over = std::collections::HashMap::<ProvisionState, i64>::new();
        let mut maintenance = 0;
        for n in nodes {
            *by_state.entry(n.provision_state).or_default() += 1;
            let p = n
                .power_state
                .map_or_else(|| "None".to_owned(), |p| p.to_string());
            *by_power.entry(p).or_default() += 1;
            if n.maintenance {
                maintenance += 1;
            }
            if let Some(f) = n.fault {
                *by_fault.entry(f.as_str()).or_default() += 1;
            }
            if over_budget(n, cfg, now).is_some() {
                *over.entry(n.provision_state).or_default() += 1;
            }
        }
        let st = |s: ProvisionState| StateL {
            provision_state: s.to_string(),
        };
        // every state is present (zeros included) so that alerts and dashboards
        // see a series before the first node gets there
        for s in ProvisionState::ALL {
            self.nodes
                .get_or_create(&st(*s))
                .set(by_state.get(s).copied().unwrap_or(0));
        }
        self.power.clear();
        for (p, c) in by_power {
            self.power.get_or_create(&PowerL { power_state: p }).set(c);
        }
        self.maintenance.set(maintenance);
        for f in [
            ironic_core::model::Fault::PowerFailure,
            ironic_core::model::Fault::CleanFailure,
            ironic_core::model::Fault::RescueAbortFailure,
            ironic_core::model::Fault::ServiceFailure,
        ] {
            let s = f.as_str();
            self.faults
                .get_or_create(&FaultL {
                    fault: s.to_owned(),
                })
                .set(by_fault.get(s).copied().unwrap_or(0));
        }
        for (s, b) in &cfg.state_budgets {
            self.budgets.get_or_create(&st(*s)).set(b.as_secs_f64());
            self.over_budget
                .get_or_create(&st(*s))
                .set(over.get(s).copied().unwrap_or(0));
        }
    }
}

impl Observer for Metrics {
    fn provision_state_left(&self, e: &StateLeft) {
        if let Some(d) = e.duration {
            self.state_seconds
                .get_or_create(&StateL {
                    provision_state: e.from.to_string(),
                })
                .observe(d.as_secs_f64());
        }
        self.transitions
            .get_or_create(&TransitionL {
                from: e.from.to_string(),
                to: e.to.to_string(),
            })
            .inc();
    }

    fn step_finished(&self, e: &StepFinished) {
        self.step_seconds
            .get_or_create(&StepL {
                kind: e.kind.as_str().to_owned(),
                interface: e.interface.clone(),
                step: e.step.clone(),
                result: e.result.as_str().to_owned(),
            })
            .observe(e.duration.as_secs_f64());
    }

    fn driver_call(&self, e: &DriverCall) {
        let interface = e.interface.as_str().to_owned();
        self.call_seconds
            .get_or_create(&CallL {
                interface: interface.clone(),
                implementation: e.implementation.clone(),
                method: e.method.to_owned(),
            })
            .observe(e.duration.as_secs_f64());
        if let Some(k) = e.error {
            self.call_errors
                .get_or_create(&CallErrL {
                    interface,
                    implementation: e.implementation.clone(),
                    method: e.method.to_owned(),
                    kind: k.as_str().to_owned(),
                })
                .inc();
        }
    }

    fn heartbeat(&self, e: &HeartbeatSeen) {
        self.heartbeats
            .get_or_create(&HeartbeatL {
                provision_state: e
                    .state
                    .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
                result: e.result.as_str().to_owned(),
            })
            .inc();
    }

    fn lock_wait(&self, e: &LockWait) {
        self.lock_seconds
            .get_or_create(&LockL {
                acquired: e.acquired.to_string(),
            })
            .observe(e.waited.as_secs_f64());
    }

    fn store_call(&self, e: &StoreCall) {
        let l = OpL { op: e.op };
        self.store_seconds
            .get_or_create(&l)
            .observe(e.duration.as_secs_f64());
        if !e.ok {
            self.store_errors.get_or_create(&l).inc();
        }
    }

    fn agent_call(&self, e: &AgentCall) {
        let (family, result) = match e.kind {
            AgentCallKind::Command => (
                &self.agent_command_seconds,
                if e.error.is_none() {
                    "succeeded"
                } else {
                    "failed"
                }
                .to_owned(),
            ),
            _ => (
                &self.agent_request_seconds,
                e.error
                    .map_or_else(|| "ok".to_owned(), |k| k.as_str().to_owned()),
            ),
        };
        family
            .get_or_create(&AgentL {
                command: e.command.clone(),
                result,
            })
            .observe(e.duration.as_secs_f64());
    }

    fn over_budget(&self, e: &OverBudget) {
        self.budget_exceeded
            .get_or_create(&StateL {
                provision_state: e.state.to_string(),
            })
            .inc();
    }
}
