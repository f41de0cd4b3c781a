//! Nodes: CRUD, listing, and the reservation (node lock).
//!
//! The queries are the SQLite store's, in PostgreSQL's dialect (`$n` parameters,
//! `strpos`, explicit NULL placement, constraint names).

use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;
use sqlx::{QueryBuilder, Row};

use super::*;
use crate::store::node_data;

/// `UPDATE nodes SET` every column but `uuid` and `reservation`, bound by
/// `bind_columns` as `$1` … `$20`; `node_update` and `node_update_and_release`
/// add their own `WHERE`.
macro_rules! update_node_set {
    () => {
        "UPDATE nodes SET name = $1, instance_uuid = $2, driver = $3, provision_state = $4, \
         power_state = $5, maintenance = $6, fault = $7, conductor_group = $8, owner = $9, \
         lessee = $10, resource_class = $11, chassis_uuid = $12, retired = $13, \
         description = $14, shard = $15, parent_node = $16, created_at = $17, \
         updated_at = $18, provision_updated_at = $19, data = $20"
    };
}

/// Bind the columns shared by INSERT and UPDATE, in the order the statements name them.
fn bind_columns<'q>(
    q: Query<'q, Postgres, PgArguments>,
    n: &Node,
    data: String,
) -> Query<'q, Postgres, PgArguments> {
    q.bind(n.name.clone())
        .bind(n.instance_uuid.clone())
        .bind(n.driver.clone())
        .bind(n.provision_state.as_str())
        .bind(n.power_state.map(|p| p.as_str()))
        .bind(n.maintenance)
        .bind(n.fault.map(|f| f.as_str()))
        .bind(n.conductor_group.clone())
        .bind(n.owner.clone())
        .bind(n.lessee.clone())
        .bind(n.resource_class.clone())
        .bind(n.chassis_uuid.map(|c| c.to_string()))
        .bind(n.retired)
        .bind(n.description.clone())
        .bind(n.shard.clone())
        .bind(n.parent_node.map(|p| p.to_string()))
        .bind(nanos(&n.created_at))
        .bind(n.updated_at.as_ref().map(nanos))
        .bind(n.provision_updated_at.as_ref().map(nanos))
        .bind(data)
}

/// Map a failed node write to Ironic's messages for the unique values.
fn write_error(node: &Node, doing: &str, e: sqlx::Error) -> StoreError {
    let name = node.name.as_deref().unwrap_or_default();
    let instance = node.instance_uuid.as_deref().unwrap_or_default();
    match unique_violation(&e) {
        Some("nodes_uuid_key") => {
            StoreError::Duplicate(format!("A node with UUID {} already exists.", node.uuid))
        }
        Some("nodes_name_key") => {
            StoreError::Duplicate(format!("A node with name {name} already exists."))
        }
        Some("nodes_instance_uuid_key") => StoreError::Duplicate(format!(
            "Instance {instance} is already associated with a node, it cannot be associated with this other node {}",
            node.uuid
        )),
        _ => backend(format_args!("{doing} node {}", node.uuid), e),
    }
}

fn to_node((data, reservation): (String, Option<String>)) -> StoreResult<Node> {
    let mut node: Node = decode("node", &data)?;
    node.reservation = reservation;
    Ok(node)
}

/// How a sort column is typed, to read the marker row's value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ColType {
    Int,
    Text,
    Bool,
}

/// The column a sort key orders by, and its type.
fn sort_column(key: NodeSortKey) -> (&'static str, ColType) {
    use ColType::*;
    match key {
        NodeSortKey::Id => ("id", Int),
        NodeSortKey::Uuid => ("uuid", Text),
        NodeSortKey::Name => ("name", Text),
        NodeSortKey::CreatedAt => ("created_at", Int),
        NodeSortKey::UpdatedAt => ("updated_at", Int),
        NodeSortKey::ProvisionState => ("provision_state", Text),
        NodeSortKey::ProvisionUpdatedAt => ("provision_updated_at", Int),
        NodeSortKey::PowerState => ("power_state", Text),
        NodeSortKey::Driver => ("driver", Text),
        NodeSortKey::Maintenance => ("maintenance", Bool),
        NodeSortKey::ResourceClass => ("resource_class", Text),
        NodeSortKey::ConductorGroup => ("conductor_group", Text),
        NodeSortKey::Owner => ("owner", Text),
        NodeSortKey::InstanceUuid => ("instance_uuid", Text),
    }
}

/// Appends `WHERE`/`AND` between conditions.
pub(super) struct Where {
    started: bool,
}

impl Where {
    pub(super) fn new() -> Self {
        Where { started: false }
    }

    pub(super) fn and<'a>(
        &mut self,
        qb: &'a mut QueryBuilder<Postgres>,
    ) -> &'a mut QueryBuilder<Postgres> {
        qb.push(if self.started { " AND " } else { " WHERE " });
        self.started = true;
        qb
    }
}

/// `col IN (?, ...)`, or a false condition for an empty list.
pub(super) fn push_in(
    qb: &mut QueryBuilder<Postgres>,
    col: &str,
    values: impl IntoIterator<Item = String>,
) {
    let values: Vec<String> = values.into_iter().collect();
    if values.is_empty() {
        qb.push("FALSE");
        return;
    }
    qb.push(col).push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    qb.push(")");
}

fn push_filter(qb: &mut QueryBuilder<Postgres>, f: &NodeFilter) -> Where {
    let mut w = Where::new();
    if let Some(states) = &f.provision_state {
        push_in(
            w.and(qb),
            "provision_state",
            states.iter().map(|s| s.as_str().to_owned()),
        );
    }
    if let Some(m) = f.maintenance {
        w.and(qb).push("maintenance = ").push_bind(m);
    }
    if let Some(a) = f.associated {
        w.and(qb).push(if a {
            "instance_uuid IS NOT NULL"
        } else {
            "instance_uuid IS NULL"
        });
    }
    if let Some(v) = &f.driver {
        w.and(qb).push("driver = ").push_bind(v.clone());
    }
    if let Some(v) = &f.resource_class {
        w.and(qb).push("resource_class = ").push_bind(v.clone());
    }
    if let Some(v) = &f.conductor_group {
        // Case-insensitive, as in Ironic.
        w.and(qb)
            .push("lower(conductor_group) = lower(")
            .push_bind(v.clone())
            .push(")");
    }
    if let Some(v) = &f.owner {
        w.and(qb).push("owner = ").push_bind(v.clone());
    }
    if let Some(v) = &f.lessee {
        w.and(qb).push("lessee = ").push_bind(v.clone());
    }
    if let Some(v) = &f.project {
        w.and(qb)
            .push("(owner = ")
            .push_bind(v.clone())
            .push(" OR lessee = ")
            .push_bind(v.clone())
            .push(")");
    }
    if let Some(v) = f.fault {
        w.and(qb).push("fault = ").push_bind(v.as_str());
    }
    if let Some(v) = f.chassis_uuid {
        w.and(qb).push("chassis_uuid = ").push_bind(v.to_string());
    }
    if let Some(v) = &f.instance_uuid {
        w.and(qb).push("instance_uuid = ").push_bind(v.clone());
    }
    if let Some(v) = f.retired {
        w.and(qb).push("retired = ").push_bind(v);
    }
    if let Some(v) = &f.description_contains {
        w.and(qb)
            .push("strpos(description, ")
            .push_bind(v.clone())
            .push(") > 0");
    }
    if let Some(shards) = &f.shard {
        push_in(w.and(qb), "shard", shards.iter().cloned());
    }
    if let Some(s) = f.sharded {
        w.and(qb).push(if s {
            "shard IS NOT NULL"
        } else {
            "shard IS NULL"
        });
    }
    if let Some(r) = f.reserved {
        w.and(qb).push(if r {
            "reservation IS NOT NULL"
        } else {
            "reservation IS NULL"
        });
    }
    if let Some(v) = &f.reserved_by {
        w.and(qb).push("reservation = ").push_bind(v.clone());
    }
    if let Some(v) = f.parent_node {
        w.and(qb).push("parent_node = ").push_bind(v.to_string());
    }
    if f.exclude_children {
        w.and(qb).push("parent_node IS NULL");
    }
    if let Some(t) = &f.provision_updated_before {
        w.and(qb)
            .push("provision_updated_at < ")
            .push_bind(nanos(t));
    }
    w
}

/// The sort value of the marker row.
enum MarkerValue {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

impl MarkerValue {
    fn is_null(&self) -> bool {
        matches!(
            self,
            MarkerValue::Int(None) | MarkerValue::Text(None) | MarkerValue::Bool(None)
        )
    }

    fn bind(&self, qb: &mut QueryBuilder<Postgres>) {
        match self {
            MarkerValue::Int(v) => qb.push_bind(*v),
            MarkerValue::Text(v) => qb.push_bind(v.clone()),
            MarkerValue::Bool(v) => qb.push_bind(*v),
        };
    }
}

/// Rows strictly after the marker in `ORDER BY col dir, id dir`, with NULLs first
/// when ascending and last when descending (SQLite's order, which the queries ask
/// PostgreSQL for explicitly).
fn push_after_marker(
    qb: &mut QueryBuilder<Postgres>,
    col: &str,
    value: &MarkerValue,
    id: i64,
    dir: SortDir,
) {
    let cmp = match dir {
        SortDir::Asc => ">",
        SortDir::Desc => "<",
    };
    qb.push("(");
    if col == "id" {
        qb.push(format_args!("id {cmp} ")).push_bind(id);
    } else if value.is_null() {
        match dir {
            SortDir::Asc => qb.push(format_args!("{col} IS NOT NULL OR id > ")),
            SortDir::Desc => qb.push(format_args!("{col} IS NULL AND id < ")),
        }
        .push_bind(id);
    } else {
        qb.push(format_args!("{col} {cmp} "));
        value.bind(qb);
        if dir == SortDir::Desc {
            qb.push(format_args!(" OR {col} IS NULL"));
        }
        qb.push(format_args!(" OR ({col} = "));
        value.bind(qb);
        qb.push(format_args!(" AND id {cmp} "))
            .push_bind(id)
            .push(")");
    }
    qb.push(")");
}

pub(super) fn dir_sql(dir: SortDir) -> &'static str {
    match dir {
        SortDir::Asc => "ASC",
        SortDir::Desc => "DESC",
    }
}

/// `dir` with SQLite's placement of NULLs.
fn dir_nulls_sql(dir: SortDir) -> &'static str {
    match dir {
        SortDir::Asc => "ASC NULLS FIRST",
        SortDir::Desc => "DESC NULLS LAST",
    }
}

impl PostgresStore {
    pub(super) async fn node_create(&self, node: &Node) -> StoreResult<()> {
        let data = node_data(node)?;
        let q = sqlx::query(
            "INSERT INTO nodes (uuid, reservation, name, instance_uuid, driver, provision_state, \
             power_state, maintenance, fault, conductor_group, owner, lessee, resource_class, \
             chassis_uuid, retired, description, shard, parent_node, created_at, updated_at, \
             provision_updated_at, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22)",
        )
        .bind(node.uuid.to_string())
        .bind(node.reservation.clone());
        bind_columns(q, node, data)
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| write_error(node, "creating", e))?;
        Ok(())
    }

    pub(super) async fn node_get(&self, ident: &Ident) -> StoreResult<Node> {
        let row: Option<(String, Option<String>)> = match ident {
            Ident::Uuid(u) => {
                sqlx::query_as("SELECT data, reservation FROM nodes WHERE uuid = $1")
                    .bind(u.hyphenated().to_string())
                    .fetch_optional(&mut self.c().await?)
                    .await
            }
            Ident::Name(n) => {
                sqlx::query_as("SELECT data, reservation FROM nodes WHERE name = $1")
                    .bind(n.clone())
                    .fetch_optional(&mut self.c().await?)
                    .await
            }
        }
        .map_err(|e| backend(format_args!("reading node {ident}"), e))?;
        to_node(row.ok_or_else(|| StoreError::not_found("Node", ident))?)
    }

    pub(super) async fn node_update(&self, node: &Node) -> StoreResult<()> {
        let data = node_data(node)?;
        let q = sqlx::query(concat!(update_node_set!(), " WHERE uuid = $21"));
        let done = bind_columns(q, node, data)
            .bind(node.uuid.to_string())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| write_error(node, "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Node", node.uuid));
        }
        Ok(())
    }

    /// Save the node and release `host`'s lock in one statement; when `host`
    /// does not hold it, as `update_node` then `release_node` (their errors).
    pub(super) async fn node_update_and_release(&self, node: &Node, host: &str) -> StoreResult<()> {
        let data = node_data(node)?;
        let q = sqlx::query(concat!(
            update_node_set!(),
            ", reservation = NULL WHERE uuid = $21 AND reservation = $22"
        ));
        let done = bind_columns(q, node, data)
            .bind(node.uuid.to_string())
            .bind(host.to_owned())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| write_error(node, "updating", e))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        self.node_update(node).await?;
        self.node_release(node.uuid, host).await
    }

    pub(super) async fn node_delete(&self, id: NodeId) -> StoreResult<()> {
        // Ports, port groups, history and the per-node caches go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM nodes WHERE uuid = $1")
            .bind(id.to_string())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("deleting node {id}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Node", id));
        }
        Ok(())
    }

    pub(super) async fn node_list(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        let page = &query.page;
        let (col, col_type) = sort_column(page.sort_key);
        let mut qb = QueryBuilder::<Postgres>::new("SELECT data, reservation FROM nodes");
        let mut w = push_filter(&mut qb, &query.filter);
        if let Some(marker) = page.marker {
            let mut mq =
                QueryBuilder::<Postgres>::new(format!("SELECT {col}, id FROM nodes WHERE uuid = "));
            mq.push_bind(marker.hyphenated().to_string());
            let row = mq
                .build()
                .fetch_optional(&mut self.c().await?)
                .await
                .map_err(|e| backend(format_args!("reading marker node {marker}"), e))?
                .ok_or_else(|| StoreError::not_found("Node", marker))?;
            let read = |e| backend(format_args!("reading marker node {marker}"), e);
            let value = match col_type {
                ColType::Int => MarkerValue::Int(row.try_get(0).map_err(read)?),
                ColType::Text => MarkerValue::Text(row.try_get(0).map_err(read)?),
                ColType::Bool => MarkerValue::Bool(row.try_get(0).map_err(read)?),
            };
            let id: i64 = row.try_get(1).map_err(read)?;
            push_after_marker(w.and(&mut qb), col, &value, id, page.sort_dir);
        }
        let dir = dir_sql(page.sort_dir);
        if col == "id" {
            qb.push(format_args!(" ORDER BY id {dir}"));
        } else {
            let with_nulls = dir_nulls_sql(page.sort_dir);
            qb.push(format_args!(" ORDER BY {col} {with_nulls}, id {dir}"));
        }
        if let Some(limit) = page.limit {
            qb.push(" LIMIT ")
                .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let rows: Vec<(String, Option<String>)> = qb
            .build_query_as()
            .fetch_all(&mut self.c().await?)
            .await
            .map_err(|e| backend("listing nodes", e))?;
        rows.into_iter().map(to_node).collect()
    }

    pub(super) async fn node_count(&self, filter: &NodeFilter) -> StoreResult<usize> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM nodes");
        push_filter(&mut qb, filter);
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut self.c().await?)
            .await
            .map_err(|e| backend("counting nodes", e))?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    pub(super) async fn node_reserve(&self, id: NodeId, host: &str) -> StoreResult<Node> {
        // The compare-and-set is this one statement; the SELECT after a miss only
        // explains why (missing node or who holds it). If the holder released in
        // between, try again.
        for _ in 0..10 {
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "UPDATE nodes SET reservation = $1 WHERE uuid = $2 AND reservation IS NULL \
                 RETURNING data, reservation",
            )
            .bind(host.to_owned())
            .bind(id.to_string())
            .fetch_optional(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("reserving node {id} for {host}"), e))?;
            if let Some(row) = row {
                return to_node(row);
            }
            match self.reservation_of(id).await? {
                Some(holder) => return Err(StoreError::Locked { node: id, holder }),
                None => continue,
            }
        }
        Err(StoreError::Backend(format!(
            "reserving node {id} for {host}: its reservation kept changing; giving up"
        )))
    }

    /// The node's current reservation; `NotFound` if there is no such node.
    async fn reservation_of(&self, id: NodeId) -> StoreResult<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT reservation FROM nodes WHERE uuid = $1")
                .bind(id.to_string())
                .fetch_optional(&mut self.c().await?)
                .await
                .map_err(|e| backend(format_args!("reading the reservation of node {id}"), e))?;
        Ok(row.ok_or_else(|| StoreError::not_found("Node", id))?.0)
    }

    pub(super) async fn node_release(&self, id: NodeId, host: &str) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE nodes SET reservation = NULL WHERE uuid = $1 AND reservation = $2")
                .bind(id.to_string())
                .bind(host.to_owned())
                .execute(&mut self.c().await?)
                .await
                .map_err(|e| backend(format_args!("releasing node {id} for {host}"), e))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.reservation_of(id).await? {
            // Not locked at all: nothing to release.
            None => Ok(()),
            Some(holder) => Err(StoreError::Locked { node: id, holder }),
        }
    }

    pub(super) async fn node_clear_reservations(&self, host: &str) -> StoreResult<usize> {
        let done = sqlx::query("UPDATE nodes SET reservation = NULL WHERE reservation = $1")
            .bind(host.to_owned())
            .execute(&mut self.c().await?)
            .await
            .map_err(|e| backend(format_args!("clearing the reservations of {host}"), e))?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }
}
