-- ironic-rs SQLite schema, version 4: inspection rules (API 1.96)

CREATE TABLE inspection_rules (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);
