//! Capture what a driver logs (through `tracing`) and says (errors, `Debug`), so the
//! kit can check that no secret appears in any of it.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::error::DriverError;

/// Every log record a future emitted while it ran: spans and events at every level,
/// with their field values rendered as the formatting subscribers would render them.
#[derive(Clone, Default)]
pub(crate) struct Transcript {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Transcript {
    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// Add what the driver said outside the logs: an error (its message, its
    /// `Debug`, and its chain of sources) ...
    pub(crate) fn error(&self, what: &str, e: &DriverError) {
        self.push(format!("{what}: error {e} / {e:?}"));
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            self.push(format!("{what}: caused by {s} / {s:?}"));
            src = s.source();
        }
    }

    /// ... or any value's `Debug`.
    pub(crate) fn debug(&self, what: &str, v: &dyn fmt::Debug) {
        self.push(format!("{what}: {v:?}"));
    }

    /// Record the error of a result, if any.
    pub(crate) fn result<T>(&self, what: &str, r: &Result<T, DriverError>) {
        if let Err(e) = r {
            self.error(what, e);
        }
    }

    /// Run `fut` with every `tracing` record it emits (on this task) captured here.
    /// Records of tasks the driver spawns are not seen.
    pub(crate) async fn run<F: Future>(&self, fut: F) -> F::Output {
        let dispatch = tracing::Dispatch::new(Capture {
            out: self.clone(),
            next_id: AtomicU64::new(1),
        });
        fut.with_subscriber(dispatch).await
    }

    /// The first captured line that contains one of `secrets`, with the secret
    /// masked in the report.
    pub(crate) fn leak(&self, secrets: &[String]) -> Option<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        for l in lines.iter() {
            for s in secrets {
                if !s.is_empty() && l.contains(s.as_str()) {
                    return Some(l.replace(s.as_str(), "<SECRET>"));
                }
            }
        }
        None
    }

    /// How many lines were captured.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

struct Capture {
    out: Transcript,
    next_id: AtomicU64,
}

struct Fields<'a> {
    line: &'a mut String,
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.line.push_str(&format!(" {}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        // as a formatting subscriber prints it: unquoted
        self.line.push_str(&format!(" {}={value}", field.name()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.line.push_str(&format!(" {}={value}", field.name()));
        let mut src = value.source();
        while let Some(s) = src {
            self.line.push_str(&format!(" caused by {s}"));
            src = s.source();
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}", span.metadata().name());
        span.record(&mut Fields { line: &mut line });
        self.out.push(line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "span record".to_owned();
        values.record(&mut Fields { line: &mut line });
        self.out.push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields { line: &mut line });
        self.out.push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_events_spans_and_errors() {
        let t = Transcript::default();
        t.run(async {
            let pw = "hunter2-secret";
            let span = tracing::info_span!("login", user = "admin", password = %pw);
            let _g = span.enter();
            tracing::debug!(token = ?pw, "sending");
        })
        .await;
        assert!(t.len() >= 2);
        assert_eq!(
            t.leak(&["hunter2-secret".into()]).unwrap(),
            "span login user=admin password=<SECRET>"
        );
        let t = Transcript::default();
        t.run(async { tracing::trace!("nothing to hide") }).await;
        assert_eq!(t.len(), 1);
        assert!(t.leak(&["hunter2-secret".into()]).is_none());
        t.error(
            "call",
            &DriverError::other("failed").with_source(std::io::Error::other("pw=hunter2-secret")),
        );
        assert!(t.leak(&["hunter2-secret".into()]).is_some());
    }
}
