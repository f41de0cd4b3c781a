//! PostgreSQL specifics: connecting, clear errors at start (wrong URL, refused
//! connection, unknown database, schema from a newer version), no password in any
//! message, several stores (processes) on one database. The store's behaviour is
//! covered by the conformance kit (`tests/store_conformance.rs`).

use ironic_core::Node;
use ironic_core::store::conformance::TestDatabase;
use ironic_core::store::{PostgresStore, Store, StoreError};

fn backend_message(r: Result<PostgresStore, StoreError>) -> String {
    match r {
        Err(StoreError::Backend(m)) => m,
        Err(other) => panic!("expected a Backend error, got {other:?}"),
        Ok(s) => panic!("expected an error, got a store {s:?}"),
    }
}

/// The test database's URL with another password (same server and role).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.rsplit_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn wrong_urls_and_refused_connections_are_clear_errors_without_the_password() {
    let m = backend_message(PostgresStore::connect("mysql://root:hunter2@db/ironic").await);
    assert!(m.contains("not a PostgreSQL URL"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");

    let m = backend_message(
        PostgresStore::connect("postgres://ironic:hunter2@127.0.0.1:notaport/ironic").await,
    );
    assert!(m.contains("invalid URL"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");

    // A port nothing listens on: bind one, learn its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ironic:hunter2@127.0.0.1:{port}/ironic");
    let m = backend_message(PostgresStore::connect(&url).await);
    assert!(m.contains("cannot connect"), "{m}");
    assert!(
        m.contains(&format!("127.0.0.1:{port}")),
        "names the server: {m}"
    );
    assert!(m.contains("******"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");
}

#[tokio::test]
async fn bad_credentials_and_missing_databases_are_clear_errors() {
    let db = TestDatabase::create().await;
    let m = backend_message(
        PostgresStore::connect(&with_password(db.url(), "definitely-wrong-pw")).await,
    );
    assert!(m.contains("authentication failed"), "{m}");
    assert!(!m.contains("definitely-wrong-pw"), "{m}");

    let missing = db.url().replace(db.name(), "no_such_database_here");
    let m = backend_message(PostgresStore::connect(&missing).await);
    assert!(m.contains("no_such_database_here"), "{m}");
    assert!(m.contains("does not exist"), "{m}");
}

#[tokio::test]
async fn a_schema_from_a_newer_version_is_refused() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    store.close().await;
    // Pretend a newer ironic-rs migrated this database.
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, '\\x00'::bytea, 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let m = backend_message(PostgresStore::connect(db.url()).await);
    assert!(m.contains("9999") && m.contains("newer version"), "{m}");
}

#[tokio::test]
async fn debug_hides_the_password_and_the_schema_is_migrated_once() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains(db.name()), "{shown}");
    assert!(!shown.contains("ironic_test:ironic_test"), "{shown}");
    // Several processes start at once: migrations run under an advisory lock.
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(db.url()),
        PostgresStore::connect(db.url()),
        PostgresStore::connect(db.url())
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    // What one writes, the others read; one lock for all.
    let node = Node::new("fake-hardware");
    a.create_node(&node).await.unwrap();
    assert_eq!(b.get_node(&node.uuid.into()).await.unwrap(), node);
    b.reserve_node(node.uuid, "conductor-b").await.unwrap();
    match c.reserve_node(node.uuid, "conductor-c").await {
        Err(StoreError::Locked { holder, .. }) => assert_eq!(holder, "conductor-b"),
        other => panic!("a second conductor took the lock: {other:?}"),
    }
    for s in [&store, &a, &b, &c] {
        s.close().await;
    }
}

/// The store's own connections heal: after the server ends them (as a restart
/// would), a statement fails at most once per connection and the next ones run
/// on new connections; a connection idle for a while is checked before use, so
/// after a pause nothing fails at all.
#[tokio::test]
async fn connections_cut_by_the_server_are_opened_again() {
    use sqlx::Connection;
    let db = TestDatabase::create().await;
    let mut options = ironic_core::store::PostgresOptions::default();
    options.max_connections = 2;
    let store = PostgresStore::connect_with(db.url(), options)
        .await
        .unwrap();
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let cut = async |admin: &mut sqlx::PgConnection| -> i64 {
        sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'ironic-rs' \
             AND pid <> pg_backend_pid()",
        )
        .fetch_one(admin)
        .await
        .unwrap()
    };
    assert!(
        cut(&mut admin).await >= 1,
        "the store's connections were found"
    );
    let mut failed = 0;
    loop {
        match store.get_node(&node.uuid.into()).await {
            Ok(got) => {
                assert_eq!(got.uuid, node.uuid);
                break;
            }
            Err(e) => {
                failed += 1;
                assert!(failed <= 2, "still failing after {failed} tries: {e}");
            }
        }
    }
    for _ in 0..10 {
        store.get_node(&node.uuid.into()).await.unwrap();
    }

    assert!(cut(&mut admin).await >= 1);
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    for _ in 0..10 {
        store
            .get_node(&node.uuid.into())
            .await
            .expect("an idle connection is checked and opened again before use");
    }
    store.close().await;
}
