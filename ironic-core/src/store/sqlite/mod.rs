//! The SQLite store: one file, WAL journal, embedded migrations.
//!
//! Each record is stored whole as JSON beside indexed columns for what is filtered,
//! sorted or unique (see `migrations/0001_initial.sql`). Only runtime queries are
//! used (no compile-time checked macros), so building needs no database.
//!
//! Concurrency: a few connections of our own, no pool: one writer, and readers
//! beside it (WAL lets them read while it writes). SQLite serialises writers, every
//! multi-statement write is all or nothing (its own `BEGIN IMMEDIATE` transaction,
//! or a savepoint in a shared one), and a
//! `busy_timeout` makes a writer wait for another process instead of failing. The
//! node lock is one `UPDATE ... WHERE reservation IS NULL` statement, so several
//! processes sharing one file still get exactly one winner. Within one process,
//! writes queue on an async gate before they reach SQLite: two of our own writers
//! never meet SQLite's busy handler, which sleeps whole milliseconds between
//! retries. The connections are held directly rather than in an sqlx pool: the
//! pool pings a connection on every checkout and again, from a task it spawns, on
//! every return, so one statement cost three round trips to the connection's
//! thread instead of one.
//!
//! Group commit: writes that queue at the gate while others run share one
//! transaction (`commit.rs`): one commit writes each page they touched into the
//! WAL once, instead of once per statement. A write that fails within it fails
//! alone (a statement undoes itself; a write of several statements has a
//! savepoint). Inside a write, reads run on the writer, so that they see its batch.
//!
//! Durability: a write is acknowledged (its method returns `Ok`)
//! only once its commit is on disk. SQLite runs with `synchronous = NORMAL`, so a
//! commit itself does not flush the write-ahead log; instead every write, after
//! its commit, waits for an `fdatasync` of the WAL file that started after that
//! commit. One flush covers every commit made before it began, so concurrent
//! writers share flushes instead of paying one each (as `synchronous = FULL` would
//! make them). On power loss nothing acknowledged is lost; a transaction that
//! committed but whose flush had not finished may be lost, and its caller got no
//! `Ok` (it was still waiting, or saw the flush's error). Checkpoints are
//! SQLite's: with `NORMAL` it flushes the WAL before and the database after each
//! one. Statements are prepared once per connection and reused (sqlx's statement
//! cache).

mod commit;
mod node_data;
mod nodes;
mod ports;
mod records;
mod volume;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::*;
use commit::Writes;

/// The migrations embedded in the binary (`ironic-core/migrations/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Tuning for [`SqliteStore::open_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Connections to the file: one writer, the others read (SQLite runs one writer
    /// at a time; readers run beside it in WAL mode). Default 4; 1 makes the writer
    /// read too.
    pub max_connections: u32,
    /// How long a statement waits for another connection's write lock before failing
    /// with "database is locked". Default 30 s.
    pub busy_timeout: Duration,
    /// Page cache of the writer connection, in KiB (SQLite's `cache_size`; its
    /// default is 2,000). Default 16,384: the writer's cache stays valid between its
    /// writes (only another process writing invalidates it), so a larger one saves
    /// re-reading the pages of the nodes' B-tree from the file. The readers keep
    /// SQLite's default: every write invalidates their caches anyway.
    pub writer_cache_kib: u32,
    /// WAL pages after which a commit checkpoints the WAL into the database
    /// (SQLite's `wal_autocheckpoint`; its default is 1,000). Default 10,000
    /// (about 40 MiB of WAL): fewer checkpoints copy a page that was written many
    /// times once instead of once per checkpoint.
    pub wal_autocheckpoint: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_connections: 4,
            busy_timeout: Duration::from_secs(30),
            writer_cache_kib: 16_384,
            wal_autocheckpoint: 10_000,
        }
    }
}

/// A [`Store`] in one SQLite file (or in memory, for tests).
///
/// ```no_run
/// # async fn f() -> ironic_core::store::StoreResult<()> {
/// use ironic_core::store::{SqliteStore, Store};
/// let store = SqliteStore::open("/var/lib/ironic/ironic.sqlite").await?;
/// let nodes = store.list_nodes(&Default::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    conns: Arc<Conns>,
    /// The file, or `None` in memory.
    path: Option<PathBuf>,
    /// Serialises this process's writes and makes them durable (module docs).
    writes: Arc<Writes>,
    /// The column values of the rows of the nodes this process has locked, as
    /// last written or read: an update writes only the columns that changed.
    locked: Arc<std::sync::Mutex<std::collections::HashMap<NodeId, nodes::Columns>>>,
}

/// A connection, `None` once the store is closed.
type Slot = Mutex<Option<SqliteConnection>>;

/// A connection in use.
type Conn<'a> = MappedMutexGuard<'a, SqliteConnection>;

/// The connections of one store (module docs).
#[derive(Debug)]
struct Conns {
    /// Every write runs here.
    writer: Slot,
    /// Reads run here (none: on the writer, as in memory).
    readers: Vec<Slot>,
    /// The reader to wait for when all are busy.
    next: std::sync::atomic::AtomicUsize,
}

impl Conns {
    fn new(writer: SqliteConnection, readers: Vec<SqliteConnection>) -> Self {
        Conns {
            writer: Mutex::new(Some(writer)),
            readers: readers.into_iter().map(|c| Mutex::new(Some(c))).collect(),
            next: Default::default(),
        }
    }

    async fn writer(&self) -> StoreResult<Conn<'_>> {
        open_slot(self.writer.lock().await)
    }

    /// A free reader, else the next one in turn.
    async fn reader(&self) -> StoreResult<Conn<'_>> {
        if self.readers.is_empty() {
            return self.writer().await;
        }
        for r in &self.readers {
            if let Ok(g) = r.try_lock() {
                return open_slot(g);
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.readers.len();
        open_slot(self.readers[i].lock().await)
    }

    /// Close every connection (the last one checkpoints the WAL).
    async fn close(&self) {
        for slot in self.readers.iter().chain([&self.writer]) {
            if let Some(c) = slot.lock().await.take() {
                let _ = c.close().await;
            }
        }
    }
}

fn open_slot(g: MutexGuard<'_, Option<SqliteConnection>>) -> StoreResult<Conn<'_>> {
    MutexGuard::try_map(g, Option::as_mut)
        .map_err(|_| StoreError::Backend("the SQLite store is closed".to_owned()))
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "SqliteStore({})", p.display()),
            None => f.write_str("SqliteStore(:memory:)"),
        }
    }
}

impl SqliteStore {
    /// Open (or create) the database file at `path`, creating its parent directory,
    /// and bring its schema up to date. WAL journal, foreign keys on, default
    /// [`SqliteOptions`].
    ///
    /// Fails with [`StoreError::Backend`] naming the path and the cause when the
    /// directory cannot be created, the file is not an SQLite database (or is
    /// corrupt), cannot be written, or was written by a newer ironic-rs.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// [`open`](Self::open) with explicit options.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let fail = |what: &str, e: &dyn fmt::Display| {
            StoreError::Backend(format!(
                "cannot open SQLite database {}: {what}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(&format!("cannot create directory {}", dir.display()), &e))?;
        }
        if path.is_dir() {
            return Err(fail("not a file", &"it is a directory"));
        }
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let mut writer = connect
            .clone()
            .pragma(
                "cache_size",
                format!("-{}", options.writer_cache_kib.max(1)),
            )
            .pragma("wal_autocheckpoint", options.wal_autocheckpoint.to_string())
            .connect()
            .await
            .map_err(|e| fail("cannot connect", &describe(&e)))?;
        // Read the schema now, so a damaged file fails here and not on first use.
        sqlx::query("SELECT count(*) FROM sqlite_schema")
            .execute(&mut writer)
            .await
            .map_err(|e| fail("cannot read the schema", &describe(&e)))?;
        migrate(&mut writer)
            .await
            .map_err(|e| fail("cannot migrate", &e))?;
        let mut readers = Vec::new();
        for _ in 1..options.max_connections.max(1) {
            readers.push(
                connect
                    .connect()
                    .await
                    .map_err(|e| fail("cannot connect", &describe(&e)))?,
            );
        }
        // The WAL file exists from the first write on; make its directory entry
        // durable too when it is new (SQLite does not flush the directory).
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(SqliteStore {
            conns: Arc::new(Conns::new(writer, readers)),
            path: Some(path),
            writes: Arc::new(Writes::new(Some(wal), options.max_connections > 1)),
            locked: Default::default(),
        })
    }

    /// A private in-memory database (one connection, lives as long as the store).
    pub async fn in_memory() -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| StoreError::Backend(format!("in-memory SQLite: {e}")))?
            .foreign_keys(true);
        let mut conn = connect
            .connect()
            .await
            .map_err(|e| StoreError::Backend(format!("in-memory SQLite: {}", describe(&e))))?;
        migrate(&mut conn)
            .await
            .map_err(|e| StoreError::Backend(format!("in-memory SQLite: {e}")))?;
        Ok(SqliteStore {
            conns: Arc::new(Conns::new(conn, Vec::new())),
            path: None,
            writes: Arc::new(Writes::new(None, false)),
            locked: Default::default(),
        })
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The columns of the rows of the nodes locked here (see the field).
    fn locked_rows(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<NodeId, nodes::Columns>> {
        self.locked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer connection: every write statement runs here.
    async fn w(&self) -> StoreResult<Conn<'_>> {
        self.conns.writer().await
    }

    /// A reader connection (the writer in memory, and inside a write, whose
    /// reads must see the uncommitted writes of its batch).
    async fn r(&self) -> StoreResult<Conn<'_>> {
        if self.in_write() {
            return self.w().await;
        }
        self.conns.reader().await
    }

    /// Close every connection, checkpointing the WAL. Dropping the store without
    /// closing it loses nothing that was committed. Calls after closing fail.
    pub async fn close(&self) {
        self.conns.close().await;
    }
}

async fn migrate(conn: &mut SqliteConnection) -> Result<(), String> {
    MIGRATOR.run(conn).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => format!(
            "the database has schema migration {v}, which this ironic-rs does not know: \
             it was written by a newer version"
        ),
        sqlx::migrate::MigrateError::Execute(e) => describe(&e),
        other => other.to_string(),
    })
}

/// An sqlx error as a sentence, with SQLite's own message for database errors.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("{} (SQLite code {code})", d.message()),
            None => d.message().to_owned(),
        },
        other => other.to_string(),
    }
}

/// A backend error with context.
fn backend(context: impl fmt::Display, e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("{context}: {}", describe(&e)))
}

/// `table.column` of a violated unique constraint.
fn unique_violation(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            d.message().rsplit(": ").next()
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

/// A timestamp for a text column (exact, RFC 3339).
fn ts_text(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn parse_ts_text(s: &str) -> StoreResult<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| StoreError::Backend(format!("stored timestamp {s:?} does not parse: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_node(&self, node: &Node) -> StoreResult<()> {
        self.write(self.node_create(node)).await
    }
    async fn get_node(&self, ident: &Ident) -> StoreResult<Node> {
        self.node_get(ident).await
    }
    async fn update_node(&self, node: &Node) -> StoreResult<()> {
        self.write(self.node_update(node)).await
    }
    async fn delete_node(&self, id: NodeId) -> StoreResult<()> {
        self.write(self.node_delete(id)).await
    }
    async fn list_nodes(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        self.node_list(query).await
    }
    async fn count_nodes(&self, filter: &NodeFilter) -> StoreResult<usize> {
        self.node_count(filter).await
    }
    async fn reserve_node(&self, id: NodeId, host: &str) -> StoreResult<Node> {
        self.write(self.node_reserve(id, host)).await
    }
    async fn release_node(&self, id: NodeId, host: &str) -> StoreResult<()> {
        self.write(self.node_release(id, host)).await
    }
    async fn update_node_and_release(&self, node: &Node, host: &str) -> StoreResult<()> {
        self.write(self.node_update_and_release(node, host)).await
    }
    async fn clear_reservations(&self, host: &str) -> StoreResult<usize> {
        self.write(self.node_clear_reservations(host)).await
    }

    async fn create_port(&self, port: &Port) -> StoreResult<()> {
        self.write(self.port_create(port)).await
    }
    async fn get_port(&self, ident: &Ident) -> StoreResult<Port> {
        self.port_get(ident).await
    }
    async fn get_port_by_address(&self, address: MacAddress) -> StoreResult<Port> {
        self.port_get_by_address(address).await
    }
    async fn update_port(&self, port: &Port) -> StoreResult<()> {
        self.write(self.port_update(port)).await
    }
    async fn delete_port(&self, id: PortId) -> StoreResult<()> {
        self.write(self.port_delete(id)).await
    }
    async fn list_ports(&self, query: &PortQuery) -> StoreResult<Vec<Port>> {
        self.port_list(query).await
    }

    async fn create_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        self.write(self.portgroup_create(pg)).await
    }
    async fn get_portgroup(&self, ident: &Ident) -> StoreResult<Portgroup> {
        self.portgroup_get(ident).await
    }
    async fn update_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        self.write(self.portgroup_update(pg)).await
    }
    async fn delete_portgroup(&self, id: PortgroupId) -> StoreResult<()> {
        self.write(self.portgroup_delete(id)).await
    }
    async fn list_portgroups(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>> {
        self.portgroup_list(node).await
    }

    async fn create_chassis(&self, c: &Chassis) -> StoreResult<()> {
        self.write(self.chassis_create(c)).await
    }
    async fn get_chassis(&self, id: ChassisId) -> StoreResult<Chassis> {
        self.chassis_get(id).await
    }
    async fn update_chassis(&self, c: &Chassis) -> StoreResult<()> {
        self.write(self.chassis_update(c)).await
    }
    async fn delete_chassis(&self, id: ChassisId) -> StoreResult<()> {
        self.write(self.chassis_delete(id)).await
    }
    async fn list_chassis(&self) -> StoreResult<Vec<Chassis>> {
        self.chassis_list().await
    }

    async fn create_allocation(&self, a: &Allocation) -> StoreResult<()> {
        self.write(self.allocation_create(a)).await
    }
    async fn get_allocation(&self, ident: &Ident) -> StoreResult<Allocation> {
        self.allocation_get(ident).await
    }
    async fn update_allocation(&self, a: &Allocation) -> StoreResult<()> {
        self.write(self.allocation_update(a)).await
    }
    async fn delete_allocation(&self, id: AllocationId) -> StoreResult<()> {
        self.write(self.allocation_delete(id)).await
    }
    async fn list_allocations(&self) -> StoreResult<Vec<Allocation>> {
        self.allocation_list().await
    }

    async fn create_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        self.write(self.template_create(t)).await
    }
    async fn get_deploy_template(&self, ident: &Ident) -> StoreResult<DeployTemplate> {
        self.template_get(ident).await
    }
    async fn update_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        self.write(self.template_update(t)).await
    }
    async fn delete_deploy_template(&self, id: DeployTemplateId) -> StoreResult<()> {
        self.write(self.template_delete(id)).await
    }
    async fn list_deploy_templates(&self) -> StoreResult<Vec<DeployTemplate>> {
        self.template_list().await
    }

    async fn create_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        self.write(self.connector_create(c)).await
    }
    async fn get_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<VolumeConnector> {
        self.connector_get(id).await
    }
    async fn update_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        self.write(self.connector_update(c)).await
    }
    async fn delete_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<()> {
        self.write(self.connector_delete(id)).await
    }
    async fn list_volume_connectors(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>> {
        self.connector_list(node).await
    }
    async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        self.write(self.target_create(t)).await
    }
    async fn get_volume_target(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget> {
        self.target_get(id).await
    }
    async fn update_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        self.write(self.target_update(t)).await
    }
    async fn delete_volume_target(&self, id: VolumeTargetId) -> StoreResult<()> {
        self.write(self.target_delete(id)).await
    }
    async fn list_volume_targets(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>> {
        self.target_list(node).await
    }

    async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        self.write(self.rule_create(r)).await
    }
    async fn get_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<InspectionRule> {
        self.rule_get(id).await
    }
    async fn update_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        self.write(self.rule_update(r)).await
    }
    async fn delete_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<()> {
        self.write(self.rule_delete(id)).await
    }
    async fn list_inspection_rules(&self) -> StoreResult<Vec<InspectionRule>> {
        self.rule_list().await
    }
    async fn create_runbook(&self, r: &Runbook) -> StoreResult<()> {
        self.write(self.runbook_create(r)).await
    }
    async fn get_runbook(&self, ident: &Ident) -> StoreResult<Runbook> {
        self.runbook_get(ident).await
    }
    async fn update_runbook(&self, r: &Runbook) -> StoreResult<()> {
        self.write(self.runbook_update(r)).await
    }
    async fn delete_runbook(&self, id: RunbookId) -> StoreResult<()> {
        self.write(self.runbook_delete(id)).await
    }
    async fn list_runbooks(&self) -> StoreResult<Vec<Runbook>> {
        self.runbook_list().await
    }

    async fn upsert_conductor(&self, c: &ConductorRecord) -> StoreResult<()> {
        self.write(self.conductor_upsert(c)).await
    }
    async fn touch_conductor(&self, hostname: &str) -> StoreResult<()> {
        self.write(self.conductor_touch(hostname)).await
    }
    async fn delete_conductor(&self, hostname: &str) -> StoreResult<()> {
        self.write(self.conductor_delete(hostname)).await
    }
    async fn list_conductors(&self) -> StoreResult<Vec<ConductorRecord>> {
        self.conductor_list().await
    }
    async fn forget_conductor(
        &self,
        hostname: &str,
        stamped_before: Timestamp,
    ) -> StoreResult<bool> {
        // The write gate keeps this process's keep-alives and locks out between
        // the check and the delete (one process opens a SQLite store).
        self.write(async {
            let stale = self.conductor_list().await?.into_iter().any(|c| {
                c.hostname == hostname && c.updated_at.unwrap_or(c.created_at) < stamped_before
            });
            let mut q = NodeQuery::default();
            q.filter.reserved_by = Some(hostname.to_owned());
            q.page.limit = Some(1);
            if !stale || !self.list_nodes(&q).await?.is_empty() {
                return Ok(false);
            }
            self.conductor_delete(hostname).await.map(|()| true)
        })
        .await
    }

    async fn add_history(&self, e: &HistoryEvent, max_per_node: usize) -> StoreResult<()> {
        self.write_atomic(self.history_add(e, max_per_node)).await
    }
    async fn list_history(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        self.history_list(node).await
    }
    async fn set_bios_settings(&self, node: NodeId, s: &[BiosSetting]) -> StoreResult<()> {
        self.write(self.node_blob_set(node_data::Blob::Bios, node, s))
            .await
    }
    async fn get_bios_settings(&self, node: NodeId) -> StoreResult<Vec<BiosSetting>> {
        Ok(self
            .node_blob_get(node_data::Blob::Bios, node)
            .await?
            .unwrap_or_default())
    }
    async fn set_firmware_components(
        &self,
        node: NodeId,
        c: &[FirmwareComponent],
    ) -> StoreResult<()> {
        self.write(self.node_blob_set(node_data::Blob::Firmware, node, c))
            .await
    }
    async fn get_firmware_components(&self, node: NodeId) -> StoreResult<Vec<FirmwareComponent>> {
        Ok(self
            .node_blob_get(node_data::Blob::Firmware, node)
            .await?
            .unwrap_or_default())
    }
    async fn set_inventory(&self, node: NodeId, inventory: &serde_json::Value) -> StoreResult<()> {
        self.write(self.node_blob_set(node_data::Blob::Inventory, node, inventory))
            .await
    }
    async fn get_inventory(&self, node: NodeId) -> StoreResult<Option<serde_json::Value>> {
        self.node_blob_get(node_data::Blob::Inventory, node).await
    }
}

#[cfg(test)]
mod tests;
