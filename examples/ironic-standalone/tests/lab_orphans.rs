//! `kill -9` of `ironic lab` leaves no agent behind: the agents it started exit by
//! themselves when it dies, and a lab started again on the same directory ends any
//! that could not. Two labs cannot share a directory.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use ironic_standalone::lab::machine::{
    agent_pid_file, find_agent_binary, process_alive, record_agent,
};

struct LabProcess {
    child: std::process::Child,
}

impl LabProcess {
    fn start(dir: &Path, tag: &str) -> LabProcess {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
            .args([
                "lab",
                "--servers",
                "1",
                "--redfish-ratio",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("lab-{tag}.out"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("lab-{tag}.log"))).unwrap())
            .spawn()
            .expect("spawn ironic lab");
        LabProcess { child }
    }

    /// Waits (bounded) until the lab printed its banner: every node is available.
    fn wait_ready(&mut self, dir: &Path, tag: &str) {
        let end = Instant::now() + Duration::from_secs(300);
        while Instant::now() < end {
            let out =
                std::fs::read_to_string(dir.join(format!("lab-{tag}.out"))).unwrap_or_default();
            if out.contains("Ctrl-C stops everything") {
                return;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the lab exited:\n{}",
                log(dir, tag)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the lab did not come up:\n{}", log(dir, tag));
    }

    fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit (bounded).
    fn wait(mut self) -> std::process::ExitStatus {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < end, "the lab did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log(dir: &Path, tag: &str) -> String {
    std::fs::read_to_string(dir.join(format!("lab-{tag}.log"))).unwrap_or_default()
}

/// Waits until the lab's agent runs (cleaning boots it) and returns its pid.
fn running_agent(dir: &Path, tag: &str) -> u32 {
    let file: PathBuf = agent_pid_file(&dir.join("logs"), "lab-0");
    let end = Instant::now() + Duration::from_secs(240);
    while Instant::now() < end {
        if let Some(pid) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()))
            && process_alive(pid)
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no agent started:\n{}", log(dir, tag));
}

fn agent_binary() -> PathBuf {
    find_agent_binary().unwrap_or_else(|e| panic!("{e}"))
}

fn gone_within(pid: u32, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn kill_9_of_the_lab_leaves_no_agent_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // 1. The agent notices its lab died and exits by itself.
    let lab = LabProcess::start(dir, "1");
    let agent = running_agent(dir, "1");
    lab.signal("-KILL");
    lab.wait();
    assert!(
        gone_within(agent, Duration::from_secs(15)),
        "agent {agent} outlived its lab"
    );

    // 2. An agent that does not watch its parent (started by an older lab, or hung)
    // is ended by the next lab on the directory. (A *stopped* agent needs no help:
    // when its lab dies, its process group is orphaned and the kernel sends it
    // SIGHUP.)
    let mut leftover = std::process::Command::new(agent_binary())
        .args(["--api-url", "http://127.0.0.1:9", "--listen", "127.0.0.1:0"])
        .args([
            "--power-off",
            "exit",
            "--cmdline",
            "/dev/null",
            "--lookup-timeout",
            "3600",
        ])
        .arg("--state-dir")
        .arg(dir.join("leftover-state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start a leftover agent");
    let pid = leftover.id();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    record_agent(&dir.join("logs"), "lab-0", pid);
    std::thread::sleep(Duration::from_millis(500));
    assert!(process_alive(pid));
    let mut lab = LabProcess::start(dir, "3");
    assert!(
        gone_within(pid, Duration::from_secs(60)),
        "the new lab did not end agent {pid}:\n{}",
        log(dir, "3")
    );
    let _ = leftover.wait();
    assert!(log(dir, "3").contains("left running by a previous lab"));

    lab.wait_ready(dir, "3");

    // 3. A second lab on the same directory is refused while this one runs.
    let second = LabProcess::start(dir, "4");
    let status = second.wait();
    assert!(!status.success());
    let text = log(dir, "4");
    assert!(
        text.contains("another ironic lab"),
        "{text}\n--- lab 3:\n{}",
        log(dir, "3")
    );

    lab.signal("-INT");
    assert!(lab.wait().success(), "{}", log(dir, "3"));
}
