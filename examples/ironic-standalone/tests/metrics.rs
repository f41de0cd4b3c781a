//! `GET /metrics` as Prometheus sees it: the real `ironic` binary with HTTP basic
//! auth and a state budget, nodes driven through the API, the scrape checked by
//! Prometheus's own `promtool check metrics` (parser and linter) and its values
//! read with the `prometheus-parse` text parser. The budget's log line and
//! history event are checked too.

mod api_support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api_support::Ironic;
use serde_json::{Value, json};

const USER: &str = "admin";
const PASS: &str = "s3cret";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn promtool() -> std::path::PathBuf {
    for d in ["/usr/bin", "/usr/local/bin"] {
        let p = std::path::Path::new(d).join("promtool");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "promtool (Prometheus's own metrics checker) is missing: install it with \
         `apt-get install prometheus` (scripts/setup-test-deps.sh does)"
    );
}

/// `promtool check metrics` on `text`: parse errors and lint problems fail.
fn promtool_check(text: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}): {}{}\n--- scrape ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Scrape {
    samples: Vec<prometheus_parse::Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let s = prometheus_parse::Scrape::parse(lines).expect("prometheus text parses");
        Scrape { samples: s.samples }
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| {
                s.metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                _ => 0.0,
            })
            .sum()
    }
}

async fn api(
    c: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c
        .request(method, format!("{url}{path}"))
        .basic_auth(USER, Some(PASS))
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

async fn wait_state(c: &reqwest::Client, url: &str, uuid: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, n) = api(
            c,
            url,
            reqwest::Method::GET,
            &format!("/v1/nodes/{uuid}"),
            None,
        )
        .await;
        if n["provision_state"] == want && n["reservation"].is_null() {
            return;
        }
        assert!(Instant::now() < deadline, "node never reached {want}: {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn metrics_are_prometheus_text_behind_auth_with_bounded_labels_and_state_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash(PASS, 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let conf = dir.path().join("ironic.toml");
    std::fs::write(
        &conf,
        format!(
            "[api]\nauth_strategy = \"http_basic\"\nhttp_basic_auth_user_file = \"{}\"\n\
             [storage]\nbackend = \"memory\"\n\
             [conductor]\nstate_budget_check_interval = 1\n\
             [conductor.state_budgets]\n\"manageable\" = 1\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    let ir = Ironic::start(&["--config", conf.to_str().unwrap()], &[]);
    let url = ir.url.clone();
    rt().block_on(async {
        let c = reqwest::Client::new();
        // behind the API's authentication
        let r = c.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));

        let mut uuids = Vec::new();
        for i in 0..3 {
            let (s, n) = api(
                &c,
                &url,
                reqwest::Method::POST,
                "/v1/nodes",
                Some(json!({"driver": "fake-hardware", "name": format!("m{i}")})),
            )
            .await;
            assert_eq!(s, 201, "{n}");
            uuids.push(n["uuid"].as_str().unwrap().to_owned());
        }
        for u in &uuids {
            let (s, b) = api(
                &c,
                &url,
                reqwest::Method::PUT,
                &format!("/v1/nodes/{u}/states/provision"),
                Some(json!({"target": "manage"})),
            )
            .await;
            assert_eq!(s, 202, "{b}");
        }
        for u in &uuids {
            wait_state(&c, &url, u, "manageable").await;
        }
        let (s, _) = api(
            &c,
            &url,
            reqwest::Method::PUT,
            &format!("/v1/nodes/{}/states/provision", uuids[0]),
            Some(json!({"target": "provide"})),
        )
        .await;
        assert_eq!(s, 202);
        wait_state(&c, &url, &uuids[0], "available").await;
        let (s, _) = api(&c, &url, reqwest::Method::GET, "/v1/nodes/no-such-node", None).await;
        assert_eq!(s, 404);

        // two nodes stay in manageable past its 1 s budget: poll until the
        // conductor's check has seen them
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            let r = c
                .get(format!("{url}/metrics"))
                .basic_auth(USER, Some(PASS))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain; version=0.0.4"),
                "{:?}",
                r.headers()
            );
            let text = r.text().await.unwrap();
            let s = Scrape::parse(&text);
            if s.value(
                "ironic_state_budget_exceeded_total",
                &[("provision_state", "manageable")],
            ) == Some(2.0)
            {
                break text;
            }
            assert!(Instant::now() < deadline, "budget never reported:\n{text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        promtool_check(&text);
        let s = Scrape::parse(&text);
        let st = |state| s.value("ironic_nodes", &[("provision_state", state)]);
        assert_eq!(st("manageable"), Some(2.0));
        assert_eq!(st("available"), Some(1.0));
        assert_eq!(st("enroll"), Some(0.0));
        assert_eq!(
            s.value(
                "ironic_nodes_over_budget",
                &[("provision_state", "manageable")]
            ),
            Some(2.0)
        );
        assert_eq!(
            s.value(
                "ironic_state_budget_seconds",
                &[("provision_state", "manageable")]
            ),
            Some(1.0)
        );
        assert_eq!(
            s.value(
                "ironic_provision_state_transitions_total",
                &[("from", "enroll"), ("to", "verifying")]
            ),
            Some(3.0)
        );
        assert_eq!(
            s.value(
                "ironic_provision_state_duration_seconds_count",
                &[("provision_state", "verifying")]
            ),
            Some(3.0)
        );
        assert!(
            s.sum(
                "ironic_driver_call_duration_seconds_count",
                &[("implementation", "fake"), ("interface", "power")]
            ) >= 3.0,
            "{text}"
        );
        // route templates carry braces, which prometheus-parse's simple label
        // reader does not take (promtool did): read these lines as they are
        for line in [
            "ironic_api_requests_total{method=\"POST\",route=\"/v1/nodes\",status=\"201\"} 3",
            "ironic_api_requests_total{method=\"PUT\",route=\"/v1/nodes/{node}/states/provision\",status=\"202\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(s.value("ironic_conductor_workers_max", &[]) == Some(300.0));
        // the store's latency per method, and its failures (the unknown node)
        for op in ["create_node", "update_node", "get_node", "list_nodes"] {
            assert!(
                s.value("ironic_store_call_duration_seconds_count", &[("op", op)])
                    .is_some_and(|n| n >= 1.0),
                "no store latency for {op}:\n{text}"
            );
        }
        assert!(
            s.value("ironic_store_call_errors_total", &[("op", "get_node")])
                .is_some_and(|n| n >= 1.0),
            "the unknown node's lookup is not a store error:\n{text}"
        );
        // bounded cardinality: no node appears in a label
        for u in &uuids {
            assert!(!text.contains(u.as_str()), "node {u} is a label:\n{text}");
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for x in &s.samples {
            *names.entry(x.metric.as_str()).or_default() += 1;
        }
        // every store method (63) has at most 11 buckets; the rest stays small
        for (name, n) in &names {
            let bound = if name.starts_with("ironic_store_call") { 63 * 11 } else { 200 };
            assert!(*n < bound, "{name}: {n} series\n{names:?}");
        }

        // OpenMetrics for a scraper that asks for it, as Prometheus does
        let r = c
            .get(format!("{url}/metrics"))
            .basic_auth(USER, Some(PASS))
            .header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send()
            .await
            .unwrap();
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        assert!(r.text().await.unwrap().trim_end().ends_with("# EOF"));

        // the budget is in the nodes' history, once each
        for u in &uuids[1..] {
            let (_, h) = api(
                &c,
                &url,
                reqwest::Method::GET,
                &format!("/v1/nodes/{u}/history?detail=true"),
                None,
            )
            .await;
            let over: Vec<_> = h["history"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["event"].as_str().unwrap().contains("over its budget"))
                .collect();
            assert_eq!(over.len(), 1, "{h}");
        }
    });
    // and logged once per node
    let log = ir.log_text();
    assert_eq!(log.matches("over its budget").count(), 2, "{log}");
}
