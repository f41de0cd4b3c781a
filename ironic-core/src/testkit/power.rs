//! Power interface behaviours: one per rule of
//! [`PowerInterface`](crate::driver::PowerInterface)'s `# Contract`.

use std::time::{Duration, Instant};

use super::capture::Transcript;
use super::{BmcFixture, Outcome, Patience, Report, closed_address, silent_address};
use crate::driver::{PowerInterface, Task};
use crate::error::{DriverError, ErrorKind};
use crate::states::{PowerAction, PowerState};

async fn call(
    power: &dyn PowerInterface,
    task: &Task,
    action: PowerAction,
    timeout: Option<Duration>,
) -> Result<(), DriverError> {
    match action {
        PowerAction::Reboot => power.reboot(task, timeout).await,
        a => power.set_power_state(task, a, timeout).await,
    }
}

async fn act(power: &dyn PowerInterface, f: &BmcFixture, action: PowerAction) {
    if let Err(e) = call(power, &f.task, action, Some(f.patience.timeout)).await {
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

/// Bring the node to `state` (acting, then polling), whatever it is now.
async fn settle(power: &dyn PowerInterface, f: &BmcFixture, state: PowerState, what: &str) {
    let action = match state {
        PowerState::On => PowerAction::PowerOn,
        _ => PowerAction::PowerOff,
    };
    act(power, f, action).await;
    reaches(power, &f.task, state, what, &f.patience).await;
}

/// The first successful read of the power state (retryable read errors are read
/// again, within the patience; nothing else is waited for).
async fn first_read(power: &dyn PowerInterface, task: &Task, p: &Patience) -> PowerState {
    let deadline = Instant::now() + p.timeout;
    loop {
        match power.get_power_state(task).await {
            Ok(s) => return s,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(p.interval).await;
            }
            Err(e) => panic!("reading the power state failed: {e}"),
        }
    }
}

/// Power on, read `power on`; power off, read `power off` (polling).
pub async fn power_on_then_off_reaches_states(
    power: &dyn PowerInterface,
    f: &BmcFixture,
) -> Outcome {
    act(power, f, PowerAction::PowerOn).await;
    reaches(
        power,
        &f.task,
        PowerState::On,
        "after power on",
        &f.patience,
    )
    .await;
    act(power, f, PowerAction::PowerOff).await;
    reaches(
        power,
        &f.task,
        PowerState::Off,
        "after power off",
        &f.patience,
    )
    .await;
    Outcome::Passed
}

/// The central rule: `set_power_state` (and `reboot`) return once the node has
/// *reached* the state, so the first read after they return shows it, without
/// polling. Checked for power on from off, power off from on, and reboot from off.
/// A driver that sends the command and returns at once fails here as soon as its
/// BMC takes a moment to act.
pub async fn set_power_state_returns_once_reached(
    power: &dyn PowerInterface,
    f: &BmcFixture,
) -> Outcome {
    for (from, action) in [
        (PowerState::Off, PowerAction::PowerOn),
        (PowerState::On, PowerAction::PowerOff),
        (PowerState::Off, PowerAction::Reboot),
    ] {
        settle(power, f, from, &format!("before {action}")).await;
        act(power, f, action).await;
        let want = action.resulting_state();
        let got = first_read(power, &f.task, &f.patience).await;
        assert_eq!(
            got, want,
            "{action} returned before the node reached {want}: the first read after it \
             returned says {got} (set_power_state/reboot must wait until the state is reached)"
        );
    }
    settle(power, f, PowerState::Off, "after the checks").await;
    Outcome::Passed
}

/// Asking for the state the node is already in succeeds (twice on, twice off).
pub async fn power_is_idempotent(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    for (action, state) in [
        (PowerAction::PowerOn, PowerState::On),
        (PowerAction::PowerOff, PowerState::Off),
    ] {
        act(power, f, action).await;
        reaches(power, &f.task, state, "first request", &f.patience).await;
        act(power, f, action).await;
        reaches(power, &f.task, state, "repeated request", &f.patience).await;
    }
    Outcome::Passed
}

/// A hard reboot of a node that is off powers it on.
pub async fn reboot_powers_on_an_off_node(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    settle(power, f, PowerState::Off, "before reboot").await;
    act(power, f, PowerAction::Reboot).await;
    reaches(
        power,
        &f.task,
        PowerState::On,
        "after rebooting an off node",
        &f.patience,
    )
    .await;
    settle(power, f, PowerState::Off, "after power off").await;
    Outcome::Passed
}

/// A hard reboot of a node that is on leaves it on.
pub async fn reboot_keeps_an_on_node_on(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    settle(power, f, PowerState::On, "before reboot").await;
    act(power, f, PowerAction::Reboot).await;
    reaches(
        power,
        &f.task,
        PowerState::On,
        "after rebooting an on node",
        &f.patience,
    )
    .await;
    settle(power, f, PowerState::Off, "after power off").await;
    Outcome::Passed
}

/// If the driver lists `soft power off`: from on, a soft power off ends off.
/// (On real hardware the OS must honour ACPI; emulators do.)
pub async fn soft_power_off_if_supported(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    if !power
        .get_supported_power_states(&f.task)
        .contains(&PowerAction::SoftPowerOff)
    {
        return Outcome::na("soft power off is not in get_supported_power_states");
    }
    settle(power, f, PowerState::On, "before soft power off").await;
    act(power, f, PowerAction::SoftPowerOff).await;
    reaches(
        power,
        &f.task,
        PowerState::Off,
        "after soft power off",
        &f.patience,
    )
    .await;
    Outcome::Passed
}

/// If the driver lists `soft rebooting`: a soft reboot of an on node ends on.
pub async fn soft_reboot_if_supported(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    if !power
        .get_supported_power_states(&f.task)
        .contains(&PowerAction::SoftReboot)
    {
        return Outcome::na("soft rebooting is not in get_supported_power_states");
    }
    settle(power, f, PowerState::On, "before soft reboot").await;
    act(power, f, PowerAction::SoftReboot).await;
    reaches(
        power,
        &f.task,
        PowerState::On,
        "after soft reboot",
        &f.patience,
    )
    .await;
    settle(power, f, PowerState::Off, "after power off").await;
    Outcome::Passed
}

/// An action the driver does not list in `get_supported_power_states` is refused
/// with an unsupported or invalid-parameter error, not retryable, and the power
/// state is unchanged.
pub async fn unsupported_power_action_is_refused(
    power: &dyn PowerInterface,
    f: &BmcFixture,
) -> Outcome {
    let supported = power.get_supported_power_states(&f.task);
    let Some(action) = PowerAction::ALL
        .iter()
        .copied()
        .find(|a| !supported.contains(a))
    else {
        return Outcome::na("every power action is supported");
    };
    let before = power.get_power_state(&f.task).await.ok();
    let e = call(power, &f.task, action, None)
        .await
        .err()
        .unwrap_or_else(|| {
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
    assert!(
        !e.is_retryable(),
        "refusing an unsupported {action} is marked retryable: {e}"
    );
    let after = power.get_power_state(&f.task).await.ok();
    assert_eq!(before, after, "refusing {action} changed the power state");
    Outcome::Passed
}

/// The supported actions include power on, power off and reboot, and reading the
/// power state twice in a row gives the same answer.
pub async fn supported_states_and_reads_are_consistent(
    power: &dyn PowerInterface,
    f: &BmcFixture,
) -> Outcome {
    let s = power.get_supported_power_states(&f.task);
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
    let a = first_read(power, &f.task, &f.patience).await;
    let b = first_read(power, &f.task, &f.patience).await;
    assert_eq!(a, b, "two reads in a row disagree");
    assert_ne!(a, PowerState::Error, "the BMC reports an error power state");
    Outcome::Passed
}

/// A power action on a stuck BMC (it accepts the command, the state never
/// changes) fails with a `Timeout` that is **not** retryable, and returns about
/// when its timeout passes (within twice the timeout plus 10 s). Power on and
/// reboot, from off. Needs [`BmcFixture::with_stall`].
pub async fn power_action_timeout_is_final(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    if f.stall.is_none() {
        return Outcome::na("the fixture cannot make the BMC stuck (BmcFixture::with_stall)");
    }
    settle(power, f, PowerState::Off, "before stalling the BMC").await;
    let t = f.action_timeout;
    let bound = t * 2 + Duration::from_secs(10);
    f.stall(true);
    let mut failure = None;
    for action in [PowerAction::PowerOn, PowerAction::Reboot] {
        let started = Instant::now();
        let r = tokio::time::timeout(bound, call(power, &f.task, action, Some(t))).await;
        let took = started.elapsed();
        let problem = match r {
            Err(_) => Some(format!(
                "{action} with a timeout of {t:?} on a stuck BMC did not return within {bound:?}: \
                 the driver ignores the timeout it is given"
            )),
            Ok(Ok(())) => Some(format!(
                "{action} on a stuck BMC succeeded after {took:?} although the node never \
                 reached {}",
                action.resulting_state()
            )),
            Ok(Err(e)) if e.kind() != ErrorKind::Timeout => Some(format!(
                "{action} on a stuck BMC failed with kind {} instead of timeout: {e}",
                e.kind()
            )),
            Ok(Err(e)) if e.is_retryable() => Some(format!(
                "{action} on a stuck BMC failed with a retryable timeout; a power action's \
                 timeout must not be retryable (the BMC may have acted on it): {e}"
            )),
            Ok(Err(_)) => None,
        };
        if problem.is_some() {
            failure = problem;
            break;
        }
    }
    f.stall(false);
    if let Some(p) = failure {
        panic!("{p}");
    }
    settle(power, f, PowerState::Off, "after freeing the BMC").await;
    Outcome::Passed
}

/// Wrong credentials: reading and acting fail with `Unauthenticated`, not
/// retryable, and the power state does not change. Needs
/// [`BmcFixture::with_password_key`].
pub async fn wrong_credentials_are_final(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    let Some(bad) = f.with_wrong_password() else {
        return Outcome::na("the fixture names no password key (BmcFixture::with_password_key)");
    };
    settle(power, f, PowerState::Off, "before using wrong credentials").await;
    let check = |what: &str, e: Option<DriverError>| {
        let e = e.unwrap_or_else(|| panic!("{what} with a wrong password succeeded"));
        assert_eq!(
            e.kind(),
            ErrorKind::Unauthenticated,
            "{what} with a wrong password failed with kind {} instead of unauthenticated: {e}",
            e.kind()
        );
        assert!(
            !e.is_retryable(),
            "{what} with a wrong password is marked retryable (retrying cannot fix credentials): {e}"
        );
    };
    check("get_power_state", power.get_power_state(&bad).await.err());
    check(
        "set_power_state(power on)",
        power
            .set_power_state(&bad, PowerAction::PowerOn, Some(f.patience.timeout))
            .await
            .err(),
    );
    check(
        "reboot",
        power.reboot(&bad, Some(f.patience.timeout)).await.err(),
    );
    let now = first_read(power, &f.task, &f.patience).await;
    assert_eq!(
        now,
        PowerState::Off,
        "a refused power action changed the power state"
    );
    Outcome::Passed
}

/// A BMC that cannot be reached (nothing listens) or never answers: reads and
/// actions fail with `Unreachable` or `Timeout` (an action's `Timeout` not
/// retryable), within the patience; no panic, no hang. Needs
/// [`BmcFixture::with_address`].
pub async fn unreachable_bmc_fails_cleanly(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    let closed = closed_address();
    let (silent, _guard) = silent_address();
    for (label, addr) in [("closed", closed), ("silent", silent)] {
        let Some(t) = f.pointed_at(addr) else {
            return Outcome::na(
                "the fixture cannot point the driver elsewhere (BmcFixture::with_address)",
            );
        };
        let read = tokio::time::timeout(f.patience.timeout, power.get_power_state(&t))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "get_power_state on a {label} BMC at {addr} did not return within {:?}",
                    f.patience.timeout
                )
            });
        let e = read
            .err()
            .unwrap_or_else(|| panic!("get_power_state on a {label} BMC at {addr} succeeded"));
        assert!(
            matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Timeout),
            "get_power_state on a {label} BMC failed with kind {} instead of unreachable/timeout: {e}",
            e.kind()
        );
        let act = tokio::time::timeout(
            f.patience.timeout,
            power.set_power_state(&t, PowerAction::PowerOn, Some(f.action_timeout)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "power on of a {label} BMC at {addr} did not return within {:?}",
                f.patience.timeout
            )
        });
        let e = act
            .err()
            .unwrap_or_else(|| panic!("power on of a {label} BMC at {addr} succeeded"));
        assert!(
            matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Timeout),
            "power on of a {label} BMC failed with kind {} instead of unreachable/timeout: {e}",
            e.kind()
        );
        if e.kind() == ErrorKind::Timeout {
            assert!(
                !e.is_retryable(),
                "power on of a {label} BMC failed with a retryable timeout; a power action's \
                 timeout must not be retryable: {e}"
            );
        }
    }
    Outcome::Passed
}

/// Secrets never appear in what the driver says: its logs (every `tracing` record
/// it emits while the kit calls it), the `Display`, `Debug` and sources of its
/// errors, and its own `Debug`. The secrets are the secret-looking values of the
/// task's `driver_info` and the kit's wrong password; the calls are validate,
/// reads and actions, with the right password, a wrong one and, when the fixture
/// can point the driver elsewhere, an unreachable BMC.
pub async fn secrets_never_leak(power: &dyn PowerInterface, f: &BmcFixture) -> Outcome {
    let secrets = f.secrets();
    let out = Transcript::default();
    out.debug("the interface", &power);
    out.result("validate", &power.validate(&f.task));
    out.run(async {
        let r = power.get_power_state(&f.task).await;
        out.result("get_power_state", &r);
        for action in [PowerAction::PowerOn, PowerAction::PowerOff] {
            let r = power
                .set_power_state(&f.task, action, Some(f.patience.timeout))
                .await;
            out.result("set_power_state", &r);
        }
        if let Some(bad) = f.with_wrong_password() {
            out.result("validate (wrong password)", &power.validate(&bad));
            let r = power.get_power_state(&bad).await;
            out.result("get_power_state (wrong password)", &r);
            let r = power
                .set_power_state(&bad, PowerAction::PowerOn, Some(f.action_timeout))
                .await;
            out.result("set_power_state (wrong password)", &r);
        }
        if let Some(t) = f.pointed_at(closed_address()) {
            let r = power.get_power_state(&t).await;
            out.result("get_power_state (unreachable)", &r);
        }
    })
    .await;
    // Again after the calls: a driver may cache what it saw (a session, credentials).
    out.debug("the interface after the calls", &power);
    if let Some(line) = out.leak(&secrets) {
        panic!("a secret of driver_info appears in what the driver said or logged: {line}");
    }
    reaches(
        power,
        &f.task,
        PowerState::Off,
        "after the secrets check",
        &f.patience,
    )
    .await;
    Outcome::Passed
}

/// Every power behaviour, selected by what the driver declares and the fixture
/// offers. Leaves the node off.
pub async fn run_power_suite(power: &dyn PowerInterface, f: &BmcFixture) -> Report {
    let mut r = Report::default();
    r.add(
        "supported_states_and_reads_are_consistent",
        supported_states_and_reads_are_consistent(power, f).await,
    );
    r.add(
        "power_on_then_off_reaches_states",
        power_on_then_off_reaches_states(power, f).await,
    );
    r.add(
        "set_power_state_returns_once_reached",
        set_power_state_returns_once_reached(power, f).await,
    );
    r.add("power_is_idempotent", power_is_idempotent(power, f).await);
    r.add(
        "reboot_powers_on_an_off_node",
        reboot_powers_on_an_off_node(power, f).await,
    );
    r.add(
        "reboot_keeps_an_on_node_on",
        reboot_keeps_an_on_node_on(power, f).await,
    );
    r.add(
        "soft_power_off_if_supported",
        soft_power_off_if_supported(power, f).await,
    );
    r.add(
        "soft_reboot_if_supported",
        soft_reboot_if_supported(power, f).await,
    );
    r.add(
        "unsupported_power_action_is_refused",
        unsupported_power_action_is_refused(power, f).await,
    );
    r.add(
        "power_action_timeout_is_final",
        power_action_timeout_is_final(power, f).await,
    );
    r.add(
        "wrong_credentials_are_final",
        wrong_credentials_are_final(power, f).await,
    );
    r.add(
        "unreachable_bmc_fails_cleanly",
        unreachable_bmc_fails_cleanly(power, f).await,
    );
    r.add("secrets_never_leak", secrets_never_leak(power, f).await);
    r.add(
        "validate_reports_missing_keys",
        super::validate_reports_missing_keys(power, &f.task),
    );
    r.add(
        "validate_never_contacts_bmc",
        super::validate_never_contacts_bmc_with(power, f).await,
    );
    r
}
