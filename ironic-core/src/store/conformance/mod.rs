//! The store conformance kit: one `pub async fn` per behaviour of the [`Store`]
//! contract, in the manner of object_store's `integration` module.
//!
//! Every store runs all of them: ironic-core runs them on the in-memory store and on
//! [`SqliteStore`] (`tests/store_conformance.rs`); a new backend
//! (PostgreSQL, ...) must pass them too. Each function panics with a message saying
//! which rule was broken.
//!
//! The functions only look at records they created (unique names, MAC addresses,
//! drivers and host names per call), so they may share one store and run
//! concurrently; they leave their records behind.
//!
//! ```no_run
//! # async fn f(store: &dyn ironic_core::store::Store) {
//! for (name, check) in ironic_core::store::conformance::all() {
//!     println!("store conformance: {name}");
//!     check(store).await;
//! }
//! # }
//! ```
//!
//! Behaviours pinned here beyond the trait's own `# Contract`:
//! * `NotFound` for a missing record in every `get_*`/`update_*`/`delete_*`, for an
//!   unknown pagination marker, and for writing a port, port group, history event or
//!   per-node cache of a node (or port group) that does not exist.
//! * `Duplicate` messages use Ironic's wording and name the value
//!   (`A port with MAC address 52:54:00:de:ad:01 already exists.`).
//! * `release_node` by a host that does not hold the lock fails with `Locked` and
//!   changes nothing; releasing an unlocked node succeeds.
//! * Sorting follows Ironic's database order: by the column's stored value (states
//!   as their strings, `maintenance` false first), missing values first when
//!   ascending and last when descending, ties broken by creation order in the same
//!   direction; a marker continues strictly after the marker node.
//! * Deleting a port group keeps its ports, without the group.
//! * Re-registering a conductor keeps its `created_at`; `upsert_conductor` and
//!   `touch_conductor` set `updated_at` to the store's current time.
//! * History is kept in insertion order and capped by dropping the oldest.

mod listing;
mod nodes;
mod related;
#[cfg(feature = "postgres")]
mod test_database;
mod volume;

use std::future::Future;
use std::pin::Pin;

use chrono::TimeZone;
use serde_json::json;

use crate::states::PowerState;

use super::*;

pub use listing::{list_filters, pagination_and_sorting, port_listing};
pub use nodes::{
    clear_reservations_releases_only_that_host, concurrent_creates_have_one_winner,
    concurrent_reservations_have_one_winner, delete_node_cascades, instance_uuids_are_unique,
    names_are_unique, node_crud_roundtrip, reservation_is_compare_and_set,
    update_and_release_saves_and_unlocks, update_does_not_touch_reservation, uuids_are_unique,
};
pub use related::{
    bios_firmware_inventory_roundtrip, chassis_allocation_template_crud, children_need_their_node,
    conductors_upsert_and_touch, deleting_a_portgroup_keeps_its_ports, history_is_capped,
    mac_addresses_are_unique, offline_conductors_are_forgotten_only_unlocked,
    port_and_portgroup_crud,
};
#[cfg(feature = "postgres")]
pub use test_database::{DEFAULT_TEST_POSTGRES_URL, TestDatabase};
pub use volume::{inspection_rule_crud, runbook_crud, volume_connector_crud, volume_target_crud};

/// A conformance check, boxed so that [`all`] can list them.
pub type Check = for<'a> fn(&'a dyn Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! checks {
    ($($f:ident),+ $(,)?) => {
        /// Every check of the kit, with its name.
        pub fn all() -> Vec<(&'static str, Check)> {
            vec![$((stringify!($f), (|s| Box::pin($f(s))) as Check)),+]
        }
    };
}

checks!(
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

// ---- helpers ----

/// A value no other call uses: `prefix-1a2b3c4d5e6f`.
fn unique(prefix: &str) -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &u[..12])
}

/// A random locally administered unicast MAC address.
fn random_mac() -> MacAddress {
    let r: [u8; 5] = rand::random();
    MacAddress([0x02, r[0], r[1], r[2], r[3], r[4]])
}

/// A fixed instant plus `secs` seconds and `nanos` nanoseconds (exercises full precision).
fn at(secs: i64, nanos: u32) -> Timestamp {
    chrono::Utc
        .timestamp_opt(1_700_000_000 + secs, nanos)
        .single()
        .expect("valid timestamp")
}

/// A node with every kind of field set (but no reservation).
fn rich_node(tag: &str) -> Node {
    let mut n = Node::new("fake-hardware");
    n.name = Some(unique(tag));
    n.driver_info.insert("ipmi_address", "192.0.2.10");
    n.driver_info.insert("ipmi_password", "s3cr3t");
    n.driver_info.insert("ipmi_port", 623);
    n.set_internal("agent_url", "http://192.0.2.10:9999");
    n.set_internal(
        "clean_steps",
        json!([{"interface": "deploy", "step": "erase_devices", "priority": 10}]),
    );
    n.extra.insert("rack".into(), json!("r1"));
    n.extra.insert(
        "nested".into(),
        json!({"a": [1, 2.5, null, true], "b": {"c": "d"}}),
    );
    n.instance_info.insert(
        "image_source".into(),
        json!("http://example.invalid/img.qcow2"),
    );
    n.properties.insert("cpus".into(), json!(8));
    n.properties.insert("memory_mb".into(), json!(16384));
    n.properties
        .insert("capabilities".into(), json!("boot_mode:uefi"));
    n.power_state = Some(PowerState::Off);
    n.provision_state = ProvisionState::Enroll;
    n.provision_updated_at = Some(at(10, 123_456_789));
    n.last_error = Some("previous failure: \"quoted\" and ünïcode".into());
    n.resource_class = Some("baremetal-large".into());
    n.traits = vec!["CUSTOM_GPU".into(), "HW_CPU_X86_VMX".into()];
    n.conductor_group = "group-a".into();
    n.owner = Some("project-a".into());
    n.lessee = Some("project-b".into());
    n.description = Some("conformance node".into());
    n.network_data.insert("links".into(), json!([]));
    n.raid_config.insert("logical_disks".into(), json!([]));
    n.boot_mode = Some("uefi".into());
    n.secure_boot = Some(false);
    n.health = Some("Warning".into());
    n.automated_clean = Some(true);
    n.interfaces.set(crate::model::InterfaceType::Power, "fake");
    n.interfaces
        .set(crate::model::InterfaceType::Deploy, "fake");
    n.created_at = at(0, 1);
    n.updated_at = Some(at(20, 999_999_999));
    n
}

/// A minimal node with a given driver (used to scope listings).
fn node_with_driver(driver: &str) -> Node {
    Node::new(driver)
}

fn is_not_found<T: std::fmt::Debug>(r: &StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

#[track_caller]
fn expect_not_found<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) {
    assert!(is_not_found(&r), "{what}: expected NotFound, got {r:?}");
}

/// The message of a `Duplicate`, or a panic saying what came instead.
#[track_caller]
fn expect_duplicate<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) -> String {
    match r {
        Err(StoreError::Duplicate(m)) => m,
        other => panic!("{what}: expected Duplicate, got {other:?}"),
    }
}

/// The holder named by a `Locked`, or a panic.
#[track_caller]
fn expect_locked<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) -> String {
    match r {
        Err(StoreError::Locked { holder, .. }) => holder,
        other => panic!("{what}: expected Locked, got {other:?}"),
    }
}
