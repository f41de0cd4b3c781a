//! The protocol details the real clients depend on, checked over HTTP against the
//! running binary: microversion negotiation and headers, the double-encoded error
//! body, request ids, 201/202/204 with `Location`, `fields`, paging links,
//! JSON-patch rules, secrets masking, basic auth, and start-up errors.

mod api_support;

use api_support::Ironic;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    c: reqwest::Client,
    url: String,
}

impl Api {
    fn new(url: &str) -> Self {
        Api {
            c: reqwest::Client::new(),
            url: url.to_owned(),
        }
    }
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        version: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = self.c.request(method, format!("{}{path}", self.url));
        if let Some(v) = version {
            r = r.header("X-OpenStack-Ironic-API-Version", v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }
    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.send(method, path, Some("latest"), body).await;
        let s = r.status();
        let t = r.text().await.unwrap();
        (
            s,
            if t.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&t).unwrap()
            },
        )
    }
}

fn inner_error(v: &Value) -> Value {
    serde_json::from_str(v["error_message"].as_str().expect("error_message string")).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn microversions_headers_and_errors_follow_ironic() {
    let ir = Ironic::start(&[], &[]);
    rt().block_on(async {
        let api = Api::new(&ir.url);
        // No header: 1.1, with min/max/negotiated headers and request ids.
        let r = api.send(reqwest::Method::GET, "/", None, None).await;
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["x-openstack-ironic-api-minimum-version"], "1.1");
        let max = h["x-openstack-ironic-api-maximum-version"].to_str().unwrap().to_owned();
        assert_eq!(h["x-openstack-ironic-api-version"], "1.1");
        let rid = h["x-openstack-request-id"].to_str().unwrap();
        assert!(rid.starts_with("req-") && uuid::Uuid::parse_str(&rid[4..]).is_ok(), "{rid}");
        assert_eq!(h["openstack-request-id"], rid);
        let root: Value = r.json().await.unwrap();
        assert_eq!(root["default_version"]["version"], max.as_str());
        assert_eq!(root["versions"][0]["min_version"], "1.1");

        // `latest` and the OpenStack-API-Version form.
        let r = api.send(reqwest::Method::GET, "/v1", Some("latest"), None).await;
        assert_eq!(r.headers()["x-openstack-ironic-api-version"], max.as_str());
        let v1: Value = r.json().await.unwrap();
        assert!(v1["allocations"].is_array() && v1["deploy_templates"].is_array());
        let r = api
            .c
            .get(format!("{}/v1", ir.url))
            .header("OpenStack-API-Version", "baremetal 1.40")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-openstack-ironic-api-version"], "1.40");
        let v1: Value = r.json().await.unwrap();
        assert!(v1.get("allocations").is_none(), "allocations are 1.52+");

        // Out of range: 406 with code/title/description and no negotiated header.
        let r = api.send(reqwest::Method::GET, "/v1/nodes", Some("1.999"), None).await;
        assert_eq!(r.status(), 406);
        assert!(r.headers().get("x-openstack-ironic-api-version").is_none());
        assert_eq!(r.headers()["x-openstack-ironic-api-maximum-version"], max.as_str());
        let e = inner_error(&r.json().await.unwrap());
        assert_eq!(e["code"], 406);
        assert_eq!(
            e["description"],
            format!(
                "Version 1.999 was requested but the minor version is not supported by this service. The supported version range is: [1.1, {max}]."
            )
        );
        let r = api.send(reqwest::Method::GET, "/v1/nodes", Some("1"), None).await;
        assert_eq!(r.status(), 406);
        let e = inner_error(&r.json().await.unwrap());
        assert_eq!(e["description"], "Invalid value for X-OpenStack-Ironic-API-Version header");

        // 404 in the double-encoded faultstring form.
        let (s, v) = api.json(reqwest::Method::GET, "/v1/nodes/does-not-exist", None).await;
        assert_eq!(s, 404);
        let e = inner_error(&v);
        assert_eq!(e["faultcode"], "Client");
        assert_eq!(e["faultstring"], "Node does-not-exist could not be found.");
        assert!(e["debuginfo"].is_null());
        // Unknown paths and methods are errors in the same envelope.
        let (s, v) = api.json(reqwest::Method::GET, "/v1/bogus", None).await;
        assert_eq!(s, 404);
        assert_eq!(inner_error(&v)["code"], 404);
        let (s, v) = api.json(reqwest::Method::PUT, "/v1/nodes", Some(json!({}))).await;
        assert_eq!(s, 405);
        assert_eq!(inner_error(&v)["code"], 405);
        // Feature newer than the version: endpoint 404, field 406.
        let r = api.send(reqwest::Method::GET, "/v1/conductors", Some("1.40"), None).await;
        assert_eq!(r.status(), 404);
        let r = api.send(reqwest::Method::GET, "/v1/nodes?fields=traits", Some("1.30"), None).await;
        assert_eq!(r.status(), 406);
        // Bad JSON is a 400, not a crash.
        let r = api
            .c
            .post(format!("{}/v1/nodes", ir.url))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let e = inner_error(&r.json().await.unwrap());
        assert!(e["faultstring"].as_str().unwrap().contains("Invalid JSON"), "{e}");
        // X-Auth-Token is accepted and ignored under noauth.
        let r = api
            .c
            .get(format!("{}/v1/nodes", ir.url))
            .header("X-Auth-Token", "whatever")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
}

#[test]
fn resources_statuses_links_fields_and_patch_rules() {
    let ir = Ironic::start(&[], &[]);
    rt().block_on(async {
        let api = Api::new(&ir.url);
        let r = api
            .send(
                reqwest::Method::POST,
                "/v1/nodes",
                Some("latest"),
                Some(json!({"driver": "fake-hardware", "name": "n1",
                            "driver_info": {"ipmi_address": "10.0.0.9", "ipmi_password": "hunter2"}})),
            )
            .await;
        assert_eq!(r.status(), 201);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        let node: Value = r.json().await.unwrap();
        let uuid = node["uuid"].as_str().unwrap().to_owned();
        assert_eq!(loc, format!("{}/v1/nodes/{uuid}", ir.url));
        assert_eq!(node["driver_info"]["ipmi_password"], "******");
        assert_eq!(node["links"][0]["href"], loc.as_str());
        assert_eq!(node["links"][1]["href"], format!("{}/nodes/{uuid}", ir.url));

        // Duplicate name → 409; unknown driver → 400; unknown field → 400.
        let (s, v) = api
            .json(reqwest::Method::POST, "/v1/nodes", Some(json!({"driver": "fake-hardware", "name": "n1"})))
            .await;
        assert_eq!(s, 409, "{v}");
        let (s, _) = api.json(reqwest::Method::POST, "/v1/nodes", Some(json!({"driver": "nope"}))).await;
        assert_eq!(s, 400);
        let (s, v) = api
            .json(reqwest::Method::POST, "/v1/nodes", Some(json!({"driver": "fake-hardware", "bogus": 1})))
            .await;
        assert_eq!(s, 400);
        assert!(inner_error(&v)["faultstring"].as_str().unwrap().contains("bogus"));

        // fields= on show (UUID and name), and at 1.1 only old fields appear.
        let (s, v) = api
            .json(reqwest::Method::GET, "/v1/nodes/n1?fields=uuid,name,provision_state", None)
            .await;
        assert_eq!(s, 200);
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["links", "name", "provision_state", "uuid"]);
        let r = api.send(reqwest::Method::GET, &format!("/v1/nodes/{uuid}"), None, None).await;
        let old: Value = r.json().await.unwrap();
        assert!(old.get("name").is_none() && old.get("traits").is_none() && old.get("driver").is_some());

        // JSON patch: nested add, replace, remove; forbidden fields; new root attributes.
        let (s, v) = api
            .json(
                reqwest::Method::PATCH,
                "/v1/nodes/n1",
                Some(json!([
                    {"op": "add", "path": "/driver_info/fake_key", "value": "fake_value"},
                    {"op": "add", "path": "/instance_info/image_source", "value": "http://127.0.0.1/fake.img"},
                    {"op": "replace", "path": "/extra", "value": {"rack": "r1"}},
                    {"op": "remove", "path": "/driver_info/ipmi_address"}
                ])),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["driver_info"], json!({"fake_key": "fake_value", "ipmi_password": "******"}));
        assert_eq!(v["extra"], json!({"rack": "r1"}));
        let (s, v) = api
            .json(
                reqwest::Method::PATCH,
                "/v1/nodes/n1",
                Some(json!([{"op": "replace", "path": "/provision_state", "value": "active"}])),
            )
            .await;
        assert_eq!(s, 400);
        assert!(inner_error(&v)["faultstring"].as_str().unwrap().starts_with("Cannot patch /provision_state."));
        let (s, _) = api
            .json(reqwest::Method::PATCH, "/v1/nodes/n1", Some(json!([{"op": "add", "path": "/newfield", "value": 1}])))
            .await;
        assert_eq!(s, 400);
        let (s, v) = api
            .json(reqwest::Method::PATCH, "/v1/nodes/n1", Some(json!([{"op": "remove", "path": "/extra/nope"}])))
            .await;
        assert_eq!(s, 400);
        assert!(inner_error(&v)["faultstring"].as_str().unwrap().starts_with("Couldn't apply patch"));
        // The password survived patches that did not touch it.
        let (_, v) = api.json(reqwest::Method::PATCH, "/v1/nodes/n1", Some(json!([]))).await;
        assert_eq!(v["driver_info"]["ipmi_password"], "******");

        // 202 + Location, empty body, on provision; 400 on an invalid transition.
        let r = api
            .send(reqwest::Method::PUT, "/v1/nodes/n1/states/provision", Some("latest"), Some(json!({"target": "active"})))
            .await;
        assert_eq!(r.status(), 400);
        let r = api
            .send(reqwest::Method::PUT, "/v1/nodes/n1/states/provision", Some("latest"), Some(json!({"target": "manage"})))
            .await;
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()["location"], format!("{}/v1/nodes/n1/states", ir.url).as_str());
        assert!(r.headers().get("content-type").is_none());
        assert!(r.bytes().await.unwrap().is_empty());
        // A verb newer than the version is 406.
        let r = api
            .send(
                reqwest::Method::PUT,
                &format!("/v1/nodes/{uuid}/states/provision"),
                Some("1.3"),
                Some(json!({"target": "provide"})),
            )
            .await;
        assert_eq!(r.status(), 406);

        // Trailing slash, port create with Location, DELETE 204.
        let (s, p) = api
            .json(
                reqwest::Method::POST,
                "/v1/ports/",
                Some(json!({"node_uuid": uuid, "address": "52:54:00:de:ad:01", "pxe_enabled": false})),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["pxe_enabled"], false);
        let (s, list) = api.json(reqwest::Method::GET, &format!("/v1/ports/?node={uuid}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(list["ports"][0]["address"], "52:54:00:de:ad:01");
        let r = api
            .send(reqwest::Method::DELETE, &format!("/v1/ports/{}", p["uuid"].as_str().unwrap()), Some("latest"), None)
            .await;
        assert_eq!(r.status(), 204);

        // Paging: `next` carries the query, the marker, and the limit.
        for i in 0..5 {
            api.json(reqwest::Method::POST, "/v1/nodes", Some(json!({"driver": "fake-hardware", "name": format!("p{i}")})))
                .await;
        }
        let (_, page) = api.json(reqwest::Method::GET, "/v1/nodes?limit=2&fields=uuid,name", None).await;
        let next = page["next"].as_str().unwrap();
        assert!(next.starts_with(&format!("{}/v1/nodes?sort_key=id&sort_dir=asc&", ir.url)), "{next}");
        assert!(next.contains("fields=uuid,name") && next.contains("limit=2&marker="), "{next}");
        let r = api.c.get(next).header("X-OpenStack-Ironic-API-Version", "latest").send().await.unwrap();
        let page2: Value = r.json().await.unwrap();
        assert_eq!(page2["nodes"].as_array().unwrap().len(), 2);
        assert_ne!(page2["nodes"][0]["uuid"], page["nodes"][0]["uuid"]);
        let (_, all) = api.json(reqwest::Method::GET, "/v1/nodes?limit=1000", None).await;
        assert!(all.get("next").is_none());
        let (s, _) = api.json(reqwest::Method::GET, "/v1/nodes?limit=0", None).await;
        assert_eq!(s, 400);
        let (_, sorted) = api.json(reqwest::Method::GET, "/v1/nodes?sort_key=name&sort_dir=desc&limit=3", None).await;
        let names: Vec<&str> = sorted["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["p4", "p3", "p2"]);
        // Filters.
        let (_, f) = api.json(reqwest::Method::GET, "/v1/nodes?provision_state=enroll&fields=name", None).await;
        assert_eq!(f["nodes"].as_array().unwrap().len(), 5);
        let (_, f) = api.json(reqwest::Method::GET, "/v1/nodes?driver=fake-hardware&maintenance=false&associated=false", None).await;
        assert_eq!(f["nodes"].as_array().unwrap().len(), 6);

        // The OpenAPI document lists the node collection.
        let (s, doc) = api.json(reqwest::Method::GET, "/v1/openapi.json", None).await;
        assert_eq!(s, 200);
        assert!(doc["paths"]["/v1/nodes"]["post"].is_object());
    });
}

#[test]
fn http_basic_auth_guards_all_but_the_public_routes() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    std::fs::write(&htpasswd, format!("admin:{hash}\n")).unwrap();
    let ir = Ironic::start(
        &[],
        &[
            ("IRONIC__API__AUTH_STRATEGY", "http_basic"),
            (
                "IRONIC__API__HTTP_BASIC_AUTH_USER_FILE",
                htpasswd.to_str().unwrap(),
            ),
        ],
    );
    rt().block_on(async {
        let c = reqwest::Client::new();
        let r = c.get(format!("{}/v1/nodes", ir.url)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let r = c
            .get(format!("{}/v1/nodes", ir.url))
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .get(format!("{}/v1/nodes", ir.url))
            .basic_auth("admin", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c.get(format!("{}/", ir.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .get(format!("{}/v1/lookup?addresses=52:54:00:00:00:01", ir.url))
            .header("X-OpenStack-Ironic-API-Version", "1.62")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "lookup is public; no node has that MAC");
    });
}

#[test]
fn bad_config_and_busy_port_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ironic.toml");
    std::fs::write(&cfg, "[api]\nmax_limit = \"lots\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_limit") && err.contains("ironic.toml"),
        "{err}"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains(&addr.to_string()),
        "{err}"
    );
}

#[test]
fn other_resources_round_trip() {
    let ir = Ironic::start(&[], &[]);
    rt().block_on(async {
        let api = Api::new(&ir.url);
        let (_, node) = api
            .json(reqwest::Method::POST, "/v1/nodes", Some(json!({"driver": "fake-hardware", "name": "r1"})))
            .await;
        let uuid = node["uuid"].as_str().unwrap().to_owned();

        // Before 1.91 a `.json` suffix is stripped; from 1.91 on it is part of the name.
        let r = api.send(reqwest::Method::GET, "/v1/nodes/r1.json", Some("1.90"), None).await;
        assert_eq!(r.status(), 200);
        let r = api.send(reqwest::Method::GET, "/v1/nodes/r1.json", Some("1.91"), None).await;
        assert_eq!(r.status(), 404);

        // Chassis with nodes cannot be deleted.
        let (s, ch) = api.json(reqwest::Method::POST, "/v1/chassis", Some(json!({"description": "rack 1"}))).await;
        assert_eq!(s, 201);
        let cid = ch["uuid"].as_str().unwrap().to_owned();
        let (s, _) = api
            .json(reqwest::Method::PATCH, "/v1/nodes/r1", Some(json!([{"op": "add", "path": "/chassis_uuid", "value": cid}])))
            .await;
        assert_eq!(s, 200);
        let (_, nodes) = api.json(reqwest::Method::GET, &format!("/v1/chassis/{cid}/nodes"), None).await;
        assert_eq!(nodes["nodes"][0]["uuid"], uuid.as_str());
        let (s, _) = api.json(reqwest::Method::DELETE, &format!("/v1/chassis/{cid}"), None).await;
        assert_eq!(s, 400);

        // Deploy templates: the name must be a trait.
        let (s, _) = api
            .json(
                reqwest::Method::POST,
                "/v1/deploy_templates",
                Some(json!({"name": "not a trait", "steps": [{"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 150}]})),
            )
            .await;
        assert_eq!(s, 400);
        let (s, t) = api
            .json(
                reqwest::Method::POST,
                "/v1/deploy_templates",
                Some(json!({"name": "CUSTOM_HYPERTHREADING_ON", "steps": [{"interface": "bios", "step": "apply_configuration", "args": {"settings": []}, "priority": 150}]})),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let (s, t2) = api
            .json(
                reqwest::Method::PATCH,
                "/v1/deploy_templates/CUSTOM_HYPERTHREADING_ON",
                Some(json!([{"op": "replace", "path": "/steps/0/priority", "value": 10}])),
            )
            .await;
        assert_eq!(s, 200, "{t2}");
        assert_eq!(t2["steps"][0]["priority"], 10);

        // Volume connectors are unique per (type, connector_id).
        let body = json!({"node_uuid": uuid, "type": "iqn", "connector_id": "iqn.2017-07.org.example:01"});
        let (s, vc) = api.json(reqwest::Method::POST, "/v1/volume/connectors", Some(body.clone())).await;
        assert_eq!(s, 201, "{vc}");
        let (s, _) = api.json(reqwest::Method::POST, "/v1/volume/connectors", Some(body)).await;
        assert_eq!(s, 409);
        let (_, list) = api.json(reqwest::Method::GET, &format!("/v1/nodes/{uuid}/volume/connectors"), None).await;
        assert_eq!(list["connectors"].as_array().unwrap().len(), 1);
        let r = api.send(reqwest::Method::GET, "/v1/volume/connectors", Some("1.31"), None).await;
        assert_eq!(r.status(), 404);

        // Runbooks: a node without the runbook's trait cannot use it.
        let (s, rb) = api
            .json(
                reqwest::Method::POST,
                "/v1/runbooks",
                Some(json!({"name": "CUSTOM_ERASE", "steps": [{"interface": "deploy", "step": "erase_devices", "args": {}, "order": 1}]})),
            )
            .await;
        assert_eq!(s, 201, "{rb}");
        api.json(reqwest::Method::PUT, "/v1/nodes/r1/states/provision", Some(json!({"target": "manage"}))).await;
        for _ in 0..100 {
            let (_, n) = api.json(reqwest::Method::GET, "/v1/nodes/r1?fields=provision_state", None).await;
            if n["provision_state"] == "manageable" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (s, v) = api
            .json(
                reqwest::Method::PUT,
                "/v1/nodes/r1/states/provision",
                Some(json!({"target": "clean", "runbook": "CUSTOM_ERASE"})),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        // 1.112: approved by the runbook's traits, and it has none yet
        assert!(inner_error(&v)["faultstring"].as_str().unwrap().contains("has no traits configured"), "{v}");
        let r = api.send(reqwest::Method::PUT, "/v1/runbooks/CUSTOM_ERASE/traits/CUSTOM_WIPE", Some("latest"), None).await;
        assert_eq!(r.status(), 204);
        let (s, v) = api
            .json(
                reqwest::Method::PUT,
                "/v1/nodes/r1/states/provision",
                Some(json!({"target": "clean", "runbook": "CUSTOM_ERASE"})),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(inner_error(&v)["faultstring"].as_str().unwrap().contains("['CUSTOM_WIPE']"), "{v}");

        // Allocations: resource class scheduling over available nodes.
        let (s, a) = api
            .json(reqwest::Method::POST, "/v1/allocations", Some(json!({"resource_class": "nothing-has-this"})))
            .await;
        assert_eq!(s, 201, "{a}");
        // as in Ironic: created allocating, processed in the background
        assert_eq!(a["state"], "allocating");
        let path = format!("/v1/allocations/{}", a["uuid"].as_str().unwrap());
        let mut a = a;
        for _ in 0..100 {
            a = api.json(reqwest::Method::GET, &path, None).await.1;
            if a["state"] != "allocating" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(a["state"], "error", "{a}");
        assert!(
            a["last_error"].as_str().unwrap().ends_with("no available nodes match the resource class nothing-has-this."),
            "{a}"
        );
        let (_, c) = api.json(reqwest::Method::GET, "/v1/conductors?detail=true", None).await;
        assert_eq!(c["conductors"][0]["alive"], true, "{c}");
        assert_eq!(c["conductors"][0]["drivers"][0], "fake-hardware");

        // The redfish hardware type is registered: a node gets its interfaces, and
        // validation says what driver_info is missing without contacting a BMC.
        let (s, rf) = api
            .json(reqwest::Method::POST, "/v1/nodes", Some(json!({"driver": "redfish", "name": "rf1"})))
            .await;
        assert_eq!(s, 201, "{rf}");
        assert_eq!(rf["power_interface"], "redfish");
        // As in Ironic, the redfish hardware type prefers iPXE when it is enabled
        // (virtual media comes last in its list).
        assert_eq!(rf["boot_interface"], "ipxe");
        assert_eq!(rf["deploy_interface"], "direct");
        let (s, v) = api.json(reqwest::Method::GET, "/v1/nodes/rf1/validate", None).await;
        assert_eq!(s, 200);
        assert_eq!(v["power"]["result"], false, "{v}");
        assert!(v["power"]["reason"].as_str().unwrap().contains("redfish_address"), "{v}");

        // The fake management interface has Ironic's fake indicators: a read-only
        // chassis LED and a settable system LED.
        let (s, v) = api.json(reqwest::Method::GET, "/v1/nodes/r1/management/indicators", None).await;
        assert_eq!(s, 200, "{v}");
        let names: Vec<&str> = v["indicators"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["led-0@chassis", "led@system"], "{v}");
        let (s, v) = api
            .json(reqwest::Method::PUT, "/v1/nodes/r1/management/indicators/led@system?state=blinking", None)
            .await;
        assert_eq!(s, 204, "{v}");
        let (s, v) = api.json(reqwest::Method::GET, "/v1/nodes/r1/management/indicators/led@system", None).await;
        assert_eq!((s.as_u16(), v["state"].as_str()), (200, Some("BLINKING")), "{v}");
        let (s, v) = api
            .json(reqwest::Method::PUT, "/v1/nodes/r1/management/indicators/led-0@chassis?state=OFF", None)
            .await;
        assert_eq!(s, 400, "a read-only indicator cannot be set: {v}");
        let (s, v) = api
            .json(reqwest::Method::PUT, "/v1/nodes/r1/management/indicators/led@system", None)
            .await;
        assert_eq!(s, 400, "the state is mandatory: {v}");
        assert!(v["error_message"].as_str().unwrap().contains("Missing mandatory parameter: state"), "{v}");

        // Agent endpoints: input checks before the conductor.
        let (s, _) = api.json(reqwest::Method::GET, "/v1/lookup", None).await;
        assert_eq!(s, 400);
        let (s, _) = api.json(reqwest::Method::GET, "/v1/lookup?addresses=52:54:00:00:00:99", None).await;
        assert_eq!(s, 404);
        let (s, v) = api
            .json(reqwest::Method::POST, &format!("/v1/heartbeat/{uuid}"), Some(json!({"callback_url": "http://10.0.0.2:9999"})))
            .await;
        assert_eq!(s, 400);
        assert!(inner_error(&v)["faultstring"].as_str().unwrap().contains("Agent token is required"));
        let (s, _) = api
            .json(reqwest::Method::POST, &format!("/v1/heartbeat/{uuid}"), Some(json!({"callback_url": "ftp://x", "agent_token": "t"})))
            .await;
        assert_eq!(s, 400);
    });
}

/// A power-off request for a node with `disable_power_off` is refused with
/// Ironic's PowerStateFailure, an InvalidState: 409 (BMO asks for `rebooting`
/// / `soft rebooting` instead); reboots are accepted.
#[test]
fn power_off_of_a_disable_power_off_node_is_a_conflict() {
    let ir = Ironic::start(&[], &[]);
    rt().block_on(async {
        let api = Api::new(&ir.url);
        let (s, node) = api
            .json(
                reqwest::Method::POST,
                "/v1/nodes",
                Some(json!({"driver": "fake-hardware", "disable_power_off": true})),
            )
            .await;
        assert_eq!(s, 201, "{node}");
        let uuid = node["uuid"].as_str().unwrap().to_owned();
        let path = format!("/v1/nodes/{uuid}/states/power");
        for target in ["power off", "soft power off"] {
            let (s, v) = api
                .json(reqwest::Method::PUT, &path, Some(json!({"target": target})))
                .await;
            assert_eq!(s, 409, "{target}: {v}");
            let e = inner_error(&v);
            assert!(
                e["faultstring"].as_str().is_some_and(
                    |m| m.starts_with(&format!("Failed to set node power state to {target}"))
                ),
                "{e}"
            );
        }
        let (s, v) = api
            .json(
                reqwest::Method::PUT,
                &path,
                Some(json!({"target": "rebooting"})),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    });
}
