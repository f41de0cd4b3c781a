//! Node and resource events shared by the conductors of one database.
//!
//! Each conductor broadcasts its events to its own subscribers and, when its store
//! is shared ([`Store::notifications`](crate::store::Store::notifications) is
//! `Some`), also hands them to the store ([`Store::notify`]); the events the
//! other conductors sent come back the same way and are broadcast here too. So
//! [`Conductor::subscribe`] sees every node of the deployment change, whichever
//! conductor did the work (a node's work runs on its owner).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{NodeEvent, ResourceEvent};
use crate::store::Store;

/// What travels between conductors.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The sending conductor's host.
    from: String,
    #[serde(flatten)]
    event: Shared,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Shared {
    Node(NodeEvent),
    Resource(ResourceEvent),
}

/// PostgreSQL's `NOTIFY` takes less than 8,000 bytes; a long `last_error` is cut.
const MAX_PAYLOAD: usize = 7000;

/// The sending side: events to hand to the store, in order.
#[derive(Debug)]
pub(crate) struct Outbox {
    host: String,
    tx: mpsc::UnboundedSender<String>,
}

impl Outbox {
    pub(crate) fn node(&self, e: &NodeEvent) {
        let mut wire = Wire {
            from: self.host.clone(),
            event: Shared::Node(e.clone()),
        };
        let Ok(mut payload) = serde_json::to_string(&wire) else {
            return;
        };
        if payload.len() > MAX_PAYLOAD {
            if let Shared::Node(NodeEvent::ProvisionStateChanged {
                last_error: Some(err),
                ..
            }) = &mut wire.event
            {
                let cut = err.len().min(MAX_PAYLOAD / 2);
                let cut = (0..=cut)
                    .rev()
                    .find(|i| err.is_char_boundary(*i))
                    .unwrap_or(0);
                err.truncate(cut);
                err.push_str("...");
            }
            match serde_json::to_string(&wire) {
                Ok(p) if p.len() <= MAX_PAYLOAD => payload = p,
                _ => return,
            }
        }
        let _ = self.tx.send(payload);
    }

    pub(crate) fn resource(&self, e: &ResourceEvent) {
        let wire = Wire {
            from: self.host.clone(),
            event: Shared::Resource(e.clone()),
        };
        if let Ok(payload) = serde_json::to_string(&wire) {
            let _ = self.tx.send(payload);
        }
    }
}

/// Start sharing events through `store` when it is shared: a task that re-broadcasts
/// the other conductors' events here (until `cancel`), and one that hands this
/// conductor's events to the store (until the returned [`Outbox`] is dropped).
pub(crate) fn start(
    store: &Arc<dyn Store>,
    host: &str,
    nodes: &broadcast::Sender<NodeEvent>,
    resources: &broadcast::Sender<ResourceEvent>,
    cancel: &CancellationToken,
) -> Option<Outbox> {
    let mut incoming = store.notifications()?;
    let (me, nodes, resources, cancel) = (
        host.to_owned(),
        nodes.clone(),
        resources.clone(),
        cancel.clone(),
    );
    tokio::spawn(async move {
        loop {
            let payload = tokio::select! {
                _ = cancel.cancelled() => return,
                r = incoming.recv() => match r {
                    Ok(p) => p,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "fell behind the other conductors' events");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            match serde_json::from_str::<Wire>(&payload) {
                Ok(w) if w.from == me => {}
                Ok(Wire {
                    event: Shared::Node(e),
                    ..
                }) => {
                    let _ = nodes.send(e);
                }
                Ok(Wire {
                    event: Shared::Resource(e),
                    ..
                }) => {
                    let _ = resources.send(e);
                }
                // A newer conductor's event this one does not know: skip it.
                Err(e) => tracing::debug!(error = %e, "skipped an event from another conductor"),
            }
        }
    });
    let (tx, mut outgoing) = mpsc::unbounded_channel::<String>();
    let store = store.clone();
    tokio::spawn(async move {
        while let Some(p) = outgoing.recv().await {
            if let Err(e) = store.notify(&p).await {
                tracing::warn!(error = %e, "could not send an event to the other conductors");
            }
        }
    });
    Some(Outbox {
        host: host.to_owned(),
        tx,
    })
}
