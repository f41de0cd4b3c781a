#!/usr/bin/env python3
"""Trim a Redfish mockup tree to what a bare-metal driver reads.

Usage: trim.py SRC DST

SRC is a mockup directory in DMTF's layout (SRC/index.json is /redfish/v1/,
SRC/Systems/1/index.json is /redfish/v1/Systems/1, ...). Starting at the service
root, only links under the keys below are followed; every resource reached is
copied byte for byte to the same place under DST. Links whose letter case differs
from the directory (as iLO sends them) are followed to the directory that matches
case-insensitively, and the resource is copied to where the directory is, so the
tree keeps the link as the vendor wrote it.
"""
import os
import shutil
import sys

import json

FOLLOW = {
    "Systems", "Managers", "Chassis", "Members", "UpdateService", "SessionService",
    "Sessions", "Bios", "SecureBoot", "EthernetInterfaces", "Storage",
    "SimpleStorage", "Drives", "Volumes", "Processors", "VirtualMedia",
    "NetworkAdapters", "NetworkInterfaces", "Thermal", "Power", "FirmwareInventory",
    "ManagedBy", "Links", "SettingsObject", "@Redfish.Settings", "EventService",
    "Subscriptions", "Registries", "StorageControllers", "Controllers",
    "GraphicalConsole",
}
MAX_FILES = 400


def find_dir(src, rel):
    """The directory of `rel` under src, matching each part case-insensitively."""
    cur = src
    for part in [p for p in rel.split("/") if p]:
        exact = os.path.join(cur, part)
        if os.path.isdir(exact):
            cur = exact
            continue
        try:
            match = [d for d in os.listdir(cur) if d.lower() == part.lower()]
        except FileNotFoundError:
            return None
        if not match:
            return None
        cur = os.path.join(cur, match[0])
    return cur


def links(doc, key=None):
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "@odata.id" and key in FOLLOW and isinstance(v, str):
                yield v
            elif k in FOLLOW or k == "@odata.id":
                yield from links(v, k)
            elif k == "Oem":
                continue
    elif isinstance(doc, list):
        for v in doc:
            yield from links(v, key)


def registry_wanted(doc):
    ident = " ".join(str(doc.get(k, "")) for k in ("Id", "Registry", "Name"))
    return "Bios" in ident or "BIOS" in ident


def main(src, dst):
    src = os.path.realpath(src)
    seen, queue, copied = set(), ["/redfish/v1"], 0
    while queue and copied < MAX_FILES:
        uri = queue.pop(0).split("#")[0].split("?")[0].rstrip("/")
        if uri.lower() in seen or not uri.startswith("/redfish/v1"):
            continue
        seen.add(uri.lower())
        rel = uri[len("/redfish/v1"):]
        d = find_dir(src, rel)
        if d is None or not os.path.exists(os.path.join(d, "index.json")):
            continue
        with open(os.path.join(d, "index.json"), encoding="utf-8-sig") as f:
            try:
                doc = json.load(f)
            except ValueError:
                continue
        if "/Registries/" in uri and uri.count("/") >= 4 and not registry_wanted(doc):
            continue
        out = os.path.join(dst, os.path.relpath(d, src))
        os.makedirs(out, exist_ok=True)
        shutil.copyfile(os.path.join(d, "index.json"), os.path.join(out, "index.json"))
        copied += 1
        queue.extend(links(doc))
        # a BIOS registry file points at the registry itself (Location[].Uri)
        locs = [l for l in (doc.get("Location") or []) if isinstance(l, dict)] if isinstance(doc, dict) else []
        english = [l for l in locs if str(l.get("Language", "en")).lower().startswith("en")]
        for loc in english or locs[:1]:
            if isinstance(loc.get("Uri"), str):
                queue.append(loc["Uri"])
        if isinstance(doc, dict) and isinstance(doc.get("AttributeRegistry"), str):
            queue.append("/redfish/v1/Registries/" + doc["AttributeRegistry"])
    print(f"{dst}: {copied} resources")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
