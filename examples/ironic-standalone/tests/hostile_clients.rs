//! The `ironic` binary against hostile and broken clients, over loopback (issue 20):
//! slowloris heads, a connection flood under a low open-file limit, oversized and
//! slow bodies, oversized headers, deep JSON, malformed version headers, a
//! wrong-password flood with the real `htpasswd`, SIGTERM with stuck clients, idle
//! keep-alives, clients that stop reading large lists (write timeout, list byte
//! budget, response memory), a direct deploy without an image, and bad or
//! repeated TFTP requests. `kill -9` of the lab is in `lab_orphans.rs`. Every loop
//! is bounded; nothing asserts on latency.

mod api_support;

use std::time::{Duration, Instant};

use api_support::{Ironic, python_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MEMORY: (&str, &str) = ("IRONIC__STORAGE__BACKEND", "memory");

/// A connection that sent part of a request head and nothing more.
async fn half_head(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Whether the server closes `s` within `within` (EOF or reset; any bytes it sends
/// first, such as an error response, are read and ignored).
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends raw bytes and returns the status code of the response.
async fn raw_status(addr: &str, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn get_v1(c: &reqwest::Client, url: &str) -> u16 {
    c.get(format!("{url}/v1"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn inner_error(v: &Value) -> Value {
    serde_json::from_str(v["error_message"].as_str().expect("error_message")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_heads_are_cut_and_a_real_client_still_gets_in() {
    let ironic = Ironic::start(
        &[],
        &[
            MEMORY,
            ("IRONIC__API__HEADER_READ_TIMEOUT", "2"),
            ("IRONIC__API__MAX_CONNECTIONS", "40"),
        ],
    );
    let addr = ironic.addr();
    // 120 slow clients, three times the connection limit, each trickling one header
    // byte every 300 ms until the server hangs up.
    let mut slow = Vec::new();
    for _ in 0..120 {
        let mut s = half_head(&addr).await;
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 256];
            for _ in 0..100 {
                if s.write_all(b"a").await.is_err() {
                    return true;
                }
                match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    _ => {}
                }
                if started.elapsed() > Duration::from_secs(30) {
                    break;
                }
            }
            false
        }));
    }
    // Meanwhile a client sending whole requests is served, every time.
    let c = client();
    for i in 0..20 {
        assert_eq!(
            get_v1(&c, &ironic.url).await,
            200,
            "request {i} during the flood"
        );
    }
    for t in slow {
        assert!(t.await.unwrap(), "a slow client was never disconnected");
    }
    let log = ironic.log_text();
    assert!(log.contains("connection limit reached"), "{log}");
    assert_eq!(get_v1(&c, &ironic.url).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_under_a_low_open_file_limit_leaves_the_api_usable() {
    let dir = tempfile::tempdir().unwrap();
    let ironic = Ironic::start_wrapped(
        dir,
        &["prlimit", "--nofile=160:160", "--"],
        &[],
        &[MEMORY, ("IRONIC__API__HEADER_READ_TIMEOUT", "3")],
    );
    let addr = ironic.addr();
    let started = Instant::now();
    // 400 connections with half a head: more than the process has descriptors.
    let mut held = Vec::new();
    for _ in 0..400 {
        match tokio::time::timeout(Duration::from_secs(5), half_head(&addr)).await {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    let c = client();
    for i in 0..10 {
        assert_eq!(
            get_v1(&c, &ironic.url).await,
            200,
            "request {i} during the flood"
        );
        let r = c
            .post(format!("{}/v1/nodes", ironic.url))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .json(&json!({"driver": "fake-hardware", "name": format!("n{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {i} during the flood");
    }
    drop(held);
    let log = ironic.log_text();
    assert!(
        log.contains("max_connections lowered to fit the open-file limit"),
        "{log}"
    );
    // Accept errors, if any, are logged at most about once a second, not in a loop.
    let lines = log.matches("accept failed").count() as u64;
    assert!(
        lines <= started.elapsed().as_secs() + 2,
        "{lines} accept-error lines in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_slow_and_malformed_requests_get_clear_errors_and_change_nothing() {
    let ironic = Ironic::start(&[], &[MEMORY, ("IRONIC__API__BODY_READ_TIMEOUT", "2")]);
    let addr = ironic.addr();
    let url = &ironic.url;
    let c = client();
    let post_node = |body: Vec<u8>| {
        c.post(format!("{url}/v1/nodes"))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .header("Content-Type", "application/json")
            .body(body)
    };
    let node_with_extra = |bytes: usize| {
        serde_json::to_vec(
            &json!({"driver": "fake-hardware", "extra": {"blob": "x".repeat(bytes)}}),
        )
        .unwrap()
    };

    // Over 1 MiB (Ironic's max_json_body_size): 413, refused from Content-Length.
    let r = post_node(node_with_extra(1536 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let e = inner_error(&r.json().await.unwrap());
    assert!(
        e["faultstring"]
            .as_str()
            .unwrap()
            .contains("max_json_body_size"),
        "{e}"
    );
    // The same without Content-Length (chunked): counted while read, 413.
    let body = node_with_extra(1536 * 1024);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let r = c
        .post(format!("{url}/v1/nodes"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Under the limit is fine.
    let r = post_node(node_with_extra(900 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    // The provision endpoint has its own, larger limit (config drives): 2 MiB is
    // not refused for its size (the node is in enroll, so the verb is).
    let r = c
        .put(format!("{url}/v1/nodes/{uuid}/states/provision"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .json(&json!({"target": "active", "configdrive": "x".repeat(2 << 20)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());

    // JSON nested deeper than 25: 400; 20 levels: accepted.
    let nested = |depth: usize| {
        format!(
            "{{\"driver\": \"fake-hardware\", \"extra\": {{\"a\": {}1{}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
        .into_bytes()
    };
    let r = post_node(nested(40)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e = inner_error(&r.json().await.unwrap());
    assert!(
        e["faultstring"]
            .as_str()
            .unwrap()
            .contains("nested too deeply"),
        "{e}"
    );
    assert_eq!(post_node(nested(20)).send().await.unwrap().status(), 201);

    // A request head over 32 KiB, or with too many fields: 431.
    let big = format!(
        "GET /v1 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    assert_eq!(raw_status(&addr, big.as_bytes()).await, 431);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET /v1 HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(raw_status(&addr, req.as_bytes()).await, 431);

    // A version header that is not ASCII is malformed (406), not absent.
    let req = b"GET /v1/nodes HTTP/1.1\r\nHost: x\r\nX-OpenStack-Ironic-API-Version: 1.\xff\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_status(&addr, req).await, 406);

    // A body that stops half-way: 408 once the body read timeout passes.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"driver\":",
    )
    .await
    .unwrap();
    let mut out = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut out))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    let head = String::from_utf8_lossy(&out[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");

    // Nothing was created by the refused requests: the two accepted nodes only.
    let nodes: Value = c
        .get(format!("{url}/v1/nodes"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 2, "{nodes}");
}

fn htpasswd(args: &[&str]) {
    let out = std::process::Command::new("htpasswd")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs `htpasswd` (Debian package apache2-utils: apt-get install apache2-utils): {e}"
            )
        });
    assert!(
        out.status.success(),
        "htpasswd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_refused_and_removed_users_lose_access_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let f = file.to_str().unwrap();
    htpasswd(&["-c", "-B", "-b", f, "admin", "s3cret"]);
    htpasswd(&["-B", "-b", f, "ops", "0ps-pass"]);
    let ironic = Ironic::start(
        &[],
        &[
            MEMORY,
            ("IRONIC__API__AUTH_STRATEGY", "http_basic"),
            ("IRONIC__API__HTTP_BASIC_AUTH_USER_FILE", f),
        ],
    );
    let url = ironic.url.clone();
    let nodes = |user: &str, pass: &str| {
        let c = client();
        let (u, p, url) = (user.to_owned(), pass.to_owned(), url.clone());
        async move {
            c.get(format!("{url}/v1/nodes"))
                .basic_auth(u, Some(p))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // 64 requests with wrong passwords from 16 clients at a time (known and
    // unknown users).
    let mut flood = Vec::new();
    for i in 0..64 {
        let call = nodes(if i % 2 == 0 { "admin" } else { "mallory" }, "guess");
        flood.push(tokio::spawn(call));
        if flood.len() % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // The public root and a right password keep working meanwhile.
    let c = client();
    for _ in 0..10 {
        assert_eq!(get_v1(&c, &url).await, 200);
    }
    assert_eq!(nodes("admin", "s3cret").await, 200);
    for t in flood {
        assert_eq!(t.await.unwrap(), 401);
    }
    // The operator removes `ops`: refused on the next request, no restart.
    assert_eq!(nodes("ops", "0ps-pass").await, 200);
    htpasswd(&["-D", f, "ops"]);
    assert_eq!(nodes("ops", "0ps-pass").await, 401);
    assert_eq!(nodes("admin", "s3cret").await, 200);
    // A password change applies at once too (the cached success is dropped).
    htpasswd(&["-B", "-b", f, "admin", "n3w"]);
    assert_eq!(nodes("admin", "s3cret").await, 401);
    assert_eq!(nodes("admin", "n3w").await, 200);
    let log = ironic.log_text();
    assert!(log.contains("htpasswd file changed: reloaded"), "{log}");
    for secret in ["s3cret", "0ps-pass", "n3w", "guess"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stuck_clients_drains_within_the_bound_and_stops_the_conductor() {
    let mut ironic = Ironic::start(&[], &[MEMORY, ("IRONIC__API__SHUTDOWN_TIMEOUT", "2")]);
    let addr = ironic.addr();
    // One client stuck in its head, one stuck half-way through a body (a request in
    // progress, which the drain waits for), one idle keep-alive connection.
    let mut in_head = half_head(&addr).await;
    let mut in_body = TcpStream::connect(&addr).await.unwrap();
    in_body
        .write_all(
            b"POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"driver\":",
        )
        .await
        .unwrap();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let status = tokio::task::spawn_blocking(move || {
        let s = ironic.terminate();
        (s, ironic)
    });
    // Connections without a request in progress are closed at once.
    assert!(closed_by_server(&mut idle, Duration::from_secs(10)).await);
    assert!(closed_by_server(&mut in_head, Duration::from_secs(10)).await);
    // The stuck body is cut when the drain time is up.
    assert!(closed_by_server(&mut in_body, Duration::from_secs(20)).await);
    let (status, ironic) = status.await.unwrap();
    let log = ironic.log_text();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("drain time is up"), "{log}");
    assert!(log.contains("conductor stopped"), "{log}");
}

/// Nodes with large `extra` fill a list page's byte budget: the page is cut early
/// with a `next` link, every node is reached by following `next` (as reqwest here,
/// and openstacksdk's pagination), none twice, and no response holds much more
/// than the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_lists_are_cut_at_the_byte_budget_and_next_reaches_every_node() {
    // 64 KiB budget (the minimum); nodes of ~20 KiB each.
    let ironic = Ironic::start(&[], &[MEMORY, ("IRONIC__API__MAX_LIST_BODY_SIZE", "64")]);
    let url = &ironic.url;
    let c = client();
    let created: std::collections::BTreeSet<String> =
        big_nodes(&c, url, 12, 20).await.into_iter().collect();
    // Small nodes are unaffected: the summary list (uuid, name, states) fits.
    let r: Value = c
        .get(format!("{url}/v1/nodes"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["nodes"].as_array().unwrap().len(), 12);
    assert!(r.get("next").is_none(), "{}", r["next"]);

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(format!("{url}/v1/nodes/detail"));
    while let Some(link) = next.take() {
        pages += 1;
        assert!(pages <= 20, "next links never end");
        let r = c
            .get(&link)
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        // The budget plus at most one node past it.
        assert!(
            body.len() < 64 * 1024 + 24 * 1024,
            "page of {} bytes",
            body.len()
        );
        let page: Value = serde_json::from_slice(&body).unwrap();
        for n in page["nodes"].as_array().unwrap() {
            assert_eq!(n["extra"]["blob"].as_str().unwrap().len(), 20 * 1024);
            seen.push(n["uuid"].as_str().unwrap().to_owned());
        }
        next = page.get("next").and_then(Value::as_str).map(str::to_owned);
        if let Some(n) = &next {
            assert!(
                n.contains("/v1/nodes/detail?") && n.contains("marker="),
                "{n}"
            );
        }
    }
    assert!(
        pages >= 4,
        "12 nodes of 20 KiB in a 64 KiB budget: {pages} pages"
    );
    let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a node was listed twice: {seen:?}"
    );
    assert_eq!(unique, created);

    // An explicit limit smaller than what the budget holds is still honoured.
    let r: Value = c
        .get(format!("{url}/v1/nodes/detail?limit=1"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["nodes"].as_array().unwrap().len(), 1);
    assert!(r["next"].as_str().unwrap().contains("limit=1"));

    // openstacksdk, a real client, follows the cut pages to every node.
    let python = python_with("openstack", "openstacksdk");
    let script = "import sys, openstack\n\
        conn = openstack.connect(load_yaml_config=False, load_envvars=False,\n\
            auth_type='none', baremetal_endpoint_override=sys.argv[1])\n\
        print(' '.join(sorted(n.id for n in conn.baremetal.nodes(details=True))))\n";
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(url)
        .output()
        .expect("run python");
    let listed: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && listed == created,
        "openstacksdk listed {listed:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a response head from `s`: (status, Content-Length, body bytes read past
/// the head).
async fn read_head(s: &mut TcpStream) -> (u16, usize, usize) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("no response head")
            .unwrap();
        assert!(n > 0, "closed before the head: {out:?}");
        out.extend_from_slice(&buf[..n]);
        if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    (status, len, out.len() - end)
}

/// Creates `n` nodes of ~`kib` KiB each (`extra`), named `big-{i}`; their UUIDs.
async fn big_nodes(c: &reqwest::Client, url: &str, n: usize, kib: usize) -> Vec<String> {
    let mut uuids = Vec::with_capacity(n);
    for i in 0..n {
        let r = c
            .post(format!("{url}/v1/nodes"))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .json(
                &json!({"driver": "fake-hardware", "name": format!("big-{i}"),
                          "extra": {"blob": "x".repeat(kib * 1024)}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let n: Value = r.json().await.unwrap();
        uuids.push(n["uuid"].as_str().unwrap().to_owned());
    }
    uuids
}

/// A client with a small receive buffer that asks for the node detail list,
/// reads the response head and stops reading: (stream, Content-Length, body
/// bytes read so far).
async fn stalled_reader(addr: &str) -> (TcpStream, usize, usize) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr.parse().unwrap()).await.unwrap();
    s.write_all(
        b"GET /v1/nodes/detail HTTP/1.1\r\nHost: x\r\nX-OpenStack-Ironic-API-Version: latest\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, len, got) = read_head(&mut s).await;
    assert_eq!(status, 200);
    (s, len, got)
}

/// An idle keep-alive connection is closed after the header-read timeout, and a
/// client that stops reading a large response is cut after the write timeout
/// (issue 20's 8 slow readers of `/v1/nodes/detail`): the response is not kept
/// for it, and other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alives_and_clients_that_stop_reading_are_cut() {
    let ironic = Ironic::start(
        &[],
        &[
            MEMORY,
            ("IRONIC__API__HEADER_READ_TIMEOUT", "2"),
            ("IRONIC__API__WRITE_TIMEOUT", "1"),
        ],
    );
    let addr = ironic.addr();
    let url = &ironic.url;
    let c = client();

    // A keep-alive connection after one request, then silence.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, len, got) = read_head(&mut idle).await;
    assert_eq!(status, 200);
    let mut body = vec![0u8; len - got];
    idle.read_exact(&mut body).await.unwrap();
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(20)).await,
        "an idle keep-alive connection was never closed"
    );

    // About 11 MB of nodes, more than loopback's socket buffers hold; four
    // readers read the head and stop.
    big_nodes(&c, url, 12, 900).await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let (s, len, got) = stalled_reader(&addr).await;
        assert!(len > 10 << 20, "{len}");
        stalled.push((s, len, got));
    }
    // Others are served while they stall.
    for i in 0..5 {
        assert_eq!(get_v1(&c, url).await, 200, "request {i}");
    }
    // Ten times the write timeout without reading; then what is left in the
    // socket buffers is read, and the connection ends short of the body.
    tokio::time::sleep(Duration::from_secs(10)).await;
    for (mut s, len, mut got) in stalled {
        let mut buf = vec![0u8; 1 << 16];
        let ended = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the server kept the connection open");
        assert!(
            got < len,
            "a client that stopped reading still got the whole body ({got} of {len})"
        );
    }
    // And the full list still reaches a client that reads.
    let r = c
        .get(format!("{url}/v1/nodes/detail"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 12);
}

/// While stalled readers hold large responses, the memory for responses being
/// sent (`max_response_memory`) is spent: another large response gets 503 with
/// `Retry-After` instead of more memory, small responses are served, and the
/// memory comes back when the readers go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_cannot_hold_more_than_the_response_memory() {
    let ironic = Ironic::start(
        &[],
        &[
            MEMORY,
            // Three detail pages of ~11 MB fit, a fourth does not.
            ("IRONIC__API__MAX_RESPONSE_MEMORY", "40000"),
        ],
    );
    let addr = ironic.addr();
    let url = &ironic.url;
    let c = client();
    big_nodes(&c, url, 12, 900).await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stalled_reader(&addr).await);
    }
    let started = Instant::now();
    for _ in 0..10 {
        let r = c
            .get(format!("{url}/v1/nodes/detail"))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let e = inner_error(&r.json().await.unwrap());
        assert!(
            e["faultstring"]
                .as_str()
                .unwrap()
                .contains("max_response_memory"),
            "{e}"
        );
    }
    // Small responses, and one node of 900 KiB, still fit.
    assert_eq!(get_v1(&c, url).await, 200);
    let (s, v) = api(&c, reqwest::Method::GET, format!("{url}/v1/nodes"), None).await;
    assert_eq!((s, v["nodes"].as_array().map(Vec::len)), (200, Some(12)));
    let (s, n) = api(
        &c,
        reqwest::Method::GET,
        format!("{url}/v1/nodes/big-0"),
        None,
    )
    .await;
    assert_eq!(
        (s, n["extra"]["blob"].as_str().map(str::len)),
        (200, Some(900 * 1024))
    );
    // Refusals are logged, at most about once a second.
    let log = ironic.log_text();
    let lines = log.matches("large response refused").count() as u64;
    assert!(
        lines >= 1 && lines <= started.elapsed().as_secs() + 2,
        "{lines} refusal lines in {:?}",
        started.elapsed()
    );

    // The readers go; their memory comes back (retried as Retry-After says, a
    // bounded number of times, until the server has dropped their responses).
    drop(stalled);
    let mut tries = 0;
    let v = loop {
        let r = c
            .get(format!("{url}/v1/nodes/detail"))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .send()
            .await
            .unwrap();
        if r.status() == 503 && tries < 20 {
            tries += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(r.status(), 200);
        break r.json::<Value>().await.unwrap();
    };
    assert_eq!(v["nodes"].as_array().unwrap().len(), 12);
}

/// A request with the latest API version; (status, JSON body or Null).
async fn api(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c
        .request(method, url)
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Issue 20 item 7 from outside: a `direct` deploy with no `image_source` (or
/// no checksum) is refused when asked for, with Ironic's message, and the node
/// stays `available` instead of waiting in `wait call-back` for an agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_deploy_without_an_image_is_refused_at_validation() {
    let ironic = Ironic::start(
        &[],
        &[MEMORY, ("IRONIC__CONDUCTOR__AUTOMATED_CLEAN", "false")],
    );
    let url = &ironic.url;
    let c = client();
    let (s, n) = api(
        &c,
        reqwest::Method::POST,
        format!("{url}/v1/nodes"),
        Some(json!({"driver": "fake-hardware", "deploy_interface": "direct", "name": "d"})),
    )
    .await;
    assert_eq!(s, 201, "{n}");
    let node = format!("{url}/v1/nodes/{}", n["uuid"].as_str().unwrap());
    for (target, reached) in [("manage", "manageable"), ("provide", "available")] {
        let (s, v) = api(
            &c,
            reqwest::Method::PUT,
            format!("{node}/states/provision"),
            Some(json!({"target": target})),
        )
        .await;
        assert_eq!(s, 202, "{target}: {v}");
        let mut state = Value::Null;
        for _ in 0..200 {
            state = api(&c, reqwest::Method::GET, node.clone(), None).await.1["provision_state"]
                .clone();
            if state == reached {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(state, reached, "{target}");
    }
    for (instance_info, want) in [
        (json!({}), "image_source"),
        (
            json!({"image_source": "http://127.0.0.1:9/img.raw"}),
            "image_checksum",
        ),
    ] {
        let (s, v) = api(
            &c,
            reqwest::Method::PATCH,
            node.clone(),
            Some(json!([{"op": "add", "path": "/instance_info", "value": instance_info}])),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = api(
            &c,
            reqwest::Method::PUT,
            format!("{node}/states/provision"),
            Some(json!({"target": "active"})),
        )
        .await;
        assert_eq!(s, 400, "deploy with {instance_info}: {v}");
        let e = inner_error(&v);
        assert!(
            e["faultstring"].as_str().unwrap().contains(want),
            "{instance_info}: {e}"
        );
        let (_, n) = api(&c, reqwest::Method::GET, node.clone(), None).await;
        assert_eq!(n["provision_state"], "available", "{instance_info}");
        assert_eq!(n["target_provision_state"], Value::Null);
        assert_eq!(n["last_error"], Value::Null);
    }
}

/// The TFTP server `ironic` starts (`[boot.tftp]`) answers a malformed datagram,
/// a write request and a path out of its root with an ERROR packet at once
/// (issue 20 item 8), answers a repeated read request from the transfer in
/// progress instead of starting another, and still serves tftp-hpa.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_answers_bad_and_repeated_requests_at_once_and_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("ironic.toml");
    std::fs::write(
        &conf,
        format!(
            "[storage]\nbackend = \"memory\"\n[boot.tftp]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let ironic = Ironic::start(&["--config", conf.to_str().unwrap()], &[]);
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 2048];
    let mut ask = async |datagram: &[u8]| {
        sock.send_to(datagram, server).await.unwrap();
        // A bound on loopback, not a timing assertion.
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no answer to {datagram:?}"))
            .unwrap();
        (buf[..n].to_vec(), from)
    };
    for (datagram, code) in [
        (&b"\x00\x09x\x00octet\x00"[..], 4u8),
        (b"\x00\x02up\x00octet\x00", 2),
        (b"\x00\x01../../etc/passwd\x00octet\x00", 2),
    ] {
        let (p, from) = ask(datagram).await;
        assert_eq!((&p[..4], from), (&[0, 5, 0, code][..], server), "{p:?}");
    }
    let rrq = b"\x00\x01undionly.kpxe\x00octet\x00blksize\x001432\x00";
    let (oack, tid) = ask(rrq).await;
    assert!(oack.starts_with(b"\x00\x06blksize\x001432\x00"), "{oack:?}");
    let again = ask(rrq).await;
    assert_eq!(
        again,
        (oack, tid),
        "a repeated request must not start a transfer"
    );
    sock.send_to(b"\x00\x04\x00\x00", tid).await.unwrap();
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("DATA 1")
        .unwrap();
    assert_eq!((&buf[..4], n, from), (&b"\x00\x03\x00\x01"[..], 1436, tid));
    // The client gives up; a real one then gets the whole file.
    sock.send_to(b"\x00\x05\x00\x00done\x00", tid)
        .await
        .unwrap();
    let dest = dir.path().join("nbp");
    let out = std::process::Command::new("tftp")
        .args([
            "-4",
            "-m",
            "binary",
            "127.0.0.1",
            &port.to_string(),
            "-c",
            "get",
        ])
        .arg("undionly.kpxe")
        .arg(&dest)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs tftp-hpa's `tftp` (apt-get install tftp-hpa): {e}")
        });
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read("/usr/lib/ipxe/undionly.kpxe").unwrap()
    );
    let log = ironic.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
