//! Graphical consoles end to end, with real peers: the real `ironic` binary with
//! `[vnc] enabled` and the `process` provider running TigerVNC's `Xvnc` for each
//! console, its noVNC proxy spoken to at the RFB level over a websocket
//! (tokio-tungstenite) and by the real noVNC web app (Debian `novnc`) in headless
//! Chromium, the console switched with the API and the `baremetal` CLI, and an
//! expired token refused and its console stopped by the periodic check.

mod api_support;

use std::time::{Duration, Instant};

use api_support::webdriver::{Browser, Driver};
use api_support::{Ironic, bm, call, rt};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

const PASSWORD: &str = "bmc-pw-Zq7!never-logged";
const GEOMETRY: (u16, u16) = (1280, 720);

fn need(paths: &[&str], hint: &str) -> String {
    for p in paths {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("{} is missing: {hint}", paths[0]);
}

fn xvnc() -> String {
    need(
        &["/usr/bin/Xvnc"],
        "install Debian's tigervnc-standalone-server (scripts/setup-test-deps.sh does)",
    )
}

fn novnc() -> String {
    need(
        &["/usr/share/novnc/vnc_lite.html"],
        "install Debian's novnc (scripts/setup-test-deps.sh does)",
    );
    "/usr/share/novnc".into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ironic` with the noVNC proxy on a free port and the `process` provider
/// running Xvnc: a shell records the app info it got (from its environment) in
/// `$CONSOLE_TEST_DIR/<node>.json` and becomes Xvnc (on a free display, told on
/// fd 3: Xvnc closes that descriptor, which must not be stderr, else its log
/// lines go to the next client's socket).
struct Console {
    ir: Ironic,
    vnc_port: u16,
    dir: tempfile::TempDir,
}

fn start(token_timeout: u64, expire_interval: u64) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let xvnc = xvnc();
    let web = novnc();
    for _ in 0..5 {
        let vnc_port = free_port();
        let script = format!(
            "printf %s \"$APP_INFO\" > \"$CONSOLE_TEST_DIR/$NODE_UUID.json\"; exec {xvnc} -displayfd 3 -rfbport {{port}} -interface {{host}} -SecurityTypes None -nolisten tcp -geometry {}x{} -desktop ironic-{{node}} 3>/dev/null",
            GEOMETRY.0, GEOMETRY.1
        );
        let command = json!(["/bin/sh", "-c", script]).to_string();
        let env = [
            ("IRONIC__STORAGE__BACKEND", "memory".to_owned()),
            ("IRONIC__CONDUCTOR__POWER_STATE_SYNC_INTERVAL", "0".into()),
            (
                "IRONIC__DRIVERS__ENABLED_CONSOLE_INTERFACES",
                r#"["no-console", "fake", "fake-graphical", "redfish-graphical"]"#.into(),
            ),
            ("IRONIC__VNC__ENABLED", "true".into()),
            ("IRONIC__VNC__HOST_IP", "127.0.0.1".into()),
            ("IRONIC__VNC__PORT", vnc_port.to_string()),
            (
                "IRONIC__VNC__PUBLIC_URL",
                format!("http://127.0.0.1:{vnc_port}/vnc_lite.html"),
            ),
            ("IRONIC__VNC__NOVNC_WEB", web.clone()),
            ("IRONIC__VNC__CONTAINER_PROVIDER", "process".into()),
            ("IRONIC__VNC__PROCESS_COMMAND", command),
            (
                "IRONIC__VNC__PROCESS_LOG_DIR",
                dir.path().display().to_string(),
            ),
            ("IRONIC__VNC__WAIT_FOR_READY_TIMEOUT", "60".into()),
            ("IRONIC__VNC__TOKEN_TIMEOUT", token_timeout.to_string()),
            (
                "IRONIC__VNC__EXPIRE_CONSOLE_SESSION_INTERVAL",
                expire_interval.to_string(),
            ),
            ("CONSOLE_TEST_DIR", dir.path().display().to_string()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ir = Ironic::start(&[], &env);
        // the proxy starts with the API; a port taken meanwhile fails the start
        if std::net::TcpStream::connect(("127.0.0.1", vnc_port)).is_ok() {
            return Console { ir, vnc_port, dir };
        }
        assert!(
            ir.log_text().contains("already in use") || ir.log_text().contains("noVNC"),
            "{}",
            ir.log_text()
        );
    }
    panic!("no free port for the noVNC proxy");
}

/// The PID of the Xvnc serving `node` (its desktop name), if any.
fn xvnc_pid(node: &str) -> Option<u32> {
    let want = format!("ironic-{node}");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.contains(&want.as_bytes()) && alive(pid) {
            return Some(pid);
        }
    }
    None
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The token in a console URL (`...?path=websockify%3Fnode%3D...%26token%3D...`).
fn token_of(url: &str) -> String {
    let path = percent_decode(url.split_once("?path=").unwrap().1);
    path.split_once("&token=").unwrap().1.to_owned()
}

async fn console_state(url: &str, node: &str) -> Value {
    let (s, b) = call(
        url,
        Method::GET,
        &format!("/v1/nodes/{node}/states/console"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn set_console(url: &str, node: &str, enabled: bool) {
    let (s, b) = call(
        url,
        Method::PUT,
        &format!("/v1/nodes/{node}/states/console"),
        Some(json!({"enabled": enabled})),
    )
    .await;
    assert_eq!(s, 202, "{b}");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open the proxy's websocket as noVNC does; the HTTP status when refused.
async fn ws_open(port: u16, node: &str, token: &str, origin: Option<&str>) -> Result<Ws, u16> {
    let mut req = format!("ws://127.0.0.1:{port}/websockify?node={node}&token={token}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            assert_eq!(
                resp.headers()
                    .get("Sec-WebSocket-Protocol")
                    .map(|v| v.to_str().unwrap()),
                Some("binary")
            );
            Ok(ws)
        }
        Err(tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// A websocket read as a byte stream.
struct Rfb {
    ws: Ws,
    buf: Vec<u8>,
}

impl Rfb {
    async fn read(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .expect("the proxy sent nothing for 60 s")
                .expect("the proxy closed the websocket")
                .unwrap();
            match m {
                Message::Binary(b) => self.buf.extend_from_slice(&b),
                Message::Close(c) => panic!("the proxy closed the websocket: {c:?}"),
                _ => {}
            }
        }
        self.buf.drain(..n).collect()
    }
    async fn write(&mut self, b: &[u8]) {
        self.ws
            .send(Message::Binary(b.to_vec().into()))
            .await
            .unwrap();
    }
}

/// The RFB handshake a VNC client does through the proxy, up to ServerInit:
/// returns the framebuffer size and the desktop name.
async fn rfb_handshake(ws: Ws) -> ((u16, u16), String) {
    let mut c = Rfb {
        ws,
        buf: Vec::new(),
    };
    assert_eq!(c.read(12).await, b"RFB 003.008\n");
    c.write(b"RFB 003.008\n").await;
    // the proxy offers None only
    assert_eq!(c.read(2).await, [1, 1]);
    c.write(&[1]).await;
    // SecurityResult OK (from the server, relayed)
    assert_eq!(c.read(4).await, [0, 0, 0, 0]);
    // ClientInit: shared
    c.write(&[1]).await;
    let init = c.read(24).await;
    let w = u16::from_be_bytes([init[0], init[1]]);
    let h = u16::from_be_bytes([init[2], init[3]]);
    let len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    let name = String::from_utf8(c.read(len).await).unwrap();
    let _ = c.ws.close(None).await;
    ((w, h), name)
}

// ---------------------------------------------------------------------------
// Chromium over WebDriver (api_support::webdriver, as tests/dashboard.rs)

/// Open `url` in a new headless session and poll `script` until it returns
/// a string starting with `want` (90 s at most); returns the last value.
async fn browser_wait_for(driver: &Driver, url: &str, script: &str, want: &str) -> String {
    let b = Browser::open(driver).await;
    b.go(url).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = b
            .js(script, json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if last.starts_with(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.close().await;
    last
}

// ---------------------------------------------------------------------------

#[test]
fn redfish_graphical_console_through_the_novnc_proxy_in_a_browser_and_the_cli() {
    let con = start(600, 120);
    let url = con.ir.url.clone();
    let port = con.vnc_port;
    rt().block_on(async {
        let (s, n) = call(
            &url,
            Method::POST,
            "/v1/nodes",
            Some(json!({
                "driver": "redfish",
                "name": "kvm-1",
                "console_interface": "redfish-graphical",
                "driver_info": {
                    "redfish_address": "https://192.0.2.10:8443",
                    "redfish_system_id": "/redfish/v1/Systems/1",
                    "redfish_username": "admin",
                    "redfish_password": PASSWORD,
                },
            })),
        )
        .await;
        assert_eq!(s, 201, "{n}");
        let node = n["uuid"].as_str().unwrap().to_owned();
        assert_eq!(
            console_state(&url, &node).await,
            json!({"console_enabled": false, "console_info": null})
        );

        // Enable: Xvnc runs, with the BMC's details in its environment only.
        set_console(&url, &node, true).await;
        let st = console_state(&url, &node).await;
        assert_eq!(st["console_enabled"], true, "{st}");
        assert_eq!(st["console_info"]["type"], "vnc", "{st}");
        let console_url = st["console_info"]["url"].as_str().unwrap().to_owned();
        let prefix = format!(
            "http://127.0.0.1:{port}/vnc_lite.html?path=websockify%3Fnode%3D{node}%26token%3D"
        );
        assert!(console_url.starts_with(&prefix), "{console_url}");
        let token = token_of(&console_url);
        assert_eq!(token.len(), 43, "{token}");
        // Enabling an enabled console does nothing (Ironic: "No console action
        // was triggered"): same token. Bad bodies get Ironic's messages.
        set_console(&url, &node, true).await;
        assert_eq!(console_state(&url, &node).await, st);
        for (body, want) in [
            (json!({}), "Missing mandatory parameter: enabled"),
            (
                json!({"enabled": "maybe"}),
                "Invalid enabled: Unrecognized value 'maybe', acceptable values are:",
            ),
        ] {
            let (s, b) = call(
                &url,
                Method::PUT,
                &format!("/v1/nodes/{node}/states/console"),
                Some(body),
            )
            .await;
            assert_eq!(s, 400, "{b}");
            assert!(b.to_string().contains(want), "{b}");
        }
        let pid = xvnc_pid(&node).expect("no Xvnc runs for the node");
        let cmdline =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
                .into_owned();
        assert!(!cmdline.contains(PASSWORD), "{cmdline}");
        let app_info: Value = serde_json::from_str(
            &std::fs::read_to_string(con.dir.path().join(format!("{node}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            app_info,
            json!({
                "address": "https://192.0.2.10:8443",
                "system_id": "/redfish/v1/Systems/1",
                "username": "admin",
                "password": PASSWORD,
                "verify_ca": true,
                "auth_type": "auto",
                "node_uuid": node,
            })
        );
        let environ =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
                .into_owned();
        assert!(environ.split('\0').any(|v| v == "APP=redfish-graphical"));
        assert!(environ.split('\0').any(|v| v == "READ_ONLY=False"));
        // The API masks the token.
        let (_, n) = call(&url, Method::GET, &format!("/v1/nodes/{node}"), None).await;
        let dii = &n["driver_internal_info"];
        assert_eq!(dii["novnc_secret_token"], "******", "{dii}");
        assert_eq!(dii["vnc_host"], "127.0.0.1", "{dii}");
        assert!(dii["vnc_port"].as_u64().is_some(), "{dii}");

        // (a) The RFB handshake through the proxy reaches Xvnc's ServerInit.
        let ws = ws_open(port, &node, &token, None)
            .await
            .expect("proxy refused");
        let ir = &con.ir;
        let (size, name) = match tokio::spawn(rfb_handshake(ws)).await {
            Ok(r) => r,
            Err(e) => panic!("RFB through the proxy: {e}; ironic log:\n{}", ir.log_text()),
        };
        assert_eq!(size, GEOMETRY);
        assert_eq!(name, format!("ironic-{node}"));
        // A browser on this host's address is accepted; other origins, other
        // tokens and other nodes are not.
        let ws = ws_open(
            port,
            &node,
            &token,
            Some(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("same-origin refused");
        drop(ws);
        assert_eq!(
            ws_open(port, &node, &token, Some("http://evil.example"))
                .await
                .err(),
            Some(403)
        );
        let wrong = format!("{}A", &token[..42]);
        assert_eq!(ws_open(port, &node, &wrong, None).await.err(), Some(401));
        assert_eq!(ws_open(port, &node, "", None).await.err(), Some(401));
        let other = uuid::Uuid::new_v4().to_string();
        assert_eq!(ws_open(port, &other, &token, None).await.err(), Some(401));
        // The web app is served from novnc_web, files only.
        let c = reqwest::Client::new();
        let r = c
            .get(format!("http://127.0.0.1:{port}/vnc_lite.html"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("core/rfb.js"));
        for p in [
            "/",
            "/core",
            "/nonexistent.html",
            "/%2e%2e/%2e%2e/etc/passwd",
        ] {
            let s = c
                .get(format!("http://127.0.0.1:{port}{p}"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(s, 404, "{p}");
        }

        // (b) noVNC in Chromium, opened at the URL the API gave, connects.
        let driver = Driver::start();
        let status = browser_wait_for(
            &driver,
            &console_url,
            "return document.getElementById('status').textContent",
            "Connected",
        )
        .await;
        assert!(
            status.starts_with("Connected"),
            "noVNC shows {status:?}; ironic log:\n{}",
            con.ir.log_text()
        );
        drop(driver);

        // (c) Disable: the process is gone, the URL and token with it.
        set_console(&url, &node, false).await;
        assert_eq!(
            console_state(&url, &node).await,
            json!({"console_enabled": false, "console_info": null})
        );
        assert!(
            !alive(pid),
            "Xvnc {pid} still runs after the console was disabled"
        );
        assert_eq!(xvnc_pid(&node), None);
        assert_eq!(ws_open(port, &node, &token, None).await.err(), Some(401));
        let (_, n) = call(&url, Method::GET, &format!("/v1/nodes/{node}"), None).await;
        let dii = n["driver_internal_info"].as_object().unwrap();
        for k in [
            "novnc_secret_token",
            "novnc_secret_token_created",
            "vnc_host",
            "vnc_port",
        ] {
            assert!(!dii.contains_key(k), "{k}: {dii:?}");
        }

        // The same with the baremetal CLI.
        let url2 = url.clone();
        let node2 = node.clone();
        let (shown, pid2) = tokio::task::spawn_blocking(move || {
            bm(&url2, &["node", "console", "enable", &node2]);
            let shown: Value = serde_json::from_str(&bm(
                &url2,
                &["node", "console", "show", &node2, "-f", "json"],
            ))
            .unwrap();
            let pid2 = xvnc_pid(&node2);
            bm(&url2, &["node", "console", "disable", &node2]);
            (shown, pid2)
        })
        .await
        .unwrap();
        assert_eq!(shown["console_enabled"], true, "{shown}");
        assert_eq!(shown["console_info"]["type"], "vnc", "{shown}");
        let cli_token = token_of(shown["console_info"]["url"].as_str().unwrap());
        assert_ne!(cli_token, token);
        let pid2 = pid2.expect("no Xvnc after baremetal node console enable");
        assert!(
            !alive(pid2),
            "Xvnc {pid2} still runs after baremetal node console disable"
        );
        let url2 = url.clone();
        let node2 = node.clone();
        let shown: Value = tokio::task::spawn_blocking(move || {
            serde_json::from_str(&bm(
                &url2,
                &["node", "console", "show", &node2, "-f", "json"],
            ))
            .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(shown["console_enabled"], false, "{shown}");

        // Secrets never reach the log.
        let log = con.ir.log_text();
        for secret in [PASSWORD, token.as_str(), cli_token.as_str()] {
            assert!(!log.contains(secret), "the log shows a secret:\n{log}");
        }
    });
}

#[test]
fn expired_console_tokens_are_refused_and_the_console_stopped() {
    // Tokens live 10 s (Ironic's minimum); the expiry check runs every 30 s.
    let con = start(10, 30);
    let url = con.ir.url.clone();
    let port = con.vnc_port;
    rt().block_on(async {
        let (s, n) = call(
            &url,
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "console_interface": "fake-graphical"})),
        )
        .await;
        assert_eq!(s, 201, "{n}");
        let node = n["uuid"].as_str().unwrap().to_owned();
        set_console(&url, &node, true).await;
        let st = console_state(&url, &node).await;
        let token = token_of(st["console_info"]["url"].as_str().unwrap());
        let pid = xvnc_pid(&node).expect("no Xvnc runs for the node");
        let environ =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
                .into_owned();
        assert!(environ.split('\0').any(|v| v == "APP=fake"));
        let enabled_at = Instant::now();
        // Past the token's lifetime the proxy refuses it, whether or not the
        // periodic check has stopped the console yet.
        tokio::time::sleep(Duration::from_secs(11).saturating_sub(enabled_at.elapsed())).await;
        assert_eq!(ws_open(port, &node, &token, None).await.err(), Some(401));
        // The periodic check stops the console: Xvnc ends, console_enabled false.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let st = console_state(&url, &node).await;
            if st["console_enabled"] == false {
                assert_eq!(st["console_info"], Value::Null);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the expired console was not stopped: {st}\n{}",
                con.ir.log_text()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            !alive(pid),
            "Xvnc {pid} still runs after its session expired"
        );
        let log = con.ir.log_text();
        assert!(
            log.contains("graphical console session has expired"),
            "{log}"
        );
        assert!(!log.contains(&token), "the log shows the token:\n{log}");
    });
}
