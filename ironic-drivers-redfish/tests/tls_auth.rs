//! Basic auth over TLS against a real `sushy-emulator` serving a self-signed
//! certificate: every `redfish_verify_ca` form, and wrong credentials.

mod common;

use std::process::Command;

use common::{FakeSystem, Sushy, SushyOptions, fast_config, gen_ca_signed, gen_cert, task};
use ironic_core::driver::PowerInterface;
use ironic_core::{ErrorKind, PowerState};
use ironic_drivers_redfish::RedfishPower;
use serde_json::json;

fn tls_emulator() -> Sushy {
    Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(7)],
        tls: true,
        auth: Some(("admin".into(), "p4ssw0rd".into())),
        ..Default::default()
    })
}

fn fingerprint(cert: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.trim().rsplit('=').next().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_over_tls_with_every_verify_ca_form() {
    let emu = tls_emulator();
    let cert = emu.cert.clone().unwrap();
    let power = RedfishPower::new(fast_config());
    let creds = |verify: serde_json::Value| {
        task(
            &emu.address,
            json!({"redfish_username": "admin", "redfish_password": "p4ssw0rd", "redfish_verify_ca": verify}),
        )
    };

    // The BMC's self-signed certificate (marked CA) as the bundle.
    let t = creds(json!(cert.to_str().unwrap()));
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    // Verification off, explicitly.
    assert_eq!(
        power.get_power_state(&creds(json!(false))).await.unwrap(),
        PowerState::Off
    );
    assert_eq!(
        power.get_power_state(&creds(json!("False"))).await.unwrap(),
        PowerState::Off
    );
    // The pinned fingerprint.
    let fp = fingerprint(&cert);
    assert_eq!(
        power.get_power_state(&creds(json!(fp))).await.unwrap(),
        PowerState::Off
    );
    // Default verification (public roots) refuses the self-signed certificate.
    for verify in [json!(true), json!(null)] {
        let e = power.get_power_state(&creds(verify)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
        assert!(!e.is_retryable());
        assert!(e.message().contains("redfish_verify_ca"), "{e}");
        assert!(e.message().contains(&emu.address), "{e}");
    }
    // Someone else's certificate as the bundle, or a wrong fingerprint.
    let other = tempfile::tempdir().unwrap();
    let (other_cert, _) = gen_cert(other.path());
    let e = power
        .get_power_state(&creds(json!(other_cert.to_str().unwrap())))
        .await
        .unwrap_err();
    assert!(e.message().contains("redfish_verify_ca"), "{e}");
    let e = power
        .get_power_state(&creds(json!(fingerprint(&other_cert))))
        .await
        .unwrap_err();
    assert!(e.message().contains("fingerprint"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_clear_and_not_retryable() {
    let emu = tls_emulator();
    let power = RedfishPower::new(fast_config());
    let t = task(
        &emu.address,
        json!({"redfish_username": "admin", "redfish_password": "WRONG-secret", "redfish_verify_ca": false}),
    );
    let e = power.get_power_state(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert!(e.message().contains("redfish_password"), "{e}");
    assert!(e.message().contains("admin"), "{e}");
    assert!(!e.message().contains("WRONG-secret"), "{e}");
    assert!(!format!("{e:?}").contains("WRONG-secret"));
    // No credentials at all: the same clear error.
    let t = task(&emu.address, json!({"redfish_verify_ca": false}));
    let e = power.get_power_state(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_types_against_a_bmc_without_sessions() {
    let emu = tls_emulator();
    let power = RedfishPower::new(fast_config());
    let with = |auth: &str| {
        task(
            &emu.address,
            json!({"redfish_username": "admin", "redfish_password": "p4ssw0rd",
                   "redfish_verify_ca": false, "redfish_auth_type": auth}),
        )
    };
    // auto falls back to basic; basic works.
    assert_eq!(
        power.get_power_state(&with("auto")).await.unwrap(),
        PowerState::Off
    );
    assert_eq!(
        power.get_power_state(&with("basic")).await.unwrap(),
        PowerState::Off
    );
    // session is refused with a clear message.
    let e = power.get_power_state(&with("session")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("redfish_auth_type"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_bundle_verifies_a_ca_signed_bmc_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let (ca, server_cert, server_key) = gen_ca_signed(pki.path());
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(8)],
        tls: true,
        tls_files: Some((server_cert.clone(), server_key)),
        ..Default::default()
    });
    let power = RedfishPower::new(fast_config());
    // The CA verifies the chain (the WebPKI path, not pinning).
    let t = task(
        &emu.address,
        json!({"redfish_verify_ca": ca.to_str().unwrap()}),
    );
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    // Another CA does not.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = gen_ca_signed(other.path());
    let t = task(
        &emu.address,
        json!({"redfish_verify_ca": other_ca.to_str().unwrap()}),
    );
    let e = power.get_power_state(&t).await.unwrap_err();
    assert!(e.message().contains("redfish_verify_ca"), "{e}");
    // A file that is not PEM: named in the error, before any connection.
    let junk = other.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let t = task(
        &emu.address,
        json!({"redfish_verify_ca": junk.to_str().unwrap()}),
    );
    let e = power.get_power_state(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    assert!(e.message().contains("junk.pem"), "{e}");
}
