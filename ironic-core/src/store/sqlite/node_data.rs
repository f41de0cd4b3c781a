//! Per-node data: history, and the BIOS, firmware and inventory caches.

use sqlx::AssertSqlSafe;

use super::*;

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

impl SqliteStore {
    pub(super) async fn history_add(&self, e: &HistoryEvent, max: usize) -> StoreResult<()> {
        let node = e.node_uuid.to_string();
        let data = encode("history event", e.uuid, e)?;
        let ctx = || format!("recording history event {} of node {node}", e.uuid);
        // Atomic by `write_atomic` (a savepoint or a transaction of its own).
        sqlx::query("INSERT INTO node_history (uuid, node_uuid, data) VALUES (?, ?, ?)")
            .bind(e.uuid.to_string())
            .bind(node.clone())
            .bind(data)
            .execute(&mut *self.w().await?)
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
            "DELETE FROM node_history WHERE node_uuid = ? AND id NOT IN \
             (SELECT id FROM node_history WHERE node_uuid = ? ORDER BY id DESC LIMIT ?)",
        )
        .bind(node.clone())
        .bind(node.clone())
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&mut *self.w().await?)
        .await
        .map_err(|err| backend(ctx(), err))?;
        Ok(())
    }

    pub(super) async fn history_list(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT data FROM node_history WHERE node_uuid = ? ORDER BY id")
                .bind(node.to_string())
                .fetch_all(&mut *self.r().await?)
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
            "INSERT INTO {} (node_uuid, data) VALUES (?, ?) \
             ON CONFLICT (node_uuid) DO UPDATE SET data = excluded.data",
            blob.table()
        )))
        .bind(node.to_string())
        .bind(data)
        .execute(&mut *self.w().await?)
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
            "SELECT data FROM {} WHERE node_uuid = ?",
            blob.table()
        )))
        .bind(node.to_string())
        .fetch_optional(&mut *self.r().await?)
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
