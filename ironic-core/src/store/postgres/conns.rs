//! The store's connections to the server, held by the store itself.
//!
//! sqlx's pool pings a connection on every checkout (`test_before_acquire`) and
//! again, from a task it spawns, on every return: two round trips to the server
//! beside each statement's one. Here a statement takes a free connection and
//! gives it back without a word to the server. A connection is checked (one
//! ping) only when it has been idle for a while.
//!
//! A [`Lease`] knows what became of the statements run on it, because they run
//! through it (it is the [`Executor`]): the connection goes back for the next
//! statement only when the last one ended with a result or with the database's
//! answer. It is dropped (and opened again on a later use) when a statement
//! failed for a reason that may have broken it (I/O, TLS, protocol, the server's
//! connection errors), when a statement was cancelled mid-way (its future
//! dropped), and when a transaction was not settled: nothing half-done is left
//! on a connection for the next statement, and no transaction is left open on
//! the server holding its locks.
//!
//! Waiting for a connection is one fair queue (a semaphore with one permit per
//! connection): the first to wait is the first served, whichever connection
//! frees.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgQueryResult, PgRow, PgStatement, PgTypeInfo, Postgres,
};
use sqlx::{Connection, Describe, Either, Execute, Executor, SqlStr};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A connection idle longer than this is pinged before use.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

/// Whether an error may have broken the connection it came from: I/O, TLS,
/// protocol, and the server's own connection errors (SQLSTATE classes 08,
/// connection exception, and 57, operator intervention: a terminated backend,
/// a server shutting down).
fn breaks(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    }
}

/// What a lease knows of its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing under way: usable by the next statement.
    Ready,
    /// A statement (or transaction) started and has not ended: if the lease
    /// ends now, the connection is in an unknown state.
    Busy,
    /// A statement failed in a way that may have broken the connection.
    Broken,
}

/// A connection (or the room for one) not in use.
#[derive(Debug)]
struct Idle {
    conn: Option<PgConnection>,
    used: Instant,
}

/// The connections of one store.
pub(super) struct Conns {
    /// Connections not in use, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection; closed when the store is.
    permits: Semaphore,
    connect: PgConnectOptions,
    acquire_timeout: Duration,
}

impl fmt::Debug for Conns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conns")
            .field("free", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// A connection in use; back among the idle ones when dropped (without its
/// connection unless the last statement on it ended cleanly).
pub(super) struct Lease<'a> {
    conns: &'a Conns,
    slot: Idle,
    state: State,
    _permit: SemaphorePermit<'a>,
}

impl fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut conn = self.slot.conn.take();
        if self.state != State::Ready || self.conns.permits.is_closed() {
            // Closes the socket: the server ends whatever was under way.
            conn = None;
        }
        self.conns
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Idle {
                conn,
                used: Instant::now(),
            });
        // The permit goes back after this, with an idle slot waiting for it.
    }
}

impl Lease<'_> {
    /// The connection for the next statement, and the state its outcome goes to.
    fn start(&mut self) -> (&mut PgConnection, &mut State) {
        self.state = State::Busy;
        let conn = self
            .slot
            .conn
            .as_mut()
            .expect("a lease given out holds a connection");
        (conn, &mut self.state)
    }

    /// The connection itself, for a transaction: the lease counts as busy
    /// (its connection is dropped when it ends) until [`Lease::settled`] is
    /// given the transaction's outcome.
    pub(super) fn for_transaction(&mut self) -> &mut PgConnection {
        self.start().0
    }

    /// Record the outcome of the transaction begun on
    /// [`Lease::for_transaction`] (its commit's result).
    pub(super) fn settled<T>(&mut self, r: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        end(&mut self.state, r.as_ref().err());
        r
    }
}

/// Record how a statement ended.
fn end(state: &mut State, error: Option<&sqlx::Error>) {
    *state = if error.is_some_and(breaks) {
        State::Broken
    } else {
        State::Ready
    };
}

impl<'c> Executor<'c> for &'c mut Lease<'_> {
    type Database = Postgres;

    fn fetch_many<'e, 'q, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
        'q: 'e,
    {
        let (conn, state) = self.start();
        let mut rows = conn.fetch_many(query);
        Box::pin(futures::stream::poll_fn(move |cx| {
            let next = rows.poll_next_unpin(cx);
            match &next {
                Poll::Ready(Some(Err(e))) => end(state, Some(e)),
                // The end of the rows: clean unless an error came first.
                Poll::Ready(None) if *state == State::Busy => *state = State::Ready,
                _ => {}
            }
            next
        }))
    }

    fn fetch_optional<'e, 'q, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
        'q: 'e,
    {
        let (conn, state) = self.start();
        let row = conn.fetch_optional(query);
        Box::pin(async move {
            let r = row.await;
            end(state, r.as_ref().err());
            r
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        let (conn, state) = self.start();
        let prepared = conn.prepare_with(sql, parameters);
        Box::pin(async move {
            let r = prepared.await;
            end(state, r.as_ref().err());
            r
        })
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        let (conn, state) = self.start();
        let described = conn.describe(sql);
        Box::pin(async move {
            let r = described.await;
            end(state, r.as_ref().err());
            r
        })
    }
}

impl Conns {
    /// Room for `n` connections (at least one), opened on first use.
    pub(super) fn new(n: u32, connect: PgConnectOptions, acquire_timeout: Duration) -> Self {
        let n = usize::try_from(n.max(1)).unwrap_or(1);
        Conns {
            idle: Mutex::new(Vec::with_capacity(n)),
            permits: Semaphore::new(n),
            connect,
            acquire_timeout,
        }
    }

    /// A connection, after those who waited first; opened (again) if needed.
    pub(super) async fn get(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await
        {
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Ok(Ok(p)) => p,
        };
        let slot = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or(Idle {
                conn: None,
                used: Instant::now(),
            });
        // Busy until the connection is known good: a lease dropped while
        // pinging or connecting gives its room back without the connection.
        let mut lease = Lease {
            conns: self,
            slot,
            state: State::Busy,
            _permit: permit,
        };
        let idle = lease.slot.used.elapsed() > CHECK_AFTER_IDLE;
        if let Some(c) = &mut lease.slot.conn
            && idle
            && c.ping().await.is_err()
        {
            lease.slot.conn = None;
        }
        if lease.slot.conn.is_none() {
            let c = tokio::time::timeout(
                self.acquire_timeout,
                PgConnection::connect_with(&self.connect),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
            lease.slot.conn = Some(c);
        }
        lease.state = State::Ready;
        Ok(lease)
    }

    /// Close the idle connections; later uses fail, and connections in use are
    /// closed when their statement ends.
    pub(super) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for c in idle.into_iter().filter_map(|s| s.conn) {
            let _ = c.close().await;
        }
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::store::conformance::TestDatabase;

    fn conns(db: &TestDatabase) -> Conns {
        let connect = PgConnectOptions::from_str(db.url()).expect("the test URL parses");
        Conns::new(1, connect, Duration::from_secs(30))
    }

    /// The server process behind the lease's connection.
    async fn backend_of(lease: &mut Lease<'_>) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(lease)
            .await
            .expect("SELECT pg_backend_pid()")
    }

    #[tokio::test]
    async fn the_databases_answer_keeps_the_connection() {
        let db = TestDatabase::create().await;
        let conns = conns(&db);
        let mut lease = conns.get().await.unwrap();
        let first = backend_of(&mut lease).await;
        let e = sqlx::query("SELECT 1/0")
            .execute(&mut lease)
            .await
            .expect_err("division by zero");
        assert!(!breaks(&e), "{e}");
        drop(lease);
        let mut lease = conns.get().await.unwrap();
        assert_eq!(backend_of(&mut lease).await, first);
        drop(lease);
        conns.close().await;
        assert!(matches!(conns.get().await, Err(sqlx::Error::PoolClosed)));
    }

    #[tokio::test]
    async fn a_cancelled_statement_or_an_unsettled_transaction_costs_the_connection() {
        let db = TestDatabase::create().await;
        let conns = conns(&db);
        let mut lease = conns.get().await.unwrap();
        let first = backend_of(&mut lease).await;
        // Cancelled mid-statement: the server is still busy with it.
        let slow = sqlx::query("SELECT pg_sleep(5)").execute(&mut lease);
        let _ = tokio::time::timeout(Duration::from_millis(100), slow).await;
        drop(lease);
        let mut lease = conns.get().await.unwrap();
        let second = backend_of(&mut lease).await;
        assert_ne!(
            second, first,
            "a new connection after the cancelled statement"
        );

        // A transaction given up half-way (as by `?`): not left open on the
        // server for the next statement to run inside.
        let mut tx = sqlx::Connection::begin(lease.for_transaction())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE left_open (x int)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        drop(lease);
        let mut lease = conns.get().await.unwrap();
        let third = backend_of(&mut lease).await;
        assert_ne!(
            third, second,
            "a new connection after the unsettled transaction"
        );
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'left_open'")
                .fetch_one(&mut lease)
                .await
                .unwrap();
        assert_eq!(tables, 0, "the unsettled transaction was rolled back");

        // A settled one keeps it.
        let mut tx = sqlx::Connection::begin(lease.for_transaction())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE committed (x int)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let r = tx.commit().await;
        lease.settled(r).unwrap();
        drop(lease);
        let mut lease = conns.get().await.unwrap();
        assert_eq!(backend_of(&mut lease).await, third);
    }
}
