//! Deploy interface behaviours.

use super::{Outcome, Patience, Report};
use crate::driver::{DeployInterface, Step, StepKind, Task};
use crate::error::ErrorKind;
use crate::model::InterfaceType;
use crate::states::PowerState;

/// The deploy interface offers the `deploy` deploy step with priority 100, and no
/// step name twice for one kind.
pub async fn deploy_step_is_offered(deploy: &dyn DeployInterface, task: &Task) -> Outcome {
    let steps = deploy
        .get_steps(task, StepKind::Deploy)
        .await
        .unwrap_or_else(|e| panic!("get_steps(deploy) failed: {e}"));
    let d = steps
        .iter()
        .find(|s| s.name == "deploy")
        .unwrap_or_else(|| {
            panic!(
                "no `deploy` deploy step among {:?}",
                steps.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(d.priority, 100, "the deploy step must have priority 100");
    for kind in [
        StepKind::Deploy,
        StepKind::Clean,
        StepKind::Service,
        StepKind::Verify,
    ] {
        let s = deploy
            .get_steps(task, kind)
            .await
            .unwrap_or_else(|e| panic!("get_steps({kind}) failed: {e}"));
        let mut names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert!(
            s.iter().all(|x| x.kind == kind),
            "get_steps({kind}) returned steps of another kind"
        );
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate {kind} step names");
    }
    Outcome::Passed
}

/// A step the interface does not offer is refused (unsupported or invalid
/// parameter), not run.
pub async fn unknown_step_is_refused(deploy: &dyn DeployInterface, task: &Task) -> Outcome {
    let mut t = task.clone();
    let step = Step::new(InterfaceType::Deploy, "no_such_step_from_the_testkit");
    let e = deploy
        .execute_step(&mut t, StepKind::Deploy, &step)
        .await
        .err()
        .unwrap_or_else(|| panic!("an unknown deploy step was accepted"));
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unsupported | ErrorKind::InvalidParameter
        ),
        "an unknown step failed with kind {} instead of unsupported/invalid parameter: {e}",
        e.kind()
    );
    Outcome::Passed
}

/// `prepare` and `clean_up` may each run twice.
pub async fn prepare_and_clean_up_are_idempotent(
    deploy: &dyn DeployInterface,
    task: &Task,
) -> Outcome {
    let mut t = task.clone();
    for what in ["prepare", "prepare (again)"] {
        if let Err(e) = deploy.prepare(&mut t).await {
            panic!("{what} failed: {e}");
        }
    }
    for what in ["clean_up", "clean_up (again)"] {
        if let Err(e) = deploy.clean_up(&mut t).await {
            panic!("{what} failed: {e}");
        }
    }
    Outcome::Passed
}

/// `tear_down` may run twice and leaves the node powered off (read through the
/// task's power interface, polling). Not applicable without `task.driver`.
pub async fn tear_down_is_idempotent_and_powers_off(
    deploy: &dyn DeployInterface,
    task: &Task,
) -> Outcome {
    tear_down_is_idempotent_and_powers_off_within(deploy, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn tear_down_is_idempotent_and_powers_off_within(
    deploy: &dyn DeployInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    let Some(d) = task.driver.clone() else {
        return Outcome::na("the task carries no driver to read the power state with");
    };
    let mut t = task.clone();
    for what in ["tear_down", "tear_down (again)"] {
        if let Err(e) = deploy.tear_down(&mut t).await {
            panic!("{what} failed: {e}");
        }
    }
    p.poll(
        "power off after tear_down",
        || d.power.get_power_state(&t),
        |s| *s == PowerState::Off,
    )
    .await;
    Outcome::Passed
}

/// Every deploy behaviour.
pub async fn run_deploy_suite(deploy: &dyn DeployInterface, task: &Task, p: &Patience) -> Report {
    let mut r = Report::default();
    r.add(
        "deploy_step_is_offered",
        deploy_step_is_offered(deploy, task).await,
    );
    r.add(
        "unknown_step_is_refused",
        unknown_step_is_refused(deploy, task).await,
    );
    r.add(
        "prepare_and_clean_up_are_idempotent",
        prepare_and_clean_up_are_idempotent(deploy, task).await,
    );
    r.add(
        "tear_down_is_idempotent_and_powers_off",
        tear_down_is_idempotent_and_powers_off_within(deploy, task, p).await,
    );
    r.add(
        "validate_reports_missing_keys",
        super::validate_reports_missing_keys(deploy, task),
    );
    r
}
