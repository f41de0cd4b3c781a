//! The lab's Redfish BMC simulator, driven by the real `sushy` client (PyPI).

mod lab_support;

use std::path::Path;

use ironic_lab::images::{self, FileServer};
use ironic_lab::model::{BootEnabled, BootMode, BootTarget, Power};
use ironic_lab::{Faults, RedfishSim};
use serde_json::Value;

async fn sushy_run(url: &str, system: &str, password: &str, auth: &str, iso: &str) -> Value {
    let python = lab_support::python_with("sushy", "sushy");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab_support/sushy_check.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([url, system, "admin", password, auth, iso])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "sushy failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sushy_check prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sushy_drives_power_boot_and_vmedia() {
    let dir = tempfile::tempdir().unwrap();
    let a = lab_support::server(dir.path(), "lab-0", 0);
    let b = lab_support::server(dir.path(), "lab-1", 1);
    let sim = RedfishSim::start("127.0.0.1:0".parse().unwrap(), vec![a.clone(), b.clone()])
        .await
        .unwrap();

    let files = images::generate(&dir.path().join("images")).unwrap();
    let http = FileServer::start("127.0.0.1:0".parse().unwrap(), files.dir.clone())
        .await
        .unwrap();
    let iso = http.url(images::DEPLOY_ISO);
    for auth in ["session", "basic"] {
        let seen = sushy_run(&sim.url(), "lab-1", "pw-lab-1", auth, &iso).await;
        assert_eq!(
            seen["systems"],
            serde_json::json!(["/redfish/v1/Systems/lab-0", "/redfish/v1/Systems/lab-1"])
        );
        assert_eq!(seen["uuid"], b.spec().uuid.to_string());
        assert_eq!(seen["power_before"], "Off");
        assert_eq!(seen["power_after_on"], "On");
        assert_eq!(seen["power_after_off"], "Off");
        assert_eq!(seen["boot"]["target"], "Pxe");
        assert_eq!(seen["boot"]["enabled"], "Continuous");
        assert_eq!(seen["boot"]["mode"], "UEFI");
        assert_eq!(
            seen["macs"],
            serde_json::json!(["52:54:00:aa:00:01", "52:54:00:bb:00:01"])
        );
        assert_eq!(seen["cpus"], 4);
        assert_eq!(seen["memory_gib"], 8.0);
        assert_eq!(seen["disk_sizes"], serde_json::json!([8u64 << 30]));
        assert_eq!(seen["vmedia_types"], serde_json::json!(["CD", "DVD"]));
        assert_eq!(seen["vmedia_inserted"]["image"], iso.as_str());
        assert_eq!(seen["vmedia_inserted"]["inserted"], true);
        assert_eq!(seen["vmedia_ejected"]["inserted"], false);
        assert_eq!(seen["manager_id"], "lab-1");
        assert_eq!(seen["wrong_password"], "rejected 401");
        for v in [
            "On",
            "ForceOff",
            "GracefulShutdown",
            "ForceRestart",
            "GracefulRestart",
        ] {
            assert!(
                seen["reset_values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == v),
                "{v} advertised"
            );
        }
        for v in ["Pxe", "Hdd", "Cd"] {
            assert!(
                seen["boot_values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == v),
                "{v} advertised"
            );
        }
    }
    // What sushy did landed in the shared model, and only on the system it addressed.
    let boot = b.boot_override();
    assert_eq!(
        (boot.target, boot.enabled, boot.mode),
        (BootTarget::Pxe, BootEnabled::Continuous, BootMode::Uefi)
    );
    assert_eq!(b.subscribe().borrow().boots, 2);
    assert_eq!(a.boot_override().target, BootTarget::None);
    assert_eq!(a.power(), Power::Off);
    assert!(!b.vmedia().inserted());
    sim.shutdown().await;
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

#[tokio::test]
async fn raw_http_errors_etags_and_faults() {
    let dir = tempfile::tempdir().unwrap();
    let a = lab_support::server(dir.path(), "lab-0", 0);
    let b = lab_support::server(dir.path(), "lab-1", 1);
    let sim = RedfishSim::start("127.0.0.1:0".parse().unwrap(), vec![a.clone(), b.clone()])
        .await
        .unwrap();
    let url = |p: &str| format!("{}{p}", sim.url());
    let c = client();

    // The service root is open; the rest needs credentials of the system addressed.
    assert_eq!(
        c.get(url("/redfish/v1/")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(url("/redfish/v1/Systems/lab-0"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let cross = c
        .get(url("/redfish/v1/Systems/lab-0"))
        .basic_auth("admin", Some("pw-lab-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 401);
    assert!(cross.headers().contains_key("www-authenticate"));
    let err: Value = cross.json().await.unwrap();
    assert_eq!(
        err["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "Base.1.8.NoValidSession"
    );

    let get = c
        .get(url("/redfish/v1/Systems/lab-0"))
        .basic_auth("admin", Some("pw-lab-0"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let etag = get.headers()["etag"].to_str().unwrap().to_string();
    let sys: Value = get.json().await.unwrap();
    assert_eq!(sys["@odata.id"], "/redfish/v1/Systems/lab-0");
    assert_eq!(
        sys["Links"]["ManagedBy"][0]["@odata.id"],
        "/redfish/v1/Managers/lab-0"
    );

    // Sessions: a token opened with lab-0's credentials works for lab-0 only, and can be deleted.
    let s = c
        .post(url("/redfish/v1/SessionService/Sessions"))
        .json(&serde_json::json!({"UserName": "admin", "Password": "pw-lab-0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(s.status(), 201);
    let token = s.headers()["x-auth-token"].to_str().unwrap().to_string();
    let location = s.headers()["location"].to_str().unwrap().to_string();
    let with_token = |p: &str| c.get(url(p)).header("X-Auth-Token", &token);
    assert_eq!(
        with_token("/redfish/v1/Systems/lab-0")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_token("/redfish/v1/Systems/lab-1")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.delete(url(&location))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        with_token("/redfish/v1/Systems/lab-0")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let bad_login = c
        .post(url("/redfish/v1/SessionService/Sessions"))
        .json(&serde_json::json!({"UserName": "admin", "Password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_login.status(), 401);

    // If-Match: the current ETag passes, a stale one is refused with 412.
    let patch = |etag: &str, body: Value| {
        c.patch(url("/redfish/v1/Systems/lab-0"))
            .basic_auth("admin", Some("pw-lab-0"))
            .header("If-Match", etag.to_string())
            .json(&body)
            .send()
    };
    let boot = serde_json::json!({"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}});
    assert_eq!(patch(&etag, boot.clone()).await.unwrap().status(), 204);
    assert_eq!(patch(&etag, boot.clone()).await.unwrap().status(), 412);
    assert_eq!(a.boot_override().target, BootTarget::Cd);
    assert_eq!(
        patch(
            "*",
            serde_json::json!({"Boot": {"BootSourceOverrideTarget": "Floppy"}})
        )
        .await
        .unwrap()
        .status(),
        400
    );
    assert_eq!(
        patch("*", serde_json::json!({"PowerState": "On"}))
            .await
            .unwrap()
            .status(),
        400
    );
    let malformed = c
        .patch(url("/redfish/v1/Systems/lab-0"))
        .basic_auth("admin", Some("pw-lab-0"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let e: Value = malformed.json().await.unwrap();
    assert_eq!(e["error"]["code"], "Base.1.8.MalformedJSON");

    let reset = |body: Value| {
        c.post(url(
            "/redfish/v1/Systems/lab-0/Actions/ComputerSystem.Reset",
        ))
        .basic_auth("admin", Some("pw-lab-0"))
        .json(&body)
        .send()
    };
    assert_eq!(
        reset(serde_json::json!({"ResetType": "Explode"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(reset(serde_json::json!({})).await.unwrap().status(), 400);
    assert_eq!(
        c.get(url("/redfish/v1/Systems/nope"))
            .basic_auth("admin", Some("pw-lab-0"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // stuck: 204 and nothing happens.
    a.set_faults(Faults::parse("stuck").unwrap());
    assert_eq!(
        reset(serde_json::json!({"ResetType": "On"}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(a.power(), Power::Off);
    // wrong password: the right password is refused.
    a.set_faults(Faults::parse("wrong-password").unwrap());
    assert_eq!(
        reset(serde_json::json!({"ResetType": "On"}))
            .await
            .unwrap()
            .status(),
        401
    );
    // flaky=1: every request on that system fails with 500; the other system is unaffected.
    a.set_faults(Faults::parse("flaky=1").unwrap());
    let r = reset(serde_json::json!({"ResetType": "On"})).await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        c.get(url("/redfish/v1/Systems/lab-1"))
            .basic_auth("admin", Some("pw-lab-1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    a.set_faults(Faults::default());
    assert_eq!(
        reset(serde_json::json!({"ResetType": "On"}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(a.power(), Power::On);
    assert_eq!(b.power(), Power::Off);
    sim.shutdown().await;
}
