//! Progress of a long agent command, measured where the work is done (the image
//! writer's threads) and read by whoever asks (`GET /v1/commands/`, the
//! heartbeater), without locks on the hot path: the byte counter is an atomic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::protocol::CommandProgress;

/// The stage of an image write while bytes are downloaded and written.
pub const WRITING: &str = "writing image";
/// The stage of an image write while the written bytes are read back.
pub const VERIFYING: &str = "verifying image";

#[derive(Debug)]
struct Stage {
    name: &'static str,
    started: Instant,
}

/// A progress counter shared between the work and its readers.
#[derive(Debug, Default)]
pub struct Progress {
    stage: Mutex<Option<Stage>>,
    done: AtomicU64,
    /// 0 while unknown.
    total: AtomicU64,
    /// Bumped on every stage change, so a reader can tell a new stage from
    /// progress within one.
    generation: AtomicU64,
}

impl Progress {
    /// Nothing reported yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new stage starts: the counter restarts at 0; `total` when known.
    pub fn stage(&self, name: &'static str, total: Option<u64>) {
        let mut g = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total.unwrap_or(0), Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        *g = Some(Stage {
            name,
            started: Instant::now(),
        });
    }

    /// The stage's total became known.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// `n` more bytes done.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// A value that changes whenever there is something new to report.
    pub fn signature(&self) -> (u64, u64) {
        (
            self.generation.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
        )
    }

    /// What to report, once a stage started.
    pub fn snapshot(&self) -> Option<CommandProgress> {
        let g = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        let stage = g.as_ref()?;
        let done = self.done.load(Ordering::Relaxed);
        let total = match self.total.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        };
        let elapsed = stage.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            (done as f64 / elapsed) as u64
        } else {
            0
        };
        let percent = total.map(|t| ((done.min(t) as f64 * 1000.0 / t as f64).floor()) / 10.0);
        let eta = match total {
            Some(t) if rate > 0 => Some(t.saturating_sub(done).div_ceil(rate)),
            _ => None,
        };
        Some(CommandProgress {
            stage: stage.name.to_owned(),
            done_bytes: done,
            total_bytes: total,
            percent,
            bytes_per_second: rate,
            elapsed_seconds: (elapsed * 10.0).round() / 10.0,
            eta_seconds: eta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_nothing_before_a_stage_and_rounds_down() {
        let p = Progress::new();
        assert!(p.snapshot().is_none());
        p.stage(WRITING, None);
        p.add(10);
        let s = p.snapshot().unwrap();
        assert_eq!((s.done_bytes, s.total_bytes, s.percent), (10, None, None));
        p.set_total(3000);
        p.add(989);
        // 999 of 3000 is 33.3 %, never rounded up to look further than it is
        assert_eq!(p.snapshot().unwrap().percent, Some(33.3));
        p.add(2011);
        assert_eq!(p.snapshot().unwrap().percent, Some(100.0));
        let before = p.signature();
        p.stage(VERIFYING, Some(3000));
        assert_ne!(p.signature(), before);
        let s = p.snapshot().unwrap();
        assert_eq!(
            (s.stage.as_str(), s.done_bytes, s.percent),
            (VERIFYING, 0, Some(0.0))
        );
    }
}
