"""Drives the lab's Redfish simulator with the real sushy client.

Usage: sushy_check.py URL SYSTEM USER PASSWORD AUTH(session|basic) ISO_URL
Prints one JSON document of what sushy saw; exits non-zero on any failure.
"""
import json
import sys

import sushy
from sushy import auth as sushy_auth

url, system_id, user, password, mode, iso_url = sys.argv[1:7]
out = {}
if mode == "session":
    authn = sushy_auth.SessionAuth(username=user, password=password)
else:
    authn = sushy_auth.BasicAuth(username=user, password=password)
root = sushy.Sushy(url + "/redfish/v1/", auth=authn)
out["redfish_version"] = root.redfish_version
out["systems"] = sorted(root.get_system_collection().members_identities)
system = root.get_system("/redfish/v1/Systems/" + system_id)
out["uuid"] = system.uuid
out["power_before"] = str(system.power_state.value)
out["reset_values"] = sorted(str(v.value) for v in system.get_allowed_reset_system_values())
out["boot_values"] = sorted(str(v.value) for v in system.get_allowed_system_boot_source_values())
system.reset_system(sushy.ResetType.ON)
system.refresh()
out["power_after_on"] = str(system.power_state.value)
system.set_system_boot_options(
    sushy.BootSource.PXE,
    enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS,
    mode=sushy.BootSourceOverrideMode.UEFI,
)
system.refresh()
out["boot"] = {
    "target": str(system.boot.target.value),
    "enabled": str(system.boot.enabled.value),
    "mode": str(system.boot.mode.value),
}
out["macs"] = sorted(system.ethernet_interfaces.summary.keys())
out["cpus"] = system.processors.summary.count
out["memory_gib"] = system.memory_summary.size_gib
out["disk_sizes"] = sorted(system.simple_storage.disks_sizes_bytes)
manager = root.get_manager("/redfish/v1/Managers/" + system_id)
vm = manager.virtual_media.get_members()[0]
out["vmedia_types"] = sorted(str(t.value) for t in vm.media_types)
vm.insert_media(iso_url, inserted=True, write_protected=True)
vm.refresh()
out["vmedia_inserted"] = {"image": vm.image, "inserted": vm.inserted}
vm.eject_media()
vm.refresh()
out["vmedia_ejected"] = {"image": vm.image, "inserted": vm.inserted}
system.reset_system(sushy.ResetType.FORCE_OFF)
system.refresh()
out["power_after_off"] = str(system.power_state.value)
chassis = system.managers[0].identity
out["manager_id"] = chassis
try:
    bad = sushy.Sushy(
        url + "/redfish/v1/",
        auth=sushy_auth.BasicAuth(username=user, password=password + "-wrong"),
    )
    bad.get_system("/redfish/v1/Systems/" + system_id)
    out["wrong_password"] = "accepted"
except sushy.exceptions.AccessError as e:
    out["wrong_password"] = "rejected %s" % e.status_code
print(json.dumps(out))
