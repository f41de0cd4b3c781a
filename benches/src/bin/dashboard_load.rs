//! `dashboard_load`: the dashboard in a real browser over a big conductor.
//!
//! For each node count, starts this workspace's `ironic` binary (in-memory
//! store unless `--sqlite`), enrolls that many fake-hardware nodes through the
//! API (a tenth of them moved to `manageable`, so the state counts differ),
//! then opens `/dashboard` in headless Chromium driven over WebDriver
//! (`chromedriver`) and measures:
//!
//! 1. page load: from the navigation to the first page of the node table on
//!    screen (the WebDriver client polls the page every 10 ms), and the time the
//!    browser itself reports (`performance.now()` when the rows appeared);
//! 2. browser memory: the page's JavaScript heap
//!    (`performance.memory.usedJSHeapSize`, with `--enable-precise-memory-info`)
//!    and the proportional set size of every Chromium process (`Pss`, summed
//!    over chromedriver's process tree; RSS would count shared pages once per
//!    process);
//! 3. event to screen: a node of the first page is put in maintenance through
//!    the API, and the time until its row says so (the live stream, no reload),
//!    five times, median and worst;
//! 4. a filter: the table filtered to `manageable` through the page's own
//!    state filter, time until the filtered rows are on screen;
//!
//! and the server's RSS at the end. Prints one line per count.
//!
//! ```sh
//! cargo build --release -p ironic-standalone --bin ironic -p ironic-benches --bin dashboard_load
//! target/release/dashboard_load --nodes 1000,10000
//! ```
//! Needs Debian's `chromium` and `chromium-driver` (scripts/setup-test-deps.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironic_benches::servers::{self, rss_kib};
use serde_json::{Value, json};

/// chromedriver and the WebDriver session it serves; ended on drop.
struct Chrome {
    driver: Child,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Chrome {
    async fn start() -> Result<Chrome, String> {
        let exe = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .ok_or("chromedriver is missing: install Debian's `chromium` and `chromium-driver`")?;
        let port = servers::free_port();
        let driver = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start chromedriver: {e}"))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let up = Instant::now();
        while http.get(format!("{root}/status")).send().await.is_err() {
            if up.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-dev-shm-usage".into(),
            "--enable-precise-memory-info".into(),
            "--window-size=1400,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let answer: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let Some(id) = answer["value"]["sessionId"].as_str() else {
            return Err(format!("no WebDriver session: {answer}"));
        };
        Ok(Chrome {
            session: format!("{root}/session/{id}"),
            driver,
            http,
            _profile: profile,
        })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let v: Value = self
            .http
            .post(format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match v["value"].get("error") {
            Some(e) => Err(format!("WebDriver {path}: {e}: {}", v["value"]["message"])),
            None => Ok(v["value"].clone()),
        }
    }

    async fn eval(&self, script: &str, args: Value) -> Result<Value, String> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Polls `script` every 10 ms until it returns something truthy (60 s).
    async fn wait(&self, what: &str, script: &str, args: Value) -> Result<Value, String> {
        let since = Instant::now();
        loop {
            let v = self.eval(script, args.clone()).await?;
            if !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") {
                return Ok(v);
            }
            if since.elapsed() > Duration::from_secs(60) {
                return Err(format!("{what}: not on screen after 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Proportional set size (`Pss` of `/proc/PID/smaps_rollup`: shared pages
    /// divided among the processes that share them, so the sum is what the
    /// browser really holds) of chromedriver's descendants, in KiB.
    fn browser_pss_kib(&self) -> u64 {
        let mut parent_of = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
        let mut tree = vec![self.driver.id()];
        let mut i = 0;
        while i < tree.len() {
            let p = tree[i];
            tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
            i += 1;
        }
        tree[1..].iter().map(|p| pss_kib(*p)).sum()
    }
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The API call the bench makes: status and JSON body.
async fn api(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    body: Value,
) -> (u16, Value) {
    let r = http
        .request(method, url)
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .json(&body)
        .send()
        .await;
    match r {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!(e.to_string())),
    }
}

/// Enrolls `n` nodes with 16 requests in flight; every tenth is managed.
async fn enroll(base: &str, n: usize) -> Result<(), String> {
    let http = reqwest::Client::new();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || async {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                return Ok::<(), String>(());
            }
            let body = json!({"driver": "fake-hardware", "name": format!("rack-{i:06}")});
            let (s, b) = api(
                &http,
                &format!("{base}/v1/nodes"),
                reqwest::Method::POST,
                body,
            )
            .await;
            if s != 201 {
                return Err(format!("enroll {i}: {s} {b}"));
            }
            if i.is_multiple_of(10) {
                let url = format!("{base}/v1/nodes/rack-{i:06}/states/provision");
                let (s, b) = api(
                    &http,
                    &url,
                    reqwest::Method::PUT,
                    json!({"target": "manage"}),
                )
                .await;
                if s != 202 {
                    return Err(format!("manage {i}: {s} {b}"));
                }
            }
        }
    };
    let results = futures::future::join_all((0..16).map(|_| worker())).await;
    results.into_iter().collect()
}

fn median_and_max(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

async fn one(bin: &Path, n: usize, sqlite: bool) -> Result<String, String> {
    let env: &[(&str, &str)] = if sqlite {
        &[]
    } else {
        &[("IRONIC__STORAGE__BACKEND", "memory")]
    };
    let server = servers::start_ours(bin, env)?;
    let base = server.url.clone();
    let t = Instant::now();
    enroll(&base, n).await?;
    eprintln!("{n} nodes enrolled in {:.1} s", t.elapsed().as_secs_f64());
    let chrome = Chrome::start().await?;
    let rows = "return document.querySelectorAll('#nodes tbody tr').length";

    // 1. page load
    let t = Instant::now();
    chrome
        .post("/url", json!({"url": format!("{base}/dashboard")}))
        .await?;
    chrome.wait("the node table", rows, json!([])).await?;
    let load = t.elapsed();
    let browser_ms = chrome.eval("return performance.now()", json!([])).await?;
    chrome
        .wait(
            "the live stream",
            "return document.querySelector('#live').textContent === 'live'",
            json!([]),
        )
        .await?;
    let shown = chrome.eval(rows, json!([])).await?;
    let total = chrome
        .eval(
            "return document.querySelector('#range').textContent",
            json!([]),
        )
        .await?;

    // 2. memory
    let heap = chrome
        .eval(
            "return performance.memory ? performance.memory.usedJSHeapSize : 0",
            json!([]),
        )
        .await?
        .as_u64()
        .unwrap_or(0);
    let browser_pss = chrome.browser_pss_kib();

    // 3. event to screen
    let uuids = chrome
        .eval("return [...document.querySelectorAll('#nodes tbody tr')].slice(0, 5).map(r => r.dataset.uuid)", json!([]))
        .await?;
    let http = reqwest::Client::new();
    let mut lags = Vec::new();
    for u in uuids.as_array().into_iter().flatten() {
        let u = u.as_str().unwrap_or_default();
        let t = Instant::now();
        let url = format!("{base}/v1/nodes/{u}/maintenance");
        let (s, b) = api(
            &http,
            &url,
            reqwest::Method::PUT,
            json!({"reason": "bench"}),
        )
        .await;
        if s != 202 {
            return Err(format!("maintenance: {s} {b}"));
        }
        chrome
            .wait(
                "the maintenance badge",
                "const r = document.querySelector(`#nodes tr[data-uuid=\"${arguments[0]}\"]`); \
                 return r && r.innerText.includes('maintenance')",
                json!([u]),
            )
            .await?;
        lags.push(t.elapsed());
    }
    if lags.is_empty() {
        return Err("no rows to change".into());
    }
    let (lag_median, lag_max) = median_and_max(lags);

    // 4. the page's own state filter
    let t = Instant::now();
    chrome
        .eval(
            "const f = document.querySelector('#filters [name=provision_state]'); \
             f.value = 'manageable'; f.dispatchEvent(new Event('change', {bubbles: true}))",
            json!([]),
        )
        .await?;
    chrome
        .wait(
            "the filtered table",
            "const r = [...document.querySelectorAll('#nodes tbody tr')]; \
             return r.length > 0 && r.every(x => x.dataset.state === 'manageable')",
            json!([]),
        )
        .await?;
    let filtered = t.elapsed();
    let server_rss = rss_kib(server.child.id());
    Ok(format!(
        "{n} nodes ({}): table on screen {:.0} ms after navigation (browser: {:.0} ms), {} rows ({}); \
         JS heap {:.1} MiB, browser PSS {:.0} MiB; event to screen median {:.0} ms, max {:.0} ms (5 changes); \
         state filter {:.0} ms; server RSS {:.1} MiB",
        if sqlite { "SQLite" } else { "memory" },
        load.as_secs_f64() * 1e3,
        browser_ms.as_f64().unwrap_or(0.0),
        shown,
        total.as_str().unwrap_or("?").trim(),
        heap as f64 / (1 << 20) as f64,
        browser_pss as f64 / 1024.0,
        lag_median.as_secs_f64() * 1e3,
        lag_max.as_secs_f64() * 1e3,
        filtered.as_secs_f64() * 1e3,
        server_rss as f64 / 1024.0,
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut bin = PathBuf::from("target/release/ironic");
    let mut counts = vec![1000, 10000];
    let mut sqlite = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ours" => bin = args.next().map(PathBuf::from).unwrap_or(bin),
            "--nodes" => {
                counts = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect()
            }
            "--sqlite" => sqlite = true,
            other => {
                eprintln!(
                    "dashboard_load: unknown argument {other}; use --ours PATH --nodes N,M --sqlite"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    println!("{}", servers::load());
    for n in counts {
        match one(&bin, n, sqlite).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("dashboard_load with {n} nodes: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
