-- ironic-rs PostgreSQL schema, version 2: the URL other conductors reach a
-- conductor at (node operations are handed to the node's owner there).
ALTER TABLE conductors ADD COLUMN url TEXT;
