//! Shared helpers for the API tests: start the real `ironic` binary on a free
//! loopback port, find the real clients (`baremetal`, openstacksdk).
#![allow(dead_code)]

pub mod real_ironic;
pub mod sushy;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ironic` process on 127.0.0.1, killed (SIGTERM, then SIGKILL) on drop.
pub struct Ironic {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The data directory (kept until drop).
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Ironic {
    /// Start `ironic` with `extra_args` and environment `env`, on a fresh data dir.
    pub fn start(extra_args: &[&str], env: &[(&str, &str)]) -> Ironic {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra_args, env)
    }

    /// Start on an existing data dir.
    pub fn start_in(dir: tempfile::TempDir, extra_args: &[&str], env: &[(&str, &str)]) -> Ironic {
        Self::start_wrapped(dir, &[], extra_args, env)
    }

    /// Start under a wrapper command (e.g. `["prlimit", "--nofile=256:256", "--"]`).
    pub fn start_wrapped(
        dir: tempfile::TempDir,
        wrapper: &[&str],
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Ironic {
        let mut dir = dir;
        for _attempt in 0..5 {
            let port = free_port();
            let log = dir.path().join(format!("ironic-{port}.log"));
            let logf = std::fs::File::create(&log).unwrap();
            let mut cmd = match wrapper.split_first() {
                Some((program, args)) => {
                    let mut c = Command::new(program);
                    c.args(args).arg(env!("CARGO_BIN_EXE_ironic"));
                    c
                }
                None => Command::new(env!("CARGO_BIN_EXE_ironic")),
            };
            cmd.arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(extra_args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(logf);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("spawn ironic");
            let mut me = Ironic {
                child: Some(child),
                url: format!("http://127.0.0.1:{port}"),
                dir,
                log,
            };
            match me.wait_ready() {
                Ok(()) => return me,
                Err(retry) => {
                    let text = me.log_text();
                    if retry && text.contains("already in use") {
                        dir = me.take_dir();
                        drop(me);
                        continue;
                    }
                    panic!("ironic did not start: {text}");
                }
            }
        }
        panic!("could not find a free port for ironic");
    }

    fn take_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    fn wait_ready(&mut self) -> Result<(), bool> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = self.url.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_status)) = child.try_wait()
            {
                return Err(true);
            }
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(false)
    }

    /// The process id (the wrapper's, which `exec`s into `ironic`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL the process (a crash: nothing is cleaned up) and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// The data directory (for restarting on the same state).
    pub fn into_dir(mut self) -> tempfile::TempDir {
        if self.child.is_some() {
            self.terminate();
        }
        self.take_dir()
    }
}

impl Drop for Ironic {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}

/// Stop a service as an operator would: SIGTERM, up to 10 s to drain, then SIGKILL.
pub fn stop_child(c: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// A tool installed by pip: `$IRONIC_TEST_VENV/bin/NAME` first, then `PATH`.
/// Panics with install instructions when missing.
pub fn pip_tool(name: &str, package: &str) -> PathBuf {
    if let Some(venv) = std::env::var_os("IRONIC_TEST_VENV") {
        let p = Path::new(&venv).join("bin").join(name);
        if p.exists() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "this test needs `{name}` from the PyPI package `{package}`: run scripts/test.sh (it installs \
         examples/ironic-standalone/test-deps/pip.txt into .venv-test), or `python3 -m venv /tmp/v && \
         /tmp/v/bin/pip install {package}` and set IRONIC_TEST_VENV=/tmp/v"
    );
}

/// A Python that can `import module` (venv first, then PATH).
pub fn python_with(module: &str, package: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("IRONIC_TEST_VENV") {
        candidates.push(Path::new(&venv).join("bin/python3"));
    }
    candidates.push(PathBuf::from("python3"));
    for py in candidates {
        if Command::new(&py)
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            return py;
        }
    }
    panic!(
        "this test needs the Python package `{package}`: run scripts/test.sh (it installs \
         examples/ironic-standalone/test-deps/pip.txt into .venv-test), or pip install {package} into a \
         venv and set IRONIC_TEST_VENV to it"
    );
}

/// Output of one `baremetal` CLI call.
pub struct CliOut {
    /// Exit status success.
    pub ok: bool,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// Run `baremetal --os-endpoint URL --os-auth-type none ARGS...`.
pub fn baremetal(url: &str, args: &[&str]) -> CliOut {
    let bin = pip_tool("baremetal", "python-ironicclient");
    let out = Command::new(bin)
        .args(["--os-endpoint", url, "--os-auth-type", "none"])
        .args(args)
        .env_remove("OS_CLOUD")
        .output()
        .expect("run baremetal");
    CliOut {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `baremetal` and require success; returns stdout.
pub fn bm(url: &str, args: &[&str]) -> String {
    let o = baremetal(url, args);
    assert!(
        o.ok,
        "baremetal {args:?} failed:\nstdout: {}\nstderr: {}",
        o.stdout, o.stderr
    );
    o.stdout
}

/// A two-worker tokio runtime for a test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A `reqwest` JSON call: (status, body).
pub async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{base}{path}"))
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The lab's Redfish simulator (it keeps event subscriptions) with one system,
/// `/redfish/v1/Systems/lab-0`, user `admin`, password `pw-lab-0`; its disk in `dir`.
pub fn lab_redfish_sim(rt: &tokio::runtime::Runtime, dir: &Path) -> ironic_lab::RedfishSim {
    let spec = ironic_lab::ServerSpec {
        name: "lab-0".into(),
        uuid: uuid::Uuid::new_v4(),
        macs: vec!["52:54:00:e0:14:98".parse().unwrap()],
        disk: dir.join("lab-0.img"),
        disk_size: 1 << 30,
        cpus: 2,
        memory_mib: 2048,
        username: "admin".into(),
        password: ironic_core::Secret::new("pw-lab-0"),
    };
    rt.block_on(ironic_lab::RedfishSim::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![ironic_lab::SimServer::new(spec)],
    ))
    .unwrap()
}
