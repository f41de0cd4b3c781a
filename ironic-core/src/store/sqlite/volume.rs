//! Volume connectors and targets, and runbooks.

use sqlx::AssertSqlSafe;

use super::*;

/// A write refused by a constraint, in Ironic's words.
fn volume_write_error(
    e: sqlx::Error,
    kind: &str,
    uuid: impl fmt::Display,
    node: NodeId,
    clash: impl FnOnce() -> String,
    doing: &str,
) -> StoreError {
    if is_foreign_key_violation(&e) {
        return StoreError::not_found("Node", node);
    }
    match unique_violation(&e) {
        Some(c) if c.ends_with(".uuid") => StoreError::Duplicate(format!(
            "A {} with UUID {uuid} already exists.",
            kind.to_lowercase()
        )),
        Some(_) => StoreError::Duplicate(clash()),
        None => backend(format_args!("{doing} {} {uuid}", kind.to_lowercase()), e),
    }
}

impl SqliteStore {
    async fn by_uuid<T: DeserializeOwned>(
        &self,
        table: &str,
        kind: &'static str,
        uuid: impl fmt::Display,
    ) -> StoreResult<T> {
        let data: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM {table} WHERE uuid = ?"
        )))
        .bind(uuid.to_string())
        .fetch_optional(&mut *self.r().await?)
        .await
        .map_err(|e| backend(format_args!("reading {} {uuid}", kind.to_lowercase()), e))?;
        decode(
            table,
            &data.ok_or_else(|| StoreError::not_found(kind, &uuid))?,
        )
    }

    async fn delete_by_uuid(
        &self,
        table: &str,
        kind: &'static str,
        uuid: impl fmt::Display,
    ) -> StoreResult<()> {
        let done = sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE uuid = ?")))
            .bind(uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| backend(format_args!("deleting {} {uuid}", kind.to_lowercase()), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(kind, uuid));
        }
        Ok(())
    }

    async fn list_of_node<T: DeserializeOwned>(
        &self,
        table: &str,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<T>> {
        let rows: Vec<String> = match node {
            Some(n) => {
                sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT data FROM {table} WHERE node_uuid = ? ORDER BY id"
                )))
                .bind(n.to_string())
                .fetch_all(&mut *self.r().await?)
                .await
            }
            None => {
                sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT data FROM {table} ORDER BY id"
                )))
                .fetch_all(&mut *self.r().await?)
                .await
            }
        }
        .map_err(|e| backend(format_args!("listing {table}"), e))?;
        rows.iter().map(|d| decode(table, d)).collect()
    }

    // ---- volume connectors ----

    pub(super) async fn connector_create(&self, c: &VolumeConnector) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO volume_connectors (uuid, node_uuid, type, connector_id, data) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(c.uuid.to_string())
        .bind(c.node_uuid.to_string())
        .bind(c.connector_type.clone())
        .bind(c.connector_id.clone())
        .bind(encode("volume connector", c.uuid, c)?)
        .execute(&mut *self.w().await?)
        .await
        .map_err(|e| {
            volume_write_error(
                e,
                "Volume connector",
                c.uuid,
                c.node_uuid,
                || connector_clash(c),
                "creating",
            )
        })?;
        Ok(())
    }

    pub(super) async fn connector_get(
        &self,
        id: VolumeConnectorId,
    ) -> StoreResult<VolumeConnector> {
        self.by_uuid("volume_connectors", "Volume connector", id)
            .await
    }

    pub(super) async fn connector_update(&self, c: &VolumeConnector) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE volume_connectors SET node_uuid = ?, type = ?, connector_id = ?, data = ? \
             WHERE uuid = ?",
        )
        .bind(c.node_uuid.to_string())
        .bind(c.connector_type.clone())
        .bind(c.connector_id.clone())
        .bind(encode("volume connector", c.uuid, c)?)
        .bind(c.uuid.to_string())
        .execute(&mut *self.w().await?)
        .await
        .map_err(|e| {
            volume_write_error(
                e,
                "Volume connector",
                c.uuid,
                c.node_uuid,
                || connector_clash(c),
                "updating",
            )
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Volume connector", c.uuid));
        }
        Ok(())
    }

    pub(super) async fn connector_delete(&self, id: VolumeConnectorId) -> StoreResult<()> {
        self.delete_by_uuid("volume_connectors", "Volume connector", id)
            .await
    }

    pub(super) async fn connector_list(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>> {
        self.list_of_node("volume_connectors", node).await
    }

    // ---- volume targets ----

    pub(super) async fn target_create(&self, t: &VolumeTarget) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO volume_targets (uuid, node_uuid, boot_index, data) VALUES (?, ?, ?, ?)",
        )
        .bind(t.uuid.to_string())
        .bind(t.node_uuid.to_string())
        .bind(i64::from(t.boot_index))
        .bind(encode("volume target", t.uuid, t)?)
        .execute(&mut *self.w().await?)
        .await
        .map_err(|e| {
            volume_write_error(
                e,
                "Volume target",
                t.uuid,
                t.node_uuid,
                || target_clash(t),
                "creating",
            )
        })?;
        Ok(())
    }

    pub(super) async fn target_get(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget> {
        self.by_uuid("volume_targets", "Volume target", id).await
    }

    pub(super) async fn target_update(&self, t: &VolumeTarget) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE volume_targets SET node_uuid = ?, boot_index = ?, data = ? WHERE uuid = ?",
        )
        .bind(t.node_uuid.to_string())
        .bind(i64::from(t.boot_index))
        .bind(encode("volume target", t.uuid, t)?)
        .bind(t.uuid.to_string())
        .execute(&mut *self.w().await?)
        .await
        .map_err(|e| {
            volume_write_error(
                e,
                "Volume target",
                t.uuid,
                t.node_uuid,
                || target_clash(t),
                "updating",
            )
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Volume target", t.uuid));
        }
        Ok(())
    }

    pub(super) async fn target_delete(&self, id: VolumeTargetId) -> StoreResult<()> {
        self.delete_by_uuid("volume_targets", "Volume target", id)
            .await
    }

    pub(super) async fn target_list(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>> {
        self.list_of_node("volume_targets", node).await
    }

    // ---- runbooks ----

    fn runbook_error(r: &Runbook, doing: &str, e: sqlx::Error) -> StoreError {
        match unique_violation(&e) {
            Some("runbooks.name") => {
                StoreError::Duplicate(format!("A runbook with name {} already exists.", r.name))
            }
            Some("runbooks.uuid") => {
                StoreError::Duplicate(format!("A runbook with UUID {} already exists.", r.uuid))
            }
            _ => backend(format_args!("{doing} runbook {}", r.uuid), e),
        }
    }

    pub(super) async fn runbook_create(&self, r: &Runbook) -> StoreResult<()> {
        sqlx::query("INSERT INTO runbooks (uuid, name, data) VALUES (?, ?, ?)")
            .bind(r.uuid.to_string())
            .bind(r.name.clone())
            .bind(encode("runbook", r.uuid, r)?)
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| Self::runbook_error(r, "creating", e))?;
        Ok(())
    }

    pub(super) async fn runbook_get(&self, ident: &Ident) -> StoreResult<Runbook> {
        let (col, value) = match ident {
            Ident::Uuid(u) => ("uuid", u.hyphenated().to_string()),
            Ident::Name(n) => ("name", n.clone()),
        };
        let data: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM runbooks WHERE {col} = ?"
        )))
        .bind(value)
        .fetch_optional(&mut *self.r().await?)
        .await
        .map_err(|e| backend(format_args!("reading runbook {ident}"), e))?;
        decode(
            "runbooks",
            &data.ok_or_else(|| StoreError::not_found("Runbook", ident))?,
        )
    }

    pub(super) async fn runbook_update(&self, r: &Runbook) -> StoreResult<()> {
        let done = sqlx::query("UPDATE runbooks SET name = ?, data = ? WHERE uuid = ?")
            .bind(r.name.clone())
            .bind(encode("runbook", r.uuid, r)?)
            .bind(r.uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| Self::runbook_error(r, "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Runbook", r.uuid));
        }
        Ok(())
    }

    pub(super) async fn runbook_delete(&self, id: RunbookId) -> StoreResult<()> {
        self.delete_by_uuid("runbooks", "Runbook", id).await
    }

    pub(super) async fn runbook_list(&self) -> StoreResult<Vec<Runbook>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT data FROM runbooks ORDER BY id")
            .fetch_all(&mut *self.r().await?)
            .await
            .map_err(|e| backend("listing runbooks", e))?;
        rows.iter().map(|d| decode("runbooks", d)).collect()
    }
}
