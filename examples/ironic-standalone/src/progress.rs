//! Progress of long command-line work (`ironic ramdisk build`, `ironic lab`
//! bringing its nodes up): a bar on a terminal, plain lines otherwise.
//!
//! On a terminal the current step is an [`indicatif`] spinner or bar on
//! stderr, and log lines written through [`StderrWriter`] are printed above it
//! instead of tearing it. Anywhere else (a pipe, a CI log, `TERM=dumb`) every
//! step is one line on stderr, and a counted step adds a line at each tenth
//! done (and at most every few seconds when it moves slowly), so a log shows
//! where the work stands without thousands of lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar being drawn, if any: [`StderrWriter`] suspends it around log lines.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// In line mode, a counted step prints at most once per this interval between
/// its tenths.
const SLOW_LINE_EVERY: Duration = Duration::from_secs(5);

/// Reports the steps of one long piece of work.
pub struct Progress {
    prefix: String,
    mode: Mode,
}

enum Mode {
    Silent,
    Bar {
        target: Box<dyn Fn() -> ProgressDrawTarget + Send + Sync>,
        bar: Mutex<Option<ProgressBar>>,
    },
    Lines(Mutex<Lines>),
}

struct Lines {
    out: Box<dyn Write + Send>,
    what: String,
    total: u64,
    done: u64,
    failed: u64,
    last_tenth: u64,
    last_line: Instant,
}

impl Lines {
    fn line(&mut self, prefix: &str, text: &str) {
        // Progress must never stop the work: a closed stderr is ignored.
        let _ = writeln!(self.out, "{prefix}: {text}");
        let _ = self.out.flush();
        self.last_line = Instant::now();
    }

    fn count_line(&mut self, prefix: &str) {
        let failed = match self.failed {
            0 => String::new(),
            n => format!(" ({n} failed)"),
        };
        let text = format!("{}: {}/{}{failed}", self.what, self.done, self.total);
        self.line(prefix, &text);
    }
}

impl Progress {
    /// Reports nothing (embedders, tests).
    pub fn silent() -> Progress {
        Progress {
            prefix: String::new(),
            mode: Mode::Silent,
        }
    }

    /// A bar when stderr is a terminal (and `TERM` is not `dumb`), plain lines
    /// on stderr otherwise; every line starts with `prefix` (the command).
    pub fn stderr(prefix: &str) -> Progress {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if std::io::stderr().is_terminal() && !dumb {
            Progress::bar(prefix, ProgressDrawTarget::stderr)
        } else {
            Progress::lines(prefix, Box::new(std::io::stderr()))
        }
    }

    /// Plain lines into `out`.
    pub fn lines(prefix: &str, out: Box<dyn Write + Send>) -> Progress {
        Progress {
            prefix: prefix.to_owned(),
            mode: Mode::Lines(Mutex::new(Lines {
                out,
                what: String::new(),
                total: 0,
                done: 0,
                failed: 0,
                last_tenth: 0,
                last_line: Instant::now(),
            })),
        }
    }

    /// Bars drawn where `target` says (called once per step).
    pub fn bar(
        prefix: &str,
        target: impl Fn() -> ProgressDrawTarget + Send + Sync + 'static,
    ) -> Progress {
        Progress {
            prefix: prefix.to_owned(),
            mode: Mode::Bar {
                target: Box::new(target),
                bar: Mutex::new(None),
            },
        }
    }

    /// Starts a step of unknown length (a spinner on a terminal).
    pub fn step(&self, what: &str) {
        match &self.mode {
            Mode::Silent => {}
            Mode::Lines(l) => {
                let mut l = lock(l);
                l.what = what.to_owned();
                l.total = 0;
                l.line(&self.prefix, what);
            }
            Mode::Bar { target, bar } => {
                let pb = ProgressBar::with_draw_target(None, target());
                pb.set_style(
                    ProgressStyle::with_template("{prefix}: {spinner} {msg} ({elapsed})")
                        .expect("a valid template"),
                );
                pb.set_prefix(self.prefix.clone());
                pb.set_message(what.to_owned());
                pb.enable_steady_tick(Duration::from_millis(120));
                self.replace(bar, pb);
            }
        }
    }

    /// Starts a step of `total` items; [`Progress::inc`] counts them.
    pub fn counted(&self, what: &str, total: u64) {
        match &self.mode {
            Mode::Silent => {}
            Mode::Lines(l) => {
                let mut l = lock(l);
                l.what = what.to_owned();
                l.total = total;
                l.done = 0;
                l.failed = 0;
                l.last_tenth = 0;
                l.count_line(&self.prefix);
            }
            Mode::Bar { target, bar } => {
                let pb = ProgressBar::with_draw_target(Some(total), target());
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                pb.set_prefix(self.prefix.clone());
                pb.set_message(what.to_owned());
                self.replace(bar, pb);
            }
        }
    }

    /// One more item of the current counted step is done; `ok` false counts it
    /// as failed too.
    pub fn inc(&self, ok: bool) {
        match &self.mode {
            Mode::Silent => {}
            Mode::Lines(l) => {
                let mut l = lock(l);
                l.done += 1;
                if !ok {
                    l.failed += 1;
                }
                let tenth = (l.done * 10).checked_div(l.total).unwrap_or(0);
                let slow = l.last_line.elapsed() >= SLOW_LINE_EVERY;
                if tenth > l.last_tenth || slow || l.done == l.total {
                    l.last_tenth = tenth;
                    l.count_line(&self.prefix);
                }
            }
            Mode::Bar { bar, .. } => {
                if let Some(pb) = lock(bar).as_ref() {
                    pb.inc(1);
                    if !ok {
                        let failed = pb.message();
                        let (what, n) = split_failed(&failed);
                        pb.set_message(format!("{what} ({} failed)", n + 1));
                    }
                }
            }
        }
    }

    /// Ends the current step: the bar is cleared (the summary that follows says
    /// what was done); in line mode a counted step that has not said its last
    /// count says it.
    pub fn finish(&self) {
        match &self.mode {
            Mode::Silent => {}
            Mode::Lines(l) => {
                let mut l = lock(l);
                if l.total > 0 && l.done != l.total {
                    l.count_line(&self.prefix);
                }
                l.total = 0;
            }
            Mode::Bar { bar, .. } => {
                if let Some(pb) = lock(bar).take() {
                    pb.finish_and_clear();
                }
                *lock(&ACTIVE) = None;
            }
        }
    }

    fn replace(&self, slot: &Mutex<Option<ProgressBar>>, pb: ProgressBar) {
        if let Some(old) = lock(slot).replace(pb.clone()) {
            old.finish_and_clear();
        }
        *lock(&ACTIVE) = Some(pb);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `"what (3 failed)"` → `("what", 3)`.
fn split_failed(msg: &str) -> (&str, u64) {
    if let Some(rest) = msg.strip_suffix(" failed)")
        && let Some((what, n)) = rest.rsplit_once(" (")
        && let Ok(n) = n.parse()
    {
        return (what, n);
    }
    (msg, 0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes log lines to stderr above a bar being drawn (a
/// `tracing_subscriber::fmt::MakeWriter`), so logs and progress share a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;

    fn make_writer(&'a self) -> StderrWriter {
        StderrWriter
    }
}

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let active = lock(&ACTIVE).clone();
        match active {
            Some(pb) if !pb.is_finished() => pb.suspend(|| std::io::stderr().write_all(buf)),
            _ => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{InMemoryTerm, TermLike};
    use std::sync::Arc;

    /// A shared buffer for tests of line mode.
    #[derive(Clone, Default)]
    struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl SharedBuffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&lock(&self.0)).into_owned()
        }
    }

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_say_each_step_and_every_tenth_of_a_count() {
        let buf = SharedBuffer::default();
        let p = Progress::lines("ironic lab", Box::new(buf.clone()));
        p.step("starting 250 simulated servers");
        p.counted("nodes available", 250);
        for i in 0..250 {
            p.inc(i != 7);
        }
        p.finish();
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ironic lab: starting 250 simulated servers");
        assert_eq!(lines[1], "ironic lab: nodes available: 0/250");
        assert_eq!(
            lines.last().copied(),
            Some("ironic lab: nodes available: 250/250 (1 failed)")
        );
        // 0/250, then one line per tenth: 12 lines, not 250.
        assert_eq!(lines.len(), 12, "{text}");
        assert!(lines.contains(&"ironic lab: nodes available: 125/250 (1 failed)"));
    }

    #[test]
    fn a_count_that_stops_short_says_where_it_stopped() {
        let buf = SharedBuffer::default();
        let p = Progress::lines("x", Box::new(buf.clone()));
        p.counted("files", 100);
        for _ in 0..42 {
            p.inc(true);
        }
        drop(p);
        assert!(buf.text().ends_with("x: files: 42/100\n"), "{}", buf.text());
    }

    #[test]
    fn a_terminal_gets_a_bar_with_the_count_and_failures() {
        let term = InMemoryTerm::new(4, 100);
        let t = term.clone();
        let p = Progress::bar("ironic lab", move || {
            ProgressDrawTarget::term_like_with_hz(Box::new(t.clone()), 250)
        });
        p.counted("nodes available", 4);
        p.inc(true);
        p.inc(false);
        std::thread::sleep(Duration::from_millis(5));
        p.inc(true);
        let screen = term.contents();
        assert!(
            screen.starts_with("ironic lab: nodes available (1 failed) ["),
            "{screen}"
        );
        assert!(screen.contains("] 3/4"), "{screen}");
        assert!(lock(&ACTIVE).is_some());
        p.finish();
        assert_eq!(term.contents().trim(), "", "the bar is cleared at the end");
        assert!(lock(&ACTIVE).is_none());
        assert_eq!(term.width(), 100);
    }

    #[test]
    fn silent_reports_nothing() {
        let p = Progress::silent();
        p.step("a");
        p.counted("b", 3);
        p.inc(false);
        p.finish();
    }
}
