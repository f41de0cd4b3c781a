//! Boot interface behaviours. Each works on its own copy of the task, carried
//! across the calls of the behaviour (what a driver records in
//! `driver_internal_info` is seen by its next call, as the conductor would save it).

use super::{Outcome, Report};
use crate::driver::{BootInterface, RamdiskParams, Task};

fn ok(what: &str, r: Result<(), crate::error::DriverError>) {
    if let Err(e) = r {
        panic!("{what} failed: {e}");
    }
}

/// `prepare_ramdisk` twice in a row succeeds (then cleans up).
pub async fn prepare_ramdisk_is_idempotent(
    boot: &dyn BootInterface,
    task: &Task,
    params: &RamdiskParams,
) -> Outcome {
    let mut t = task.clone();
    ok(
        "prepare_ramdisk",
        boot.prepare_ramdisk(&mut t, params).await,
    );
    ok(
        "prepare_ramdisk (again)",
        boot.prepare_ramdisk(&mut t, params).await,
    );
    ok("clean_up_ramdisk", boot.clean_up_ramdisk(&mut t).await);
    Outcome::Passed
}

/// `clean_up_ramdisk` with nothing prepared succeeds, twice.
pub async fn clean_up_ramdisk_tolerates_nothing_to_undo(
    boot: &dyn BootInterface,
    task: &Task,
) -> Outcome {
    let mut t = task.clone();
    ok(
        "clean_up_ramdisk (nothing prepared)",
        boot.clean_up_ramdisk(&mut t).await,
    );
    ok(
        "clean_up_ramdisk (again)",
        boot.clean_up_ramdisk(&mut t).await,
    );
    Outcome::Passed
}

/// `prepare_instance` twice in a row succeeds (then cleans up).
pub async fn prepare_instance_is_idempotent(boot: &dyn BootInterface, task: &Task) -> Outcome {
    let mut t = task.clone();
    ok("prepare_instance", boot.prepare_instance(&mut t).await);
    ok(
        "prepare_instance (again)",
        boot.prepare_instance(&mut t).await,
    );
    ok("clean_up_instance", boot.clean_up_instance(&mut t).await);
    Outcome::Passed
}

/// `clean_up_instance` with nothing prepared succeeds, twice.
pub async fn clean_up_instance_tolerates_nothing_to_undo(
    boot: &dyn BootInterface,
    task: &Task,
) -> Outcome {
    let mut t = task.clone();
    ok(
        "clean_up_instance (nothing prepared)",
        boot.clean_up_instance(&mut t).await,
    );
    ok(
        "clean_up_instance (again)",
        boot.clean_up_instance(&mut t).await,
    );
    Outcome::Passed
}

/// The deploy cycle's order: ramdisk prepared and removed, instance prepared and
/// removed, each once.
pub async fn ramdisk_then_instance_cycle(
    boot: &dyn BootInterface,
    task: &Task,
    params: &RamdiskParams,
) -> Outcome {
    let mut t = task.clone();
    ok(
        "prepare_ramdisk",
        boot.prepare_ramdisk(&mut t, params).await,
    );
    ok("clean_up_ramdisk", boot.clean_up_ramdisk(&mut t).await);
    ok("prepare_instance", boot.prepare_instance(&mut t).await);
    ok("clean_up_instance", boot.clean_up_instance(&mut t).await);
    Outcome::Passed
}

/// `prepare_ramdisk` and `prepare_instance` do not power the node: its power
/// state reads the same before and after (through the task's power interface). Not
/// applicable without `task.driver`.
pub async fn prepare_does_not_power_the_node(
    boot: &dyn BootInterface,
    task: &Task,
    params: &RamdiskParams,
) -> Outcome {
    let Some(d) = task.driver.clone() else {
        return Outcome::na("the task carries no driver to read the power state with");
    };
    let mut t = task.clone();
    let read = |t: &Task| {
        let power = d.power.clone();
        let t = t.clone();
        async move {
            power
                .get_power_state(&t)
                .await
                .unwrap_or_else(|e| panic!("reading the power state failed: {e}"))
        }
    };
    let before = read(&t).await;
    ok(
        "prepare_ramdisk",
        boot.prepare_ramdisk(&mut t, params).await,
    );
    let after = read(&t).await;
    assert_eq!(
        before, after,
        "prepare_ramdisk changed the power state ({before} -> {after}): powering the node is the conductor's job"
    );
    ok("clean_up_ramdisk", boot.clean_up_ramdisk(&mut t).await);
    ok("prepare_instance", boot.prepare_instance(&mut t).await);
    let after = read(&t).await;
    assert_eq!(
        before, after,
        "prepare_instance changed the power state ({before} -> {after}): powering the node is the conductor's job"
    );
    ok("clean_up_instance", boot.clean_up_instance(&mut t).await);
    Outcome::Passed
}

/// Every boot behaviour; `validate_reports_missing_keys` included.
pub async fn run_boot_suite(
    boot: &dyn BootInterface,
    task: &Task,
    params: &RamdiskParams,
) -> Report {
    let mut r = Report::default();
    r.add(
        "prepare_ramdisk_is_idempotent",
        prepare_ramdisk_is_idempotent(boot, task, params).await,
    );
    r.add(
        "clean_up_ramdisk_tolerates_nothing_to_undo",
        clean_up_ramdisk_tolerates_nothing_to_undo(boot, task).await,
    );
    r.add(
        "prepare_instance_is_idempotent",
        prepare_instance_is_idempotent(boot, task).await,
    );
    r.add(
        "clean_up_instance_tolerates_nothing_to_undo",
        clean_up_instance_tolerates_nothing_to_undo(boot, task).await,
    );
    r.add(
        "ramdisk_then_instance_cycle",
        ramdisk_then_instance_cycle(boot, task, params).await,
    );
    r.add(
        "prepare_does_not_power_the_node",
        prepare_does_not_power_the_node(boot, task, params).await,
    );
    r.add(
        "validate_reports_missing_keys",
        super::validate_reports_missing_keys(boot, task),
    );
    r
}
