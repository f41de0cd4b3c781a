-- ironic-rs SQLite schema, version 1.
--
-- Every record is kept whole as JSON in `data`; the columns beside it copy the
-- fields that are filtered, sorted or unique, so SQLite can index them. Two columns
-- are authoritative over the JSON: `nodes.reservation` (only reserve/release/clear
-- change it) and `ports.portgroup_uuid` (cleared when its port group is deleted).
-- Timestamps in columns are nanoseconds since the Unix epoch (UTC).

CREATE TABLE nodes (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid                 TEXT NOT NULL UNIQUE,
    name                 TEXT UNIQUE,
    instance_uuid        TEXT UNIQUE,
    driver               TEXT NOT NULL,
    provision_state      TEXT NOT NULL,
    power_state          TEXT,
    maintenance          INTEGER NOT NULL,
    fault                TEXT,
    reservation          TEXT,
    conductor_group      TEXT NOT NULL COLLATE NOCASE,
    owner                TEXT,
    lessee               TEXT,
    resource_class       TEXT,
    chassis_uuid         TEXT,
    retired              INTEGER NOT NULL,
    description          TEXT,
    shard                TEXT,
    parent_node          TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER,
    provision_updated_at INTEGER,
    data                 TEXT NOT NULL
);
CREATE INDEX nodes_provision_state ON nodes (provision_state);
CREATE INDEX nodes_power_state ON nodes (power_state);
CREATE INDEX nodes_driver ON nodes (driver);
CREATE INDEX nodes_maintenance ON nodes (maintenance);
CREATE INDEX nodes_reservation ON nodes (reservation);
CREATE INDEX nodes_conductor_group ON nodes (conductor_group);
CREATE INDEX nodes_owner ON nodes (owner);
CREATE INDEX nodes_lessee ON nodes (lessee);
CREATE INDEX nodes_resource_class ON nodes (resource_class);
CREATE INDEX nodes_chassis_uuid ON nodes (chassis_uuid);
CREATE INDEX nodes_shard ON nodes (shard);
CREATE INDEX nodes_parent_node ON nodes (parent_node);
CREATE INDEX nodes_created_at ON nodes (created_at);
CREATE INDEX nodes_updated_at ON nodes (updated_at);
CREATE INDEX nodes_provision_updated_at ON nodes (provision_updated_at);

CREATE TABLE portgroups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT UNIQUE,
    address    TEXT UNIQUE,
    node_uuid  TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
CREATE INDEX portgroups_node_uuid ON portgroups (node_uuid);

CREATE TABLE ports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid             TEXT NOT NULL UNIQUE,
    name             TEXT UNIQUE,
    address          TEXT NOT NULL UNIQUE,
    node_uuid        TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    portgroup_uuid   TEXT REFERENCES portgroups (uuid) ON DELETE SET NULL,
    physical_network TEXT,
    data             TEXT NOT NULL
);
CREATE INDEX ports_node_uuid ON ports (node_uuid);
CREATE INDEX ports_portgroup_uuid ON ports (portgroup_uuid);
CREATE INDEX ports_physical_network ON ports (physical_network);

CREATE TABLE chassis (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);

CREATE TABLE allocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT UNIQUE,
    node_uuid  TEXT,
    data       TEXT NOT NULL
);
CREATE INDEX allocations_node_uuid ON allocations (node_uuid);

CREATE TABLE deploy_templates (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid  TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);

CREATE TABLE conductors (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hostname        TEXT NOT NULL UNIQUE,
    conductor_group TEXT NOT NULL,
    drivers         TEXT NOT NULL,
    alive           INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT
);

CREATE TABLE node_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    node_uuid  TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
CREATE INDEX node_history_node_uuid ON node_history (node_uuid, id);

-- Per-node caches, each kept whole: the trait replaces them at once.
CREATE TABLE node_bios_settings (
    node_uuid  TEXT PRIMARY KEY REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
CREATE TABLE node_firmware_components (
    node_uuid  TEXT PRIMARY KEY REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
CREATE TABLE node_inventory (
    node_uuid  TEXT PRIMARY KEY REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
