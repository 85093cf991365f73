//! Migrations: the schema's version in `DMS_SCHVER`, and the steps of `schema.rs`
//! (tables created whole or completed column by column, indexes, triggers) applied in
//! order under the backend's migration lock.

use chrono::{NaiveDateTime, Utc};
use sqlx::{Database, Decode, Encode, Executor, Type};

use crate::driver::{Conn, Driver};
use crate::schema::{self, Step, Table};
use crate::{Context as _, MigrationReport, Result, StoreError};

/// The migration statements, for every backend.
pub(crate) trait Migrations: Driver
where
    for<'c> &'c mut Conn<Self>: Executor<'c, Database = Self::Db>,
    <Self::Db as Database>::Arguments: sqlx::IntoArguments<Self::Db>,
    for<'q> &'q str: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> i64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> NaiveDateTime: Encode<'q, Self::Db> + Type<Self::Db>,
    usize: sqlx::ColumnIndex<<Self::Db as Database>::Row>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    /// `Store::migrate`: one node migrates while the others starting with it wait, and
    /// then find nothing to do.
    async fn migrate_schema(&self) -> Result<MigrationReport> {
        let context = || format!("migrating the {} schema", self.schema_name());
        let mut conn = self.pool().acquire().await.context(context)?;
        Self::lock_for_migration(&mut conn, &self.schema_name())
            .await
            .context(context)?;
        let result = self.migrate_locked(&mut conn).await;
        let unlocked = Self::unlock_after_migration(&mut conn, &self.schema_name()).await;
        let report = result?;
        unlocked.context(context)?;
        Ok(report)
    }

    /// `Store::schema_version`.
    async fn applied_version(&self) -> Result<Option<i64>> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context(|| "reading the schema version".to_string())?;
        self.read_version(&mut conn).await
    }

    /// `Store::check_schema`: the schema is exactly the version this release knows.
    async fn check_version(&self) -> Result<()> {
        let needed = schema::latest_version();
        match self.applied_version().await? {
            Some(found) if found == needed => Ok(()),
            Some(found) if found > needed => Err(StoreError::TooNew {
                found,
                known: needed,
            }),
            found => Err(StoreError::NotInitialised {
                schema: self.schema_name(),
                found,
                needed,
            }),
        }
    }

    /// The latest version applied, `None` before the first migration.
    async fn read_version(&self, conn: &mut Conn<Self>) -> Result<Option<i64>> {
        let context = || format!("reading the schema version of {}", self.schema_name());
        let table = schema::MIGRATIONS_TABLE.name;
        if Self::table_columns(&mut *conn, table)
            .await
            .context(context)?
            .is_none()
        {
            return Ok(None);
        }
        sqlx::query_scalar(self.sql(&format!("SELECT CAST(MAX(VERSION) AS BIGINT) FROM {table}")))
            .fetch_one(&mut *conn)
            .await
            .context(context)
    }

    /// Applies the migrations past the recorded version, each recorded as it ends.
    async fn migrate_locked(&self, conn: &mut Conn<Self>) -> Result<MigrationReport> {
        let mut report = MigrationReport {
            from_version: self.read_version(&mut *conn).await?,
            to_version: schema::latest_version(),
            ..MigrationReport::default()
        };
        if let Some(found) = report.from_version.filter(|v| *v > report.to_version) {
            return Err(StoreError::TooNew {
                found,
                known: report.to_version,
            });
        }
        self.ensure_table(&mut *conn, &schema::MIGRATIONS_TABLE, &mut report)
            .await?;
        let applied = report.from_version.unwrap_or(0);
        for migration in schema::MIGRATIONS.iter().filter(|m| m.version > applied) {
            for step in schema::steps(migration.version) {
                self.apply(&mut *conn, step, &mut report).await?;
            }
            sqlx::query(self.sql(&format!(
                "INSERT INTO {} (VERSION, DESCRIPTION, APPLIED_AT) VALUES ($1, $2, $3)",
                schema::MIGRATIONS_TABLE.name
            )))
            .bind(migration.version)
            .bind(migration.description)
            .bind(Utc::now().naive_utc())
            .execute(&mut *conn)
            .await
            .context(|| format!("recording schema version {}", migration.version))?;
        }
        Ok(report)
    }

    /// One step of a migration.
    async fn apply(
        &self,
        conn: &mut Conn<Self>,
        step: Step,
        report: &mut MigrationReport,
    ) -> Result<()> {
        match step {
            Step::EnsureTable(table) => self.ensure_table(&mut *conn, table, report).await,
            Step::Notify => Self::install_notify(&mut *conn)
                .await
                .context(|| "installing the request trigger".to_string()),
            Step::ScheduleTriggers => {
                let context = || "installing the schedule change triggers".to_string();
                for sql in schema::schedule_change_triggers(Self::BACKEND, &self.schema_name()) {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut *conn)
                        .await
                        .context(context)?;
                }
                Ok(())
            }
            Step::CalendarTriggers => {
                let context = || "installing the calendar change triggers".to_string();
                for sql in schema::calendar_change_triggers(Self::BACKEND, &self.schema_name()) {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut *conn)
                        .await
                        .context(context)?;
                }
                Ok(())
            }
            Step::EnsureIndex(index) => {
                let context = || format!("creating index {}", index.name);
                if !Self::index_exists(&mut *conn, index.name)
                    .await
                    .context(context)?
                {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(index.create_sql(Self::BACKEND)))
                        .execute(&mut *conn)
                        .await
                        .context(context)?;
                    report.indexes_created.push(index.name.to_string());
                }
                Ok(())
            }
        }
    }

    /// Creates a missing table whole, or adds the columns an existing one lacks.
    async fn ensure_table(
        &self,
        conn: &mut Conn<Self>,
        table: &Table,
        report: &mut MigrationReport,
    ) -> Result<()> {
        let context = || format!("creating or upgrading table {}", table.name);
        Self::prepare_table(&mut *conn, table)
            .await
            .context(context)?;
        match Self::table_columns(&mut *conn, table.name)
            .await
            .context(context)?
        {
            None => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(table.create_sql(Self::BACKEND)))
                    .execute(&mut *conn)
                    .await
                    .context(context)?;
                report.tables_created.push(table.name.to_string());
            }
            Some(existing) => {
                for column in table.columns {
                    if existing.iter().any(|c| c.eq_ignore_ascii_case(column.name)) {
                        continue;
                    }
                    let ddl = schema::added_column_sql(table, column, Self::BACKEND);
                    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                        .execute(&mut *conn)
                        .await
                        .context(context)?;
                    report
                        .columns_added
                        .push(format!("{}.{}", table.name, column.name));
                }
            }
        }
        Ok(())
    }
}
