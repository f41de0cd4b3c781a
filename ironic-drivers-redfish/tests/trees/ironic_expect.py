#!/usr/bin/env python3
"""What OpenStack Ironic records for every system of a Redfish service, computed
the way Ironic's redfish driver does, through sushy (the client Ironic uses).

Usage: ironic_expect.py URL  -> JSON on stdout: {system_path: {field: value}}

Each field follows the Ironic code path named beside it; a field that Ironic
would fail to read is null (Ironic logs and records nothing).
"""
import json
import sys

import sushy
from sushy import exceptions

BOOT_MODE = {"UEFI": "uefi", "Legacy": "bios"}
GI = 1024 ** 3


def attempt(f):
    try:
        return f()
    except Exception:  # noqa: BLE001 - Ironic logs and goes on
        return None


def bios_value(v):
    # what SQLite/MySQL store for Python values in a Text column
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def local_gb(system):
    # ironic/drivers/modules/redfish/inspect.py _detect_local_gb
    simple = 0
    try:
        if system.simple_storage and system.simple_storage.disks_sizes_bytes:
            simple = ([s for s in system.simple_storage.disks_sizes_bytes if s >= 4 * GI] or [0])[0]
    except exceptions.SushyError:
        pass
    storage = 0
    try:
        if system.storage and system.storage.volumes_sizes_bytes:
            storage = ([s for s in system.storage.volumes_sizes_bytes if s >= 4 * GI] or [0])[0]
    except exceptions.SushyError:
        pass
    try:
        if not storage and system.storage and system.storage.drives_sizes_bytes:
            storage = ([s for s in system.storage.drives_sizes_bytes if s >= 4 * GI] or [0])[0]
    except exceptions.SushyError:
        pass
    size = min(simple, storage) if simple and storage else max(simple, storage)
    return max(0, int(size / GI - 1))


def firmware(system):
    # ironic/drivers/modules/redfish/firmware.py cache_firmware_components
    out = {}
    if system.bios_version:
        out["bios"] = system.bios_version
    try:
        mgr = system.managers[0]
        if mgr.firmware_version:
            out["bmc"] = mgr.firmware_version
    except Exception:  # noqa: BLE001
        pass
    try:
        chassis = system.chassis[0]
        adapters = chassis.network_adapters
        for a in adapters.get_members() if adapters else []:
            for c in a.controllers:
                if c.firmware_package_version:
                    out["nic:" + (a.serial_number or a.identity)] = c.firmware_package_version
    except Exception:  # noqa: BLE001
        pass
    return out or None


def macs(system):
    # inspection: every EthernetInterface with a valid MAC
    out = []
    for eth in system.ethernet_interfaces.get_members():
        m = (eth.mac_address or "").lower().replace("-", ":")
        if len(m) == 17 and m not in out and m != "00:00:00:00:00:00":
            out.append(m)
    return out


def main(url):
    conn = sushy.Sushy(url, auth=sushy.auth.BasicAuth("u", "p"))
    # redfish_utils.get_root_vendor: conn.json.get('Vendor')
    root_vendor = attempt(lambda: conn.json.get("Vendor"))
    out = {}
    for path in conn.get_system_collection().members_identities:
        system = attempt(lambda: conn.get_system(path))
        if system is None:
            out[path] = None
            continue
        e = {}
        # management.detect_vendor: root Vendor, else Manufacturer
        e["vendor"] = root_vendor or system.manufacturer
        # node_cache_boot_mode: get_boot_mode, then get_secure_boot_state
        e["boot_mode"] = attempt(lambda: BOOT_MODE.get(getattr(system.boot.mode, "value", system.boot.mode)))
        e["secure_boot"] = attempt(lambda: system.secure_boot.enabled)
        # get_node_health: Status.Health
        e["health"] = attempt(lambda: system.status.health.value if system.status and system.status.health else None)
        e["bios"] = attempt(lambda: {k: bios_value(v) for k, v in system.bios.attributes.items()})
        e["firmware"] = attempt(lambda: firmware(system))
        e["local_gb"] = attempt(lambda: local_gb(system))
        e["macs"] = attempt(lambda: macs(system))
        e["power_state"] = attempt(lambda: system.power_state.value if system.power_state else None)
        out[path] = e
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
