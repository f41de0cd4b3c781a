-- ironic-rs PostgreSQL schema, version 3: inspection rules (API 1.96)

CREATE TABLE inspection_rules (
    id    BIGSERIAL PRIMARY KEY,
    uuid  TEXT NOT NULL UNIQUE,
    data  TEXT NOT NULL
);
