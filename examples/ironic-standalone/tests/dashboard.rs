//! The dashboard as an operator uses it: the real `ironic` binary, the page in
//! real headless Chromium driven through WebDriver (`chromedriver`), every node
//! listed, one deployed from the page's button, its state followed live (no
//! reload), a screenshot saved; then the page's own endpoints (paging, filters,
//! read-only mode, authentication) with a plain HTTP client.

mod api_support;

use std::time::{Duration, Instant};

use api_support::Ironic;
use api_support::webdriver::{Browser, Driver};
use serde_json::{Value, json};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn api(
    c: &reqwest::Client,
    url: &str,
    m: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c
        .request(m, format!("{url}{path}"))
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

async fn node_state(c: &reqwest::Client, url: &str, uuid: &str) -> Value {
    api(
        c,
        url,
        reqwest::Method::GET,
        &format!("/v1/nodes/{uuid}"),
        None,
    )
    .await
    .1
}

async fn make_nodes(c: &reqwest::Client, url: &str, n: usize) -> Vec<String> {
    let mut uuids = Vec::new();
    for i in 0..n {
        let (s, b) = api(
            c,
            url,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": format!("rack1-{i:02}")})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        uuids.push(b["uuid"].as_str().unwrap().to_owned());
    }
    for (target, want) in [("manage", "manageable"), ("provide", "available")] {
        for u in &uuids {
            let (s, b) = api(
                c,
                url,
                reqwest::Method::PUT,
                &format!("/v1/nodes/{u}/states/provision"),
                Some(json!({"target": target})),
            )
            .await;
            assert_eq!(s, 202, "{b}");
        }
        for u in &uuids {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let n = node_state(c, url, u).await;
                if n["provision_state"] == want && n["reservation"].is_null() {
                    break;
                }
                assert!(Instant::now() < deadline, "{n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    uuids
}

#[test]
fn chromium_lists_every_node_deploys_one_and_follows_it_live() {
    let ir = Ironic::start(
        &[],
        &[
            ("IRONIC__STORAGE__BACKEND", "memory"),
            // a visible deploy: each fake deploy step takes a second
            ("IRONIC__FAKE__DEPLOY_DELAY", "\"1\""),
        ],
    );
    let url = ir.url.clone();
    let driver = Driver::start();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let shot_node = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-node.png");
    rt().block_on(async {
        let c = reqwest::Client::new();
        let uuids = make_nodes(&c, &url, 12).await;
        let b = Browser::open(&driver).await;
        let t0 = Instant::now();
        b.go(&format!("{url}/dashboard")).await;
        b.until(
            "every node in the table",
            "return document.querySelectorAll('#nodes tbody tr').length === 12",
            json!([]),
        )
        .await;
        let shown = t0.elapsed();
        b.until(
            "the live stream",
            "return document.querySelector('#live').textContent === 'live'",
            json!([]),
        )
        .await;
        let listed = b
            .js(
                "return [...document.querySelectorAll('#nodes tbody tr')].map(r => r.dataset.uuid)",
                json!([]),
            )
            .await;
        for u in &uuids {
            assert!(listed.as_array().unwrap().contains(&json!(u)), "{u} missing");
        }
        // the same document all along: a reload would lose this
        b.js("window.__sameDocument = 'yes'", json!([])).await;

        // a change made elsewhere reaches the table without a reload
        let other = &uuids[1];
        let t1 = Instant::now();
        let (s, _) = api(
            &c,
            &url,
            reqwest::Method::PUT,
            &format!("/v1/nodes/{other}/maintenance"),
            Some(json!({"reason": "disk swap"})),
        )
        .await;
        assert_eq!(s, 202);
        b.until(
            "the maintenance badge",
            "const r = document.querySelector(`#nodes tr[data-uuid=\"${arguments[0]}\"]`); \
             return r && r.innerText.includes('maintenance')",
            json!([other]),
        )
        .await;
        let event_to_screen = t1.elapsed();

        // deploy one from its page with the button
        let target = &uuids[0];
        b.js(
            "location.hash = '#/node/' + arguments[0]",
            json!([target]),
        )
        .await;
        b.until(
            "the node page",
            "const s = document.querySelector('#node-state'); return s && s.textContent === 'available'",
            json!([]),
        )
        .await;
        b.js(
            "document.querySelector('#image-url').value = 'http://127.0.0.1:9/images/ubuntu.qcow2'; \
             document.querySelector('#deploy').click()",
            json!([]),
        )
        .await;
        let said = b
            .until(
                "the API's answer",
                "const t = document.querySelector('#action-result').textContent; \
                 return t.includes('accepted') || t.includes(':') && !t.startsWith('…') ? t : ''",
                json!([]),
            )
            .await;
        assert!(said.as_str().unwrap().contains("accepted"), "{said}");
        // the page follows the node through deploying to active, live
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = b
                .js(
                    "const s = document.querySelector('#node-state'); return s ? s.textContent : ''",
                    json!([]),
                )
                .await;
            let s = s.as_str().unwrap_or("").to_owned();
            if seen.last() != Some(&s) {
                seen.push(s.clone());
            }
            if s == "active" {
                break;
            }
            assert!(Instant::now() < deadline, "the page showed {seen:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            seen.iter().any(|s| s == "deploying" || s == "wait call-back" || s == "deploy wait"),
            "no intermediate state seen live: {seen:?}"
        );
        let n = node_state(&c, &url, target).await;
        assert_eq!(n["provision_state"], "active");
        assert_eq!(
            n["instance_info"]["image_source"],
            "http://127.0.0.1:9/images/ubuntu.qcow2"
        );
        b.until(
            "the timeline",
            "return document.querySelectorAll('#timeline tbody tr').length > 0",
            json!([]),
        )
        .await;
        b.screenshot(&shot_node).await;
        // back to the table: the row says active, and it is the same document
        b.js("location.hash = '#/'", json!([])).await;
        b.until(
            "the deployed row",
            "const r = document.querySelector(`#nodes tr[data-uuid=\"${arguments[0]}\"]`); \
             return r && r.dataset.state === 'active'",
            json!([target]),
        )
        .await;
        assert_eq!(b.js("return window.__sameDocument", json!([])).await, "yes");
        b.screenshot(&shot).await;
        b.close().await;
        println!(
            "dashboard: 12 nodes shown {shown:?} after navigation; maintenance change on screen {event_to_screen:?} after the API call; states seen live {seen:?}; screenshots {} {}",
            shot.display(),
            shot_node.display()
        );
    });
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
}

#[test]
fn the_dashboard_endpoints_page_filter_and_honour_read_only_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(&htpasswd, format!("op:{hash}\n")).unwrap();
    let ir = Ironic::start(
        &[],
        &[
            ("IRONIC__STORAGE__BACKEND", "memory"),
            ("IRONIC__DASHBOARD__READ_ONLY", "true"),
            ("IRONIC__API__AUTH_STRATEGY", "http_basic"),
            (
                "IRONIC__API__HTTP_BASIC_AUTH_USER_FILE",
                htpasswd.to_str().unwrap(),
            ),
        ],
    );
    let url = ir.url.clone();
    rt().block_on(async {
        let c = reqwest::Client::new();
        for p in [
            "/dashboard",
            "/dashboard/app.js",
            "/dashboard/api/nodes",
            "/dashboard/events",
        ] {
            let r = c.get(format!("{url}{p}")).send().await.unwrap();
            assert_eq!(r.status(), 401, "{p}");
        }
        let get = |p: String| {
            let c = c.clone();
            async move {
                let r = c.get(p).basic_auth("op", Some("pw")).send().await.unwrap();
                let s = r.status().as_u16();
                (s, r.text().await.unwrap())
            }
        };
        let (s, html) = get(format!("{url}/dashboard")).await;
        assert_eq!(s, 200);
        assert!(html.contains("data-read-only=\"true\""));
        for attr in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
        ] {
            assert!(!html.contains(attr), "no CDN: {attr}");
        }
        for i in 0..7 {
            let r = c
                .post(format!("{url}/v1/nodes"))
                .basic_auth("op", Some("pw"))
                .header("X-OpenStack-Ironic-API-Version", "latest")
                .json(&json!({"driver": "fake-hardware", "name": format!("n{i}"),
                              "conductor_group": if i < 3 { "row-a" } else { "" }}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        let (s, body) = get(format!("{url}/dashboard/api/nodes?limit=3")).await;
        assert_eq!(s, 200, "{body}");
        let p1: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(p1["total"], 7);
        assert_eq!(p1["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(p1["states"]["enroll"], 7);
        assert_eq!(p1["read_only"], true);
        let marker = p1["next_marker"].as_str().unwrap();
        let (_, body) = get(format!("{url}/dashboard/api/nodes?limit=3&marker={marker}")).await;
        let p2: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(p2["nodes"].as_array().unwrap().len(), 3);
        assert_ne!(p2["nodes"][0]["uuid"], p1["nodes"][0]["uuid"]);
        let (_, body) = get(format!("{url}/dashboard/api/nodes?conductor_group=ROW-A")).await;
        let g: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(g["total"], 3, "{g}");
        let (s, body) = get(format!("{url}/dashboard/api/nodes?provision_state=bogus")).await;
        assert_eq!(s, 400);
        assert!(body.contains("bogus"));
        let (_, body) = get(format!(
            "{url}/dashboard/api/nodes?provision_state=available"
        ))
        .await;
        let a: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(a["total"], 0);
        let u = p1["nodes"][0]["uuid"].as_str().unwrap();
        let (s, body) = get(format!("{url}/dashboard/api/nodes/{u}")).await;
        assert_eq!(s, 200, "{body}");
        let d: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(d["node"]["uuid"], u);
        assert!(d["timeline"].as_array().is_some());
    });
}
