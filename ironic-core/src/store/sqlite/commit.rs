//! The write gate and group commit (see the module docs of `sqlite`).
//!
//! Every write of this process passes one gate. A write that finds nobody else
//! writing runs alone, autocommitted, as a plain statement. Under load the writes
//! share transactions instead: the first write that finds others queued behind it
//! opens a batch (`BEGIN IMMEDIATE`), each following write runs inside it, and
//! the batch commits when the gate reaches a write of the batch that has nobody
//! new queued behind it, or a write of the batch that went back to the queue to
//! wait for the commit: so every write queued while a batch runs (and while the
//! previous one commits) joins it. One commit writes each page the batch touched
//! into the WAL once, and one `fdatasync` of the WAL then covers the batch.
//!
//! Within a batch a write that fails must leave no trace and must not take the
//! others down. A write of one statement gets that from SQLite itself (a failing
//! statement undoes its own changes and leaves the transaction open); a write of
//! several statements runs inside a `SAVEPOINT` and a failure rolls back to it.
//! Should SQLite roll the whole transaction back on its own (I/O error, disk full),
//! the batch's `COMMIT` fails and every write of the batch gets that error.
//!
//! A write returns `Ok` only once its batch's commit is on disk (the flush of the
//! WAL that began after that commit). Control statements (`BEGIN`, `COMMIT`) keep
//! the gate's state and the connection's in step even when the caller of a write
//! is cancelled half-way: the commit runs in a task of its own, and a write
//! cancelled inside an open batch leaves a task that commits the batch for the
//! others.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::*;

tokio::task_local! {
    /// Set while a write runs: the store (its [`Writes`]'s address) whose reads go
    /// to the writer connection, so that they see the batch's uncommitted writes.
    static IN_WRITE: usize;
}

/// The gate, the batch it has open, and the durable flush of one store.
#[derive(Debug)]
pub(super) struct Writes {
    gate: Arc<Mutex<Gate>>,
    /// Writes waiting for the gate for the first time (not those of an open
    /// batch waiting for its commit).
    queued: AtomicUsize,
    /// Whether writes share transactions. Not with one connection (in memory, or
    /// `max_connections` 1): reads run on the writer there, and would see an open
    /// batch's writes before their commit.
    batching: bool,
    /// The WAL file to flush (`None` in memory).
    wal: Option<PathBuf>,
    /// Commits made so far (monotonic): a commit's number says which flush covers it.
    pub(super) commits: AtomicU64,
    /// Held during a flush; holds the highest commit number known durable.
    pub(super) flushed: Mutex<u64>,
}

/// What the gate guards.
#[derive(Debug, Default)]
struct Gate {
    /// The batch whose transaction is open on the writer connection.
    open: Option<Arc<Batch>>,
    /// What undoes a write of several statements cancelled half-way (the
    /// rollback to its savepoint, or of its own transaction), run before
    /// anything else.
    dangling: Option<&'static str>,
}

/// One shared transaction.
#[derive(Debug, Default)]
struct Batch {
    /// Set once by its `COMMIT`: the commit's number, or why it failed.
    outcome: OnceLock<Result<u64, String>>,
}

/// Counts a write as queued for the gate while it waits (also when cancelled).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, SeqCst);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// While armed (its write was cancelled in an open batch), dropping it leaves a
/// task that commits the batch for the batch's other writes.
struct Settle<'a> {
    store: &'a SqliteStore,
    batch: Option<Arc<Batch>>,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        if batch.outcome.get().is_some() {
            return;
        }
        let store = self.store.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let mut gate = store.writes.gate.clone().lock_owned().await;
                store.tidy(&mut gate).await;
                if batch.outcome.get().is_none() {
                    store.commit(gate, &batch).await;
                }
            });
        }
    }
}

const SAVEPOINT: &str = "SAVEPOINT ironic_write";
const RELEASE: &str = "RELEASE ironic_write";
const ROLLBACK_TO: &str = "ROLLBACK TO ironic_write; RELEASE ironic_write";

impl Writes {
    pub(super) fn new(wal: Option<PathBuf>, batching: bool) -> Self {
        Writes {
            gate: Default::default(),
            queued: AtomicUsize::new(0),
            batching,
            wal,
            commits: AtomicU64::new(0),
            flushed: Mutex::new(0),
        }
    }

    /// Wait until commit number `commit` (and every one before it) is on disk.
    pub(super) async fn durable(&self, commit: u64) -> StoreResult<()> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let mut flushed = self.flushed.lock().await;
        if *flushed >= commit {
            // A flush that began after our commit has finished.
            return Ok(());
        }
        // Every commit counted so far is done.
        let upto = self.commits.load(SeqCst);
        let wal = wal.clone();
        let r = tokio::task::spawn_blocking(move || flush(&wal))
            .await
            .map_err(|e| StoreError::Backend(format!("flushing the SQLite WAL: {e}")))?;
        r?;
        *flushed = upto;
        Ok(())
    }
}

impl SqliteStore {
    fn write_key(&self) -> usize {
        Arc::as_ptr(&self.writes) as usize
    }

    /// Whether the current task runs one of this store's writes (its reads then
    /// go to the writer).
    pub(super) fn in_write(&self) -> bool {
        IN_WRITE
            .try_with(|k| *k == self.write_key())
            .unwrap_or(false)
    }

    /// Run a write of one statement (or of several where a failing one leaves the
    /// earlier ones without effect), and return once it is durable.
    pub(super) async fn write<T>(
        &self,
        op: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.write_in(false, op).await
    }

    /// Run a write of several statements, all or nothing, and return once it is
    /// durable. Its statements must not begin a transaction of their own.
    pub(super) async fn write_atomic<T>(
        &self,
        op: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.write_in(true, op).await
    }

    async fn write_in<T>(
        &self,
        several: bool,
        op: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let w = &self.writes;
        let mut gate = {
            let _queued = Queued::enter(&w.queued);
            w.gate.clone().lock_owned().await
        };
        self.tidy(&mut gate).await;
        let op = IN_WRITE.scope(self.write_key(), op);
        if !w.batching || (gate.open.is_none() && w.queued.load(SeqCst) == 0) {
            // Alone: autocommit, as a plain statement.
            let out = if several {
                gate.dangling = Some("ROLLBACK");
                self.exec("BEGIN IMMEDIATE").await?;
                let out = op.await;
                let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
                let ended = self.exec(end).await;
                if ended.is_ok() {
                    gate.dangling = None;
                }
                ended?;
                out?
            } else {
                op.await?
            };
            let commit = w.commits.fetch_add(1, SeqCst) + 1;
            drop(gate);
            w.durable(commit).await?;
            return Ok(out);
        }
        let open = gate.open.clone().filter(|b| b.outcome.get().is_none());
        let batch = match open {
            Some(b) => b,
            None => {
                let b = Arc::new(Batch::default());
                // Set before the statement: cancelled during it, the batch is
                // still committed (or its COMMIT fails) by whoever comes next.
                gate.open = Some(b.clone());
                if let Err(e) = self.exec("BEGIN IMMEDIATE").await {
                    gate.open = None;
                    return Err(e);
                }
                b
            }
        };
        let mut settle = Settle {
            store: self,
            batch: Some(batch.clone()),
        };
        let out = if several {
            gate.dangling = Some(ROLLBACK_TO);
            let out = match self.exec(SAVEPOINT).await {
                Ok(()) => {
                    let out = op.await;
                    let end = if out.is_ok() { RELEASE } else { ROLLBACK_TO };
                    // If this fails SQLite has rolled the transaction back: the
                    // batch's COMMIT will fail and say so to every write of it.
                    self.exec(end).await.and(out)
                }
                Err(e) => Err(e),
            };
            gate.dangling = None;
            out
        } else {
            op.await
        };
        if w.queued.load(SeqCst) > 0 {
            // Let the writes queued behind this one join the batch, then come back
            // for its commit (unless one of them committed it).
            drop(gate);
            gate = w.gate.clone().lock_owned().await;
            self.tidy(&mut gate).await;
        }
        if batch.outcome.get().is_none() {
            // Not ended, so still the open batch: commit it now.
            self.commit(gate, &batch).await;
        } else {
            drop(gate);
        }
        settle.batch = None;
        // A failed write had no effect: its own error says more than the batch's.
        let out = out?;
        let commit = match batch.outcome.get() {
            Some(Ok(n)) => *n,
            Some(Err(e)) => return Err(StoreError::Backend(e.clone())),
            None => {
                return Err(StoreError::Backend(
                    "the SQLite write batch was not committed".into(),
                ));
            }
        };
        w.durable(commit).await?;
        Ok(out)
    }

    /// Commit the open batch, in a task of its own so that a cancelled caller
    /// cannot leave the transaction and the gate out of step; releases the gate.
    async fn commit(&self, gate: OwnedMutexGuard<Gate>, batch: &Arc<Batch>) {
        let store = self.clone();
        let batch2 = batch.clone();
        let done = tokio::spawn(async move {
            let mut gate = gate;
            let r = store.exec("COMMIT").await;
            let outcome = match r {
                Ok(()) => Ok(store.writes.commits.fetch_add(1, SeqCst) + 1),
                Err(e) => {
                    // Leave no transaction behind whatever state it was in.
                    let _ = store.exec("ROLLBACK").await;
                    Err(format!("committing a batch of writes: {e}"))
                }
            };
            let _ = batch2.outcome.set(outcome);
            gate.open = None;
        })
        .await;
        if let Err(e) = done {
            let _ = batch
                .outcome
                .set(Err(format!("committing a batch of writes: {e}")));
        }
    }

    /// Undo what a cancelled write of several statements left inside its savepoint.
    async fn tidy(&self, gate: &mut Gate) {
        if let Some(undo) = gate.dangling.take() {
            // Fails if the savepoint or transaction is gone (it ended, or never
            // began): then there is nothing to undo.
            let _ = self.exec(undo).await;
        }
    }

    /// Run control statements on the writer.
    async fn exec(&self, sql: &'static str) -> StoreResult<()> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *self.w().await?)
            .await
            .map(drop)
            .map_err(|e| backend(format_args!("running {sql}"), e))
    }
}

/// `fdatasync` the WAL file. No WAL file means nothing is pending in one: SQLite
/// removes it only after checkpointing it into the database and flushing that.
fn flush(wal: &Path) -> StoreResult<()> {
    match std::fs::File::open(wal) {
        Ok(f) => f.sync_data().map_err(|e| {
            StoreError::Backend(format!(
                "flushing {} (the commit may not be durable): {e}",
                wal.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "opening {} to flush it: {e}",
            wal.display()
        ))),
    }
}
