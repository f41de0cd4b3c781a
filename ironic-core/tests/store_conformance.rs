//! Every check of the store conformance kit, on every store of ironic-core.

use ironic_core::store::conformance;
use ironic_core::store::{SqliteStore, Store};

/// A SQLite file in a fresh temporary directory (WAL, pooled connections).
async fn sqlite_file() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("ironic.sqlite"))
        .await
        .expect("open SQLite file");
    (store, dir)
}

/// One test per check and store, so a failure names both.
macro_rules! conformance_tests {
    ($($check:ident),+ $(,)?) => {
        /// The names listed here, to compare with the kit's own list.
        const LISTED: &[&str] = &[$(stringify!($check)),+];

        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (store, _dir) = super::sqlite_file().await;
                    super::conformance::$check(&store).await;
                }
            )+
        }

        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = ironic_core::store::MemoryStore::new();
                    super::conformance::$check(&store).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = super::conformance::TestDatabase::create().await;
                    let store = ironic_core::store::PostgresStore::connect(db.url())
                        .await
                        .expect("connect to the test database");
                    super::conformance::$check(&store).await;
                    store.close().await;
                }
            )+
        }

        mod sqlite_memory {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = super::SqliteStore::in_memory().await.expect("in-memory SQLite");
                    super::conformance::$check(&store).await;
                }
            )+
        }
    };
}

conformance_tests!(
    node_crud_roundtrip,
    names_are_unique,
    uuids_are_unique,
    instance_uuids_are_unique,
    mac_addresses_are_unique,
    reservation_is_compare_and_set,
    update_does_not_touch_reservation,
    update_and_release_saves_and_unlocks,
    clear_reservations_releases_only_that_host,
    concurrent_reservations_have_one_winner,
    concurrent_creates_have_one_winner,
    delete_node_cascades,
    children_need_their_node,
    list_filters,
    pagination_and_sorting,
    port_and_portgroup_crud,
    port_listing,
    deleting_a_portgroup_keeps_its_ports,
    chassis_allocation_template_crud,
    conductors_upsert_and_touch,
    offline_conductors_are_forgotten_only_unlocked,
    history_is_capped,
    bios_firmware_inventory_roundtrip,
    volume_connector_crud,
    volume_target_crud,
    runbook_crud,
    inspection_rule_crud,
);

#[test]
fn every_check_of_the_kit_is_run() {
    let kit: Vec<&str> = conformance::all()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        kit, LISTED,
        "add new conformance checks to conformance_tests!"
    );
}

/// The kit's promise that checks may share one store and run concurrently, on
/// PostgreSQL (several connections really at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_share_one_postgres_database_concurrently() {
    let db = conformance::TestDatabase::create().await;
    let store = ironic_core::store::PostgresStore::connect(db.url())
        .await
        .expect("connect to the test database");
    let shared: &dyn Store = &store;
    futures::future::join_all(
        conformance::all()
            .into_iter()
            .map(|(_, check)| check(shared)),
    )
    .await;
    store.close().await;
}

/// The kit's promise that checks may share one store and run concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_share_one_sqlite_file_concurrently() {
    let (store, _dir) = sqlite_file().await;
    let store: &dyn Store = &store;
    futures::future::join_all(
        conformance::all()
            .into_iter()
            .map(|(_, check)| check(store)),
    )
    .await;
}
