//! A throw-away PostgreSQL database for tests (features `testkit` + `postgres`).

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server and role tests use unless `IRONIC_TEST_POSTGRES_URL` names another
/// (`scripts/setup-test-deps.sh` starts a Debian cluster and creates them).
pub const DEFAULT_TEST_POSTGRES_URL: &str =
    "postgres://ironic_test:ironic_test@127.0.0.1:5432/ironic_test";

/// A database of its own for one test, created on a real PostgreSQL server and
/// dropped (with its connections) when this is dropped, so tests running at once
/// never share tables.
///
/// The server is `IRONIC_TEST_POSTGRES_URL` or [`DEFAULT_TEST_POSTGRES_URL`]; its
/// role needs `CREATEDB`. When nothing answers there, [`create`](Self::create)
/// panics with how to get one, rather than skipping.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Create a uniquely named database (`ironic_test_<pid>_<random>`).
    pub async fn create() -> TestDatabase {
        let admin_url = std::env::var("IRONIC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
        let mut admin = connect(&admin_url).await;
        let name = format!(
            "ironic_test_{}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create test database {name} on {}: {e} (the role needs CREATEDB; \
                     scripts/setup-test-deps.sh creates one)",
                    super::super::redact_url(&admin_url)
                )
            });
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// The database's URL (with the test role's password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside or outside a runtime: use a thread with its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = done.join();
    }
}

async fn connect(url: &str) -> PgConnection {
    let shown = super::super::redact_url(url);
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "PostgreSQL does not answer at {shown}: {e}. Run scripts/setup-test-deps.sh \
             (it installs Debian's postgresql, starts it and creates the ironic_test role), \
             or point IRONIC_TEST_POSTGRES_URL at a server whose role has CREATEDB."
        ),
        Err(_) => panic!(
            "PostgreSQL at {shown} did not answer within 10 s. Run scripts/setup-test-deps.sh, \
             or point IRONIC_TEST_POSTGRES_URL at a server."
        ),
    }
}

/// `url` with its database (the path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_is_replaced_in_urls() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/old?sslmode=disable", "new"),
            "postgres://u:p@h:5432/new?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "new"),
            "postgres://u@h/new"
        );
    }
}
