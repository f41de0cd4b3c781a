//! Ports and port groups.

use sqlx::postgres::Postgres;
use sqlx::{QueryBuilder, Row};

use super::nodes::{Where, dir_sql, push_in};
use super::*;

fn to_port((data, portgroup): (String, Option<String>)) -> StoreResult<Port> {
    let mut port: Port = decode("port", &data)?;
    // The column is authoritative: deleting a port group clears it.
    port.portgroup_uuid = match portgroup {
        Some(s) => Some(s.parse().map_err(|e| {
            StoreError::Backend(format!("port {}: stored port group {s:?}: {e}", port.uuid))
        })?),
        None => None,
    };
    Ok(port)
}

impl PostgresStore {
    /// After a foreign-key failure: which parent is missing.
    async fn missing_parent(
        &self,
        node: NodeId,
        portgroup: Option<PortgroupId>,
        doing: &str,
        e: sqlx::Error,
    ) -> StoreError {
        let exists = |table: &'static str, uuid: String| async move {
            let mut conn = self.conns.get().await?;
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE uuid = $1"
            )))
            .bind(uuid)
            .fetch_one(&mut conn)
            .await
            .map(|n| n > 0)
        };
        match exists("nodes", node.to_string()).await {
            Ok(false) => return StoreError::not_found("Node", node),
            Ok(true) => {}
            Err(e) => return backend(doing, e),
        }
        if let Some(pg) = portgroup {
            match exists("portgroups", pg.to_string()).await {
                Ok(false) => return StoreError::not_found("Portgroup", pg),
                Ok(true) => {}
                Err(e) => return backend(doing, e),
            }
        }
        backend(doing, e)
    }

    async fn port_write_error(&self, port: &Port, doing: &str, e: sqlx::Error) -> StoreError {
        match unique_violation(&e) {
            Some("ports_uuid_key") => {
                StoreError::Duplicate(format!("A port with UUID {} already exists.", port.uuid))
            }
            Some("ports_name_key") => StoreError::Duplicate(format!(
                "A port with name {} already exists.",
                port.name.as_deref().unwrap_or_default()
            )),
            Some("ports_address_key") => StoreError::Duplicate(format!(
                "A port with MAC address {} already exists.",
                port.address
            )),
            _ if is_foreign_key_violation(&e) => {
                self.missing_parent(
                    port.node_uuid,
                    port.portgroup_uuid,
                    &format!("{doing} port {}", port.uuid),
                    e,
                )
                .await
            }
            _ => backend(format_args!("{doing} port {}", port.uuid), e),
        }
    }

    pub(super) async fn port_create(&self, port: &Port) -> StoreResult<()> {
        let data = encode("port", port.uuid, port)?;
        let res = sqlx::query(
            "INSERT INTO ports (name, address, node_uuid, portgroup_uuid, physical_network, data, uuid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(port.name.clone())
        .bind(port.address.to_string())
        .bind(port.node_uuid.to_string())
        .bind(port.portgroup_uuid.map(|p| p.to_string()))
        .bind(port.physical_network.clone())
        .bind(data)
        .bind(port.uuid.to_string())
        .execute(&mut self.c().await?)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(self.port_write_error(port, "creating", e).await),
        }
    }

    pub(super) async fn port_get(&self, ident: &Ident) -> StoreResult<Port> {
        let (sql, value) = match ident {
            Ident::Uuid(u) => (
                "SELECT data, portgroup_uuid FROM ports WHERE uuid = $1",
                u.hyphenated().to_string(),
            ),
            Ident::Name(n) => (
                "SELECT data, portgroup_uuid FROM ports WHERE name = $1",
                n.clone(),
            ),
        };
        let row: Option<(String, Option<String>)> = sqlx::query_as(sql)
            .bind(value)
            .fetch_optional(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("reading port {ident}"), e))?;
        to_port(row.ok_or_else(|| StoreError::not_found("Port", ident))?)
    }

    pub(super) async fn port_get_by_address(&self, address: MacAddress) -> StoreResult<Port> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT data, portgroup_uuid FROM ports WHERE address = $1")
                .bind(address.to_string())
                .fetch_optional(&mut self.c().await?)
                .await
                .map_err(|e| backend(format_args!("reading port {address}"), e))?;
        to_port(row.ok_or_else(|| StoreError::not_found("Port", address))?)
    }

    pub(super) async fn port_update(&self, port: &Port) -> StoreResult<()> {
        let data = encode("port", port.uuid, port)?;
        let res = sqlx::query(
            "UPDATE ports SET name = $1, address = $2, node_uuid = $3, portgroup_uuid = $4, \
             physical_network = $5, data = $6 WHERE uuid = $7",
        )
        .bind(port.name.clone())
        .bind(port.address.to_string())
        .bind(port.node_uuid.to_string())
        .bind(port.portgroup_uuid.map(|p| p.to_string()))
        .bind(port.physical_network.clone())
        .bind(data)
        .bind(port.uuid.to_string())
        .execute(&mut self.c().await?)
        .await;
        match res {
            Ok(done) if done.rows_affected() == 0 => Err(StoreError::not_found("Port", port.uuid)),
            Ok(_) => Ok(()),
            Err(e) => Err(self.port_write_error(port, "updating", e).await),
        }
    }

    pub(super) async fn port_delete(&self, id: PortId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM ports WHERE uuid = $1")
            .bind(id.to_string())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("deleting port {id}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Port", id));
        }
        Ok(())
    }

    pub(super) async fn port_list(&self, query: &PortQuery) -> StoreResult<Vec<Port>> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT data, portgroup_uuid FROM ports");
        let mut w = Where::new();
        if let Some(n) = query.node {
            w.and(&mut qb).push("node_uuid = ").push_bind(n.to_string());
        }
        if let Some(pg) = query.portgroup {
            w.and(&mut qb)
                .push("portgroup_uuid = ")
                .push_bind(pg.to_string());
        }
        if let Some(a) = query.address {
            w.and(&mut qb).push("address = ").push_bind(a.to_string());
        }
        if let Some(list) = &query.addresses {
            push_in(
                w.and(&mut qb),
                "address",
                list.iter().map(|a| a.to_string()),
            );
        }
        if let Some(p) = &query.physical_network {
            w.and(&mut qb)
                .push("physical_network = ")
                .push_bind(p.clone());
        }
        if let Some(marker) = query.marker {
            let id: i64 = sqlx::query("SELECT id FROM ports WHERE uuid = $1")
                .bind(marker.hyphenated().to_string())
                .fetch_optional(&mut self.c().await?)
                .await
                .and_then(|row| row.map(|r| r.try_get(0)).transpose())
                .map_err(|e| backend(format_args!("reading marker port {marker}"), e))?
                .ok_or_else(|| StoreError::not_found("Port", marker))?;
            let cmp = match query.sort_dir {
                SortDir::Asc => "id > ",
                SortDir::Desc => "id < ",
            };
            w.and(&mut qb).push(cmp).push_bind(id);
        }
        qb.push(format_args!(" ORDER BY id {}", dir_sql(query.sort_dir)));
        if let Some(limit) = query.limit {
            qb.push(" LIMIT ")
                .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let rows: Vec<(String, Option<String>)> = qb
            .build_query_as()
            .fetch_all(&mut self.c().await?)
            .await
            .map_err(|e| backend("listing ports", e))?;
        rows.into_iter().map(to_port).collect()
    }

    async fn portgroup_write_error(
        &self,
        pg: &Portgroup,
        doing: &str,
        e: sqlx::Error,
    ) -> StoreError {
        match unique_violation(&e) {
            Some("portgroups_uuid_key") => {
                StoreError::Duplicate(format!("A portgroup with UUID {} already exists.", pg.uuid))
            }
            Some("portgroups_name_key") => StoreError::Duplicate(format!(
                "A portgroup with name {} already exists.",
                pg.name.as_deref().unwrap_or_default()
            )),
            Some("portgroups_address_key") => StoreError::Duplicate(format!(
                "A portgroup with MAC address {} already exists.",
                pg.address.map(|a| a.to_string()).unwrap_or_default()
            )),
            _ if is_foreign_key_violation(&e) => {
                self.missing_parent(
                    pg.node_uuid,
                    None,
                    &format!("{doing} portgroup {}", pg.uuid),
                    e,
                )
                .await
            }
            _ => backend(format_args!("{doing} portgroup {}", pg.uuid), e),
        }
    }

    pub(super) async fn portgroup_create(&self, pg: &Portgroup) -> StoreResult<()> {
        let data = encode("portgroup", pg.uuid, pg)?;
        let res = sqlx::query(
            "INSERT INTO portgroups (name, address, node_uuid, data, uuid) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(pg.name.clone())
        .bind(pg.address.map(|a| a.to_string()))
        .bind(pg.node_uuid.to_string())
        .bind(data)
        .bind(pg.uuid.to_string())
        .execute(&mut self.c().await?)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(self.portgroup_write_error(pg, "creating", e).await),
        }
    }

    pub(super) async fn portgroup_get(&self, ident: &Ident) -> StoreResult<Portgroup> {
        let (sql, value) = match ident {
            Ident::Uuid(u) => (
                "SELECT data FROM portgroups WHERE uuid = $1",
                u.hyphenated().to_string(),
            ),
            Ident::Name(n) => ("SELECT data FROM portgroups WHERE name = $1", n.clone()),
        };
        let data: Option<String> = sqlx::query_scalar(sql)
            .bind(value)
            .fetch_optional(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("reading portgroup {ident}"), e))?;
        decode(
            "portgroup",
            &data.ok_or_else(|| StoreError::not_found("Portgroup", ident))?,
        )
    }

    pub(super) async fn portgroup_update(&self, pg: &Portgroup) -> StoreResult<()> {
        let data = encode("portgroup", pg.uuid, pg)?;
        let res = sqlx::query(
            "UPDATE portgroups SET name = $1, address = $2, node_uuid = $3, data = $4 WHERE uuid = $5",
        )
        .bind(pg.name.clone())
        .bind(pg.address.map(|a| a.to_string()))
        .bind(pg.node_uuid.to_string())
        .bind(data)
        .bind(pg.uuid.to_string())
        .execute(&mut self.c().await?)
        .await;
        match res {
            Ok(done) if done.rows_affected() == 0 => {
                Err(StoreError::not_found("Portgroup", pg.uuid))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.portgroup_write_error(pg, "updating", e).await),
        }
    }

    pub(super) async fn portgroup_delete(&self, id: PortgroupId) -> StoreResult<()> {
        // Member ports stay, without the group (ON DELETE SET NULL).
        let done = sqlx::query("DELETE FROM portgroups WHERE uuid = $1")
            .bind(id.to_string())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("deleting portgroup {id}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Portgroup", id));
        }
        Ok(())
    }

    pub(super) async fn portgroup_list(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>> {
        let rows: Vec<String> = match node {
            Some(n) => {
                sqlx::query_scalar("SELECT data FROM portgroups WHERE node_uuid = $1 ORDER BY id")
                    .bind(n.to_string())
                    .fetch_all(&mut self.c().await?)
                    .await
            }
            None => {
                sqlx::query_scalar("SELECT data FROM portgroups ORDER BY id")
                    .fetch_all(&mut self.c().await?)
                    .await
            }
        }
        .map_err(|e| backend("listing portgroups", e))?;
        rows.iter().map(|d| decode("portgroup", d)).collect()
    }
}
