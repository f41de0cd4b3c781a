//! SQLite specifics: opening, pragmas, damaged files, schema versions. The
//! behaviour of the store itself is covered by the conformance kit.

use super::*;

async fn pragma_text(store: &SqliteStore, name: &str) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
        .fetch_one(&mut *store.r().await.unwrap())
        .await
        .unwrap_or_else(|e| panic!("PRAGMA {name}: {e}"))
}

async fn pragma_int(store: &SqliteStore, name: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
        .fetch_one(&mut *store.r().await.unwrap())
        .await
        .unwrap_or_else(|e| panic!("PRAGMA {name}: {e}"))
}

fn backend_message<T: fmt::Debug>(r: StoreResult<T>) -> String {
    match r {
        Err(StoreError::Backend(m)) => m,
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn open_creates_the_directory_and_sets_wal_foreign_keys_and_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(path.is_file());
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(pragma_text(&store, "journal_mode").await, "wal");
    assert_eq!(pragma_int(&store, "foreign_keys").await, 1);
    assert_eq!(pragma_int(&store, "busy_timeout").await, 30_000);
    assert_eq!(pragma_int(&store, "synchronous").await, 1, "NORMAL");
    assert!(format!("{store:?}").contains("ironic.sqlite"));
    store.close().await;
}

#[tokio::test]
async fn in_memory_keeps_its_data_while_the_store_lives() {
    let store = SqliteStore::in_memory().await.unwrap();
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.unwrap();
    // More than one call, so more than one use of the single connection.
    for _ in 0..3 {
        assert_eq!(store.get_node(&node.uuid.into()).await.unwrap(), node);
    }
    assert_eq!(store.path(), None);
    assert_eq!(format!("{store:?}"), "SqliteStore(:memory:)");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not a database, just some text that is long enough. ".repeat(100),
    )
    .unwrap();
    let msg = backend_message(SqliteStore::open(&path).await);
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");
    // Nothing was written over it.
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("this is not a database")
    );
}

#[tokio::test]
async fn a_damaged_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_node(&Node::new("fake-hardware"))
        .await
        .unwrap();
    store.close().await;
    // Keep the 100-byte header, trample the rest of the first page (the schema).
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[100..4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let msg = backend_message(SqliteStore::open(&path).await);
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("malformed") || msg.contains("not a database"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_unusable_directory_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the parent directory should be: fails even as root.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let path = blocker.join("ironic.sqlite");
    let msg = backend_message(SqliteStore::open(&path).await);
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("cannot create directory"), "{msg}");

    let msg = backend_message(SqliteStore::open(dir.path()).await);
    assert!(msg.contains("directory"), "{msg}");
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut *store.w().await.unwrap())
    .await
    .unwrap();
    store.close().await;
    let msg = backend_message(SqliteStore::open(&path).await);
    assert!(msg.contains("9999") && msg.contains("newer"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[tokio::test]
async fn a_damaged_record_is_reported_not_panicked() {
    let store = SqliteStore::in_memory().await.unwrap();
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.unwrap();
    sqlx::query("UPDATE nodes SET data = '{\"uuid\": \"' || uuid || '\", \"driver\": 7}'")
        .execute(&mut *store.w().await.unwrap())
        .await
        .unwrap();
    let msg = backend_message(store.get_node(&node.uuid.into()).await);
    assert!(
        msg.contains(&node.uuid.to_string()) && msg.contains("cannot be read"),
        "{msg}"
    );
    let msg = backend_message(store.list_nodes(&NodeQuery::default()).await);
    assert!(msg.contains(&node.uuid.to_string()), "{msg}");
}

#[tokio::test]
async fn everything_committed_survives_dropping_the_store_without_closing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut node = Node::new("fake-hardware");
    node.name = Some("survivor".into());
    store.create_node(&node).await.unwrap();
    let port = Port::new(node.uuid, "52:54:00:de:ad:01".parse().unwrap());
    store.create_port(&port).await.unwrap();
    let locked = store.reserve_node(node.uuid, "conductor-1").await.unwrap();
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened
            .get_node(&Ident::Name("survivor".into()))
            .await
            .unwrap(),
        locked
    );
    assert_eq!(
        reopened.get_port_by_address(port.address).await.unwrap(),
        port
    );
    let msg = match reopened
        .create_port(&Port::new(node.uuid, port.address))
        .await
    {
        Err(StoreError::Duplicate(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        msg,
        "A port with MAC address 52:54:00:de:ad:01 already exists."
    );
}

/// Group commit: every write that returned had its commit covered by a WAL flush
/// that began after it (the flushed commit number reaches every commit made),
/// concurrent writes share commits, and the data is there for a store opened
/// afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_return_only_once_a_flush_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = Node::new("fake-hardware");
            n.name = Some(format!("gc-{i}"));
            store.create_node(&n).await.unwrap();
            // Right after this write returned, a flush has finished.
            assert!(
                *store.writes.flushed.lock().await >= 1,
                "no flush after a write"
            );
            n.uuid
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let commits = store
        .writes
        .commits
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=48).contains(&commits),
        "{commits} commits for 48 writes"
    );
    assert_eq!(*store.writes.flushed.lock().await, commits);
    assert!(path.with_file_name("ironic.sqlite-wal").exists());
    // A failed write commits nothing.
    let mut dup = Node::new("fake-hardware");
    dup.name = Some("gc-0".into());
    assert!(store.create_node(&dup).await.is_err());
    assert_eq!(
        store
            .writes
            .commits
            .load(std::sync::atomic::Ordering::SeqCst),
        commits
    );
    store.close().await;
    let again = SqliteStore::open(&path).await.unwrap();
    for id in ids {
        again.get_node(&id.into()).await.unwrap();
    }
}

/// Writes that share a batch fail alone: a duplicate name, or a history event
/// of a missing node (two statements, under a savepoint), gets its own error and
/// leaves no trace, and every other write of the batch is committed and durable;
/// the writes really did share commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_in_a_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut first = Node::new("fake-hardware");
    first.name = Some("taken".into());
    store.create_node(&first).await.unwrap();
    let before = store
        .writes
        .commits
        .load(std::sync::atomic::Ordering::SeqCst);
    let history = |node: NodeId, i: usize| HistoryEvent {
        uuid: crate::ids::HistoryId::new(),
        node_uuid: node,
        event: format!("event {i}"),
        event_type: "provisioning".into(),
        severity: crate::model::Severity::Info,
        user: None,
        conductor: None,
        project: None,
        provision_state: None,
        target_provision_state: None,
        duration_seconds: None,
        created_at: crate::model::now(),
    };
    let mut tasks = Vec::new();
    for i in 0..120 {
        let store = store.clone();
        let history = history(
            if i % 5 == 4 {
                NodeId::new()
            } else {
                first.uuid
            },
            i,
        );
        tasks.push(tokio::spawn(async move {
            match i % 5 {
                // a duplicate name: one statement that fails
                0 => {
                    let mut n = Node::new("fake-hardware");
                    n.name = Some("taken".into());
                    (i, None, store.create_node(&n).await.err())
                }
                // history: two statements under a savepoint, of a missing node at 4
                3 | 4 => (i, None, store.add_history(&history, 1000).await.err()),
                _ => {
                    let mut n = Node::new("fake-hardware");
                    n.name = Some(format!("n-{i}"));
                    let r = store.create_node(&n).await.err();
                    (i, Some(n.uuid), r)
                }
            }
        }));
    }
    let mut made = Vec::new();
    for t in tasks {
        let (i, id, err) = t.await.unwrap();
        match i % 5 {
            0 => assert!(
                matches!(err, Some(StoreError::Duplicate(_))),
                "{i}: {err:?}"
            ),
            4 => assert!(
                matches!(err, Some(StoreError::NotFound { .. })),
                "{i}: {err:?}"
            ),
            _ => assert!(err.is_none(), "{i}: {err:?}"),
        }
        made.extend(id);
    }
    let commits = store
        .writes
        .commits
        .load(std::sync::atomic::Ordering::SeqCst)
        - before;
    assert!(
        commits < 72,
        "{commits} commits for 72 successful writes: no batching"
    );
    store.close().await;
    let again = SqliteStore::open(&path).await.unwrap();
    for id in &made {
        again.get_node(&(*id).into()).await.unwrap();
    }
    assert_eq!(
        again.count_nodes(&Default::default()).await.unwrap(),
        1 + made.len()
    );
    assert_eq!(again.list_history(first.uuid).await.unwrap().len(), 24);
}

/// A write cancelled at any point (its future dropped while it waits, runs, or
/// waits for its batch's commit) takes nothing down: the writes beside it
/// return, are durable, and the store keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_leaves_the_batch_and_the_store_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironic.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.unwrap();
    for round in 0..20u64 {
        let mut tasks = Vec::new();
        for i in 0..16u64 {
            let store = store.clone();
            let mut n = Node::new("fake-hardware");
            n.name = Some(format!("r{round}-{i}"));
            let event = HistoryEvent {
                uuid: crate::ids::HistoryId::new(),
                node_uuid: node.uuid,
                event: "cancelled maybe".into(),
                event_type: "provisioning".into(),
                severity: crate::model::Severity::Info,
                user: None,
                conductor: None,
                project: None,
                provision_state: None,
                target_provision_state: None,
                duration_seconds: None,
                created_at: crate::model::now(),
            };
            tasks.push(tokio::spawn(async move {
                if i % 4 == 0 {
                    // Cancelled after a varying number of polls.
                    let w = std::pin::pin!(store.add_history(&event, 1000));
                    let mut w = w;
                    for _ in 0..(round % 7) {
                        if futures::poll!(w.as_mut()).is_ready() {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    None
                } else {
                    store.create_node(&n).await.unwrap();
                    Some(n.uuid)
                }
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        // The store still takes writes and reads them back.
        let mut last = Node::new("fake-hardware");
        last.name = Some(format!("after-{round}"));
        store.create_node(&last).await.unwrap();
        for id in ids.iter().chain([&last.uuid]) {
            store.get_node(&(*id).into()).await.unwrap();
        }
    }
    store.close().await;
    let again = SqliteStore::open(&path).await.unwrap();
    // 1 + 20 rounds of (12 + 1) nodes, all durable.
    assert_eq!(
        again.count_nodes(&Default::default()).await.unwrap(),
        1 + 20 * 13
    );
}

/// The row's columns as stored, for comparing with `Columns::of`.
async fn stored_columns(store: &SqliteStore, id: NodeId) -> Vec<String> {
    let cols = nodes::COLUMNS
        .iter()
        .map(|c| format!("quote({c})"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let row: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {cols} FROM nodes WHERE uuid = ?"
    )))
    .bind(id.to_string())
    .fetch_one(&mut *store.r().await.unwrap())
    .await
    .unwrap();
    row.split('|').map(str::to_owned).collect()
}

/// A locked node's update writes only the columns that changed, and the row ends
/// up as a full update would leave it, also when another process changed a
/// column in between (the update then falls back to writing every column).
#[tokio::test]
async fn an_update_of_a_locked_node_writes_what_changed_and_never_half_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ironic.sqlite"))
        .await
        .unwrap();
    let mut other = Node::new("fake-hardware");
    other.name = Some("other".into());
    store.create_node(&other).await.unwrap();
    let mut node = Node::new("fake-hardware");
    node.name = Some("n1".into());
    store.create_node(&node).await.unwrap();
    let full = stored_columns(&store, node.uuid).await;

    let mut node = store.reserve_node(node.uuid, "c1").await.unwrap();
    assert!(store.locked_rows().contains_key(&node.uuid));
    node.provision_state = ProvisionState::Manageable;
    node.updated_at = Some(now());
    node.extra.insert("k".into(), serde_json::json!("v"));
    store.update_node(&node).await.unwrap();
    let got = store.get_node(&node.uuid.into()).await.unwrap();
    assert_eq!(got, node);
    let mut q = NodeQuery::default();
    q.filter.provision_state = Some(vec![ProvisionState::Manageable]);
    let listed: Vec<_> = store
        .list_nodes(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.uuid)
        .collect();
    assert_eq!(listed, vec![node.uuid]);
    let cols = stored_columns(&store, node.uuid).await;
    assert_ne!(cols, full);

    // Another process renames the node behind this one's back.
    sqlx::query("UPDATE nodes SET name = 'renamed', owner = 'x' WHERE uuid = ?")
        .bind(node.uuid.to_string())
        .execute(&mut *store.w().await.unwrap())
        .await
        .unwrap();
    node.provision_state = ProvisionState::Available;
    store.update_node(&node).await.unwrap();
    // Every column is the node's again, not only the one that changed here.
    let fresh = SqliteStore::in_memory().await.unwrap();
    fresh.create_node(&node).await.unwrap();
    assert_eq!(
        stored_columns(&store, node.uuid).await,
        stored_columns(&fresh, node.uuid).await
    );

    // A name taken by another node is refused in the partial update too.
    node.name = Some("other".into());
    assert!(matches!(
        store.update_node(&node).await,
        Err(StoreError::Duplicate(_))
    ));
    store.release_node(node.uuid, "c1").await.unwrap();
    assert!(store.locked_rows().is_empty());
    store.close().await;
}
