//! Power interface behaviours.

use super::{Outcome, Patience, Report};
use crate::driver::{PowerInterface, Task};
use crate::error::ErrorKind;
use crate::states::{PowerAction, PowerState};

async fn act(power: &dyn PowerInterface, task: &Task, action: PowerAction, p: &Patience) {
    let r = match action {
        PowerAction::Reboot => power.reboot(task, Some(p.timeout)).await,
        a => power.set_power_state(task, a, Some(p.timeout)).await,
    };
    if let Err(e) = r {
        panic!("{action} failed: {e}");
    }
}

async fn reaches(
    power: &dyn PowerInterface,
    task: &Task,
    want: PowerState,
    what: &str,
    p: &Patience,
) {
    p.poll(
        &format!("{what}: power state {want}"),
        || power.get_power_state(task),
        |s| *s == want,
    )
    .await;
}

/// Power on, read `power on`; power off, read `power off` (polling).
pub async fn power_on_then_off_reaches_states(power: &dyn PowerInterface, task: &Task) -> Outcome {
    power_on_then_off_reaches_states_within(power, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn power_on_then_off_reaches_states_within(
    power: &dyn PowerInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    act(power, task, PowerAction::PowerOn, p).await;
    reaches(power, task, PowerState::On, "after power on", p).await;
    act(power, task, PowerAction::PowerOff, p).await;
    reaches(power, task, PowerState::Off, "after power off", p).await;
    Outcome::Passed
}

/// Asking for the state the node is already in succeeds (twice on, twice off).
pub async fn power_is_idempotent(power: &dyn PowerInterface, task: &Task) -> Outcome {
    power_is_idempotent_within(power, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn power_is_idempotent_within(
    power: &dyn PowerInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    for (action, state) in [
        (PowerAction::PowerOn, PowerState::On),
        (PowerAction::PowerOff, PowerState::Off),
    ] {
        act(power, task, action, p).await;
        reaches(power, task, state, "first request", p).await;
        act(power, task, action, p).await;
        reaches(power, task, state, "repeated request", p).await;
    }
    Outcome::Passed
}

/// A hard reboot of a node that is off powers it on.
pub async fn reboot_powers_on_an_off_node(power: &dyn PowerInterface, task: &Task) -> Outcome {
    reboot_powers_on_an_off_node_within(power, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn reboot_powers_on_an_off_node_within(
    power: &dyn PowerInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    act(power, task, PowerAction::PowerOff, p).await;
    reaches(power, task, PowerState::Off, "before reboot", p).await;
    act(power, task, PowerAction::Reboot, p).await;
    reaches(
        power,
        task,
        PowerState::On,
        "after rebooting an off node",
        p,
    )
    .await;
    act(power, task, PowerAction::PowerOff, p).await;
    reaches(power, task, PowerState::Off, "after power off", p).await;
    Outcome::Passed
}

/// A hard reboot of a node that is on leaves it on.
pub async fn reboot_keeps_an_on_node_on(power: &dyn PowerInterface, task: &Task) -> Outcome {
    reboot_keeps_an_on_node_on_within(power, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn reboot_keeps_an_on_node_on_within(
    power: &dyn PowerInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    act(power, task, PowerAction::PowerOn, p).await;
    reaches(power, task, PowerState::On, "before reboot", p).await;
    act(power, task, PowerAction::Reboot, p).await;
    reaches(power, task, PowerState::On, "after rebooting an on node", p).await;
    act(power, task, PowerAction::PowerOff, p).await;
    reaches(power, task, PowerState::Off, "after power off", p).await;
    Outcome::Passed
}

/// If the driver lists `soft power off`: from on, a soft power off ends off.
/// (On real hardware the OS must honour ACPI; emulators do.)
pub async fn soft_power_off_if_supported(power: &dyn PowerInterface, task: &Task) -> Outcome {
    soft_power_off_if_supported_within(power, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn soft_power_off_if_supported_within(
    power: &dyn PowerInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    if !power
        .get_supported_power_states(task)
        .contains(&PowerAction::SoftPowerOff)
    {
        return Outcome::na("soft power off is not in get_supported_power_states");
    }
    act(power, task, PowerAction::PowerOn, p).await;
    reaches(power, task, PowerState::On, "before soft power off", p).await;
    act(power, task, PowerAction::SoftPowerOff, p).await;
    reaches(power, task, PowerState::Off, "after soft power off", p).await;
    Outcome::Passed
}

/// If the driver lists `soft rebooting`: a soft reboot of an on node ends on.
pub async fn soft_reboot_if_supported(power: &dyn PowerInterface, task: &Task) -> Outcome {
    soft_reboot_if_supported_within(power, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn soft_reboot_if_supported_within(
    power: &dyn PowerInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    if !power
        .get_supported_power_states(task)
        .contains(&PowerAction::SoftReboot)
    {
        return Outcome::na("soft rebooting is not in get_supported_power_states");
    }
    act(power, task, PowerAction::PowerOn, p).await;
    reaches(power, task, PowerState::On, "before soft reboot", p).await;
    act(power, task, PowerAction::SoftReboot, p).await;
    reaches(power, task, PowerState::On, "after soft reboot", p).await;
    act(power, task, PowerAction::PowerOff, p).await;
    reaches(power, task, PowerState::Off, "after power off", p).await;
    Outcome::Passed
}

/// An action the driver does not list in `get_supported_power_states` is refused
/// with an unsupported or invalid-parameter error, and the power state is unchanged.
pub async fn unsupported_power_action_is_refused(
    power: &dyn PowerInterface,
    task: &Task,
) -> Outcome {
    let supported = power.get_supported_power_states(task);
    let Some(action) = PowerAction::ALL
        .iter()
        .copied()
        .find(|a| !supported.contains(a))
    else {
        return Outcome::na("every power action is supported");
    };
    let before = power.get_power_state(task).await.ok();
    let r = match action {
        PowerAction::Reboot => power.reboot(task, None).await,
        a => power.set_power_state(task, a, None).await,
    };
    let e = r.err().unwrap_or_else(|| {
        panic!("{action} is not in get_supported_power_states but set_power_state accepted it")
    });
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unsupported | ErrorKind::InvalidParameter
        ),
        "an unsupported {action} failed with kind {} instead of unsupported/invalid parameter: {e}",
        e.kind()
    );
    let after = power.get_power_state(task).await.ok();
    assert_eq!(before, after, "refusing {action} changed the power state");
    Outcome::Passed
}

/// The supported actions include power on, power off and reboot, and reading the
/// power state twice in a row gives the same answer.
pub async fn supported_states_and_reads_are_consistent(
    power: &dyn PowerInterface,
    task: &Task,
) -> Outcome {
    let s = power.get_supported_power_states(task);
    for a in [
        PowerAction::PowerOn,
        PowerAction::PowerOff,
        PowerAction::Reboot,
    ] {
        assert!(
            s.contains(&a),
            "get_supported_power_states lacks {a}: {s:?}"
        );
    }
    let a = power
        .get_power_state(task)
        .await
        .unwrap_or_else(|e| panic!("get_power_state failed: {e}"));
    let b = power
        .get_power_state(task)
        .await
        .unwrap_or_else(|e| panic!("get_power_state failed: {e}"));
    assert_eq!(a, b, "two reads in a row disagree");
    assert_ne!(a, PowerState::Error, "the BMC reports an error power state");
    Outcome::Passed
}

/// Every power behaviour, selected by what the driver declares. Leaves the node off.
pub async fn run_power_suite(power: &dyn PowerInterface, task: &Task, p: &Patience) -> Report {
    let mut r = Report::default();
    r.add(
        "supported_states_and_reads_are_consistent",
        supported_states_and_reads_are_consistent(power, task).await,
    );
    r.add(
        "power_on_then_off_reaches_states",
        power_on_then_off_reaches_states_within(power, task, p).await,
    );
    r.add(
        "power_is_idempotent",
        power_is_idempotent_within(power, task, p).await,
    );
    r.add(
        "reboot_powers_on_an_off_node",
        reboot_powers_on_an_off_node_within(power, task, p).await,
    );
    r.add(
        "reboot_keeps_an_on_node_on",
        reboot_keeps_an_on_node_on_within(power, task, p).await,
    );
    r.add(
        "soft_power_off_if_supported",
        soft_power_off_if_supported_within(power, task, p).await,
    );
    r.add(
        "soft_reboot_if_supported",
        soft_reboot_if_supported_within(power, task, p).await,
    );
    r.add(
        "unsupported_power_action_is_refused",
        unsupported_power_action_is_refused(power, task).await,
    );
    r.add(
        "validate_reports_missing_keys",
        super::validate_reports_missing_keys(power, task),
    );
    r
}
