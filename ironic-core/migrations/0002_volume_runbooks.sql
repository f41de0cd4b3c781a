-- ironic-rs SQLite schema, version 2: volume connectors and targets, runbooks
-- (kept by the API layer in a JSON file beside the database before).

CREATE TABLE volume_connectors (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT NOT NULL UNIQUE,
    node_uuid     TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    type          TEXT NOT NULL,
    connector_id  TEXT NOT NULL,
    data          TEXT NOT NULL,
    UNIQUE (type, connector_id)
);
CREATE INDEX volume_connectors_node_uuid ON volume_connectors (node_uuid);

CREATE TABLE volume_targets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    node_uuid   TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    boot_index  INTEGER NOT NULL,
    data        TEXT NOT NULL,
    UNIQUE (node_uuid, boot_index)
);
CREATE INDEX volume_targets_node_uuid ON volume_targets (node_uuid);

CREATE TABLE runbooks (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid  TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);
