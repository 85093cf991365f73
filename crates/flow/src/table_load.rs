//! Rows a caller makes (an upload's file) loaded into a table on a named connection, in
//! one transaction, with `load`'s writer: `COPY` on PostgreSQL, multi-row `INSERT`s
//! elsewhere, an optional empty-first inside the same transaction (`DELETE` on MySQL,
//! whose `TRUNCATE` commits), upserts on key columns, and rows the database refuses set
//! aside while the rest load.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::connect::{Connections, DbConn, until_stopped};
use crate::model::LoadMode;
use crate::step::{RowError, StopSignal};
use crate::target::{Batch, Message, Rows, WritePlan, write_target};
use crate::value::Value;
use crate::{QueryError, db_error};

/// A load into one table.
pub struct TableLoad {
    /// The table, as SQL names it (qualified, already checked).
    pub table: String,
    pub columns: Arc<[String]>,
    pub mode: LoadMode,
    /// Empty the table first, in the load's transaction.
    pub empty_first: bool,
    /// The key columns of an upsert.
    pub key: Vec<String>,
    /// Columns an upsert leaves as they are in rows that exist.
    pub keep: Vec<String>,
}

/// What the caller sends: rows with their tags (given back with a rejected row), then
/// `End` once every row is sent. A channel closed without `End` rolls the load back.
pub enum LoadRows {
    Rows {
        rows: Vec<Vec<Value>>,
        tags: Vec<i64>,
    },
    /// Rows already in PostgreSQL's COPY text ([`copy_line`]); `ends[i]` is where row
    /// `i` ends. Only for PostgreSQL targets: the text goes to the server as it is.
    CopyText {
        text: Vec<u8>,
        ends: Vec<usize>,
        tags: Vec<i64>,
    },
    End,
}

/// Appends `row` as a line of PostgreSQL's COPY text, the form `CopyText` carries.
pub fn copy_line(row: &[Value], out: &mut Vec<u8>) {
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        crate::value::write_copy_field(out, value);
    }
    out.push(b'\n');
}

/// How a load ended.
#[derive(Debug, Default)]
pub struct TableLoaded {
    pub written: i64,
    pub rejected: Vec<RowError>,
}

impl Connections {
    /// Loads the rows `rows` brings into `load.table` on connection `connection`; a
    /// stop rolls the transaction back.
    pub async fn load_table(
        &self,
        connection: &str,
        load: &TableLoad,
        mut rows: mpsc::Receiver<LoadRows>,
        stop: &StopSignal,
    ) -> Result<TableLoaded, QueryError> {
        let mut session = self.session(connection).await.map_err(QueryError::Failed)?;
        let spec = session.spec.clone();
        let plan = WritePlan {
            table: load.table.clone(),
            mode: load.mode,
            key: load.key.clone(),
            keep: load.keep.clone(),
            truncate: load.empty_first,
            max_errors: u32::MAX,
            step: "upload".into(),
            log: None,
        };
        let (sender, receiver) = mpsc::channel(1);
        let columns = load.columns.clone();
        let forwarding = async move {
            while let Some(message) = rows.recv().await {
                let message = match message {
                    LoadRows::Rows { rows, tags } => Message::Batch(Batch {
                        columns: columns.clone(),
                        rows: Rows::Values(rows),
                        tags: Some(tags),
                    }),
                    LoadRows::CopyText { text, ends, tags } => Message::Batch(Batch {
                        columns: columns.clone(),
                        rows: Rows::Copy { text, ends },
                        tags: Some(tags),
                    }),
                    LoadRows::End => Message::End,
                };
                if sender.send(message).await.is_err() {
                    return;
                }
            }
        };
        let cancellers = [session.canceller.clone()];
        let work = async {
            let (written, ()) =
                tokio::join!(write_target(&mut session.conn, &plan, receiver), forwarding);
            written
        };
        match until_stopped(stop.token(), &cancellers, work).await {
            None => {
                session.discard();
                Err(QueryError::Stopped)
            }
            Some(Ok(written)) => Ok(TableLoaded {
                written: written.accepted,
                rejected: written.rows,
            }),
            Some(Err(failure)) => Err(QueryError::Failed(spec.error(failure.message))),
        }
    }

    /// Runs one statement (DDL, say) on connection `connection`, outside any load.
    pub async fn execute(&self, connection: &str, sql: &str) -> Result<(), String> {
        let mut session = self.session(connection).await?;
        let spec = session.spec.clone();
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        let done = match &mut session.conn {
            DbConn::Postgres(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(drop),
            DbConn::MySql(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(drop),
            DbConn::Sqlite(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(drop),
        };
        done.map_err(|e| spec.error(db_error(&e)))
    }

    /// Whether table `table` exists in `schema` (the connection's default schema when
    /// `None`), names compared without regard to case.
    pub async fn table_exists(
        &self,
        connection: &str,
        schema: Option<&str>,
        table: &str,
    ) -> Result<bool, String> {
        let mut session = self.session(connection).await?;
        let spec = session.spec.clone();
        let found = match &mut session.conn {
            DbConn::Postgres(c) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM information_schema.tables WHERE LOWER(table_name) = LOWER($1) \
                 AND table_schema = COALESCE(LOWER($2), current_schema())",
            )
            .bind(table)
            .bind(schema)
            .fetch_one(&mut **c)
            .await,
            DbConn::MySql(c) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM information_schema.tables WHERE LOWER(table_name) = LOWER(?) \
                 AND table_schema = COALESCE(?, DATABASE())",
            )
            .bind(table)
            .bind(schema)
            .fetch_one(&mut **c)
            .await,
            DbConn::Sqlite(c) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND LOWER(name) = LOWER(?)",
            )
            .bind(table)
            .fetch_one(&mut **c)
            .await,
        };
        found.map(|n| n > 0).map_err(|e| spec.error(db_error(&e)))
    }

    /// The backend of connection `connection`, without connecting.
    pub fn kind_of(&self, connection: &str) -> Result<crate::DbKind, String> {
        self.spec(connection).map(|s| s.kind)
    }
}
