//! Metal3's baremetal-operator against `ironic serve` and the real Ironic 39,
//! side by side: the requests its Ironic provisioner (`pkg/provisioner/ironic/`)
//! sends through gophercloud (`openstack/baremetal/v1/`), in the order it sends
//! them for one BareMetalHost's life, with the microversion it negotiates (the
//! highest of 1.110 / 1.109 / 1.95 / 1.93 the service offers, 1.89 at least),
//! for a `redfish-virtualmedia://` host on a real `sushy-emulator` (PyPI
//! sushy-tools, fake driver): register (find by name and MAC, create with its
//! `driver_info`/`properties`, ports), JSON-patch updates, manage, inspect and
//! abort, BIOS settings / firmware / inventory reads, RAID config and manual
//! cleaning with its steps and abort, provide, data image (vmedia attach, get,
//! detach), deploy with a config drive and deploy steps, abort in `wait
//! call-back` (1.110), `deleted` from `deploy failed` and from `wait call-back`,
//! power on / soft power off, maintenance, adopt, list with fields, delete; and
//! `create_subscription` / `delete_subscription` (its BMCEventSubscription
//! controller) on a BMC that keeps subscriptions (the lab's Redfish simulator;
//! sushy-emulator has no EventService and gets Ironic's error).
//!
//! A second flow ([`extras`]), on its own pair of systems and at the same time,
//! covers the rest of what Metal3 asks for (paging, `disable_power_off`,
//! rescue, servicing, live ISO and custom deploys).
//!
//! One sequence ([`sequence`]) drives either server. The test runs it at once
//! against `ironic serve` and against the real Ironic 39 (PyPI `ironic`, the
//! `redfish` hardware type enabled, see `api_support::real_ironic`), each with
//! its node on its own system of one sushy-emulator, records every answer, and
//! compares the two records step by step: status codes, error formats, the keys
//! and JSON types of every body (free-form maps such as `driver_info` only by
//! type) and the states reached. Differences kept on purpose are in [`KNOWN`].
//!
//! Each answer is also checked for the status gophercloud accepts (its
//! `OkCodes`) and for a body that decodes into gophercloud's structs (`Node`:
//! every string field a string or null, every map an object or null, times RFC
//! 3339, ...), on both servers.

mod api_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_support::real_ironic::RealIronic;
use api_support::sushy::Sushy;
use api_support::{Ironic, rt};
use reqwest::Method;
use serde_json::{Value, json};

/// The version Metal3 pins when the service offers 1.110 (`ChooseMicroversion`).
const MV: &str = "1.110";
/// The sushy-emulator systems: ironic-rs's host, the real Ironic's host, and
/// the same for the [`extras`] flow.
const SYSTEMS: [&str; 4] = [
    "2cbd9e2a-0000-4000-8000-00000000e014",
    "2cbd9e2a-0000-4000-8000-00000000e015",
    "2cbd9e2a-0000-4000-8000-00000000e016",
    "2cbd9e2a-0000-4000-8000-00000000e017",
];
const MAC: &str = "52:54:00:e0:14:01";
const NAME: &str = "metal3~host-0";

/// An HTTP server for the images the BMC downloads (a small ISO 9660 file).
async fn image_server() -> (String, tokio::task::JoinHandle<()>) {
    let mut iso = vec![0u8; 64 * 1024];
    iso[0x8000] = 1;
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    let app = axum::Router::new().fallback(axum::routing::get(move || {
        let iso = iso.clone();
        async move { iso }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://127.0.0.1:{port}"), h)
}

/// One answer as recorded for the comparison.
#[derive(Debug, Clone)]
struct Step {
    /// `METHOD path` with UUIDs replaced by `{uuid}`, or `wait <state>`.
    label: String,
    status: u16,
    body: Value,
}

/// What one server's replay needs besides the server.
struct Env {
    /// sushy-emulator's URL.
    bmc: String,
    /// The host's system UUID on it.
    system: String,
    /// A Redfish BMC that keeps event subscriptions (the lab's simulator).
    lab: String,
    /// The image server.
    images: String,
    deploy_iso: String,
    data_iso: String,
}

/// gophercloud's service client for the bare metal service: JSON, the
/// microversion header once negotiated; every answer the sequence looks at
/// is recorded in `trace` (polls only by their last answer).
struct Gc {
    base: String,
    mv: Option<&'static str>,
    http: reqwest::Client,
    trace: Arc<Mutex<Vec<Step>>>,
}

/// `s` with every UUID in it replaced by `{uuid}`.
fn without_uuids(s: &str) -> String {
    let is_uuid = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_uuid(&b[i..i + 36]) {
            out.push_str("{uuid}");
            i += 36;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

impl Gc {
    /// Send without recording.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Accept", "application/json")
            .header("User-Agent", "gophercloud/v2.10.0");
        if let Some(mv) = self.mv {
            r = r.header("X-OpenStack-Ironic-API-Version", mv);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    fn record(&self, label: String, status: u16, body: &Value) {
        self.trace.lock().unwrap().push(Step {
            label,
            status,
            body: body.clone(),
        });
    }

    /// Send and record the answer.
    async fn req(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, v) = self.send(method.clone(), path, body).await;
        self.record(format!("{method} {}", without_uuids(path)), s, &v);
        (s, v)
    }

    /// A request whose status must be one of `ok` (gophercloud's `OkCodes`).
    async fn ok(&self, method: Method, path: &str, body: Option<Value>, ok: &[u16]) -> Value {
        let (s, v) = self.req(method.clone(), path, body).await;
        assert!(
            ok.contains(&s),
            "{method} {path}: HTTP {s} (gophercloud accepts {ok:?}): {v}"
        );
        v
    }

    async fn node(&self, id: &str) -> Value {
        let n = self
            .ok(Method::GET, &format!("/v1/nodes/{id}"), None, &[200])
            .await;
        decodes_as_node(&n);
        n
    }

    /// GET the node without recording (a poll).
    async fn poll_node(&self, id: &str) -> Value {
        let (s, n) = self
            .send(Method::GET, &format!("/v1/nodes/{id}"), None)
            .await;
        assert_eq!(s, 200, "GET /v1/nodes/{id}: {n}");
        decodes_as_node(&n);
        n
    }

    /// `PUT states/provision`; a 409 for a node still locked by the conductor
    /// is retried, as the operator requeues the host on a conflict.
    async fn provision(&self, id: &str, body: Value) {
        let path = format!("/v1/nodes/{id}/states/provision");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (s, v) = self.send(Method::PUT, &path, Some(body.clone())).await;
            if s == 409 && v.to_string().contains("is locked by host") && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            self.record(format!("PUT {}", without_uuids(&path)), s, &v);
            assert_eq!(
                s, 202,
                "PUT {path} {body}: HTTP {s} (gophercloud accepts [202]): {v}"
            );
            assert_eq!(v, Value::Null, "PUT provision {body}: a 202 without a body");
            return;
        }
    }

    /// Poll the node (as the operator's reconcile loop does) until its
    /// provision state is `want`; a failed state other than `want` fails.
    /// Records the last answer as `wait <want>`.
    async fn wait_state(&self, id: &str, want: &str) -> Value {
        let n = self.wait_state_quiet(id, want).await;
        self.record(format!("wait {want}"), 200, &n);
        n
    }

    async fn wait_state_quiet(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let n = self.poll_node(id).await;
            // reached, and the conductor done with the node (Ironic sets the
            // state before it releases its lock)
            let settled = n["reservation"].is_null();
            if n["provision_state"] == want && n["target_provision_state"].is_null() && settled {
                return n;
            }
            // a wait or failed state keeps its target (inspect failed -> manageable)
            if n["provision_state"] == want
                && (want.contains("wait") || want.ends_with("failed"))
                && settled
            {
                return n;
            }
            let state = n["provision_state"].as_str().unwrap_or_default().to_owned();
            assert!(
                !(state.ends_with("failed") || state == "error") || state == want,
                "{}: node went to {state} waiting for {want}, last_error {}: {n}",
                self.base,
                n["last_error"]
            );
            assert!(
                Instant::now() < deadline,
                "{}: node never reached {want}: {} -> {}, last_error {}: {n}",
                self.base,
                n["provision_state"],
                n["target_provision_state"],
                n["last_error"]
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Poll until the node is settled (unlocked, and with no target or in a
    /// wait/failed state, which keep theirs), whatever state that is; records
    /// it as `settled after <what>`. For steps where the servers may differ:
    /// the states reached are compared, not asserted.
    async fn settle(&self, id: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let n = self.poll_node(id).await;
            let state = n["provision_state"].as_str().unwrap_or_default();
            if n["reservation"].is_null()
                && (n["target_provision_state"].is_null()
                    || state.contains("wait")
                    || state.ends_with("failed"))
            {
                self.record(format!("settled after {what}"), 200, &n);
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "{}: node never settled after {what}: {n}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// A provision action whose answer is recorded, not asserted (a 409 for
    /// a locked node retried).
    async fn try_provision(&self, id: &str, body: Value) -> u16 {
        self.try_provision_in(id, body, "").await
    }

    /// [`Gc::try_provision`] with `note` appended to the label (the part of
    /// the flow it belongs to).
    async fn try_provision_in(&self, id: &str, body: Value, note: &str) -> u16 {
        let path = format!("/v1/nodes/{id}/states/provision");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (s, v) = self.send(Method::PUT, &path, Some(body.clone())).await;
            if s == 409 && v.to_string().contains("is locked by host") && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            self.record(
                format!("PUT {} {}{note}", without_uuids(&path), body["target"]),
                s,
                &v,
            );
            return s;
        }
    }

    /// [`Gc::req`], retrying a 409 for a node still locked by the conductor
    /// (an asynchronous vendor passthru or power action still running), as
    /// the operator requeues on a conflict.
    async fn req_unlocked(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (s, v) = self.send(method.clone(), path, body.clone()).await;
            if s == 409 && v.to_string().contains("is locked by host") && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            self.record(format!("{method} {}", without_uuids(path)), s, &v);
            return (s, v);
        }
    }

    /// A labelled request: sent, recorded as `label`, not asserted.
    async fn labelled(
        &self,
        label: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (s, v) = self.send(method, path, body).await;
        self.record(label.to_owned(), s, &v);
        (s, v)
    }

    /// A paginated list as gophercloud's `LinkedPageBase` walks it: `path`,
    /// then each page's `next` link as given, until a page has none. Returns
    /// every item of `key`; the first `record` pages are recorded as `page N
    /// of <path>` (a list that other flows change at the same time has as
    /// many pages as there are items at that moment).
    async fn all_pages(&self, path: &str, key: &str, record: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut url = format!("{}{path}", self.base);
        for pages in 0..20 {
            let rel = url
                .strip_prefix(&self.base)
                .unwrap_or_else(|| panic!("next link {url} is not on {}", self.base))
                .to_owned();
            let (st, page) = self.send(Method::GET, &rel, None).await;
            assert_eq!(st, 200, "GET {rel}: {page}");
            if pages < record {
                self.record(
                    format!("page {pages} of {}", without_uuids(path)),
                    st,
                    &page,
                );
            }
            let list = page[key]
                .as_array()
                .unwrap_or_else(|| panic!("{rel}: {page}"));
            items.extend(list.iter().cloned());
            match page.get("next").and_then(Value::as_str) {
                Some(next) => url = next.to_owned(),
                None => return items,
            }
        }
        panic!("{path}: more than 20 pages");
    }

    /// Poll as BMO's GetDataImageStatus does (skip while the node is
    /// reserved, then `GET vmedia`) until some device is `inserted` (or none
    /// is); records the last list as `vmedia inserted=<inserted>`.
    async fn wait_vmedia(&self, id: &str, inserted: bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n = self.poll_node(id).await;
            if n["reservation"].is_null() {
                let (s, v) = self
                    .send(Method::GET, &format!("/v1/nodes/{id}/vmedia"), None)
                    .await;
                assert_eq!(s, 200, "GET vmedia: {v}");
                let list = v
                    .as_array()
                    .unwrap_or_else(|| panic!("Metal3 decodes a list: {v}"));
                if list.iter().any(|m| m["inserted"] == true) == inserted {
                    self.record(format!("vmedia inserted={inserted}"), s, &v);
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: virtual media never became inserted={inserted}: {n}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn wait_power(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let n = self.poll_node(id).await;
            if n["power_state"] == want
                && n["target_power_state"].is_null()
                && n["reservation"].is_null()
            {
                self.record(format!("power {want}"), 200, &n);
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "{}: power never reached {want}: {n}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Keys whose values are free-form maps (driver and operator data): compared
/// only by JSON type, not by content.
const FREE_FORM: &[&str] = &[
    "driver_info",
    "driver_internal_info",
    "properties",
    "instance_info",
    "extra",
    "raid_config",
    "target_raid_config",
    "clean_step",
    "deploy_step",
    "service_step",
    "network_data",
];

/// Keys whose values must be equal, not only of one type: the states reached
/// and what Metal3 branches on.
const SAME_VALUE: &[&str] = &[
    "provision_state",
    "target_provision_state",
    "power_state",
    "target_power_state",
    "maintenance",
    "driver",
    "boot_interface",
    "deploy_interface",
    "inspect_interface",
    "raid_interface",
    "firmware_interface",
    "bios_interface",
    "vendor_interface",
    "management_interface",
    "power_interface",
    "rescue_interface",
    "network_interface",
    "result",
    "inserted",
    "media_types",
    "disable_power_off",
    "automated_clean",
];

/// Keys that say which conductor holds the node's lock at that moment: a
/// string or null on either side, depending on timing, not compared.
const VOLATILE: &[&str] = &["reservation"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// The differences in shape between Ironic's body `a` and ironic-rs's `b` at
/// `at`: keys, JSON types, list lengths and the [`SAME_VALUE`] values.
fn shape_diff(at: &str, key: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if VOLATILE.contains(&key) {
        return;
    }
    if kind(a) != kind(b) {
        out.push(format!(
            "{at}: Ironic {} {} vs ironic-rs {} {}",
            kind(a),
            short(a),
            kind(b),
            short(b)
        ));
        return;
    }
    if SAME_VALUE.contains(&key) && a != b {
        out.push(format!("{at}: Ironic {a} vs ironic-rs {b}"));
        return;
    }
    if FREE_FORM.contains(&key) {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let only_a: Vec<&String> = x.keys().filter(|k| !y.contains_key(*k)).collect();
            let only_b: Vec<&String> = y.keys().filter(|k| !x.contains_key(*k)).collect();
            if !only_a.is_empty() || !only_b.is_empty() {
                out.push(format!(
                    "{at}: keys only in Ironic {only_a:?}, only in ironic-rs {only_b:?}"
                ));
            }
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    shape_diff(&format!("{at}.{k}"), k, va, vb, out);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!(
                    "{at}: {} items in Ironic, {} in ironic-rs",
                    x.len(),
                    y.len()
                ));
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                shape_diff(&format!("{at}[{i}]"), key, va, vb, out);
            }
        }
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!("{}...", &s[..s.floor_char_boundary(300)])
    } else {
        s
    }
}

/// `fault` or `webob` for an error body, `-` otherwise.
fn error_shape(v: &Value) -> &'static str {
    let Some(inner) = v.get("error_message").and_then(Value::as_str) else {
        return "-";
    };
    match serde_json::from_str::<Value>(inner) {
        Ok(i) if i.get("faultstring").is_some() => "fault",
        Ok(i) if i.get("code").is_some() => "webob",
        _ => "?",
    }
}

/// The two records compared step by step: the differences, and (for the log)
/// the error messages that differ.
fn compare(real: &[Step], ours: &[Step]) -> (Vec<String>, Vec<String>) {
    let mut diffs = Vec::new();
    let mut messages = Vec::new();
    for (i, (a, b)) in real.iter().zip(ours).enumerate() {
        let what = format!("step {i} {}", a.label);
        if a.label != b.label {
            diffs.push(format!(
                "step {i}: the sequences parted: Ironic {} vs ironic-rs {}",
                a.label, b.label
            ));
            break;
        }
        if a.status != b.status {
            diffs.push(format!(
                "{what}: status Ironic {} vs ironic-rs {}\n    Ironic:    {}\n    ironic-rs: {}",
                a.status,
                b.status,
                short(&a.body),
                short(&b.body)
            ));
        } else if a.status >= 400 {
            let (sa, sb) = (error_shape(&a.body), error_shape(&b.body));
            if sa != sb {
                diffs.push(format!(
                    "{what}: error format Ironic {sa} vs ironic-rs {sb}\n    Ironic:    {}\n    ironic-rs: {}",
                    short(&a.body),
                    short(&b.body)
                ));
            } else if without_uuids(&a.body.to_string()) != without_uuids(&b.body.to_string()) {
                messages.push(format!(
                    "{what}:\n    Ironic:    {}\n    ironic-rs: {}",
                    short(&a.body),
                    short(&b.body)
                ));
            }
        } else {
            let mut out = Vec::new();
            shape_diff("body", "", &a.body, &b.body, &mut out);
            diffs.extend(out.into_iter().map(|d| format!("{what}: {d}")));
        }
    }
    if real.len() != ours.len() {
        diffs.push(format!(
            "Ironic answered {} steps, ironic-rs {}",
            real.len(),
            ours.len()
        ));
    }
    (diffs, messages)
}

/// Differences kept on purpose: (`*`-separated substrings of the difference,
/// starting with the flow, `Sequence:` or `Extras:`; why).
const KNOWN: &[(&str, &str)] = &[
    (
        "Extras: *settled after deleted with disable_power_off: body.last_error: Ironic string \"Failed to tear down: Failed to set node power state to power off.\" vs ironic-rs null",
        "Ironic 39's redfish-virtual-media clean_up_ramdisk powers off even a disable_power_off node, so its tear-down fails; ironic-rs skips that power off and reboots (AgentDeploy.clean_up), as the flag asks",
    ),
    (
        "Extras: *settled after deleted with disable_power_off: body.provision_state: Ironic \"error\" vs ironic-rs \"available\"",
        "the same failed tear-down in Ironic 39",
    ),
    (
        "Extras: *PATCH disable_power_off=false (after the tear-down): body.",
        "the node in `error` after Ironic 39's failed tear-down (last_error, provision_state)",
    ),
    (
        "Extras: *settled after deleted again: body.power_state: Ironic \"power off\" vs ironic-rs \"power on\"",
        "Ironic 39's second tear-down powered the node off; ironic-rs's node was rebooted by the first",
    ),
    (
        "Extras: *PUT /v1/nodes/{uuid}/states/provision \"deleted\" (again): status Ironic 202 vs ironic-rs 400",
        "the tear-down Ironic 39 needs again after its failed one; ironic-rs's node is available already",
    ),
    (
        "Extras: step *live ISO",
        "TODO: ironic-rs has no `ramdisk` deploy interface yet (BMO's live ISO): the PATCH is refused, the node stays available; Ironic boots boot_iso and goes active",
    ),
    (
        "Extras: step *custom deploy",
        "TODO: ironic-rs has no `custom-agent` deploy interface yet (BMO's customDeploy): the PATCH is refused, the node stays available; Ironic waits for the agent in wait call-back, aborts to deploy failed and tears down",
    ),
];

/// Whether difference `d` is the known one `pattern`: its `*`-separated parts
/// occur in `d` in order.
fn is_known(d: &str, pattern: &str) -> bool {
    let mut rest = d;
    for part in pattern.split('*') {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn is_str_or_null(v: &Value) -> bool {
    v.is_string() || v.is_null()
}

/// The body decodes into gophercloud's `nodes.Node`: Go's `encoding/json`
/// refuses a value of another JSON type than the field's (a null is fine), and
/// `time.Time` wants RFC 3339.
fn decodes_as_node(n: &Value) {
    let o = n
        .as_object()
        .unwrap_or_else(|| panic!("a node is an object: {n}"));
    const STRINGS: &[&str] = &[
        "uuid",
        "name",
        "power_state",
        "target_power_state",
        "provision_state",
        "target_provision_state",
        "maintenance_reason",
        "fault",
        "health",
        "last_error",
        "reservation",
        "driver",
        "instance_uuid",
        "chassis_uuid",
        "resource_class",
        "bios_interface",
        "boot_interface",
        "console_interface",
        "deploy_interface",
        "inspect_interface",
        "management_interface",
        "network_interface",
        "power_interface",
        "raid_interface",
        "rescue_interface",
        "storage_interface",
        "vendor_interface",
        "conductor_group",
        "parent_node",
        "protected_reason",
        "owner",
        "lessee",
        "shard",
        "description",
        "conductor",
        "allocation_uuid",
        "retired_reason",
        "firmware_interface",
    ];
    const BOOLS: &[&str] = &[
        "maintenance",
        "console_enabled",
        "protected",
        "retired",
        "disable_power_off",
        "automated_clean",
    ];
    const MAPS: &[&str] = &[
        "driver_info",
        "driver_internal_info",
        "properties",
        "instance_info",
        "extra",
        "raid_config",
        "target_raid_config",
        "clean_step",
        "deploy_step",
        "network_data",
        "service_step",
    ];
    const LINKS: &[&str] = &["links", "ports", "portgroups", "states", "volume"];
    const TIMES: &[&str] = &[
        "provision_updated_at",
        "inspection_started_at",
        "inspection_finished_at",
        "created_at",
        "updated_at",
    ];
    for k in STRINGS {
        assert!(
            o.get(*k).is_none_or(is_str_or_null),
            "{k} must be a string: {n}"
        );
    }
    for k in BOOLS {
        assert!(
            o.get(*k).is_none_or(|v| v.is_boolean() || v.is_null()),
            "{k} must be a bool: {n}"
        );
    }
    for k in MAPS {
        assert!(
            o.get(*k).is_none_or(|v| v.is_object() || v.is_null()),
            "{k} must be an object: {n}"
        );
    }
    for k in LINKS {
        if let Some(v) = o.get(*k).filter(|v| !v.is_null()) {
            let ok = v.as_array().is_some_and(|a| {
                a.iter()
                    .all(|l| l["href"].is_string() && l["rel"].is_string())
            });
            assert!(ok, "{k} must be a list of links: {n}");
        }
    }
    if let Some(t) = o.get("traits").filter(|v| !v.is_null()) {
        assert!(
            t.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "traits must be a list of strings: {n}"
        );
    }
    for k in TIMES {
        if let Some(v) = o.get(*k).filter(|v| !v.is_null()) {
            let ok = v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok());
            assert!(ok, "{k} must be an RFC 3339 time (Go time.Time): {n}");
        }
    }
}

/// `SubscriptionVendorPassthru`.
fn decodes_as_subscription(v: &Value) {
    for k in ["Id", "Context", "Destination", "Protocol"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    assert!(
        v["EventTypes"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        "{v}"
    );
}

/// One BareMetalHost's life as baremetal-operator drives it, against the
/// server behind `gc`.
async fn sequence(mut gc: Gc, env: Env) {
    // --- the client: version discovery, then the pinned microversion
    let root = gc.ok(Method::GET, "/v1/", None, &[200]).await;
    let max = root["version"]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{root}"));
    let min = root["version"]["min_version"]
        .as_str()
        .unwrap_or_else(|| panic!("{root}"));
    let minor = |v: &str| v.split_once('.').unwrap().1.parse::<u32>().unwrap();
    assert!(minor(max) >= 110 && minor(min) <= 89, "{root}");
    gc.mv = Some(MV);

    // --- register: not found by name (twice: namespaced, then plain), nor by MAC
    for name in [NAME, "host-0"] {
        let (s, v) = gc
            .req(Method::GET, &format!("/v1/nodes/{name}"), None)
            .await;
        assert_eq!(s, 404, "{v}");
    }
    let found = gc
        .ok(
            Method::GET,
            &format!("/v1/ports?address={MAC}&fields=node_uuid,uuid,address"),
            None,
            &[200],
        )
        .await;
    assert_eq!(found["ports"], json!([]), "{found}");
    let created = gc
        .ok(
            Method::POST,
            "/v1/nodes",
            Some(json!({
                "boot_interface": "redfish-virtual-media",
                "driver": "redfish",
                "driver_info": {
                    "redfish_address": env.bmc,
                    "redfish_system_id": format!("/redfish/v1/Systems/{}", env.system),
                    "redfish_username": "admin",
                    "redfish_password": "password",
                    "redfish_verify_ca": false,
                    "deploy_iso": env.deploy_iso,
                },
                "firmware_interface": "redfish",
                "deploy_interface": "direct",
                "inspect_interface": "agent",
                "name": NAME,
                "raid_interface": "redfish",
                "disable_power_off": false,
                "properties": {"capabilities": "boot_mode:uefi", "cpu_arch": "x86_64"},
            })),
            &[201, 202],
        )
        .await;
    decodes_as_node(&created);
    let id = created["uuid"].as_str().unwrap().to_owned();
    assert_eq!(created["provision_state"], "enroll", "{created}");
    assert_eq!(
        created["vendor_interface"], "redfish",
        "the redfish type's default: {created}"
    );
    assert_eq!(
        created["driver_info"]["redfish_password"], "******",
        "{created}"
    );
    assert_eq!(created["disable_power_off"], false, "{created}");

    // ports: list by node, by address, then create the boot MAC's
    let by_node = gc
        .ok(
            Method::GET,
            &format!("/v1/ports?node_uuid={id}&fields=node_uuid,uuid,address"),
            None,
            &[200],
        )
        .await;
    assert_eq!(by_node["ports"], json!([]), "{by_node}");
    let port = gc
        .ok(
            Method::POST,
            "/v1/ports",
            Some(json!({"node_uuid": id, "address": MAC, "pxe_enabled": true})),
            &[201, 202],
        )
        .await;
    assert_eq!(port["node_uuid"], json!(id), "{port}");
    assert_eq!(port["pxe_enabled"], true, "{port}");
    let by_mac = gc
        .ok(
            Method::GET,
            &format!("/v1/ports?address={MAC}&fields=node_uuid,uuid,address"),
            None,
            &[200],
        )
        .await;
    assert_eq!(by_mac["ports"][0]["node_uuid"], json!(id), "{by_mac}");
    assert!(
        by_mac["ports"][0].get("pxe_enabled").is_none(),
        "only the fields asked: {by_mac}"
    );

    // found by name now; JSON patch as NodeUpdater builds it
    let n = gc.node(NAME).await;
    assert_eq!(n["uuid"], json!(id));
    let updated = gc
        .ok(
            Method::PATCH,
            &format!("/v1/nodes/{id}"),
            Some(json!([
                {"op": "add", "path": "/automated_clean", "value": false},
                {"op": "replace", "path": "/properties/capabilities", "value": "boot_mode:uefi,secure_boot:false"},
                {"op": "add", "path": "/driver_info/force_persistent_boot_device", "value": "Default"},
            ])),
            &[200],
        )
        .await;
    decodes_as_node(&updated);
    assert_eq!(updated["automated_clean"], false, "{updated}");
    assert_eq!(
        updated["properties"]["capabilities"],
        "boot_mode:uefi,secure_boot:false"
    );

    // --- manage
    gc.provision(&id, json!({"target": "manage"})).await;
    let n = gc.wait_state(&id, "manageable").await;
    assert!(n["last_error"].is_null(), "{n}");

    // --- inspect (agent): the ramdisk never calls back; Metal3 aborts
    gc.provision(&id, json!({"target": "inspect"})).await;
    let n = gc.wait_state(&id, "inspect wait").await;
    assert_eq!(n["target_provision_state"], "manageable", "{n}");
    let vm = gc
        .ok(Method::GET, &format!("/v1/nodes/{id}/vmedia"), None, &[200])
        .await;
    let listed = vm
        .as_array()
        .unwrap_or_else(|| panic!("Metal3 decodes a list: {vm}"));
    assert!(
        listed
            .iter()
            .any(|m| m["inserted"] == true && m["image"] == json!(env.deploy_iso)),
        "the deploy ISO is in a slot during inspection: {vm}"
    );
    gc.provision(&id, json!({"target": "abort"})).await;
    let n = gc.wait_state(&id, "inspect failed").await;
    assert!(
        n["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{n}"
    );
    let (s, inv) = gc
        .req(Method::GET, &format!("/v1/nodes/{id}/inventory"), None)
        .await;
    assert_eq!(s, 404, "no inspection data: {inv}");
    gc.provision(&id, json!({"target": "manage"})).await;
    gc.wait_state(&id, "manageable").await;

    // --- BIOS settings (with and without the schema), firmware components
    for q in ["", "?detail=True"] {
        let b = gc
            .ok(
                Method::GET,
                &format!("/v1/nodes/{id}/bios{q}"),
                None,
                &[200],
            )
            .await;
        let list = b["bios"].as_array().unwrap_or_else(|| panic!("{b}"));
        for s in list {
            assert!(s["name"].is_string() && is_str_or_null(&s["value"]), "{s}");
        }
    }
    let fw = gc
        .ok(
            Method::GET,
            &format!("/v1/nodes/{id}/firmware"),
            None,
            &[200],
        )
        .await;
    for c in fw["firmware"].as_array().unwrap_or_else(|| panic!("{fw}")) {
        assert!(
            c["component"].is_string() && is_str_or_null(&c["current_version"]),
            "{c}"
        );
    }

    // --- prepare: RAID config, then manual cleaning with Metal3's steps
    let raid = gc
        .ok(
            Method::PUT,
            &format!("/v1/nodes/{id}/states/raid"),
            Some(json!({"logical_disks": [
                {"size_gb": "MAX", "raid_level": "1", "is_root_volume": true}
            ]})),
            &[204],
        )
        .await;
    assert_eq!(raid, Value::Null);
    gc.provision(
        &id,
        json!({"target": "clean", "clean_steps": [
            {"interface": "raid", "step": "delete_configuration"},
            {"interface": "deploy", "step": "erase_devices_metadata"},
            {"interface": "raid", "step": "create_configuration"},
            {"interface": "bios", "step": "apply_configuration",
             "args": {"settings": [{"name": "ProcVirtualization", "value": "Enabled"}]}},
            {"interface": "firmware", "step": "update",
             "args": {"settings": [{"component": "bios", "url": format!("{}/bios.bin", env.images)}]}},
        ]}),
    )
    .await;
    let n = gc.wait_state(&id, "clean wait").await;
    assert_eq!(n["target_provision_state"], "manageable", "{n}");
    assert_eq!(
        n["target_raid_config"]["logical_disks"][0]["raid_level"], "1",
        "{n}"
    );
    gc.provision(&id, json!({"target": "abort"})).await;
    gc.wait_state(&id, "clean failed").await;
    gc.provision(&id, json!({"target": "manage"})).await;
    gc.wait_state(&id, "manageable").await;

    // --- provide (automated cleaning disabled)
    gc.provision(&id, json!({"target": "provide"})).await;
    let n = gc.wait_state(&id, "available").await;
    assert!(
        n["clean_step"].is_null() || n["clean_step"] == json!({}),
        "{n}"
    );

    // --- data image: get, attach, get, detach
    let before = gc
        .ok(Method::GET, &format!("/v1/nodes/{id}/vmedia"), None, &[200])
        .await;
    assert!(
        before
            .as_array()
            .is_some_and(|a| a.iter().all(|m| m["inserted"] != true)),
        "{before}"
    );
    let v = gc
        .ok(
            Method::POST,
            &format!("/v1/nodes/{id}/vmedia"),
            Some(json!({"device_type": "cdrom", "image_url": env.data_iso})),
            &[204],
        )
        .await;
    assert_eq!(v, Value::Null);
    // attaching runs in the conductor's background in Ironic: the operator
    // polls (GetDataImageStatus) until a device says inserted; the image is
    // not compared (Ironic publishes it under its own URL, image_download_source
    // defaults to local; BMO ignores it)
    gc.wait_vmedia(&id, true).await;
    gc.ok(
        Method::DELETE,
        &format!("/v1/nodes/{id}/vmedia?device_types=cdrom"),
        None,
        &[204],
    )
    .await;
    gc.wait_vmedia(&id, false).await;

    // --- event subscriptions (BMCEventSubscription controller)
    let methods = gc
        .ok(
            Method::GET,
            &format!("/v1/nodes/{id}/vendor_passthru/methods"),
            None,
            &[200],
        )
        .await;
    for m in [
        "create_subscription",
        "delete_subscription",
        "get_subscription",
        "get_all_subscriptions",
        "eject_vmedia",
    ] {
        assert!(methods[m]["http_methods"].is_array(), "{m}: {methods}");
    }
    // sushy-emulator has no EventService: Ironic's RedfishError (500)
    let (s, e) = gc
        .req(
            Method::POST,
            &format!("/v1/nodes/{id}/vendor_passthru?method=create_subscription"),
            Some(
                json!({"Destination": "https://metal3.example/events", "Context": "metal3/host-0"}),
            ),
        )
        .await;
    assert_eq!(s, 500, "{e}");
    assert!(
        e["error_message"].to_string().contains("EventService"),
        "{e}"
    );
    let lab_node = gc
        .ok(
            Method::POST,
            "/v1/nodes",
            Some(json!({
                "driver": "redfish",
                "name": "metal3~lab-0",
                "driver_info": {
                    "redfish_address": env.lab,
                    "redfish_system_id": "/redfish/v1/Systems/lab-0",
                    "redfish_username": "admin",
                    "redfish_password": "pw-lab-0",
                },
            })),
            &[201, 202],
        )
        .await;
    let lab_id = lab_node["uuid"].as_str().unwrap().to_owned();
    let sub = gc
        .ok(
            Method::POST,
            &format!("/v1/nodes/{lab_id}/vendor_passthru?method=create_subscription"),
            Some(json!({
                "Destination": "https://metal3.example:8443/events",
                "Context": "metal3/lab-0-events",
                "HttpHeaders": [{"Authorization": "Bearer t0ken"}],
            })),
            &[200],
        )
        .await;
    decodes_as_subscription(&sub);
    assert_eq!(
        sub["Destination"], "https://metal3.example:8443/events",
        "{sub}"
    );
    assert_eq!(sub["Context"], "metal3/lab-0-events", "{sub}");
    assert_eq!(sub["EventTypes"], json!(["Alert"]), "{sub}");
    let all = gc
        .ok(
            Method::GET,
            &format!("/v1/nodes/{lab_id}/vendor_passthru?method=get_all_subscriptions"),
            None,
            &[200],
        )
        .await;
    assert_eq!(all["Members@odata.count"], 1, "{all}");
    assert!(all["Members"][0]["@odata.id"].is_string(), "{all}");
    let sub_id = sub["Id"].as_str().unwrap().to_owned();
    let got = gc
        .ok(
            Method::GET,
            &format!("/v1/nodes/{lab_id}/vendor_passthru?method=get_subscription"),
            Some(json!({"id": sub_id})),
            &[200],
        )
        .await;
    assert_eq!(got, sub);
    gc.ok(
        Method::DELETE,
        &format!("/v1/nodes/{lab_id}/vendor_passthru?method=delete_subscription"),
        Some(json!({"id": sub_id})),
        &[200, 202, 204],
    )
    .await;
    // deleting it again fails with Ironic's 404 (RedfishError code=404)
    let (s, v) = gc
        .req(
            Method::DELETE,
            &format!("/v1/nodes/{lab_id}/vendor_passthru?method=delete_subscription"),
            Some(json!({"id": sub_id})),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(
        v.to_string()
            .contains("Redfish delete_subscription failed for subscription"),
        "{v}"
    );
    let all = gc
        .ok(
            Method::GET,
            &format!("/v1/nodes/{lab_id}/vendor_passthru?method=get_all_subscriptions"),
            None,
            &[200],
        )
        .await;
    assert_eq!(all["Members@odata.count"], 0, "{all}");
    // eject_vmedia is asynchronous: 202 and no body, as Ironic's
    let (s, v) = gc
        .req(
            Method::POST,
            &format!("/v1/nodes/{lab_id}/vendor_passthru?method=eject_vmedia"),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, v), (202, Value::Null));
    let (s, _) = gc
        .req_unlocked(Method::DELETE, &format!("/v1/nodes/{lab_id}"), None)
        .await;
    assert_eq!(s, 204);

    // --- provision: instance_info by JSON patch, validate, deploy with a
    // config drive and deploy steps
    let image = format!("{}/host.qcow2", env.images);
    let checksum = "6c3a4e5b9f2d1c0e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f";
    // setUpForProvisioning, every time the host leaves `available` for a deploy
    let instance_info = json!([
        {"op": "add", "path": "/instance_info/image_source", "value": image},
        {"op": "add", "path": "/instance_info/image_disk_format", "value": "qcow2"},
        {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
        {"op": "add", "path": "/instance_info/image_os_hash_value", "value": checksum},
        {"op": "add", "path": "/instance_info/capabilities", "value": {"boot_mode": "uefi"}},
    ]);
    let n = gc
        .ok(
            Method::PATCH,
            &format!("/v1/nodes/{id}"),
            Some(instance_info.clone()),
            &[200],
        )
        .await;
    decodes_as_node(&n);
    assert_eq!(n["instance_info"]["image_os_hash_value"], checksum, "{n}");
    let v = gc
        .ok(
            Method::GET,
            &format!("/v1/nodes/{id}/validate"),
            None,
            &[200],
        )
        .await;
    for iface in ["boot", "deploy", "power", "management"] {
        assert_eq!(v[iface]["result"], true, "{iface}: {v}");
    }
    let deploy = json!({
        "target": "active",
        "configdrive": {
            "meta_data": {"uuid": "0f0e-host-0", "metal3-namespace": "metal3", "metal3-name": "host-0",
                          "local-hostname": "host-0", "local_hostname": "host-0", "name": "host-0"},
            "network_data": {"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": MAC}],
                             "networks": [], "services": []},
            "user_data": "#cloud-config\nhostname: host-0\n",
        },
        "deploy_steps": [{"interface": "deploy", "step": "write_image", "args": {}, "priority": 80}],
    });
    gc.provision(&id, deploy.clone()).await;
    let n = gc.wait_state(&id, "wait call-back").await;
    assert_eq!(n["target_provision_state"], "active", "{n}");
    // 1.110: abort in wait call-back
    gc.provision(&id, json!({"target": "abort"})).await;
    let n = gc.wait_state(&id, "deploy failed").await;
    assert!(
        n["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{n}"
    );
    // deprovision from deploy failed: the tear-down clears instance_info
    gc.provision(&id, json!({"target": "deleted"})).await;
    let n = gc.wait_state(&id, "available").await;
    assert_eq!(n["instance_info"], json!({}), "{n}");
    // deploy again; forceReboot: `deleted` straight from wait call-back
    gc.ok(
        Method::PATCH,
        &format!("/v1/nodes/{id}"),
        Some(instance_info.clone()),
        &[200],
    )
    .await;
    gc.provision(&id, deploy).await;
    gc.wait_state(&id, "wait call-back").await;
    gc.provision(&id, json!({"target": "deleted"})).await;
    gc.wait_state(&id, "available").await;

    // --- power: on, soft power off with Metal3's timeout
    let on = gc
        .ok(
            Method::PUT,
            &format!("/v1/nodes/{id}/states/power"),
            Some(json!({"target": "power on"})),
            &[202],
        )
        .await;
    assert_eq!(on, Value::Null);
    gc.wait_power(&id, "power on").await;
    gc.ok(
        Method::PUT,
        &format!("/v1/nodes/{id}/states/power"),
        Some(json!({"target": "soft power off", "timeout": 180})),
        &[202],
    )
    .await;
    gc.wait_power(&id, "power off").await;

    // --- maintenance on and off
    gc.ok(
        Method::PUT,
        &format!("/v1/nodes/{id}/maintenance"),
        Some(json!({"reason": "forcing deletion in baremetal-operator"})),
        &[202],
    )
    .await;
    let n = gc.node(&id).await;
    assert_eq!(n["maintenance"], true);
    assert_eq!(
        n["maintenance_reason"],
        "forcing deletion in baremetal-operator"
    );
    gc.ok(
        Method::DELETE,
        &format!("/v1/nodes/{id}/maintenance"),
        None,
        &[202],
    )
    .await;
    assert_eq!(gc.node(&id).await["maintenance"], false);

    // --- adopt (externally provisioned host), then deprovision it
    gc.provision(&id, json!({"target": "manage"})).await;
    gc.wait_state(&id, "manageable").await;
    gc.ok(
        Method::PATCH,
        &format!("/v1/nodes/{id}"),
        Some(instance_info),
        &[200],
    )
    .await;
    gc.provision(&id, json!({"target": "adopt"})).await;
    let n = gc.wait_state(&id, "active").await;
    assert_eq!(n["instance_info"]["image_source"], json!(image), "{n}");
    gc.provision(&id, json!({"target": "deleted"})).await;
    gc.wait_state(&id, "available").await;

    // --- capacity: the list Metal3 pages with its fields (recorded with only
    // this flow's node: the other flow's nodes come and go meanwhile)
    let path = "/v1/nodes?fields=uuid,name,provision_state,boot_interface";
    let (s, mut list) = gc.send(Method::GET, path, None).await;
    assert_eq!(s, 200, "GET {path}: {list}");
    let nodes = list["nodes"].as_array().unwrap_or_else(|| panic!("{list}"));
    let mine: Vec<Value> = nodes
        .iter()
        .filter(|n| n["uuid"] == json!(id))
        .cloned()
        .collect();
    let mut recorded = list.clone();
    recorded["nodes"] = Value::Array(mine);
    gc.record(format!("GET {path} (this node)"), s, &recorded);
    list["nodes"] = recorded["nodes"].clone();
    let nodes = list["nodes"].as_array().unwrap();
    let me = nodes
        .iter()
        .find(|n| n["uuid"] == json!(id))
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(me["provision_state"], "available", "{me}");
    assert_eq!(me["boot_interface"], "redfish-virtual-media", "{me}");
    assert!(
        me.get("driver_info").is_none(),
        "only the fields asked: {me}"
    );
    decodes_as_node(me);

    // --- delete (available: no maintenance needed), then the host is gone
    let (s, v) = gc
        .req_unlocked(Method::DELETE, &format!("/v1/nodes/{id}"), None)
        .await;
    assert_eq!((s, v), (204, Value::Null));
    let (s, _) = gc.req(Method::GET, &format!("/v1/nodes/{id}"), None).await;
    assert_eq!(s, 404);
    let by_mac = gc
        .ok(
            Method::GET,
            &format!("/v1/ports?address={MAC}&fields=node_uuid,uuid,address"),
            None,
            &[200],
        )
        .await;
    assert_eq!(
        by_mac["ports"],
        json!([]),
        "the node's ports went with it: {by_mac}"
    );
}

/// The rest of a host's life that Metal3 can ask for, on a second host
/// registered with `disable_power_off` (Ironic reboots where it would power
/// off, and refuses power-off requests with 409): paging through nodes and
/// ports with `limit` and the `next` link as gophercloud walks them, power
/// requests (BMO's `soft rebooting` / `rebooting` for such hosts), adopt,
/// rescue and its abort, unrescue (with power off allowed), servicing (1.87)
/// with BMO's BIOS step, which needs no ramdisk, failing on sushy's fake
/// driver: abort refused in maintenance, maintenance cleared, abort; the same
/// with `disable_ramdisk` (1.108); deprovision with `disable_power_off`, a
/// live ISO (`ramdisk` deploy) and a custom deploy (`custom-agent`) as BMO
/// sets them up. The states reached are compared with Ironic's rather than
/// asserted.
async fn extras(mut gc: Gc, env: Env) {
    gc.mv = Some(MV);
    let name = "metal3~host-2";
    let created = gc
        .ok(
            Method::POST,
            "/v1/nodes",
            Some(json!({
                "boot_interface": "redfish-virtual-media",
                "driver": "redfish",
                "driver_info": {
                    "redfish_address": env.bmc,
                    "redfish_system_id": format!("/redfish/v1/Systems/{}", env.system),
                    "redfish_username": "admin",
                    "redfish_password": "password",
                    "redfish_verify_ca": false,
                    "deploy_iso": env.deploy_iso,
                    "rescue_iso": format!("{}/rescue.iso", env.images),
                },
                "deploy_interface": "direct",
                "rescue_interface": "agent",
                "name": name,
                "resource_class": "metal3-page",
                "instance_uuid": uuid::Uuid::new_v4().to_string(),
                "disable_power_off": true,
                "automated_clean": false,
                "properties": {"capabilities": "boot_mode:uefi", "cpu_arch": "x86_64"},
            })),
            &[201, 202],
        )
        .await;
    decodes_as_node(&created);
    let id = created["uuid"].as_str().unwrap().to_owned();
    assert_eq!(created["disable_power_off"], true, "{created}");
    // a second node in the class, two ports on the host and one on it, for the pages
    let other = gc
        .ok(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "metal3~page-1", "resource_class": "metal3-page",
                        "instance_uuid": uuid::Uuid::new_v4().to_string()})),
            &[201, 202],
        )
        .await;
    let other_id = other["uuid"].as_str().unwrap().to_owned();
    for (i, node) in [&id, &id, &other_id].iter().enumerate() {
        gc.ok(
            Method::POST,
            "/v1/ports",
            Some(json!({"node_uuid": node, "address": format!("52:54:00:e0:15:{i:02x}")})),
            &[201, 202],
        )
        .await;
    }
    // Ironic 39 keeps only associated/maintenance/retired/detail (nodes) and
    // detail (ports) in a `next` link: any other filter (resource_class,
    // node_uuid, address, ...) is dropped after the first page, so the walk
    // returns unfiltered items; ironic-rs keeps every filter. The pages
    // compared use what Ironic keeps: `associated` (only these two nodes have
    // an instance). (`/v1/nodes/{id}/ports?limit=1` loses the node too: its
    // second page lists every port.)
    let nodes = gc
        .all_pages(
            "/v1/nodes?associated=True&limit=1&fields=uuid,name",
            "nodes",
            usize::MAX,
        )
        .await;
    let mut names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["metal3~host-2", "metal3~page-1"], "{nodes:?}");
    let detail = gc
        .all_pages(
            "/v1/nodes/detail?associated=True&limit=1",
            "nodes",
            usize::MAX,
        )
        .await;
    assert_eq!(detail.len(), 2, "{detail:?}");
    // every port, as BMO's getPorts pages them (with its fields); the other
    // flow adds and removes its port meanwhile, so only the first page is
    // compared, and this flow's three must all come back
    let ports = gc
        .all_pages(
            "/v1/ports?limit=1&fields=node_uuid,uuid,address",
            "ports",
            1,
        )
        .await;
    let mut mine: Vec<&str> = ports
        .iter()
        .filter_map(|p| p["address"].as_str())
        .filter(|a| a.starts_with("52:54:00:e0:15:"))
        .collect();
    mine.sort();
    assert_eq!(
        mine,
        [
            "52:54:00:e0:15:00",
            "52:54:00:e0:15:01",
            "52:54:00:e0:15:02"
        ],
        "{ports:?}"
    );
    assert!(
        ports.iter().all(|p| p.get("pxe_enabled").is_none()),
        "the next link keeps the fields: {ports:?}"
    );
    gc.ok(
        Method::PATCH,
        &format!("/v1/nodes/{other_id}"),
        Some(json!([{"op": "remove", "path": "/instance_uuid"}])),
        &[200],
    )
    .await;
    let (s, _) = gc
        .req_unlocked(Method::DELETE, &format!("/v1/nodes/{other_id}"), None)
        .await;
    assert_eq!(s, 204);

    // manage; power requests on a node that must not be powered off
    gc.provision(&id, json!({"target": "manage"})).await;
    gc.wait_state(&id, "manageable").await;
    // (BMO asks for `soft rebooting` / `rebooting` instead of the power offs
    // when the host has disable_power_off)
    for target in [
        "power on",
        "power off",
        "soft power off",
        "soft rebooting",
        "rebooting",
    ] {
        let (s, _) = gc
            .req(
                Method::PUT,
                &format!("/v1/nodes/{id}/states/power"),
                Some(json!({"target": target})),
            )
            .await;
        if s == 202 {
            gc.wait_power(&id, "power on").await;
        }
    }
    let node_path = format!("/v1/nodes/{id}");
    let power_off =
        |allowed: bool| json!([{"op": "replace", "path": "/disable_power_off", "value": !allowed}]);

    // adopt, then rescue: the rescue ramdisk never calls back; abort;
    // unrescue. With power off allowed: Ironic 39's AgentRescue powers the
    // node off to boot the rescue ramdisk (and again to unrescue), which it
    // refuses for a disable_power_off node ("Failed to rescue: Failed to set
    // node power state to power off", rescue failed); BMO never rescues.
    let instance_info = json!([
        {"op": "add", "path": "/instance_info/image_source", "value": format!("{}/host.qcow2", env.images)},
        {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
        {"op": "add", "path": "/instance_info/image_os_hash_value", "value": "6c3a4e5b9f2d1c0e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"},
    ]);
    gc.ok(Method::PATCH, &node_path, Some(instance_info), &[200])
        .await;
    gc.labelled(
        "PATCH disable_power_off=false",
        Method::PATCH,
        &node_path,
        Some(power_off(true)),
    )
    .await;
    gc.provision(&id, json!({"target": "adopt"})).await;
    gc.wait_state(&id, "active").await;
    gc.try_provision(
        &id,
        json!({"target": "rescue", "rescue_password": "r3scue"}),
    )
    .await;
    gc.settle(&id, "rescue").await;
    gc.try_provision(&id, json!({"target": "abort"})).await;
    gc.settle(&id, "rescue abort").await;
    gc.try_provision(&id, json!({"target": "unrescue"})).await;
    gc.settle(&id, "unrescue").await;

    // servicing (1.87) as BMO's Service(): BIOS settings, out of band (no
    // ramdisk needed), failing on sushy's fake driver (no Bios resource):
    // service failed in maintenance; abort refused in maintenance; BMO clears
    // maintenance and aborts back to active; then the same with
    // disable_ramdisk (1.108); both with disable_power_off
    gc.labelled(
        "PATCH disable_power_off=true",
        Method::PATCH,
        &node_path,
        Some(power_off(false)),
    )
    .await;
    let steps = json!([{"interface": "bios", "step": "apply_configuration",
                        "args": {"settings": [{"name": "ProcVirtualization", "value": "Enabled"}]}}]);
    for (what, body) in [
        (
            "service",
            json!({"target": "service", "service_steps": steps}),
        ),
        (
            "service without ramdisk",
            json!({"target": "service", "service_steps": steps, "disable_ramdisk": true}),
        ),
    ] {
        gc.try_provision(&id, body).await;
        gc.settle(&id, what).await;
        gc.try_provision(&id, json!({"target": "abort"})).await;
        gc.ok(
            Method::DELETE,
            &format!("/v1/nodes/{id}/maintenance"),
            None,
            &[202],
        )
        .await;
        gc.try_provision(&id, json!({"target": "abort"})).await;
        gc.settle(&id, &format!("{what} abort")).await;
    }

    // deprovision with disable_power_off: the tear-down reboots rather than
    // powers off. Ironic 39 fails it ("Failed to tear down: Failed to set node
    // power state to power off": RedfishVirtualMediaBoot.clean_up_ramdisk
    // powers off whatever the flag says) and leaves the node in `error`;
    // ironic-rs skips that power off and reboots (KNOWN). Then the same with
    // power off allowed, which takes Ironic's node out of `error` (ironic-rs's
    // is available already: KNOWN).
    gc.try_provision(&id, json!({"target": "deleted"})).await;
    gc.settle(&id, "deleted with disable_power_off").await;
    gc.labelled(
        "PATCH disable_power_off=false (after the tear-down)",
        Method::PATCH,
        &node_path,
        Some(power_off(true)),
    )
    .await;
    gc.try_provision_in(&id, json!({"target": "deleted"}), " (again)")
        .await;
    gc.settle(&id, "deleted again").await;
    // Ironic's second tear-down powered its node off, ironic-rs's first one
    // rebooted it: the same power state for what follows
    let off = gc
        .ok(
            Method::PUT,
            &format!("/v1/nodes/{id}/states/power"),
            Some(json!({"target": "power off"})),
            &[202],
        )
        .await;
    assert_eq!(off, Value::Null);
    gc.wait_power(&id, "power off").await;

    // a live ISO (BMO's setLiveIsoUpdateOptsForNode): the `ramdisk` deploy
    // interface boots instance_info.boot_iso, no agent involved; then
    // deprovision
    gc.labelled(
        "PATCH deploy_interface=ramdisk, boot_iso (live ISO)",
        Method::PATCH,
        &node_path,
        Some(json!([
            {"op": "add", "path": "/instance_uuid", "value": uuid::Uuid::new_v4().to_string()},
            {"op": "add", "path": "/instance_info/capabilities", "value": {"boot_mode": "uefi"}},
            {"op": "add", "path": "/instance_info/boot_iso", "value": format!("{}/live.iso", env.images)},
            {"op": "add", "path": "/deploy_interface", "value": "ramdisk"},
            {"op": "add", "path": "/driver_info/force_persistent_boot_device", "value": "Default"},
        ])),
    )
    .await;
    gc.try_provision_in(&id, json!({"target": "active"}), " (live ISO)")
        .await;
    gc.settle(&id, "live ISO deploy").await;
    gc.try_provision_in(&id, json!({"target": "deleted"}), " (live ISO)")
        .await;
    gc.settle(&id, "live ISO deleted").await;

    // custom deploy (BMO's setCustomDeployUpdateOptsForNode, spec.customDeploy):
    // the `custom-agent` deploy interface runs the agent's deploy step named
    // by the method; the ramdisk never calls back, so BMO aborts, deprovisions
    // and goes back to `direct` by removing deploy_interface
    gc.labelled(
        "PATCH deploy_interface=custom-agent, image (custom deploy)",
        Method::PATCH,
        &node_path,
        Some(json!([
            {"op": "add", "path": "/instance_uuid", "value": uuid::Uuid::new_v4().to_string()},
            {"op": "add", "path": "/instance_info/capabilities", "value": {"boot_mode": "uefi"}},
            {"op": "add", "path": "/instance_info/image_source", "value": format!("{}/host.qcow2", env.images)},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": "qcow2"},
            {"op": "add", "path": "/deploy_interface", "value": "custom-agent"},
        ])),
    )
    .await;
    gc.try_provision_in(
        &id,
        json!({"target": "active", "deploy_steps": [
            {"interface": "deploy", "step": "install_coreos", "args": {}, "priority": 80}
        ]}),
        " (custom deploy)",
    )
    .await;
    gc.settle(&id, "custom deploy").await;
    gc.try_provision_in(&id, json!({"target": "abort"}), " (custom deploy)")
        .await;
    gc.settle(&id, "custom deploy abort").await;
    gc.try_provision_in(&id, json!({"target": "deleted"}), " (custom deploy)")
        .await;
    gc.settle(&id, "custom deploy deleted").await;
    gc.labelled(
        "PATCH remove deploy_interface",
        Method::PATCH,
        &node_path,
        Some(json!([{"op": "remove", "path": "/deploy_interface"}])),
    )
    .await;
    gc.ok(
        Method::PUT,
        &format!("/v1/nodes/{id}/maintenance"),
        Some(json!({"reason": "done"})),
        &[202],
    )
    .await;
    let (s, _) = gc.req_unlocked(Method::DELETE, &node_path, None).await;
    assert_eq!(s, 204);
}

/// Which flow a task runs.
#[derive(Clone, Copy, Debug)]
enum Flow {
    /// [`sequence`].
    Sequence,
    /// [`extras`].
    Extras,
}

/// Run a flow on its own task; its record survives a panic.
fn spawn_sequence(
    base: String,
    env: Env,
    flow: Flow,
) -> (Arc<Mutex<Vec<Step>>>, tokio::task::JoinHandle<()>) {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let gc = Gc {
        base,
        mv: None,
        http: reqwest::Client::new(),
        trace: trace.clone(),
    };
    let h = match flow {
        Flow::Sequence => tokio::spawn(sequence(gc, env)),
        Flow::Extras => tokio::spawn(extras(gc, env)),
    };
    (trace, h)
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into()),
        Err(e) => e.to_string(),
    }
}

/// ironic-rs configured as the real Ironic is (`RealIronic::start_redfish`):
/// fake-hardware and redfish, the same interfaces enabled.
const OURS: &str = r#"
[conductor]
automated_clean = false
[drivers]
enabled_hardware_types = ["fake-hardware", "redfish"]
enabled_bios_interfaces = ["fake", "no-bios", "redfish"]
enabled_boot_interfaces = ["fake", "redfish-virtual-media"]
enabled_console_interfaces = ["fake", "no-console"]
enabled_deploy_interfaces = ["fake", "direct"]
enabled_firmware_interfaces = ["fake", "no-firmware", "redfish"]
enabled_inspect_interfaces = ["fake", "no-inspect", "agent", "redfish"]
enabled_management_interfaces = ["fake", "redfish"]
enabled_network_interfaces = ["noop"]
enabled_power_interfaces = ["fake", "redfish"]
enabled_raid_interfaces = ["fake", "no-raid", "redfish", "agent"]
enabled_rescue_interfaces = ["fake", "no-rescue", "agent"]
enabled_storage_interfaces = ["noop"]
enabled_vendor_interfaces = ["fake", "no-vendor", "redfish"]
"#;

#[test]
fn metal3_sequence_side_by_side_with_ironic_39() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("sushy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let bmc = Sushy::start_systems(
        dir.path(),
        &tmp,
        &[
            (SYSTEMS[0], "host-0", MAC),
            (SYSTEMS[1], "host-1", MAC),
            (SYSTEMS[2], "host-2", MAC),
            (SYSTEMS[3], "host-3", MAC),
        ],
    );
    let conf = dir.path().join("ironic-rs.toml");
    std::fs::write(&conf, OURS).unwrap();
    let ironic = Ironic::start(&["--config", conf.to_str().unwrap()], &[]);
    let rt = rt();
    let (images, _files) = rt.block_on(image_server());
    let real = RealIronic::start_redfish(&images);
    let labs: Vec<ironic_lab::RedfishSim> = ["ours", "real"]
        .iter()
        .map(|side| {
            let lab_dir = dir.path().join(format!("lab-{side}"));
            std::fs::create_dir_all(&lab_dir).unwrap();
            api_support::lab_redfish_sim(&rt, &lab_dir)
        })
        .collect();
    let env = |i: usize| Env {
        bmc: bmc.url.clone(),
        system: SYSTEMS[i].to_owned(),
        lab: labs[i % 2].url(),
        images: images.clone(),
        deploy_iso: format!("{images}/ipa.iso"),
        data_iso: format!("{images}/data-image.iso"),
    };
    // both flows on both servers at once
    let runs = rt.block_on(async {
        let mut started = Vec::new();
        for (i, flow) in [Flow::Sequence, Flow::Extras].into_iter().enumerate() {
            let ours = spawn_sequence(ironic.url.clone(), env(2 * i), flow);
            let theirs = spawn_sequence(real.url.clone(), env(2 * i + 1), flow);
            started.push((flow, ours, theirs));
        }
        let mut done = Vec::new();
        for (flow, (ours, h_ours), (theirs, h_real)) in started {
            let a = h_ours.await.map_err(panic_text);
            let b = h_real.await.map_err(panic_text);
            done.push((flow, ours, theirs, a, b));
        }
        done
    });
    let mut failures = Vec::new();
    for (flow, ours, theirs, ours_done, real_done) in runs {
        let ours = ours.lock().unwrap().clone();
        let theirs = theirs.lock().unwrap().clone();
        if let Some(d) = std::env::var_os("METAL3_TRACE_DIR") {
            // both records, for reading differences at leisure
            for (name, t) in [("ironic-39", &theirs), ("ironic-rs", &ours)] {
                let steps: Vec<Value> = t
                    .iter()
                    .map(|s| json!({"label": s.label, "status": s.status, "body": s.body}))
                    .collect();
                std::fs::write(
                    std::path::Path::new(&d).join(format!("{flow:?}-{name}.json")),
                    serde_json::to_string_pretty(&steps).unwrap(),
                )
                .unwrap();
            }
        }
        let (diffs, messages) = compare(&theirs, &ours);
        let (known, diffs): (Vec<String>, Vec<String>) = diffs
            .into_iter()
            .map(|d| format!("{flow:?}: {d}"))
            .partition(|d| KNOWN.iter().any(|(k, _)| is_known(d, k)));
        for m in &messages {
            eprintln!("{flow:?}: error message differs (same status and format): {m}");
        }
        for d in &known {
            eprintln!("{flow:?}: known difference: {d}");
        }
        if let Err(e) = &ours_done {
            failures.push(format!("{flow:?} failed on ironic-rs: {e}"));
        }
        if let Err(e) = &real_done {
            failures.push(format!(
                "{flow:?} failed on the real Ironic 39: {e}\nIronic's log (tail):\n{}",
                tail(&real.log_text(), 4000)
            ));
        }
        if ours_done.is_ok() && real_done.is_ok() {
            for (k, why) in KNOWN
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{flow:?}:")))
            {
                if !known.iter().any(|d| is_known(d, k)) {
                    failures.push(format!(
                        "the known difference {k:?} ({why}) no longer occurs: remove it from KNOWN"
                    ));
                }
            }
        }
        eprintln!(
            "{flow:?}: {} steps on Ironic 39, {} on ironic-rs, {} differences, {} known",
            theirs.len(),
            ours.len(),
            diffs.len(),
            known.len()
        );
        failures.extend(diffs);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop(ironic);
}

fn tail(s: &str, n: usize) -> &str {
    &s[s.floor_char_boundary(s.len().saturating_sub(n))..]
}
