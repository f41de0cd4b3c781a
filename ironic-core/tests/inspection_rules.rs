//! Inspection rules (API 1.96) applied by the conductor when in-band inspection
//! data arrives: conditions over the inventory, actions on the node, its ports
//! and the stored plugin data, built-in rules from the config, masking of
//! secrets, and a failing rule failing the inspection with Ironic's message.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use ironic_core::fake::FakeDeployMode;
use ironic_core::inspection_rules::{self, ApiCall, InspectionRule, MaskSecrets, RuleHttp};
use ironic_core::{Error, ProvisionState as S};
use serde_json::{Value, json};

fn rule(priority: i64, conditions: Value, actions: Value) -> InspectionRule {
    let mut r = InspectionRule::new(actions.as_array().unwrap().clone());
    r.priority = priority;
    r.conditions = conditions.as_array().unwrap().clone();
    r
}

fn agent_data(mac: &str) -> Value {
    json!({
        "inventory": {
            "bmc_address": "192.0.2.17",
            "interfaces": [
                {"name": "eth0", "mac_address": mac, "ipv4_address": "10.1.2.3"},
                {"name": "eth1", "mac_address": "52:54:00:aa:bb:01", "ipv4_address": null}
            ],
            "cpu": {"count": 16, "architecture": "x86_64", "flags": ["vmx", "sse4_2"]},
            "memory": {"physical_mb": 65536},
            "disks": [{"name": "/dev/sda", "size": 500u64 * (1 << 30)}],
            "system_vendor": {"manufacturer": "Dell Inc.", "product_name": "PowerEdge R650"},
            "boot": {"current_boot_mode": "uefi", "pxe_interface": mac}
        },
        "root_disk": {"name": "/dev/sda"},
        "bmc_password": "hunter2",
        "logs": "H4sIAAAA"
    })
}

async fn ports_of(e: &Env, node: ironic_core::NodeId) -> Vec<ironic_core::Port> {
    let mut q = ironic_core::store::PortQuery::default();
    q.node = Some(node);
    e.store.list_ports(&q).await.unwrap()
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<ApiCall>>);

#[async_trait]
impl RuleHttp for Recorder {
    async fn get(&self, call: &ApiCall) -> Result<(), String> {
        self.0.lock().unwrap().push(call.clone());
        if call.url.contains("fail") {
            Err("500 Server Error".to_owned())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn rules_change_the_node_ports_and_plugin_data_during_inspection() {
    let http = Arc::new(Recorder::default());
    let mut cfg = test_config();
    cfg.inspection_rules.http = Some(http.clone());
    cfg.inspection_rules.mask_secrets = MaskSecrets::Sensitive;
    cfg.inspection_rules.built_in = inspection_rules::parse_built_in(&json!([{
        "description": "built in: vendor capability",
        "priority": -5,
        "conditions": [{"op": "matches", "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "Dell.*"}}],
        "actions": [{"op": "set-capability", "args": {"name": "vendor", "value": "dell"}}]
    }]))
    .unwrap();
    let e = env_with(cfg, FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 0x31).await;
    let i = id(&n);
    let mut u = n.clone();
    u.driver_info.insert("ipmi_password", json!("topsecret"));
    e.c.update_node(u, false).await.unwrap();

    // big machines get a trait, the BMC address and a rack label
    e.c.create_inspection_rule(rule(
        100,
        json!([
            {"op": "gt", "args": {"values": ["{inventory[memory][physical_mb]}", "32768"]}},
            {"op": "!is-empty", "args": {"value": "{inventory[bmc_address]}"}},
            {"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "192.0.2.0/24"}},
            {"op": "contains", "args": {"value": "{inventory[cpu][flags]}", "regex": "vmx"}},
            {"op": "one-of", "args": {"value": "{inventory[cpu][architecture]}", "values": ["x86_64", "aarch64"]}}
        ]),
        json!([
            {"op": "add-trait", "args": {"name": "CUSTOM_BIG"}},
            {"op": "set-attribute", "args": {"path": "driver_info/ipmi_address", "value": "{inventory[bmc_address]}"}},
            {"op": "set-attribute", "args": ["extra.rack", "r7"]},
            {"op": "extend-attribute", "args": {"path": "extra/tags", "value": "gpu", "unique": true}},
            {"op": "extend-attribute", "args": {"path": "extra/tags", "value": "gpu", "unique": true}},
            {"op": "set-plugin-data", "args": {"path": "seen.by", "value": "rule-100"}},
            {"op": "set-plugin-data", "args": {"path": "pw", "value": "{plugin_data[bmc_password]}"}},
            {"op": "set-attribute", "args": {"path": "extra/pw_seen", "value": "{node.driver_info[ipmi_password]}"}},
            {"op": "log", "args": {"msg": "node {node.uuid} is big", "level": "warning"}},
            {"op": "api-call", "args": {"url": "http://cmdb.example/hook?node={node.uuid}", "timeout": 2}}
        ]),
    ))
    .await
    .unwrap();
    // a loop over the interfaces: ports with an IPv4 address get a label
    e.c.create_inspection_rule(rule(
        50,
        json!([{
            "op": "!is-none", "args": {"value": "{item}"},
            "loop": ["{inventory[interfaces][0][ipv4_address]}"], "multiple": "all"
        }]),
        json!([{"op": "set-port-attribute", "loop": [{"path": "extra/net", "value": "ipv4"}],
                "args": {"port_id": "PORT", "path": "{item[path]}", "value": "{item[value]}"}}]),
    ))
    .await
    .map(|_| ())
    .unwrap_or_else(|e| panic!("{e}"));
    // a sensitive rule sees the secrets (mask_secrets = sensitive)
    let mut sensitive = rule(
        90,
        json!([]),
        json!([{"op": "set-plugin-data", "args": {"path": "pw_sensitive", "value": "{plugin_data[bmc_password]}"}}]),
    );
    sensitive.sensitive = true;
    e.c.create_inspection_rule(sensitive).await.unwrap();
    // never matches: no rule change happens
    e.c.create_inspection_rule(rule(
        10,
        json!([{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 4]}}]),
        json!([{"op": "fail", "args": {"msg": "should not run"}}]),
    ))
    .await
    .unwrap();

    // the port rule must name the real port: rewrite it now that it exists
    let port = ports_of(&e, n.uuid).await.remove(0);
    let mut rules = e.c.list_inspection_rules().await.unwrap();
    let mut r50 = rules.remove(1);
    r50.actions[0]["args"]["port_id"] = json!(port.uuid.to_string());
    e.c.update_inspection_rule(r50).await.unwrap();

    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "inspect").await;
    wait_state(&e.c, &i, S::InspectWait).await;
    e.c.continue_inspection(None, agent_data(&mac.to_string()))
        .await
        .unwrap();
    let n = wait_state(&e.c, &i, S::Manageable).await;

    assert!(
        n.traits.contains(&"CUSTOM_BIG".to_owned()),
        "{:?}",
        n.traits
    );
    assert_eq!(
        n.driver_info.get("ipmi_address"),
        Some(&json!("192.0.2.17"))
    );
    assert_eq!(n.extra["rack"], "r7");
    assert_eq!(n.extra["tags"], json!(["gpu"]), "unique extend");
    assert_eq!(
        n.extra["pw_seen"], "******",
        "node secrets are masked for rules"
    );
    assert_eq!(
        n.properties["capabilities"], "vendor:dell",
        "built-in rule ran"
    );
    assert_eq!(
        n.properties["memory_mb"], 65536,
        "processing hooks still ran"
    );
    let port = ports_of(&e, n.uuid)
        .await
        .into_iter()
        .find(|p| p.uuid == port.uuid)
        .unwrap();
    assert_eq!(port.extra["net"], "ipv4");

    let stored = e.store.get_inventory(n.uuid).await.unwrap().unwrap();
    assert_eq!(stored["inventory"]["bmc_address"], "192.0.2.17");
    let pd = &stored["plugin_data"];
    assert_eq!(
        pd["root_disk"]["name"], "/dev/sda",
        "the rest of the agent data"
    );
    assert_eq!(pd["seen"]["by"], "rule-100");
    assert_eq!(
        pd["pw"], "***",
        "secrets are masked for a rule that is not sensitive"
    );
    assert_eq!(pd["pw_sensitive"], "hunter2", "a sensitive rule sees them");
    assert!(pd.get("logs").is_none(), "logs are not kept");

    let calls = http.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].url,
        format!("http://cmdb.example/hook?node={}", n.uuid)
    );
    assert_eq!(calls[0].timeout, std::time::Duration::from_secs(2));
    e.c.shutdown().await;
}

#[tokio::test]
async fn a_failing_rule_fails_the_inspection_and_stores_nothing() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 0x32).await;
    let i = id(&n);
    e.c.create_inspection_rule(rule(
        5,
        json!([{"op": "lt", "args": {"values": ["{inventory[cpu][count]}", "32"], "force_strings": true}}]),
        // changes before the failure are not kept; `fail`'s message is not a
        // format string (as in Ironic)
        json!([
            {"op": "set-attribute", "args": {"path": "extra/x", "value": 1}},
            {"op": "fail", "args": {"msg": "too few CPUs ({inventory[cpu][count]})"}}
        ]),
    ))
    .await
    .unwrap();
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "inspect").await;
    wait_state(&e.c, &i, S::InspectWait).await;
    e.c.continue_inspection(None, agent_data(&mac.to_string()))
        .await
        .unwrap();
    let n = wait_state(&e.c, &i, S::InspectFailed).await;
    assert_eq!(
        n.last_error.as_deref(),
        Some(
            "Failed to finish inspection: Failed to inspect hardware. Reason: too few CPUs ({inventory[cpu][count]})"
        )
    );
    assert!(n.extra.get("x").is_none());
    assert!(e.store.get_inventory(n.uuid).await.unwrap().is_none());
    e.c.shutdown().await;
}

#[tokio::test]
async fn rules_are_validated_as_ironic_validates_them() {
    let e = env(FakeDeployMode::Agent).await;
    let bad = |r: InspectionRule| {
        let c = e.c.clone();
        async move {
            match c.create_inspection_rule(r).await {
                Err(Error::Invalid(m)) => m,
                other => panic!("expected Invalid, got {other:?}"),
            }
        }
    };
    let m = bad(rule(
        10000,
        json!([]),
        json!([{"op": "log", "args": {"msg": "x"}}]),
    ))
    .await;
    assert_eq!(
        m,
        "Priority must be between 0 and 9999 for user-defined rules."
    );
    let m = bad(rule(
        1,
        json!([]),
        json!([{"op": "set-attribute", "args": {"path": "x"}}]),
    ))
    .await;
    assert_eq!(
        m,
        "Invalid parameters for action operator set-attribute: missing required argument(s): value"
    );
    let m = bad(rule(
        1,
        json!([{"op": "!!eq", "args": {"values": []}}]),
        json!([{"op": "log", "args": {"msg": "x"}}]),
    ))
    .await;
    assert!(m.starts_with("Multiple exclamation marks"), "{m}");
    let mut r = rule(1, json!([]), json!([{"op": "log", "args": {"msg": "x"}}]));
    r.phase = "late".into();
    assert_eq!(bad(r).await, "Invalid phase: late. Valid phases are: main");
    // schema errors of a request body
    assert!(inspection_rules::check_schema(&json!({"actions": []})).is_err());
    assert!(
        inspection_rules::check_schema(&json!({"actions": [{"op": "nope", "args": {}}]})).is_err()
    );
    assert!(
        inspection_rules::check_schema(
            &json!({"actions": [{"op": "log", "args": {"msg": "x"}}], "bogus": 1})
        )
        .is_err()
    );
    assert!(inspection_rules::check_schema(&json!({"actions": [{"op": "log", "args": {"msg": "x"}}], "conditions": [{"op": "!eq", "args": {"values": []}, "multiple": "some"}]})).is_err());
    assert!(inspection_rules::check_schema(&json!({"actions": [{"op": "log", "args": {"msg": "x"}}], "conditions": [{"op": "!eq", "args": {"values": []}, "multiple": "all"}]})).is_ok());
    // a sensitive rule stays sensitive
    let mut r = rule(1, json!([]), json!([{"op": "log", "args": {"msg": "x"}}]));
    r.sensitive = true;
    let mut r = e.c.create_inspection_rule(r).await.unwrap();
    r.sensitive = false;
    assert!(matches!(
        e.c.update_inspection_rule(r).await,
        Err(Error::Invalid(_))
    ));
    // built-in rules: any priority, synthetic UUIDs, errors name the rule
    let b = inspection_rules::parse_built_in(&json!([
        {"priority": -1, "actions": [{"op": "log", "args": {"msg": "a"}}]},
        {"priority": 20000, "actions": [{"op": "log", "args": {"msg": "b"}}]}
    ]))
    .unwrap();
    assert_eq!(
        b[0].uuid.to_string(),
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(
        b[1].uuid.to_string(),
        "00000000-0000-0000-0000-000000000001"
    );
    let err = inspection_rules::parse_built_in(&json!([{"actions": [{"op": "fail", "args": {}}]}]))
        .unwrap_err();
    assert!(err.starts_with("built-in rule #1:"), "{err}");
    e.c.shutdown().await;
}
