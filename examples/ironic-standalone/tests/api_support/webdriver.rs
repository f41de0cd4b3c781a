//! Headless Chromium driven over WebDriver (`chromedriver`, the W3C protocol
//! over HTTP), for the tests that look at pages as an operator does (the
//! dashboard, noVNC through the console proxy).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where `names` is installed, or a failure saying `hint`.
pub fn find(names: &[&str], hint: &str) -> std::path::PathBuf {
    for n in names {
        for d in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = std::path::Path::new(d).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("{} is missing: {hint}", names[0]);
}

/// A `chromedriver` on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts `chromedriver` on a free loopback port (fails saying what to
    /// install when it or Chromium is missing).
    pub fn start() -> Driver {
        let chromedriver = find(
            &["chromedriver"],
            "install Debian's `chromium` and `chromium-driver` (scripts/setup-test-deps.sh does)",
        );
        find(
            &["chromium"],
            "install Debian's `chromium` and `chromium-driver` (scripts/setup-test-deps.sh does)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().unwrap(),
        }
    }
}

/// A WebDriver session (W3C protocol over HTTP).
pub struct Browser {
    c: reqwest::Client,
    base: String,
}

impl Browser {
    pub async fn open(d: &Driver) -> Browser {
        let c = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.get(format!("{}/status", d.url)).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--no-first-run",
                         "--disable-dev-shm-usage", "--window-size=1400,900",
                         format!("--user-data-dir={}", d.profile.path().display())]
            }
        }}});
        let r: Value = c
            .post(format!("{}/session", d.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"));
        Browser {
            c,
            base: format!("{}/session/{id}", d.url),
        }
    }

    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.c.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let v: Value = r.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {v}");
        }
        v["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Run `script` (a function body; `arguments` available) in the page.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Poll `script` until it returns a truthy value (20 s at most).
    pub async fn until(&self, what: &str, script: &str, args: Value) -> Value {
        self.until_within(what, script, args, Duration::from_secs(20))
            .await
    }

    /// Poll `script` until it returns a truthy value, `limit` at most.
    pub async fn until_within(
        &self,
        what: &str,
        script: &str,
        args: Value,
        limit: Duration,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(script, args.clone()).await;
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.body.innerText", json!([])).await;
                panic!("timed out waiting for {what}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.c.delete(&self.base).send().await;
    }
}
