//! Vendor quirks of the boot override (Ironic's `_set_boot_device` and sushy's
//! `set_system_boot_options`) and virtual media under the Manager (iLO 5, and
//! iDRAC before 6.0) on vendor trees nobody here wrote (`tests/trees`):
//! served by a small writable server that keeps what is PATCHed and records
//! each request body, since `sushy-static` is read-only.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{fast_config, task};
use ironic_core::driver::{
    BootDevice, BootInterface, ManagementInterface, RamdiskKind, RamdiskParams,
};
use ironic_drivers_redfish::{RedfishManagement, RedfishVirtualMediaBoot};
use serde_json::{Value, json};

struct Tree {
    dir: PathBuf,
    /// Documents as PATCHed, by path.
    patched: Mutex<HashMap<String, Value>>,
    /// PATCH bodies received, in order.
    patches: Mutex<Vec<Value>>,
    /// Actions POSTed (path, body), in order.
    posts: Mutex<Vec<(String, Value)>>,
    /// Refuse this many PATCHes as iLO does during POST.
    in_post: AtomicU32,
    /// Virtual media slots that refuse any change (400), as Cisco's vKVM-only ones.
    refuse: Mutex<Vec<String>>,
}

fn merge(doc: &mut Value, patch: &Value) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                merge(d.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (d, p) => *d = p.clone(),
    }
}

async fn serve(State(tree): State<Arc<Tree>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let rel = path.strip_prefix("/redfish/v1").unwrap_or(&path);
    let file = tree
        .dir
        .join(rel.trim_start_matches('/'))
        .join("index.json");
    // VirtualMedia actions change the slot they belong to
    if method == Method::POST {
        let Some((slot, action)) = path.rsplit_once("/Actions/") else {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        };
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        tree.posts
            .lock()
            .unwrap()
            .push((path.clone(), body.clone()));
        if tree.refuse.lock().unwrap().iter().any(|r| r == slot) {
            return refused();
        }
        let change = match action {
            "VirtualMedia.InsertMedia" => json!({"Image": body["Image"], "Inserted": true}),
            "VirtualMedia.EjectMedia" => json!({"Image": "", "Inserted": false}),
            _ => return StatusCode::NOT_FOUND.into_response(),
        };
        let rel = slot.strip_prefix("/redfish/v1/").unwrap_or(slot);
        let doc = tree.patched.lock().unwrap().get(slot).cloned().or_else(|| {
            std::fs::read(tree.dir.join(rel).join("index.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        });
        let Some(mut doc) = doc else {
            return StatusCode::NOT_FOUND.into_response();
        };
        merge(&mut doc, &change);
        tree.patched.lock().unwrap().insert(slot.to_owned(), doc);
        return StatusCode::NO_CONTENT.into_response();
    }
    let current = tree
        .patched
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .or_else(|| {
            std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        });
    let Some(mut doc) = current else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match method {
        Method::GET => axum::Json(doc).into_response(),
        Method::PATCH => {
            let patch: Value = serde_json::from_slice(&body).unwrap();
            tree.patches.lock().unwrap().push(patch.clone());
            if tree.refuse.lock().unwrap().contains(&path) {
                return refused();
            }
            if tree
                .in_post
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                // iLO 5: only a MessageId
                let err = json!({"error": {"code": "iLO.0.10.ExtendedInfo",
                    "message": "See @Message.ExtendedInfo for more information.",
                    "@Message.ExtendedInfo": [{"MessageId": "iLO.2.14.UnableToModifyDuringSystemPOST"}]}});
                return (StatusCode::BAD_REQUEST, axum::Json(err)).into_response();
            }
            merge(&mut doc, &patch);
            tree.patched.lock().unwrap().insert(path, doc);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

fn refused() -> Response {
    let err = json!({"error": {"code": "Base.1.8.ActionNotSupported",
        "message": "This virtual media device is for the KVM console only."}});
    (StatusCode::BAD_REQUEST, axum::Json(err)).into_response()
}

struct Served {
    address: String,
    tree: Arc<Tree>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Served {
    fn last_boot(&self) -> Value {
        self.tree.patches.lock().unwrap().last().unwrap()["Boot"].clone()
    }
}

async fn serve_tree(name: &str) -> Served {
    let tree = Arc::new(Tree {
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/trees")
            .join(name),
        patched: Mutex::new(HashMap::new()),
        patches: Mutex::new(Vec::new()),
        posts: Mutex::new(Vec::new()),
        in_post: AtomicU32::new(0),
        refuse: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new().fallback(serve).with_state(tree.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served {
        address: format!("http://127.0.0.1:{port}"),
        tree,
        handle,
    }
}

/// The node of the tree's system with the vendor ironic-rs records for it.
async fn node_task(s: &Served, system: &str) -> ironic_core::driver::Task {
    let mut t = task(&s.address, json!({"redfish_system_id": system}));
    let vendor = RedfishManagement::new(fast_config())
        .detect_vendor(&t)
        .await
        .unwrap();
    if let Some(v) = vendor {
        t.node.properties.insert("vendor".into(), json!(v));
    }
    t
}

/// AMI MegaRAC (Gigabyte, service root Vendor "AMI"): the whole override,
/// mode included, every time.
#[tokio::test(flavor = "multi_thread")]
async fn ami_gets_the_full_boot_request() {
    let s = serve_tree("vendor-Gigabyte").await;
    let t = node_task(&s, "/redfish/v1/Systems/Self").await;
    assert_eq!(t.node.properties.get("vendor"), Some(&json!("AMI")));
    let mgmt = RedfishManagement::new(fast_config());
    mgmt.set_boot_device(&t, BootDevice::Pxe, false)
        .await
        .unwrap();
    assert_eq!(
        s.last_boot(),
        json!({"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "Legacy"})
    );
    // the same again: still all of it
    mgmt.set_boot_device(&t, BootDevice::Pxe, false)
        .await
        .unwrap();
    assert_eq!(s.last_boot()["BootSourceOverrideEnabled"], json!("Once"));
    assert_eq!(s.last_boot()["BootSourceOverrideMode"], json!("Legacy"));
}

/// Intel (no quirk): `BootSourceOverrideEnabled` only when it changes.
#[tokio::test(flavor = "multi_thread")]
async fn enabled_is_sent_only_when_it_changes() {
    let s = serve_tree("vendor-Intel").await;
    let t = node_task(&s, "/redfish/v1/Systems/QSBP74100021").await;
    let mgmt = RedfishManagement::new(fast_config());
    mgmt.set_boot_device(&t, BootDevice::Pxe, true)
        .await
        .unwrap();
    assert_eq!(
        s.last_boot(),
        json!({"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"})
    );
    mgmt.set_boot_device(&t, BootDevice::Disk, true)
        .await
        .unwrap();
    assert_eq!(s.last_boot(), json!({"BootSourceOverrideTarget": "Hdd"}));
    let now = mgmt.get_boot_device(&t).await.unwrap();
    assert_eq!(now.boot_device, Some(BootDevice::Disk));
    assert_eq!(now.persistent, Some(true));
}

/// HPE iLO 5 (DL325): a change refused during POST is sent again until the
/// BMC takes it.
#[tokio::test(flavor = "multi_thread")]
async fn ilo_during_post_is_retried() {
    let s = serve_tree("vendor-DL325").await;
    let t = node_task(&s, "/redfish/v1/Systems/1").await;
    assert_eq!(t.node.properties.get("vendor"), Some(&json!("HPE")));
    s.tree.in_post.store(2, Ordering::SeqCst);
    let mgmt = RedfishManagement::new(fast_config());
    mgmt.set_boot_device(&t, BootDevice::Pxe, false)
        .await
        .unwrap();
    assert_eq!(s.tree.patches.lock().unwrap().len(), 3);
    assert_eq!(s.tree.in_post.load(Ordering::SeqCst), 0);
    let now = mgmt.get_boot_device(&t).await.unwrap();
    assert_eq!(now.boot_device, Some(BootDevice::Pxe));
    // past the attempts (6) the error names the cause
    s.tree.in_post.store(10, Ordering::SeqCst);
    let e = mgmt
        .set_boot_device(&t, BootDevice::Disk, false)
        .await
        .unwrap_err();
    assert!(
        e.message().contains("UnableToModifyDuringSystemPOST"),
        "{e}"
    );
    assert_eq!(s.tree.patches.lock().unwrap().len(), 3 + 6);
}

/// Supermicro (no Supermicro tree here: the DMTF rack server with the vendor
/// Supermicro's BMC reports): `BootSourceOverrideEnabled` every time, even
/// when it already has the value; a CD boot stays `Cd` when `UsbCd` is not
/// among the allowed targets.
#[tokio::test(flavor = "multi_thread")]
async fn supermicro_always_gets_enabled() {
    let s = serve_tree("dmtf-public-rackmount1").await;
    let mut t = node_task(&s, "/redfish/v1/Systems/437XR1138R2").await;
    t.node
        .properties
        .insert("vendor".into(), json!("Supermicro"));
    let mgmt = RedfishManagement::new(fast_config());
    // the tree reads Pxe, Once
    mgmt.set_boot_device(&t, BootDevice::Cdrom, false)
        .await
        .unwrap();
    assert_eq!(
        s.last_boot(),
        json!({"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"})
    );
    // another vendor: left out, it is Once already
    t.node.properties.insert("vendor".into(), json!("Contoso"));
    mgmt.set_boot_device(&t, BootDevice::Pxe, false)
        .await
        .unwrap();
    assert_eq!(s.last_boot(), json!({"BootSourceOverrideTarget": "Pxe"}));
}

/// HPE iLO 5 (DL325): the system has no VirtualMedia; the slots are under its
/// Manager (as iDRAC before 6.0): the CD slot gets the ISO through InsertMedia
/// and the system boots it once; cleaning up ejects it; the other slot is left.
#[tokio::test(flavor = "multi_thread")]
async fn virtual_media_under_the_manager() {
    let s = serve_tree("vendor-DL325").await;
    let mut t = node_task(&s, "/redfish/v1/Systems/1").await;
    let mut info = serde_json::to_value(&t.node.driver_info).unwrap();
    info["redfish_deploy_iso"] = json!("http://127.0.0.1:9/deploy.iso");
    t.node.driver_info = serde_json::from_value(info).unwrap();
    let boot = RedfishVirtualMediaBoot::new(fast_config());
    boot.prepare_ramdisk(&mut t, &RamdiskParams::new(RamdiskKind::Deploy))
        .await
        .unwrap();
    let posts = s.tree.posts.lock().unwrap().clone();
    assert_eq!(
        posts.last().unwrap().0,
        "/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia",
        "{posts:?}"
    );
    assert_eq!(
        posts.last().unwrap().1["Image"],
        json!("http://127.0.0.1:9/deploy.iso")
    );
    assert_eq!(
        s.last_boot(),
        json!({"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"})
    );
    let media = RedfishManagement::new(fast_config())
        .get_virtual_media(&t)
        .await
        .unwrap();
    assert!(
        media
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["inserted"] == json!(true)
                && m["image"] == json!("http://127.0.0.1:9/deploy.iso")),
        "{media}"
    );
    boot.clean_up_ramdisk(&mut t).await.unwrap();
    let posts = s.tree.posts.lock().unwrap().clone();
    assert_eq!(
        posts.last().unwrap().0,
        "/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.EjectMedia"
    );
    assert!(
        posts.iter().all(|(p, _)| !p.contains("VirtualMedia/1/")),
        "{posts:?}"
    );
}

/// iDRAC keeps reporting an ejected image for a while, and the node's ISO URL
/// does not change: a slot that reads inserted with the very URL is ejected
/// and inserted again, never trusted (Ironic's `_insert_vmedia`).
#[tokio::test(flavor = "multi_thread")]
async fn media_reported_inserted_is_inserted_again() {
    let s = serve_tree("vendor-DL325").await;
    let url = "http://127.0.0.1:9/boot-node.iso";
    let slot = "/redfish/v1/Managers/1/VirtualMedia/2";
    let mut stale: Value = serde_json::from_slice(
        &std::fs::read(s.tree.dir.join("Managers/1/VirtualMedia/2/index.json")).unwrap(),
    )
    .unwrap();
    merge(&mut stale, &json!({"Image": url, "Inserted": true}));
    s.tree
        .patched
        .lock()
        .unwrap()
        .insert(slot.to_owned(), stale);
    let mut t = node_task(&s, "/redfish/v1/Systems/1").await;
    let mut info = serde_json::to_value(&t.node.driver_info).unwrap();
    info["redfish_deploy_iso"] = json!(url);
    t.node.driver_info = serde_json::from_value(info).unwrap();
    RedfishVirtualMediaBoot::new(fast_config())
        .prepare_ramdisk(&mut t, &RamdiskParams::new(RamdiskKind::Deploy))
        .await
        .unwrap();
    let posts: Vec<String> = s
        .tree
        .posts
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(
        posts,
        [
            format!("{slot}/Actions/VirtualMedia.EjectMedia"),
            format!("{slot}/Actions/VirtualMedia.InsertMedia")
        ]
    );
}

/// A slot that refuses the image (Cisco UCS: vKVM-only slots answer 400) is
/// skipped for the next one that takes CDs (the DMTF rack server's CD1, CD2).
#[tokio::test(flavor = "multi_thread")]
async fn a_slot_that_refuses_the_image_is_skipped() {
    let s = serve_tree("dmtf-public-rackmount1").await;
    let cd1 = "/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1";
    let cd2 = "/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD2";
    s.tree.refuse.lock().unwrap().push(cd1.to_owned());
    let mut t = node_task(&s, "/redfish/v1/Systems/437XR1138R2").await;
    let url = "http://127.0.0.1:9/deploy.iso";
    let mut info = serde_json::to_value(&t.node.driver_info).unwrap();
    info["redfish_deploy_iso"] = json!(url);
    t.node.driver_info = serde_json::from_value(info).unwrap();
    let boot = RedfishVirtualMediaBoot::new(fast_config());
    boot.prepare_ramdisk(&mut t, &RamdiskParams::new(RamdiskKind::Deploy))
        .await
        .unwrap();
    let patched = s.tree.patched.lock().unwrap().clone();
    assert_eq!(patched[cd2]["Image"], json!(url), "{patched:?}");
    assert_eq!(patched[cd2]["Inserted"], json!(true));
    assert!(!patched.contains_key(cd1));
    // every CD slot refusing: an error that says so
    s.tree.refuse.lock().unwrap().push(cd2.to_owned());
    s.tree.patched.lock().unwrap().remove(cd2);
    let e = boot
        .prepare_ramdisk(&mut t, &RamdiskParams::new(RamdiskKind::Deploy))
        .await
        .unwrap_err();
    assert!(e.message().contains("refused"), "{e}");
    assert!(e.message().contains("KVM console only"), "{e}");
}
