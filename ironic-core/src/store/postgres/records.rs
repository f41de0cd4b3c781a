//! Chassis, allocations, deploy templates, volume connectors and targets, runbooks,
//! conductors, history and the per-node caches.

use sqlx::AssertSqlSafe;

use super::*;

/// One of the tables holding `uuid`, maybe `name` (and `node_uuid`), and `data`.
#[derive(Clone, Copy)]
pub(super) struct Table {
    table: &'static str,
    /// For messages: "Chassis", "Allocation", ...
    kind: &'static str,
    /// For duplicate messages: "A chassis", "An allocation", ...
    article: &'static str,
    /// Whether the table has a `name` column.
    named: bool,
}

pub(super) const CHASSIS: Table = Table {
    table: "chassis",
    kind: "Chassis",
    article: "A chassis",
    named: false,
};
pub(super) const ALLOCATIONS: Table = Table {
    table: "allocations",
    kind: "Allocation",
    article: "An allocation",
    named: true,
};
pub(super) const TEMPLATES: Table = Table {
    table: "deploy_templates",
    kind: "Deploy template",
    article: "A deploy template",
    named: true,
};
pub(super) const RUNBOOKS: Table = Table {
    table: "runbooks",
    kind: "Runbook",
    article: "A runbook",
    named: true,
};
pub(super) const RULES: Table = Table {
    table: "inspection_rules",
    kind: "Rule",
    article: "A rule",
    named: false,
};
pub(super) const CONNECTORS: Table = Table {
    table: "volume_connectors",
    kind: "Volume connector",
    article: "A volume connector",
    named: false,
};
pub(super) const TARGETS: Table = Table {
    table: "volume_targets",
    kind: "Volume target",
    article: "A volume target",
    named: false,
};

impl Table {
    fn write_error(
        self,
        uuid: impl fmt::Display,
        name: Option<&str>,
        doing: &str,
        e: sqlx::Error,
    ) -> StoreError {
        let constraint = unique_violation(&e).unwrap_or_default();
        if constraint == format!("{}_name_key", self.table) {
            StoreError::Duplicate(format!(
                "{} with name {} already exists.",
                self.article,
                name.unwrap_or_default()
            ))
        } else if constraint == format!("{}_uuid_key", self.table) {
            StoreError::Duplicate(format!("{} with UUID {uuid} already exists.", self.article))
        } else {
            backend(
                format_args!("{doing} {} {uuid}", self.kind.to_lowercase()),
                e,
            )
        }
    }
}

/// A per-node cache kept whole in one row.
#[derive(Clone, Copy, Debug)]
pub(super) enum Blob {
    /// `node_bios_settings`.
    Bios,
    /// `node_firmware_components`.
    Firmware,
    /// `node_inventory`.
    Inventory,
}

impl Blob {
    fn table(self) -> &'static str {
        match self {
            Blob::Bios => "node_bios_settings",
            Blob::Firmware => "node_firmware_components",
            Blob::Inventory => "node_inventory",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Blob::Bios => "BIOS settings",
            Blob::Firmware => "firmware components",
            Blob::Inventory => "inventory",
        }
    }
}

impl PostgresStore {
    /// Insert a record; `node` is the `node_uuid` column of tables that have one.
    pub(super) async fn record_create<T: Serialize>(
        &self,
        t: Table,
        uuid: impl fmt::Display + Copy,
        name: Option<&str>,
        record: &T,
        node: Option<Option<String>>,
    ) -> StoreResult<()> {
        let data = encode(t.kind, uuid, record)?;
        let q = match (t.named, &node) {
            (true, Some(_)) => format!(
                "INSERT INTO {} (uuid, data, name, node_uuid) VALUES ($1, $2, $3, $4)",
                t.table
            ),
            (true, None) => format!(
                "INSERT INTO {} (uuid, data, name) VALUES ($1, $2, $3)",
                t.table
            ),
            (false, _) => format!("INSERT INTO {} (uuid, data) VALUES ($1, $2)", t.table),
        };
        let mut q = sqlx::query(AssertSqlSafe(q))
            .bind(uuid.to_string())
            .bind(data);
        if t.named {
            q = q.bind(name.map(str::to_owned));
        }
        if let Some(n) = node {
            q = q.bind(n);
        }
        q.execute(&mut self.c().await?)
            .await
            .map_err(|e| t.write_error(uuid, name, "creating", e))?;
        Ok(())
    }

    /// Replace a record.
    pub(super) async fn record_update<T: Serialize>(
        &self,
        t: Table,
        uuid: impl fmt::Display + Copy,
        name: Option<&str>,
        record: &T,
        node: Option<Option<String>>,
    ) -> StoreResult<()> {
        let data = encode(t.kind, uuid, record)?;
        let q = match (t.named, &node) {
            (true, Some(_)) => format!(
                "UPDATE {} SET data = $2, name = $3, node_uuid = $4 WHERE uuid = $1",
                t.table
            ),
            (true, None) => format!(
                "UPDATE {} SET data = $2, name = $3 WHERE uuid = $1",
                t.table
            ),
            (false, _) => format!("UPDATE {} SET data = $2 WHERE uuid = $1", t.table),
        };
        let mut q = sqlx::query(AssertSqlSafe(q))
            .bind(uuid.to_string())
            .bind(data);
        if t.named {
            q = q.bind(name.map(str::to_owned));
        }
        if let Some(n) = node {
            q = q.bind(n);
        }
        let done = q
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| t.write_error(uuid, name, "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(t.kind, uuid));
        }
        Ok(())
    }

    pub(super) async fn record_get<T: DeserializeOwned>(
        &self,
        t: Table,
        ident: &Ident,
    ) -> StoreResult<T> {
        let (col, value) = match ident {
            Ident::Uuid(u) => ("uuid", u.hyphenated().to_string()),
            Ident::Name(_) if !t.named => return Err(StoreError::not_found(t.kind, ident)),
            Ident::Name(n) => ("name", n.clone()),
        };
        let data: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM {} WHERE {col} = $1",
            t.table
        )))
        .bind(value)
        .fetch_optional(&mut self.c().await?)
        .await
        .map_err(|e| backend(format_args!("reading {} {ident}", t.kind.to_lowercase()), e))?;
        decode(
            t.table,
            &data.ok_or_else(|| StoreError::not_found(t.kind, ident))?,
        )
    }

    pub(super) async fn record_delete(&self, t: Table, uuid: impl fmt::Display) -> StoreResult<()> {
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE uuid = $1",
            t.table
        )))
        .bind(uuid.to_string())
        .execute(&mut self.c().await?)
        .await
        .map_err(|e| backend(format_args!("deleting {} {uuid}", t.kind.to_lowercase()), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(t.kind, uuid));
        }
        Ok(())
    }

    pub(super) async fn record_list<T: DeserializeOwned>(&self, t: Table) -> StoreResult<Vec<T>> {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM {} ORDER BY id",
            t.table
        )))
        .fetch_all(&mut self.c().await?)
        .await
        .map_err(|e| backend(format_args!("listing {}", t.table), e))?;
        rows.iter().map(|d| decode(t.table, d)).collect()
    }

    /// Records of a table with `node_uuid`, of one node or all, in creation order.
    pub(super) async fn list_of_node<T: DeserializeOwned>(
        &self,
        t: Table,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<T>> {
        let rows: Vec<String> = match node {
            Some(n) => {
                sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT data FROM {} WHERE node_uuid = $1 ORDER BY id",
                    t.table
                )))
                .bind(n.to_string())
                .fetch_all(&mut self.c().await?)
                .await
            }
            None => {
                sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT data FROM {} ORDER BY id",
                    t.table
                )))
                .fetch_all(&mut self.c().await?)
                .await
            }
        }
        .map_err(|e| backend(format_args!("listing {}", t.table), e))?;
        rows.iter().map(|d| decode(t.table, d)).collect()
    }

    /// A refused volume write, in Ironic's words.
    fn volume_error(
        t: Table,
        uuid: impl fmt::Display + Copy,
        node: NodeId,
        clash: impl FnOnce() -> String,
        doing: &str,
        e: sqlx::Error,
    ) -> StoreError {
        if is_foreign_key_violation(&e) {
            return StoreError::not_found("Node", node);
        }
        match unique_violation(&e) {
            Some(c) if c.ends_with("_uuid_key") => {
                StoreError::Duplicate(format!("{} with UUID {uuid} already exists.", t.article))
            }
            Some(_) => StoreError::Duplicate(clash()),
            None => t.write_error(uuid, None, doing, e),
        }
    }

    pub(super) async fn connector_write(
        &self,
        c: &VolumeConnector,
        create: bool,
    ) -> StoreResult<()> {
        let data = encode("volume connector", c.uuid, c)?;
        let sql = if create {
            "INSERT INTO volume_connectors (uuid, node_uuid, type, connector_id, data) \
             VALUES ($1, $2, $3, $4, $5)"
        } else {
            "UPDATE volume_connectors SET node_uuid = $2, type = $3, connector_id = $4, data = $5 \
             WHERE uuid = $1"
        };
        let doing = if create { "creating" } else { "updating" };
        let done = sqlx::query(sql)
            .bind(c.uuid.to_string())
            .bind(c.node_uuid.to_string())
            .bind(c.connector_type.clone())
            .bind(c.connector_id.clone())
            .bind(data)
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| {
                Self::volume_error(
                    CONNECTORS,
                    c.uuid,
                    c.node_uuid,
                    || connector_clash(c),
                    doing,
                    e,
                )
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(CONNECTORS.kind, c.uuid));
        }
        Ok(())
    }

    pub(super) async fn target_write(&self, t: &VolumeTarget, create: bool) -> StoreResult<()> {
        let data = encode("volume target", t.uuid, t)?;
        let sql = if create {
            "INSERT INTO volume_targets (uuid, node_uuid, boot_index, data) VALUES ($1, $2, $3, $4)"
        } else {
            "UPDATE volume_targets SET node_uuid = $2, boot_index = $3, data = $4 WHERE uuid = $1"
        };
        let doing = if create { "creating" } else { "updating" };
        let done = sqlx::query(sql)
            .bind(t.uuid.to_string())
            .bind(t.node_uuid.to_string())
            .bind(i64::from(t.boot_index))
            .bind(data)
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| {
                Self::volume_error(TARGETS, t.uuid, t.node_uuid, || target_clash(t), doing, e)
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(TARGETS.kind, t.uuid));
        }
        Ok(())
    }

    // ---- conductors ----

    pub(super) async fn conductor_upsert(&self, c: &ConductorRecord) -> StoreResult<()> {
        let drivers = encode("conductor", &c.hostname, &c.drivers)?;
        // A re-registration keeps the original `created_at` (and row order).
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO conductors (hostname, conductor_group, drivers, alive, created_at, updated_at, url) \
             VALUES ($1, $2, $3, $4, $5, {DB_NOW_NANOS}, $6) \
             ON CONFLICT (hostname) DO UPDATE SET conductor_group = excluded.conductor_group, \
             drivers = excluded.drivers, alive = excluded.alive, updated_at = excluded.updated_at, \
             url = excluded.url"
        )))
        .bind(c.hostname.clone())
        .bind(c.conductor_group.clone())
        .bind(drivers)
        .bind(c.alive)
        .bind(nanos(&c.created_at))
        .bind(c.url.clone())
        .execute(&mut self.c().await?)
        .await
        .map_err(|e| backend(format_args!("registering conductor {}", c.hostname), e))?;
        Ok(())
    }

    pub(super) async fn conductor_touch(&self, hostname: &str) -> StoreResult<()> {
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE conductors SET updated_at = {DB_NOW_NANOS} WHERE hostname = $1"
        )))
        .bind(hostname.to_owned())
        .execute(&mut self.c().await?)
        .await
        .map_err(|e| backend(format_args!("touching conductor {hostname}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Conductor", hostname));
        }
        Ok(())
    }

    pub(super) async fn conductor_delete(&self, hostname: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM conductors WHERE hostname = $1")
            .bind(hostname.to_owned())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("deleting conductor {hostname}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Conductor", hostname));
        }
        Ok(())
    }

    pub(super) async fn conductor_forget(
        &self,
        hostname: &str,
        stamped_before: Timestamp,
    ) -> StoreResult<bool> {
        // One statement: a keep-alive or a lock taken meanwhile keeps the record.
        let done = sqlx::query(
            "DELETE FROM conductors WHERE hostname = $1 \
             AND COALESCE(updated_at, created_at) < $2 \
             AND NOT EXISTS (SELECT 1 FROM nodes WHERE reservation = $1)",
        )
        .bind(hostname.to_owned())
        .bind(nanos(&stamped_before))
        .execute(&mut self.c().await?)
        .await
        .map_err(|e| backend(format_args!("forgetting conductor {hostname}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn conductor_list(&self) -> StoreResult<Vec<ConductorRecord>> {
        type Row = (
            String,
            String,
            String,
            bool,
            i64,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hostname, conductor_group, drivers, alive, created_at, updated_at, url \
             FROM conductors ORDER BY id",
        )
        .fetch_all(&mut self.c().await?)
        .await
        .map_err(|e| backend("listing conductors", e))?;
        rows.into_iter()
            .map(|(hostname, group, drivers, alive, created, updated, url)| {
                Ok(ConductorRecord {
                    drivers: decode("conductor drivers", &drivers)?,
                    hostname,
                    conductor_group: group,
                    alive,
                    created_at: from_nanos(created),
                    updated_at: updated.map(from_nanos),
                    url,
                })
            })
            .collect()
    }

    // ---- history and per-node caches ----

    pub(super) async fn history_add(&self, e: &HistoryEvent, max: usize) -> StoreResult<()> {
        let node = e.node_uuid.to_string();
        let data = encode("history event", e.uuid, e)?;
        let ctx = || format!("recording history event {} of node {node}", e.uuid);
        // Until `settled`, the lease drops its connection when it ends: a `?`
        // below leaves no transaction open on the server.
        let mut conn = self.c().await?;
        let mut tx = sqlx::Connection::begin(conn.for_transaction())
            .await
            .map_err(|err| backend(ctx(), err))?;
        sqlx::query("INSERT INTO node_history (uuid, node_uuid, data) VALUES ($1, $2, $3)")
            .bind(e.uuid.to_string())
            .bind(node.clone())
            .bind(data)
            .execute(&mut *tx)
            .await
            .map_err(|err| {
                if is_foreign_key_violation(&err) {
                    StoreError::not_found("Node", &node)
                } else if unique_violation(&err).is_some() {
                    StoreError::Duplicate(format!(
                        "A history event with UUID {} already exists.",
                        e.uuid
                    ))
                } else {
                    backend(ctx(), err)
                }
            })?;
        sqlx::query(
            "DELETE FROM node_history WHERE node_uuid = $1 AND id NOT IN \
             (SELECT id FROM node_history WHERE node_uuid = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(node.clone())
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(|err| backend(ctx(), err))?;
        let committed = tx.commit().await;
        conn.settled(committed).map_err(|err| backend(ctx(), err))
    }

    pub(super) async fn history_list(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT data FROM node_history WHERE node_uuid = $1 ORDER BY id")
                .bind(node.to_string())
                .fetch_all(&mut self.c().await?)
                .await
                .map_err(|e| backend(format_args!("reading the history of node {node}"), e))?;
        rows.iter().map(|d| decode("history event", d)).collect()
    }

    pub(super) async fn node_blob_set<T: Serialize + ?Sized>(
        &self,
        blob: Blob,
        node: NodeId,
        value: &T,
    ) -> StoreResult<()> {
        let data = encode(blob.what(), node, value)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (node_uuid, data) VALUES ($1, $2) \
             ON CONFLICT (node_uuid) DO UPDATE SET data = excluded.data",
            blob.table()
        )))
        .bind(node.to_string())
        .bind(data)
        .execute(&mut self.c().await?)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::not_found("Node", node)
            } else {
                backend(
                    format_args!("storing the {} of node {node}", blob.what()),
                    e,
                )
            }
        })?;
        Ok(())
    }

    pub(super) async fn node_blob_get<T: DeserializeOwned>(
        &self,
        blob: Blob,
        node: NodeId,
    ) -> StoreResult<Option<T>> {
        let data: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM {} WHERE node_uuid = $1",
            blob.table()
        )))
        .bind(node.to_string())
        .fetch_optional(&mut self.c().await?)
        .await
        .map_err(|e| {
            backend(
                format_args!("reading the {} of node {node}", blob.what()),
                e,
            )
        })?;
        data.map(|d| decode(blob.what(), &d)).transpose()
    }
}
