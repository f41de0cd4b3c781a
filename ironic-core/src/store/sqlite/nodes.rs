//! Nodes: CRUD, listing, and the reservation (node lock).

use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{QueryBuilder, Row};

use super::*;
use crate::store::node_data;

/// The columns a node's row has beside `uuid`, `reservation` and `data`, in the
/// order [`Columns::of`] gives their values.
pub(super) const COLUMNS: [&str; 19] = [
    "name",
    "instance_uuid",
    "driver",
    "provision_state",
    "power_state",
    "maintenance",
    "fault",
    "conductor_group",
    "owner",
    "lessee",
    "resource_class",
    "chassis_uuid",
    "retired",
    "description",
    "shard",
    "parent_node",
    "created_at",
    "updated_at",
    "provision_updated_at",
];

/// One column's value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Col {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

/// The values of a node's [`COLUMNS`].
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Columns([Col; 19]);

impl Columns {
    fn of(n: &Node) -> Self {
        use Col::*;
        let text = |v: Option<&str>| Text(v.map(str::to_owned));
        Columns([
            Text(n.name.clone()),
            Text(n.instance_uuid.clone()),
            Text(Some(n.driver.clone())),
            text(Some(n.provision_state.as_str())),
            text(n.power_state.map(|p| p.as_str())),
            Bool(n.maintenance),
            text(n.fault.map(|f| f.as_str())),
            Text(Some(n.conductor_group.clone())),
            Text(n.owner.clone()),
            Text(n.lessee.clone()),
            Text(n.resource_class.clone()),
            Text(n.chassis_uuid.map(|c| c.to_string())),
            Bool(n.retired),
            Text(n.description.clone()),
            Text(n.shard.clone()),
            Text(n.parent_node.map(|p| p.to_string())),
            Int(Some(nanos(&n.created_at))),
            Int(n.updated_at.as_ref().map(nanos)),
            Int(n.provision_updated_at.as_ref().map(nanos)),
        ])
    }
}

fn bind_col<'q>(
    q: Query<'q, Sqlite, SqliteArguments>,
    c: Col,
) -> Query<'q, Sqlite, SqliteArguments> {
    match c {
        Col::Text(v) => q.bind(v),
        Col::Int(v) => q.bind(v),
        Col::Bool(v) => q.bind(v),
    }
}

fn push_col(qb: &mut QueryBuilder<Sqlite>, c: Col) {
    match c {
        Col::Text(v) => qb.push_bind(v),
        Col::Int(v) => qb.push_bind(v),
        Col::Bool(v) => qb.push_bind(v),
    };
}

/// Bind the columns shared by INSERT and UPDATE, in the order the statements name them.
fn bind_columns<'q>(
    q: Query<'q, Sqlite, SqliteArguments>,
    n: &Node,
    data: String,
) -> Query<'q, Sqlite, SqliteArguments> {
    let mut q = q;
    for c in Columns::of(n).0 {
        q = bind_col(q, c);
    }
    q.bind(data)
}

/// Map a failed node write to Ironic's messages for the unique values.
fn write_error(node: &Node, doing: &str, e: sqlx::Error) -> StoreError {
    let name = node.name.as_deref().unwrap_or_default();
    let instance = node.instance_uuid.as_deref().unwrap_or_default();
    match unique_violation(&e) {
        Some("nodes.uuid") => {
            StoreError::Duplicate(format!("A node with UUID {} already exists.", node.uuid))
        }
        Some("nodes.name") => {
            StoreError::Duplicate(format!("A node with name {name} already exists."))
        }
        Some("nodes.instance_uuid") => StoreError::Duplicate(format!(
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

/// The column a sort key orders by, and whether it holds integers.
fn sort_column(key: NodeSortKey) -> (&'static str, bool) {
    match key {
        NodeSortKey::Id => ("id", true),
        NodeSortKey::Uuid => ("uuid", false),
        NodeSortKey::Name => ("name", false),
        NodeSortKey::CreatedAt => ("created_at", true),
        NodeSortKey::UpdatedAt => ("updated_at", true),
        NodeSortKey::ProvisionState => ("provision_state", false),
        NodeSortKey::ProvisionUpdatedAt => ("provision_updated_at", true),
        NodeSortKey::PowerState => ("power_state", false),
        NodeSortKey::Driver => ("driver", false),
        NodeSortKey::Maintenance => ("maintenance", true),
        NodeSortKey::ResourceClass => ("resource_class", false),
        NodeSortKey::ConductorGroup => ("conductor_group", false),
        NodeSortKey::Owner => ("owner", false),
        NodeSortKey::InstanceUuid => ("instance_uuid", false),
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
        qb: &'a mut QueryBuilder<Sqlite>,
    ) -> &'a mut QueryBuilder<Sqlite> {
        qb.push(if self.started { " AND " } else { " WHERE " });
        self.started = true;
        qb
    }
}

/// `col IN (?, ...)`, or a false condition for an empty list.
pub(super) fn push_in(
    qb: &mut QueryBuilder<Sqlite>,
    col: &str,
    values: impl IntoIterator<Item = String>,
) {
    let values: Vec<String> = values.into_iter().collect();
    if values.is_empty() {
        qb.push("0");
        return;
    }
    qb.push(col).push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    qb.push(")");
}

fn push_filter(qb: &mut QueryBuilder<Sqlite>, f: &NodeFilter) -> Where {
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
        // The column's NOCASE collation makes this case-insensitive, as in Ironic.
        w.and(qb).push("conductor_group = ").push_bind(v.clone());
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
            .push("instr(description, ")
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
}

impl MarkerValue {
    fn is_null(&self) -> bool {
        matches!(self, MarkerValue::Int(None) | MarkerValue::Text(None))
    }

    fn bind(&self, qb: &mut QueryBuilder<Sqlite>) {
        match self {
            MarkerValue::Int(v) => qb.push_bind(*v),
            MarkerValue::Text(v) => qb.push_bind(v.clone()),
        };
    }
}

/// Rows strictly after the marker in `ORDER BY col dir, id dir` (SQLite puts NULLs
/// first when ascending, last when descending).
fn push_after_marker(
    qb: &mut QueryBuilder<Sqlite>,
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

impl SqliteStore {
    pub(super) async fn node_create(&self, node: &Node) -> StoreResult<()> {
        let data = node_data(node)?;
        let q = sqlx::query(
            "INSERT INTO nodes (uuid, reservation, name, instance_uuid, driver, provision_state, \
             power_state, maintenance, fault, conductor_group, owner, lessee, resource_class, \
             chassis_uuid, retired, description, shard, parent_node, created_at, updated_at, \
             provision_updated_at, data) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(node.uuid.to_string())
        .bind(node.reservation.clone());
        bind_columns(q, node, data)
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| write_error(node, "creating", e))?;
        Ok(())
    }

    pub(super) async fn node_get(&self, ident: &Ident) -> StoreResult<Node> {
        let row: Option<(String, Option<String>)> = match ident {
            Ident::Uuid(u) => {
                sqlx::query_as("SELECT data, reservation FROM nodes WHERE uuid = ?")
                    .bind(u.hyphenated().to_string())
                    .fetch_optional(&mut *self.r().await?)
                    .await
            }
            Ident::Name(n) => {
                sqlx::query_as("SELECT data, reservation FROM nodes WHERE name = ?")
                    .bind(n.clone())
                    .fetch_optional(&mut *self.r().await?)
                    .await
            }
        }
        .map_err(|e| backend(format_args!("reading node {ident}"), e))?;
        to_node(row.ok_or_else(|| StoreError::not_found("Node", ident))?)
    }

    pub(super) async fn node_update(&self, node: &Node) -> StoreResult<()> {
        match self.node_update_with(node, None).await? {
            true => Ok(()),
            false => Err(StoreError::not_found("Node", node.uuid)),
        }
    }

    /// Save the node and release `host`'s lock in one statement; when `host`
    /// does not hold it, as `update_node` then `release_node` (their errors).
    pub(super) async fn node_update_and_release(&self, node: &Node, host: &str) -> StoreResult<()> {
        if self.node_update_with(node, Some(host)).await? {
            self.locked_rows().remove(&node.uuid);
            return Ok(());
        }
        self.node_update(node).await?;
        self.node_release(node.uuid, host).await
    }

    /// The update; with `release`, only while that host holds the lock, which
    /// it then releases. Whether a row was updated.
    async fn node_update_with(&self, node: &Node, release: Option<&str>) -> StoreResult<bool> {
        let data = node_data(node)?;
        let new = Columns::of(node);
        let known = self.locked_rows().get(&node.uuid).cloned();
        if let Some(old) = known {
            // Only what changed: every indexed column in the SET list costs its
            // index a delete and an insert (a page in the WAL each), even when the
            // value is the same. The columns believed unchanged are compared, so
            // a row another process changed is not half-written: it falls
            // through to the full update.
            let mut qb = QueryBuilder::<Sqlite>::new("UPDATE nodes SET data = ");
            qb.push_bind(data.clone());
            if release.is_some() {
                qb.push(", reservation = NULL");
            }
            let mut same = Vec::new();
            for ((col, o), n) in COLUMNS.iter().zip(old.0).zip(new.0.iter().cloned()) {
                if o == n {
                    same.push((col, o));
                } else {
                    qb.push(format_args!(", {col} = "));
                    push_col(&mut qb, n);
                }
            }
            qb.push(" WHERE uuid = ").push_bind(node.uuid.to_string());
            if let Some(host) = release {
                qb.push(" AND reservation = ").push_bind(host.to_owned());
            }
            for (col, o) in same {
                qb.push(format_args!(" AND {col} IS "));
                push_col(&mut qb, o);
            }
            let done = qb
                .build()
                .execute(&mut *self.w().await?)
                .await
                .map_err(|e| write_error(node, "updating", e))?;
            if done.rows_affected() == 1 {
                self.locked_rows().insert(node.uuid, new);
                return Ok(true);
            }
        }
        let sql = match release {
            None => {
                "UPDATE nodes SET name = ?, instance_uuid = ?, driver = ?, provision_state = ?, \
                 power_state = ?, maintenance = ?, fault = ?, conductor_group = ?, owner = ?, \
                 lessee = ?, resource_class = ?, chassis_uuid = ?, retired = ?, description = ?, \
                 shard = ?, parent_node = ?, created_at = ?, updated_at = ?, \
                 provision_updated_at = ?, data = ? \
                 WHERE uuid = ?"
            }
            Some(_) => {
                "UPDATE nodes SET name = ?, instance_uuid = ?, driver = ?, provision_state = ?, \
                 power_state = ?, maintenance = ?, fault = ?, conductor_group = ?, owner = ?, \
                 lessee = ?, resource_class = ?, chassis_uuid = ?, retired = ?, description = ?, \
                 shard = ?, parent_node = ?, created_at = ?, updated_at = ?, \
                 provision_updated_at = ?, data = ?, reservation = NULL \
                 WHERE uuid = ? AND reservation = ?"
            }
        };
        let mut q = bind_columns(sqlx::query(sql), node, data).bind(node.uuid.to_string());
        if let Some(host) = release {
            q = q.bind(host.to_owned());
        }
        let done = q
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| write_error(node, "updating", e))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(known) = self.locked_rows().get_mut(&node.uuid) {
            *known = new;
        }
        Ok(true)
    }

    pub(super) async fn node_delete(&self, id: NodeId) -> StoreResult<()> {
        // Ports, port groups, history and the per-node caches go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM nodes WHERE uuid = ?")
            .bind(id.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| backend(format_args!("deleting node {id}"), e))?;
        self.locked_rows().remove(&id);
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Node", id));
        }
        Ok(())
    }

    pub(super) async fn node_list(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        let page = &query.page;
        let (col, int) = sort_column(page.sort_key);
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT data, reservation FROM nodes");
        let mut w = push_filter(&mut qb, &query.filter);
        if let Some(marker) = page.marker {
            let mut mq =
                QueryBuilder::<Sqlite>::new(format!("SELECT {col}, id FROM nodes WHERE uuid = "));
            mq.push_bind(marker.hyphenated().to_string());
            let row = mq
                .build()
                .fetch_optional(&mut *self.r().await?)
                .await
                .map_err(|e| backend(format_args!("reading marker node {marker}"), e))?
                .ok_or_else(|| StoreError::not_found("Node", marker))?;
            let read = |e| backend(format_args!("reading marker node {marker}"), e);
            let value = if int {
                MarkerValue::Int(row.try_get(0).map_err(read)?)
            } else {
                MarkerValue::Text(row.try_get(0).map_err(read)?)
            };
            let id: i64 = row.try_get(1).map_err(read)?;
            push_after_marker(w.and(&mut qb), col, &value, id, page.sort_dir);
        }
        let dir = dir_sql(page.sort_dir);
        if col == "id" {
            qb.push(format_args!(" ORDER BY id {dir}"));
        } else {
            qb.push(format_args!(" ORDER BY {col} {dir}, id {dir}"));
        }
        if let Some(limit) = page.limit {
            qb.push(" LIMIT ")
                .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let rows: Vec<(String, Option<String>)> = qb
            .build_query_as()
            .fetch_all(&mut *self.r().await?)
            .await
            .map_err(|e| backend("listing nodes", e))?;
        rows.into_iter().map(to_node).collect()
    }

    pub(super) async fn node_count(&self, filter: &NodeFilter) -> StoreResult<usize> {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM nodes");
        push_filter(&mut qb, filter);
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut *self.r().await?)
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
                "UPDATE nodes SET reservation = ? WHERE uuid = ? AND reservation IS NULL \
                 RETURNING data, reservation",
            )
            .bind(host.to_owned())
            .bind(id.to_string())
            .fetch_optional(&mut *self.w().await?)
            .await
            .map_err(|e| backend(format_args!("reserving node {id} for {host}"), e))?;
            if let Some(row) = row {
                let node = to_node(row)?;
                self.locked_rows().insert(id, Columns::of(&node));
                return Ok(node);
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
            sqlx::query_as("SELECT reservation FROM nodes WHERE uuid = ?")
                .bind(id.to_string())
                .fetch_optional(&mut *self.r().await?)
                .await
                .map_err(|e| backend(format_args!("reading the reservation of node {id}"), e))?;
        Ok(row.ok_or_else(|| StoreError::not_found("Node", id))?.0)
    }

    pub(super) async fn node_release(&self, id: NodeId, host: &str) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE nodes SET reservation = NULL WHERE uuid = ? AND reservation = ?")
                .bind(id.to_string())
                .bind(host.to_owned())
                .execute(&mut *self.w().await?)
                .await
                .map_err(|e| backend(format_args!("releasing node {id} for {host}"), e))?;
        self.locked_rows().remove(&id);
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
        let done = sqlx::query("UPDATE nodes SET reservation = NULL WHERE reservation = ?")
            .bind(host.to_owned())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| backend(format_args!("clearing the reservations of {host}"), e))?;
        self.locked_rows().clear();
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }
}
