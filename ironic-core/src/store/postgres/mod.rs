//! The PostgreSQL store: several conductors (processes, hosts) on one database.
//!
//! The same layout as the SQLite store (each record whole as JSON text beside
//! indexed columns, `migrations-postgres/`), with runtime queries only, so a build
//! needs no database. What PostgreSQL adds:
//!
//! * connections of the store's own shared by every task of the process, with a
//!   bounded, first-come first-served wait (`conns.rs`): a statement costs one
//!   round trip to the server, not the three of sqlx's pool (which pings on
//!   checkout and on return); sqlx's pool serves only migrations and `LISTEN`;
//! * the node lock is one `UPDATE ... WHERE reservation IS NULL` (row-locked by
//!   PostgreSQL: of two conductors racing for a node, exactly one updates the row);
//! * conductor keep-alives are stamped with the database's clock, so liveness is
//!   judged by one clock whatever the hosts' clocks say;
//! * migrations run under PostgreSQL's advisory lock, so several processes may
//!   start at once; a database migrated by a newer ironic-rs is refused.
//!
//! The URL's password never appears in `Debug`, errors or logs.

mod conns;
mod nodes;
mod ports;
mod records;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::*;

/// The migrations embedded in the binary (`ironic-core/migrations-postgres/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// Tuning for [`PostgresStore::connect_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Connections for statements, opened on first use (default 10).
    pub max_connections: u32,
    /// How long a query waits for a free connection, and the first connection for
    /// the server, before failing (default 10 s).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`Store`] in a PostgreSQL database, shareable by several conductors.
///
/// ```no_run
/// # async fn f() -> ironic_core::store::StoreResult<()> {
/// use ironic_core::store::{PostgresStore, Store};
/// let store = PostgresStore::connect("postgres://ironic:secret@db.example:5432/ironic").await?;
/// let nodes = store.list_nodes(&Default::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    /// For migrations and the event listener.
    pool: PgPool,
    /// Every statement runs on one of these (see `conns.rs`).
    conns: std::sync::Arc<conns::Conns>,
    /// `postgres://user@host:port/db`, without the password.
    shown: String,
    /// The `LISTEN` side of [`Store::notifications`], started on first use.
    listener: std::sync::Arc<std::sync::OnceLock<tokio::sync::broadcast::Sender<String>>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresStore({})", self.shown)
    }
}

/// `url` with any password replaced by `******`, for messages. A URL that does not
/// parse is shown only by its scheme, since the password might be anywhere in it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:******@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // Query parameters may carry `password=`.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=******"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl PostgresStore {
    /// Connect to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`,
    /// with libpq's query parameters such as `sslmode`), and bring its schema up to
    /// date.
    ///
    /// Fails with [`StoreError::Backend`] naming the database (never the password)
    /// and the cause when the URL is not a PostgreSQL URL, the server refuses or does
    /// not answer, authentication fails, the database does not exist, or its schema
    /// was written by a newer ironic-rs.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let shown = redact_url(url);
        let fail = |what: &str, e: &dyn fmt::Display| {
            StoreError::Backend(format!(
                "cannot open PostgreSQL database {shown}: {what}: {e}"
            ))
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(fail(
                "not a PostgreSQL URL",
                &"expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            ));
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| fail("invalid URL", &scrub(&e.to_string(), url)))?
            .application_name("ironic-rs");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .idle_timeout(Duration::from_secs(30))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|e| fail("cannot connect", &scrub(&describe(&e), url)))?;
        migrate(&pool)
            .await
            .map_err(|e| fail("cannot migrate", &scrub(&e, url)))?;
        Ok(PostgresStore {
            pool,
            conns: std::sync::Arc::new(conns::Conns::new(
                options.max_connections,
                connect,
                options.acquire_timeout,
            )),
            shown,
            listener: Default::default(),
        })
    }

    /// Close every connection.
    pub async fn close(&self) {
        self.conns.close().await;
        self.pool.close().await;
    }

    /// A connection for one statement (or one transaction).
    async fn c(&self) -> StoreResult<conns::Lease<'_>> {
        self.conns
            .get()
            .await
            .map_err(|e| backend("connecting to the database", e))
    }
}

/// Remove the URL (and its password) from a driver message, should it quote them.
fn scrub(msg: &str, url: &str) -> String {
    let mut out = msg.replace(url, &redact_url(url));
    if let Some(password) = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
    {
        out = out.replace(password, "******");
    }
    out
}

async fn migrate(pool: &PgPool) -> Result<(), String> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => format!(
            "the database has schema migration {v}, which this ironic-rs does not know: \
             it was written by a newer version"
        ),
        sqlx::migrate::MigrateError::Execute(e) => describe(&e),
        other => other.to_string(),
    })
}

/// An sqlx error as a sentence, with PostgreSQL's own message and code.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("{} (SQLSTATE {code})", d.message()),
            None => d.message().to_owned(),
        },
        sqlx::Error::PoolTimedOut => {
            "no connection to the database within the acquire timeout (is the server up and reachable?)"
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// A backend error with context.
fn backend(context: impl fmt::Display, e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("{context}: {}", describe(&e)))
}

/// The name of a violated unique constraint (`nodes_name_key`, ...).
fn unique_violation(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            d.constraint()
        }
        _ => None,
    }
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

/// Serialize a record for the `data` column.
fn encode<T: Serialize + ?Sized>(kind: &str, id: impl fmt::Display, v: &T) -> StoreResult<String> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::Backend(format!("cannot serialize {kind} {id}: {e}")))
}

/// Parse a stored record.
fn decode<T: DeserializeOwned>(kind: &str, data: &str) -> StoreResult<T> {
    serde_json::from_str(data).map_err(|e| {
        let id = serde_json::from_str::<serde_json::Value>(data)
            .ok()
            .and_then(|v| v.get("uuid").and_then(|u| u.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "(unknown)".into());
        StoreError::Backend(format!(
            "stored {kind} {id} cannot be read (damaged or written by another version): {e}"
        ))
    })
}

/// A timestamp as nanoseconds since the epoch (saturating outside 1677..2262).
fn nanos(t: &Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn from_nanos(n: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_nanos(n)
}

/// The database clock as nanoseconds since the epoch, in SQL.
const DB_NOW_NANOS: &str = "(extract(epoch from clock_timestamp()) * 1000000000)::bigint";

#[async_trait]
impl Store for PostgresStore {
    async fn create_node(&self, node: &Node) -> StoreResult<()> {
        self.node_create(node).await
    }
    async fn get_node(&self, ident: &Ident) -> StoreResult<Node> {
        self.node_get(ident).await
    }
    async fn update_node(&self, node: &Node) -> StoreResult<()> {
        self.node_update(node).await
    }
    async fn delete_node(&self, id: NodeId) -> StoreResult<()> {
        self.node_delete(id).await
    }
    async fn list_nodes(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        self.node_list(query).await
    }
    async fn count_nodes(&self, filter: &NodeFilter) -> StoreResult<usize> {
        self.node_count(filter).await
    }
    async fn reserve_node(&self, id: NodeId, host: &str) -> StoreResult<Node> {
        self.node_reserve(id, host).await
    }
    async fn release_node(&self, id: NodeId, host: &str) -> StoreResult<()> {
        self.node_release(id, host).await
    }
    async fn update_node_and_release(&self, node: &Node, host: &str) -> StoreResult<()> {
        self.node_update_and_release(node, host).await
    }
    async fn clear_reservations(&self, host: &str) -> StoreResult<usize> {
        self.node_clear_reservations(host).await
    }

    async fn create_port(&self, port: &Port) -> StoreResult<()> {
        self.port_create(port).await
    }
    async fn get_port(&self, ident: &Ident) -> StoreResult<Port> {
        self.port_get(ident).await
    }
    async fn get_port_by_address(&self, address: MacAddress) -> StoreResult<Port> {
        self.port_get_by_address(address).await
    }
    async fn update_port(&self, port: &Port) -> StoreResult<()> {
        self.port_update(port).await
    }
    async fn delete_port(&self, id: PortId) -> StoreResult<()> {
        self.port_delete(id).await
    }
    async fn list_ports(&self, query: &PortQuery) -> StoreResult<Vec<Port>> {
        self.port_list(query).await
    }

    async fn create_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        self.portgroup_create(pg).await
    }
    async fn get_portgroup(&self, ident: &Ident) -> StoreResult<Portgroup> {
        self.portgroup_get(ident).await
    }
    async fn update_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        self.portgroup_update(pg).await
    }
    async fn delete_portgroup(&self, id: PortgroupId) -> StoreResult<()> {
        self.portgroup_delete(id).await
    }
    async fn list_portgroups(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>> {
        self.portgroup_list(node).await
    }

    async fn create_chassis(&self, c: &Chassis) -> StoreResult<()> {
        self.record_create(records::CHASSIS, c.uuid, None, c, None)
            .await
    }
    async fn get_chassis(&self, id: ChassisId) -> StoreResult<Chassis> {
        self.record_get(records::CHASSIS, &Ident::Uuid(id.0)).await
    }
    async fn update_chassis(&self, c: &Chassis) -> StoreResult<()> {
        self.record_update(records::CHASSIS, c.uuid, None, c, None)
            .await
    }
    async fn delete_chassis(&self, id: ChassisId) -> StoreResult<()> {
        self.record_delete(records::CHASSIS, id).await
    }
    async fn list_chassis(&self) -> StoreResult<Vec<Chassis>> {
        self.record_list(records::CHASSIS).await
    }

    async fn create_allocation(&self, a: &Allocation) -> StoreResult<()> {
        self.record_create(
            records::ALLOCATIONS,
            a.uuid,
            a.name.as_deref(),
            a,
            Some(a.node_uuid.map(|n| n.to_string())),
        )
        .await
    }
    async fn get_allocation(&self, ident: &Ident) -> StoreResult<Allocation> {
        self.record_get(records::ALLOCATIONS, ident).await
    }
    async fn update_allocation(&self, a: &Allocation) -> StoreResult<()> {
        self.record_update(
            records::ALLOCATIONS,
            a.uuid,
            a.name.as_deref(),
            a,
            Some(a.node_uuid.map(|n| n.to_string())),
        )
        .await
    }
    async fn delete_allocation(&self, id: AllocationId) -> StoreResult<()> {
        self.record_delete(records::ALLOCATIONS, id).await
    }
    async fn list_allocations(&self) -> StoreResult<Vec<Allocation>> {
        self.record_list(records::ALLOCATIONS).await
    }

    async fn create_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        self.record_create(records::TEMPLATES, t.uuid, Some(&t.name), t, None)
            .await
    }
    async fn get_deploy_template(&self, ident: &Ident) -> StoreResult<DeployTemplate> {
        self.record_get(records::TEMPLATES, ident).await
    }
    async fn update_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        self.record_update(records::TEMPLATES, t.uuid, Some(&t.name), t, None)
            .await
    }
    async fn delete_deploy_template(&self, id: DeployTemplateId) -> StoreResult<()> {
        self.record_delete(records::TEMPLATES, id).await
    }
    async fn list_deploy_templates(&self) -> StoreResult<Vec<DeployTemplate>> {
        self.record_list(records::TEMPLATES).await
    }

    async fn create_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        self.connector_write(c, true).await
    }
    async fn get_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<VolumeConnector> {
        self.record_get(records::CONNECTORS, &Ident::Uuid(id.0))
            .await
    }
    async fn update_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        self.connector_write(c, false).await
    }
    async fn delete_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<()> {
        self.record_delete(records::CONNECTORS, id).await
    }
    async fn list_volume_connectors(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>> {
        self.list_of_node(records::CONNECTORS, node).await
    }
    async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        self.target_write(t, true).await
    }
    async fn get_volume_target(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget> {
        self.record_get(records::TARGETS, &Ident::Uuid(id.0)).await
    }
    async fn update_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        self.target_write(t, false).await
    }
    async fn delete_volume_target(&self, id: VolumeTargetId) -> StoreResult<()> {
        self.record_delete(records::TARGETS, id).await
    }
    async fn list_volume_targets(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>> {
        self.list_of_node(records::TARGETS, node).await
    }

    async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        self.record_create(records::RULES, r.uuid, None, r, None)
            .await
    }
    async fn get_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<InspectionRule> {
        self.record_get(records::RULES, &Ident::Uuid(id.0)).await
    }
    async fn update_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        self.record_update(records::RULES, r.uuid, None, r, None)
            .await
    }
    async fn delete_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<()> {
        self.record_delete(records::RULES, id).await
    }
    async fn list_inspection_rules(&self) -> StoreResult<Vec<InspectionRule>> {
        self.record_list(records::RULES).await
    }
    async fn create_runbook(&self, r: &Runbook) -> StoreResult<()> {
        self.record_create(records::RUNBOOKS, r.uuid, Some(&r.name), r, None)
            .await
    }
    async fn get_runbook(&self, ident: &Ident) -> StoreResult<Runbook> {
        self.record_get(records::RUNBOOKS, ident).await
    }
    async fn update_runbook(&self, r: &Runbook) -> StoreResult<()> {
        self.record_update(records::RUNBOOKS, r.uuid, Some(&r.name), r, None)
            .await
    }
    async fn delete_runbook(&self, id: RunbookId) -> StoreResult<()> {
        self.record_delete(records::RUNBOOKS, id).await
    }
    async fn list_runbooks(&self) -> StoreResult<Vec<Runbook>> {
        self.record_list(records::RUNBOOKS).await
    }

    async fn upsert_conductor(&self, c: &ConductorRecord) -> StoreResult<()> {
        self.conductor_upsert(c).await
    }
    async fn touch_conductor(&self, hostname: &str) -> StoreResult<()> {
        self.conductor_touch(hostname).await
    }
    async fn delete_conductor(&self, hostname: &str) -> StoreResult<()> {
        self.conductor_delete(hostname).await
    }
    async fn list_conductors(&self) -> StoreResult<Vec<ConductorRecord>> {
        self.conductor_list().await
    }
    async fn forget_conductor(
        &self,
        hostname: &str,
        stamped_before: Timestamp,
    ) -> StoreResult<bool> {
        self.conductor_forget(hostname, stamped_before).await
    }

    async fn notify(&self, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(payload.to_owned())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| backend("sending a notification", e))?;
        Ok(())
    }

    fn notifications(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        let tx = self.listener.get_or_init(|| {
            let (tx, _) = tokio::sync::broadcast::channel(4096);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(listen(self.pool.clone(), tx.downgrade(), self.shown.clone()));
                }
                Err(_) => {
                    tracing::error!(database = %self.shown, "notifications asked for outside a Tokio runtime: none will arrive");
                }
            }
            tx
        });
        Some(tx.subscribe())
    }

    async fn now(&self) -> StoreResult<Timestamp> {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {DB_NOW_NANOS}")))
            .fetch_one(&mut self.c().await?)
            .await
            .map_err(|e| backend("reading the database clock", e))?;
        Ok(from_nanos(n))
    }

    async fn add_history(&self, e: &HistoryEvent, max_per_node: usize) -> StoreResult<()> {
        self.history_add(e, max_per_node).await
    }
    async fn list_history(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        self.history_list(node).await
    }
    async fn set_bios_settings(&self, node: NodeId, s: &[BiosSetting]) -> StoreResult<()> {
        self.node_blob_set(records::Blob::Bios, node, s).await
    }
    async fn get_bios_settings(&self, node: NodeId) -> StoreResult<Vec<BiosSetting>> {
        Ok(self
            .node_blob_get(records::Blob::Bios, node)
            .await?
            .unwrap_or_default())
    }
    async fn set_firmware_components(
        &self,
        node: NodeId,
        c: &[FirmwareComponent],
    ) -> StoreResult<()> {
        self.node_blob_set(records::Blob::Firmware, node, c).await
    }
    async fn get_firmware_components(&self, node: NodeId) -> StoreResult<Vec<FirmwareComponent>> {
        Ok(self
            .node_blob_get(records::Blob::Firmware, node)
            .await?
            .unwrap_or_default())
    }
    async fn set_inventory(&self, node: NodeId, inventory: &serde_json::Value) -> StoreResult<()> {
        self.node_blob_set(records::Blob::Inventory, node, inventory)
            .await
    }
    async fn get_inventory(&self, node: NodeId) -> StoreResult<Option<serde_json::Value>> {
        self.node_blob_get(records::Blob::Inventory, node).await
    }
}

/// The PostgreSQL channel of [`Store::notify`].
const NOTIFY_CHANNEL: &str = "ironic_rs_events";

/// `LISTEN` on [`NOTIFY_CHANNEL`] and pass every payload to `tx`, reconnecting
/// after a lost connection, until the store is dropped or its pool closed.
async fn listen(pool: PgPool, tx: tokio::sync::broadcast::WeakSender<String>, shown: String) {
    use sqlx::postgres::PgListener;
    let pause = std::time::Duration::from_secs(1);
    'connect: while !pool.is_closed() && tx.strong_count() > 0 {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(database = %shown, error = %describe(&e), "cannot listen for other conductors' events; retrying");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(database = %shown, error = %describe(&e), "cannot listen for other conductors' events; retrying");
            tokio::time::sleep(pause).await;
            continue;
        }
        loop {
            // Wake up now and then to notice a dropped store.
            let next = tokio::time::timeout(pause * 5, listener.try_recv()).await;
            let Some(tx) = tx.upgrade() else {
                return;
            };
            match next {
                Err(_elapsed) => {
                    if pool.is_closed() {
                        return;
                    }
                }
                Ok(Ok(Some(n))) => {
                    let _ = tx.send(n.payload().to_owned());
                }
                Ok(Ok(None)) => {
                    tracing::warn!(database = %shown, "the event listener's connection was lost and reopened: events sent meanwhile were missed");
                }
                Ok(Err(e)) => {
                    tracing::warn!(database = %shown, error = %describe(&e), "the event listener failed; reconnecting");
                    tokio::time::sleep(pause).await;
                    continue 'connect;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://ironic:s3cr3t@db.example:5432/ironic"),
            "postgres://ironic:******@db.example:5432/ironic"
        );
        assert_eq!(
            redact_url("postgresql://ironic@db/ironic?sslmode=require&password=s3cr3t"),
            "postgresql://ironic@db/ironic?sslmode=require&password=******"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@host/db"),
            "postgres://u:******@host/db"
        );
        assert_eq!(redact_url("u:p@host"), "(not a URL)");
        assert_eq!(
            scrub("bad thing about s3cr3t", "postgres://u:s3cr3t@h/d"),
            "bad thing about ******"
        );
    }
}
