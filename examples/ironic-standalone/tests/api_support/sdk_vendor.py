"""openstacksdk's vendor passthru calls against a running ironic (argv[1] = URL,
argv[2] = the Redfish address of a BMC that keeps event subscriptions): the
`redfish` vendor interface's subscription methods as Metal3 and operators call
them through `conn.baremetal`. Prints OK at the end.
"""
import sys

import openstack

url, bmc = sys.argv[1], sys.argv[2]
conn = openstack.connect(
    load_yaml_config=False,
    load_envvars=False,
    auth_type="none",
    baremetal_endpoint_override=url,
)
bm = conn.baremetal

node = bm.create_node(
    driver="redfish",
    name="sdk-rf",
    driver_info={
        "redfish_address": bmc,
        "redfish_system_id": "/redfish/v1/Systems/lab-0",
        "redfish_username": "admin",
        "redfish_password": "pw-lab-0",
    },
)
assert node.vendor_interface == "redfish", node.vendor_interface

methods = bm.list_node_vendor_passthru(node)
for m in ("create_subscription", "delete_subscription", "get_subscription",
          "get_all_subscriptions", "eject_vmedia"):
    assert m in methods, (m, methods)
# Ironic's method metadata: HTTP methods, async flag, description.
assert methods["create_subscription"]["http_methods"] == ["POST"], methods
assert methods["create_subscription"]["async"] is False, methods
assert methods["eject_vmedia"]["async"] is True, methods

r = bm.call_node_vendor_passthru(
    node, "POST", "create_subscription",
    {"Destination": "https://metal3.example/events", "Context": "sdk",
     "EventTypes": ["Alert"]},
)
assert r.status_code == 200, (r.status_code, r.text)
sub = r.json()
assert sub["Destination"] == "https://metal3.example/events", sub
assert sub["Context"] == "sdk", sub
sid = sub["Id"]

r = bm.call_node_vendor_passthru(node, "GET", "get_all_subscriptions")
members = [m["@odata.id"] for m in r.json()["Members"]]
assert any(m.endswith("/" + sid) for m in members), members

# openstacksdk sends a body with GET and DELETE (python-ironicclient does not).
r = bm.call_node_vendor_passthru(node, "GET", "get_subscription", {"id": sid})
assert r.json()["Id"] == sid, r.text
r = bm.call_node_vendor_passthru(node, "DELETE", "delete_subscription", {"id": sid})
assert r.status_code == 200, (r.status_code, r.text)
r = bm.call_node_vendor_passthru(node, "GET", "get_all_subscriptions")
assert r.json()["Members"] == [], r.text

# Ironic's validation errors come back as 400 with its message.
try:
    bm.call_node_vendor_passthru(
        node, "POST", "create_subscription", {"Destination": "not a uri"})
    raise SystemExit("a bad Destination was accepted")
except openstack.exceptions.BadRequestException as e:
    assert "is not a valid URI" in str(e), str(e)
try:
    bm.call_node_vendor_passthru(node, "POST", "no_such_method")
    raise SystemExit("an unknown method was accepted")
except openstack.exceptions.BadRequestException as e:
    assert "No handler for method no_such_method" in str(e), str(e)

bm.delete_node(node)
print("OK")
