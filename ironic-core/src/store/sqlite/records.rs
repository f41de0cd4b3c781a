//! Chassis, allocations, deploy templates and conductors.

use sqlx::AssertSqlSafe;

use super::*;

/// One of the tables holding `uuid`, maybe `name`, and `data`.
#[derive(Clone, Copy)]
struct Table {
    table: &'static str,
    /// For messages: "Chassis", "Allocation", ...
    kind: &'static str,
    /// For duplicate messages: "A chassis", "An allocation", ...
    article: &'static str,
}

const CHASSIS: Table = Table {
    table: "chassis",
    kind: "Chassis",
    article: "A chassis",
};
const ALLOCATIONS: Table = Table {
    table: "allocations",
    kind: "Allocation",
    article: "An allocation",
};
const RULES: Table = Table {
    table: "inspection_rules",
    kind: "Rule",
    article: "A rule",
};
const TEMPLATES: Table = Table {
    table: "deploy_templates",
    kind: "Deploy template",
    article: "A deploy template",
};

impl Table {
    fn write_error(
        self,
        uuid: impl fmt::Display,
        name: Option<&str>,
        doing: &str,
        e: sqlx::Error,
    ) -> StoreError {
        let column = unique_violation(&e)
            .and_then(|c| c.strip_prefix(self.table))
            .and_then(|c| c.strip_prefix('.'));
        match column {
            Some("name") => StoreError::Duplicate(format!(
                "{} with name {} already exists.",
                self.article,
                name.unwrap_or_default()
            )),
            Some("uuid") => {
                StoreError::Duplicate(format!("{} with UUID {uuid} already exists.", self.article))
            }
            _ => backend(
                format_args!("{doing} {} {uuid}", self.kind.to_lowercase()),
                e,
            ),
        }
    }
}

impl SqliteStore {
    async fn record_get<T: DeserializeOwned>(&self, t: Table, ident: &Ident) -> StoreResult<T> {
        let (col, value) = match ident {
            Ident::Uuid(u) => ("uuid", u.hyphenated().to_string()),
            Ident::Name(n) => ("name", n.clone()),
        };
        let data: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM {} WHERE {col} = ?",
            t.table
        )))
        .bind(value)
        .fetch_optional(&mut *self.r().await?)
        .await
        .map_err(|e| backend(format_args!("reading {} {ident}", t.kind.to_lowercase()), e))?;
        decode(
            t.table,
            &data.ok_or_else(|| StoreError::not_found(t.kind, ident))?,
        )
    }

    async fn record_delete(&self, t: Table, uuid: impl fmt::Display) -> StoreResult<()> {
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE uuid = ?",
            t.table
        )))
        .bind(uuid.to_string())
        .execute(&mut *self.w().await?)
        .await
        .map_err(|e| backend(format_args!("deleting {} {uuid}", t.kind.to_lowercase()), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(t.kind, uuid));
        }
        Ok(())
    }

    async fn record_list<T: DeserializeOwned>(&self, t: Table) -> StoreResult<Vec<T>> {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT data FROM {} ORDER BY id",
            t.table
        )))
        .fetch_all(&mut *self.r().await?)
        .await
        .map_err(|e| backend(format_args!("listing {}", t.table), e))?;
        rows.iter().map(|d| decode(t.table, d)).collect()
    }

    // ---- chassis ----

    pub(super) async fn chassis_create(&self, c: &Chassis) -> StoreResult<()> {
        sqlx::query("INSERT INTO chassis (uuid, data) VALUES (?, ?)")
            .bind(c.uuid.to_string())
            .bind(encode("chassis", c.uuid, c)?)
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| CHASSIS.write_error(c.uuid, None, "creating", e))?;
        Ok(())
    }

    pub(super) async fn chassis_get(&self, id: ChassisId) -> StoreResult<Chassis> {
        self.record_get(CHASSIS, &Ident::Uuid(id.0)).await
    }

    pub(super) async fn chassis_update(&self, c: &Chassis) -> StoreResult<()> {
        let done = sqlx::query("UPDATE chassis SET data = ? WHERE uuid = ?")
            .bind(encode("chassis", c.uuid, c)?)
            .bind(c.uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| CHASSIS.write_error(c.uuid, None, "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(CHASSIS.kind, c.uuid));
        }
        Ok(())
    }

    pub(super) async fn chassis_delete(&self, id: ChassisId) -> StoreResult<()> {
        self.record_delete(CHASSIS, id).await
    }

    pub(super) async fn chassis_list(&self) -> StoreResult<Vec<Chassis>> {
        self.record_list(CHASSIS).await
    }

    // ---- inspection rules ----

    pub(super) async fn rule_create(&self, r: &InspectionRule) -> StoreResult<()> {
        sqlx::query("INSERT INTO inspection_rules (uuid, data) VALUES (?, ?)")
            .bind(r.uuid.to_string())
            .bind(encode("inspection rule", r.uuid, r)?)
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| RULES.write_error(r.uuid, None, "creating", e))?;
        Ok(())
    }

    pub(super) async fn rule_get(&self, id: InspectionRuleId) -> StoreResult<InspectionRule> {
        self.record_get(RULES, &Ident::Uuid(id.0)).await
    }

    pub(super) async fn rule_update(&self, r: &InspectionRule) -> StoreResult<()> {
        let done = sqlx::query("UPDATE inspection_rules SET data = ? WHERE uuid = ?")
            .bind(encode("inspection rule", r.uuid, r)?)
            .bind(r.uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| RULES.write_error(r.uuid, None, "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(RULES.kind, r.uuid));
        }
        Ok(())
    }

    pub(super) async fn rule_delete(&self, id: InspectionRuleId) -> StoreResult<()> {
        self.record_delete(RULES, id).await
    }

    pub(super) async fn rule_list(&self) -> StoreResult<Vec<InspectionRule>> {
        self.record_list(RULES).await
    }

    // ---- allocations ----

    pub(super) async fn allocation_create(&self, a: &Allocation) -> StoreResult<()> {
        sqlx::query("INSERT INTO allocations (name, node_uuid, data, uuid) VALUES (?, ?, ?, ?)")
            .bind(a.name.clone())
            .bind(a.node_uuid.map(|n| n.to_string()))
            .bind(encode("allocation", a.uuid, a)?)
            .bind(a.uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| ALLOCATIONS.write_error(a.uuid, a.name.as_deref(), "creating", e))?;
        Ok(())
    }

    pub(super) async fn allocation_get(&self, ident: &Ident) -> StoreResult<Allocation> {
        self.record_get(ALLOCATIONS, ident).await
    }

    pub(super) async fn allocation_update(&self, a: &Allocation) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE allocations SET name = ?, node_uuid = ?, data = ? WHERE uuid = ?")
                .bind(a.name.clone())
                .bind(a.node_uuid.map(|n| n.to_string()))
                .bind(encode("allocation", a.uuid, a)?)
                .bind(a.uuid.to_string())
                .execute(&mut *self.w().await?)
                .await
                .map_err(|e| ALLOCATIONS.write_error(a.uuid, a.name.as_deref(), "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(ALLOCATIONS.kind, a.uuid));
        }
        Ok(())
    }

    pub(super) async fn allocation_delete(&self, id: AllocationId) -> StoreResult<()> {
        self.record_delete(ALLOCATIONS, id).await
    }

    pub(super) async fn allocation_list(&self) -> StoreResult<Vec<Allocation>> {
        self.record_list(ALLOCATIONS).await
    }

    // ---- deploy templates ----

    pub(super) async fn template_create(&self, t: &DeployTemplate) -> StoreResult<()> {
        sqlx::query("INSERT INTO deploy_templates (name, data, uuid) VALUES (?, ?, ?)")
            .bind(t.name.clone())
            .bind(encode("deploy template", t.uuid, t)?)
            .bind(t.uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| TEMPLATES.write_error(t.uuid, Some(&t.name), "creating", e))?;
        Ok(())
    }

    pub(super) async fn template_get(&self, ident: &Ident) -> StoreResult<DeployTemplate> {
        self.record_get(TEMPLATES, ident).await
    }

    pub(super) async fn template_update(&self, t: &DeployTemplate) -> StoreResult<()> {
        let done = sqlx::query("UPDATE deploy_templates SET name = ?, data = ? WHERE uuid = ?")
            .bind(t.name.clone())
            .bind(encode("deploy template", t.uuid, t)?)
            .bind(t.uuid.to_string())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| TEMPLATES.write_error(t.uuid, Some(&t.name), "updating", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(TEMPLATES.kind, t.uuid));
        }
        Ok(())
    }

    pub(super) async fn template_delete(&self, id: DeployTemplateId) -> StoreResult<()> {
        self.record_delete(TEMPLATES, id).await
    }

    pub(super) async fn template_list(&self) -> StoreResult<Vec<DeployTemplate>> {
        self.record_list(TEMPLATES).await
    }

    // ---- conductors ----

    pub(super) async fn conductor_upsert(&self, c: &ConductorRecord) -> StoreResult<()> {
        let drivers = encode("conductor", &c.hostname, &c.drivers)?;
        // A re-registration keeps the original `created_at` (and row order).
        sqlx::query(
            "INSERT INTO conductors (hostname, conductor_group, drivers, alive, created_at, updated_at, url) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (hostname) DO UPDATE SET conductor_group = excluded.conductor_group, \
             drivers = excluded.drivers, alive = excluded.alive, updated_at = excluded.updated_at, \
             url = excluded.url",
        )
        .bind(c.hostname.clone())
        .bind(c.conductor_group.clone())
        .bind(drivers)
        .bind(c.alive)
        .bind(ts_text(&c.created_at))
        .bind(ts_text(&now()))
        .bind(c.url.clone())
        .execute(&mut *self.w().await?)
        .await
        .map_err(|e| backend(format_args!("registering conductor {}", c.hostname), e))?;
        Ok(())
    }

    pub(super) async fn conductor_touch(&self, hostname: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE conductors SET updated_at = ? WHERE hostname = ?")
            .bind(ts_text(&now()))
            .bind(hostname.to_owned())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| backend(format_args!("touching conductor {hostname}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Conductor", hostname));
        }
        Ok(())
    }

    pub(super) async fn conductor_delete(&self, hostname: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM conductors WHERE hostname = ?")
            .bind(hostname.to_owned())
            .execute(&mut *self.w().await?)
            .await
            .map_err(|e| backend(format_args!("deleting conductor {hostname}"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Conductor", hostname));
        }
        Ok(())
    }

    pub(super) async fn conductor_list(&self) -> StoreResult<Vec<ConductorRecord>> {
        type Row = (
            String,
            String,
            String,
            bool,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hostname, conductor_group, drivers, alive, created_at, updated_at, url \
             FROM conductors ORDER BY id",
        )
        .fetch_all(&mut *self.r().await?)
        .await
        .map_err(|e| backend("listing conductors", e))?;
        rows.into_iter()
            .map(|(hostname, group, drivers, alive, created, updated, url)| {
                Ok(ConductorRecord {
                    drivers: decode("conductor drivers", &drivers)?,
                    hostname,
                    conductor_group: group,
                    alive,
                    created_at: parse_ts_text(&created)?,
                    updated_at: updated.as_deref().map(parse_ts_text).transpose()?,
                    url,
                })
            })
            .collect()
    }
}
