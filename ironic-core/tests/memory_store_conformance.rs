//! The whole store conformance kit on [`MemoryStore`], one test per check.

use ironic_core::store::{MemoryStore, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_every_check_on_a_fresh_store() {
    for (name, check) in conformance::all() {
        let store = MemoryStore::new();
        eprintln!("store conformance on MemoryStore: {name}");
        check(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_every_check_on_one_shared_store() {
    let store = MemoryStore::new();
    for (name, check) in conformance::all() {
        eprintln!("store conformance on a shared MemoryStore: {name}");
        check(&store).await;
    }
}
