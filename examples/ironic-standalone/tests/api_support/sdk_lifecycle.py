"""Drive a running ironic through openstacksdk's conn.baremetal (argv[1] = URL).

openstacksdk discovers the versions with GET / and GET /v1 and then sends both
microversion headers; every step asserts what it expects and the script prints
OK at the end.
"""
import sys

import openstack
from openstack import exceptions

url = sys.argv[1]
conn = openstack.connect(
    load_yaml_config=False,
    load_envvars=False,
    auth_type="none",
    baremetal_endpoint_override=url,
)
bm = conn.baremetal

ep = bm.get_endpoint_data()
print("negotiated range", ep.min_microversion, ep.max_microversion)
assert ep.max_microversion is not None and ep.max_microversion[0] == 1, ep

names = [d.name for d in bm.drivers()]
assert "fake-hardware" in names, names

node = bm.create_node(
    driver="fake-hardware",
    name="sdk-node",
    resource_class="baremetal",
    properties={"cpus": 2, "memory_mb": 4096, "local_gb": 10},
)
assert node.provision_state == "enroll", node.provision_state
port = bm.create_port(node_id=node.id, address="52:54:00:aa:bb:cc", pxe_enabled=True)
ports = list(bm.ports(node_id=node.id, details=True))
assert [p.address for p in ports] == ["52:54:00:aa:bb:cc"], ports

node = bm.update_node(node, extra={"owner": "sdk"}, driver_info={"ipmi_password": "s3cret"})
assert node.extra == {"owner": "sdk"}, node.extra
assert node.driver_info["ipmi_password"] == "******", node.driver_info
node = bm.patch_node(node, [{"op": "add", "path": "/instance_info/image_source", "value": "http://127.0.0.1/img"}])
assert node.instance_info["image_source"] == "http://127.0.0.1/img", node.instance_info

result = bm.validate_node(node, required=("power", "management"))
assert result["power"].result, result

# The error case: deploying from enroll is refused with a clear 400.
try:
    bm.set_node_provision_state(node, "active")
    raise AssertionError("deploy from enroll was accepted")
except exceptions.BadRequestException as e:
    assert "while it is in state" in str(e) and "enroll" in str(e), str(e)

node = bm.set_node_provision_state(node, "manage", wait=True, timeout=60)
assert node.provision_state == "manageable", node.provision_state
node = bm.set_node_provision_state(node, "provide", wait=True, timeout=60)
assert node.provision_state == "available", node.provision_state
node = bm.set_node_provision_state(node, "active", wait=True, timeout=60)
assert node.provision_state == "active", node.provision_state

bm.set_node_power_state(node, "power off", wait=True, timeout=60)
assert bm.get_node(node.id).power_state == "power off"
bm.set_node_power_state(node, "power on", wait=True, timeout=60)
assert bm.get_node(node.id).power_state == "power on"

bm.set_node_maintenance(node, reason="sdk test")
n = bm.get_node(node.id)
assert n.is_maintenance and n.maintenance_reason == "sdk test", n
bm.unset_node_maintenance(node)
assert not bm.get_node(node.id).is_maintenance

bm.add_node_trait(node, "CUSTOM_SDK")
assert bm.get_node(node.id).traits == ["CUSTOM_SDK"]

node = bm.set_node_provision_state(node, "deleted", wait=True, timeout=60)
assert node.provision_state == "available", node.provision_state

detailed = list(bm.nodes(details=True))
assert [n.name for n in detailed] == ["sdk-node"], detailed
assert detailed[0].driver == "fake-hardware"

bm.delete_port(port)
bm.delete_node(node)
assert list(bm.nodes()) == []
print("OK")
