//! Consoles across the conductor's life, as Ironic's conductor does: enabled
//! consoles started again at start (`_start_consoles`), expired graphical console
//! sessions stopped by a periodic task (`_expire_console_sessions`), and every
//! console stopped at shutdown (`stop_all_containers`).

use futures::StreamExt;

use super::Conductor;
use crate::model::{Node, Severity};
use crate::store::{NodeFilter, NodeQuery};

impl Conductor {
    /// The nodes of this conductor with their console enabled.
    async fn nodes_with_console(&self) -> Vec<Node> {
        match self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    conductor_group: Some(self.config().conductor_group.clone()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
        {
            Ok(nodes) => nodes
                .into_iter()
                .filter(|n| n.console_enabled && self.owns(n))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "console check could not list nodes");
                Vec::new()
            }
        }
    }

    /// Stop the console of every node of this conductor whose console session
    /// has expired ([`ConsoleInterface::session_expired`](crate::driver::ConsoleInterface::session_expired):
    /// the noVNC token of a graphical console is older than `[vnc] token_timeout`),
    /// and record `console_enabled = false`. Runs every
    /// `console_session_check_interval` (Ironic's
    /// `[vnc] expire_console_session_interval`); returns the nodes stopped.
    pub async fn expire_console_sessions(&self) -> Vec<crate::NodeId> {
        let candidates: Vec<Node> = self
            .nodes_with_console()
            .await
            .into_iter()
            .filter(|n| n.reservation.is_none())
            .collect();
        futures::stream::iter(candidates)
            .map(|n| async move {
                let task = self.shared_task(&n.uuid.into()).await.ok()?;
                let d = task.driver().ok()?.clone();
                if !d.console.session_expired(&task) {
                    return None;
                }
                let mut job = self.job(&n.uuid.into(), false).await.ok()?;
                let r: crate::Result<bool> = async {
                    let d = job.task.driver()?.clone();
                    // Checked again under the lock.
                    if !job.node().console_enabled || !d.console.session_expired(&job.task) {
                        return Ok(false);
                    }
                    tracing::info!(node = %n.uuid, "graphical console session has expired, closing");
                    d.console.stop_console(&mut job.task).await?;
                    job.node_mut().console_enabled = false;
                    job.save().await?;
                    Ok(true)
                }
                .await;
                job.finish().await;
                match r {
                    Ok(true) => Some(n.uuid),
                    Ok(false) => None,
                    Err(e) => {
                        tracing::warn!(node = %n.uuid, error = %e, "could not stop an expired console");
                        None
                    }
                }
            })
            .buffer_unordered(8)
            .filter_map(|x| async move { x })
            .collect::<Vec<_>>()
            .await
    }

    /// Start again the consoles this conductor's nodes have enabled (Ironic's
    /// `_start_consoles` at conductor start); a console that does not start is
    /// recorded disabled, with the error in `last_error` and the history.
    pub(crate) async fn start_consoles(&self) {
        for n in self.nodes_with_console().await {
            let Ok(mut job) = self.job(&n.uuid.into(), false).await else {
                continue;
            };
            let r: crate::Result<()> = async {
                let d = job.task.driver()?.clone();
                d.console.start_console(&mut job.task).await?;
                job.save().await
            }
            .await;
            if let Err(e) = r {
                let msg = format!(
                    "Failed to start console of node {} while starting the conductor, setting the console_enabled status to False, error: {e}",
                    n.uuid
                );
                tracing::warn!(node = %n.uuid, error = %e, "could not start the console at start");
                let node = job.node_mut();
                node.console_enabled = false;
                node.last_error = Some(msg.clone());
                if job.save().await.is_ok() {
                    let node = job.node().clone();
                    self.record_history(&node, "console", Severity::Error, &msg)
                        .await;
                }
            } else {
                tracing::info!(node = %n.uuid, "console started again");
            }
            job.finish().await;
        }
    }

    /// Stop every console of every registered console interface (Ironic's
    /// `stop_all_containers` at shutdown). `console_enabled` stays as it is: the
    /// next start starts them again.
    pub(crate) async fn stop_all_consoles(&self) {
        for (name, console) in &self.inner.registry.console {
            if let Err(e) = console.stop_all().await {
                tracing::warn!(interface = %name, error = %e, "could not stop the consoles");
            }
        }
    }
}
