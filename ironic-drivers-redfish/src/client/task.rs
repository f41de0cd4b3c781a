//! Task monitors: what a BMC hands back for long operations (`202 Accepted` with
//! a monitor URI in `Location`, or a `Task` resource).

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;

use super::{RedfishClient, Response};
use crate::error::{RedfishError, Result};
use crate::models::{self, Task, TaskState};

/// How a task ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TaskOutcome {
    /// The task's URI, if there was one.
    pub uri: Option<String>,
    /// Its final state (`None` when the BMC finished without a task).
    pub state: Option<TaskState>,
    /// Its messages.
    pub messages: String,
}

fn task_of(resp: &Response) -> Option<Task> {
    if resp.body.is_empty() {
        return None;
    }
    models::parse::<Task>(&resp.body)
        .ok()
        .filter(|t| t.task_state.is_some())
}

/// Poll until the operation `resp` started is over.
pub(crate) async fn wait(
    client: &RedfishClient,
    resp: &Response,
    what: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<TaskOutcome> {
    let immediate = task_of(resp);
    let monitor = match (&resp.location, resp.status, &immediate) {
        (Some(loc), 202, _) => loc.clone(),
        (Some(loc), _, _) if loc.contains("/Task") => loc.clone(),
        (_, _, Some(t)) if !t.task_state.as_ref().is_some_and(TaskState::is_final) => {
            match t.task_monitor.clone().or_else(|| t.odata_id.clone()) {
                Some(m) => m,
                None => {
                    return Err(RedfishError::Other(format!(
                        "{what}: the BMC started a task but gave no way to follow it"
                    )));
                }
            }
        }
        (_, _, Some(t)) => return finish(what, None, t.clone()),
        _ => {
            return Ok(TaskOutcome {
                uri: None,
                state: None,
                messages: String::new(),
            });
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_percent = None;
    loop {
        let r = client
            .request(Method::GET, &monitor, None, &HeaderMap::new())
            .await?;
        let task = task_of(&r);
        match (r.status, task) {
            (202, t)
            | (
                200..=299,
                t @ Some(Task {
                    task_state: Some(_),
                    ..
                }),
            ) if t
                .as_ref()
                .is_none_or(|t| !t.task_state.as_ref().is_some_and(TaskState::is_final)) =>
            {
                if let Some(t) = &t
                    && t.percent_complete != last_percent
                {
                    last_percent = t.percent_complete;
                    tracing::info!(bmc = %client.address, task = %monitor, percent = ?t.percent_complete, state = ?t.task_state.as_ref().map(|s| s.as_str().to_owned()), "{what}: in progress");
                }
            }
            (200..=299, Some(t)) => return finish(what, Some(monitor), t),
            (200..=299, None) => {
                return Ok(TaskOutcome {
                    uri: Some(monitor),
                    state: Some(TaskState::Completed),
                    messages: String::new(),
                });
            }
            (404 | 410, _) => {
                // Some BMCs drop the monitor once the task is over.
                return Ok(TaskOutcome {
                    uri: Some(monitor),
                    state: None,
                    messages: String::new(),
                });
            }
            _ => {
                client.check(&Method::GET, &monitor, r)?;
            }
        }
        if tokio::time::Instant::now() + interval > deadline {
            return Err(RedfishError::Timeout(format!(
                "{what}: the BMC task {monitor} did not finish within {}s (last progress {}%)",
                timeout.as_secs(),
                last_percent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into())
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

fn finish(what: &str, uri: Option<String>, t: Task) -> Result<TaskOutcome> {
    let state = t.task_state.clone();
    let failed = state.as_ref().is_some_and(TaskState::is_failure)
        || matches!(t.task_status, Some(models::Health::Critical));
    if failed {
        return Err(RedfishError::TaskFailed {
            task: uri
                .or(t.odata_id.clone())
                .unwrap_or_else(|| what.to_owned()),
            state: state
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "unknown".into()),
            detail: t.message_text(),
        });
    }
    Ok(TaskOutcome {
        uri: uri.or(t.odata_id.clone()),
        state,
        messages: t.message_text(),
    })
}
