-- ironic-rs PostgreSQL schema, version 1.
--
-- The same shape as the SQLite schema: every record is kept whole as JSON in `data`
-- (text, so it reads back exactly as written); the columns beside it copy what is
-- filtered, sorted or unique. `nodes.reservation` and `ports.portgroup_uuid` are
-- authoritative over the JSON. Timestamps in columns are nanoseconds since the Unix
-- epoch (UTC). Text that lists sort by uses the "C" collation, so every database
-- orders it the same way (byte order, as SQLite does) whatever its locale.

CREATE TABLE nodes (
    id                   BIGSERIAL PRIMARY KEY,
    uuid                 TEXT COLLATE "C" NOT NULL UNIQUE,
    name                 TEXT COLLATE "C" UNIQUE,
    instance_uuid        TEXT COLLATE "C" UNIQUE,
    driver               TEXT COLLATE "C" NOT NULL,
    provision_state      TEXT COLLATE "C" NOT NULL,
    power_state          TEXT COLLATE "C",
    maintenance          BOOLEAN NOT NULL,
    fault                TEXT,
    reservation          TEXT,
    conductor_group      TEXT COLLATE "C" NOT NULL,
    owner                TEXT COLLATE "C",
    lessee               TEXT,
    resource_class       TEXT COLLATE "C",
    chassis_uuid         TEXT,
    retired              BOOLEAN NOT NULL,
    description          TEXT,
    shard                TEXT,
    parent_node          TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT,
    provision_updated_at BIGINT,
    data                 TEXT NOT NULL
);
CREATE INDEX nodes_provision_state ON nodes (provision_state);
CREATE INDEX nodes_driver ON nodes (driver);
CREATE INDEX nodes_reservation ON nodes (reservation);
CREATE INDEX nodes_conductor_group ON nodes (lower(conductor_group));
CREATE INDEX nodes_owner ON nodes (owner);
CREATE INDEX nodes_lessee ON nodes (lessee);
CREATE INDEX nodes_resource_class ON nodes (resource_class);
CREATE INDEX nodes_chassis_uuid ON nodes (chassis_uuid);
CREATE INDEX nodes_shard ON nodes (shard);
CREATE INDEX nodes_parent_node ON nodes (parent_node);
CREATE INDEX nodes_provision_updated_at ON nodes (provision_updated_at);

CREATE TABLE portgroups (
    id         BIGSERIAL PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT UNIQUE,
    address    TEXT UNIQUE,
    node_uuid  TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
CREATE INDEX portgroups_node_uuid ON portgroups (node_uuid);

CREATE TABLE ports (
    id               BIGSERIAL PRIMARY KEY,
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
    id    BIGSERIAL PRIMARY KEY,
    uuid  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);

CREATE TABLE allocations (
    id         BIGSERIAL PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT UNIQUE,
    node_uuid  TEXT,
    data       TEXT NOT NULL
);
CREATE INDEX allocations_node_uuid ON allocations (node_uuid);

CREATE TABLE deploy_templates (
    id    BIGSERIAL PRIMARY KEY,
    uuid  TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);

CREATE TABLE volume_connectors (
    id            BIGSERIAL PRIMARY KEY,
    uuid          TEXT NOT NULL UNIQUE,
    node_uuid     TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    type          TEXT NOT NULL,
    connector_id  TEXT NOT NULL,
    data          TEXT NOT NULL,
    CONSTRAINT volume_connectors_type_connector_id_key UNIQUE (type, connector_id)
);
CREATE INDEX volume_connectors_node_uuid ON volume_connectors (node_uuid);

CREATE TABLE volume_targets (
    id          BIGSERIAL PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    node_uuid   TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    boot_index  BIGINT NOT NULL,
    data        TEXT NOT NULL,
    CONSTRAINT volume_targets_node_uuid_boot_index_key UNIQUE (node_uuid, boot_index)
);

CREATE TABLE runbooks (
    id    BIGSERIAL PRIMARY KEY,
    uuid  TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);

-- Conductors: `updated_at` is set from the database's clock, so that liveness is
-- judged by one clock whatever the hosts' clocks say.
CREATE TABLE conductors (
    id              BIGSERIAL PRIMARY KEY,
    hostname        TEXT NOT NULL UNIQUE,
    conductor_group TEXT NOT NULL,
    drivers         TEXT NOT NULL,
    alive           BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT
);

CREATE TABLE node_history (
    id         BIGSERIAL PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    node_uuid  TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    data       TEXT NOT NULL
);
CREATE INDEX node_history_node_uuid ON node_history (node_uuid, id);

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
