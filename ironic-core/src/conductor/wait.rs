//! Waiting for a node to reach a provision state (openstacksdk's
//! `wait_for_provision_state`), for embedders and their tests.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::Conductor;
use crate::error::Error;
use crate::ids::Ident;
use crate::model::Node;
use crate::states::ProvisionState;

/// Why [`Conductor::wait_for_provision_state`] returned without the state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The node settled in a failure state (`error`, `deploy failed`, `clean
    /// failed`, ...) other than the one waited for.
    #[error("node {} ended in \"{}\" instead of \"{want}\": {}", .node.uuid, .node.provision_state, .node.last_error.as_deref().unwrap_or("no last_error"))]
    Failed {
        /// The node as it settled.
        node: Box<Node>,
        /// The state waited for.
        want: ProvisionState,
    },
    /// The time was up.
    #[error("node {} did not reach \"{want}\" within {timeout:?}: it is \"{}\"{}", .node.uuid, .node.provision_state, if .node.reservation.is_some() { " (locked)" } else { "" })]
    Timeout {
        /// The node as last read.
        node: Box<Node>,
        /// The state waited for.
        want: ProvisionState,
        /// How long was waited.
        timeout: Duration,
    },
    /// Reading the node failed (e.g. it was deleted).
    #[error(transparent)]
    Api(#[from] Error),
}

impl Conductor {
    /// Wait until the node is in `want` and no operation holds it (its
    /// `reservation` is released), for at most `timeout`. Returns the node then.
    ///
    /// Fails early with [`WaitError::Failed`] when the node settles in a failure
    /// state instead (as openstacksdk's `wait_for_provision_state` with
    /// `abort_on_failed_state`), with [`WaitError::Timeout`] when the time is up.
    /// Wakes on the node's events ([`Conductor::subscribe`]) and checks at least
    /// every 100 ms (a lock release is not an event).
    ///
    /// ```no_run
    /// # async fn f(c: ironic_core::Conductor, id: ironic_core::Ident) {
    /// use ironic_core::{ProvisionRequest, ProvisionState};
    /// use std::time::Duration;
    /// c.provision(&id, ProvisionRequest::new("active")).await.unwrap();
    /// let node = c
    ///     .wait_for_provision_state(&id, ProvisionState::Active, Duration::from_secs(1800))
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub async fn wait_for_provision_state(
        &self,
        ident: &Ident,
        want: ProvisionState,
        timeout: Duration,
    ) -> Result<Node, WaitError> {
        let mut events = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.get_node(ident).await?;
            let state = n.provision_state;
            if n.reservation.is_none() {
                if state == want {
                    return Ok(n);
                }
                if state.is_failure() || state == ProvisionState::Error {
                    return Err(WaitError::Failed {
                        node: Box::new(n),
                        want,
                    });
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(WaitError::Timeout {
                    node: Box::new(n),
                    want,
                    timeout,
                });
            }
            let tick = (deadline - now).min(Duration::from_millis(100));
            let uuid = n.uuid;
            let _ = tokio::time::timeout(tick, async {
                loop {
                    match events.recv().await {
                        Ok(e) if e.node() == uuid => return,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            })
            .await;
        }
    }
}
