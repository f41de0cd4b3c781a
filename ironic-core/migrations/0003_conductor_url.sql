-- ironic-rs SQLite schema, version 3: the URL other conductors reach a conductor at.
ALTER TABLE conductors ADD COLUMN url TEXT;
