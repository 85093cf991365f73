//! `load` steps: a source query's rows streamed in batches into a target table.
//!
//! The reader and the writer run side by side, a batch apart. The writer works in one
//! transaction: the target is unchanged unless the step succeeds. Each batch is written
//! under a savepoint; when a batch fails for its data, it is halved until the rows at
//! fault are found, and those are rejected (`DMS_JOBERR` `ROW`) while the rest load.
//!
//! PostgreSQL targets are written with `COPY … FROM STDIN`; when the source is
//! PostgreSQL too and its query has no binds, the rows travel in COPY text end to end
//! without being decoded. Other targets take multi-row `INSERT`s.

use std::sync::Arc;

use futures_util::TryStreamExt as _;
use sqlx::{
    AssertSqlSafe, Column as _, Database, Executor as _, Row as _, SqlSafeStr as _, TypeInfo as _,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect::{Connections, DbConn, DbKind, Session, until_stopped};
use crate::model::{LoadMode, Source, Target};
use crate::sql::{bind_value, positional, push_value};
use crate::step::{RowError, RowTotals, RunContext, StepEnd, StepError};
use crate::target::{Batch, LoadFailure, Message, Rows, WritePlan, write_target};
use crate::value::{
    Decoder, UnsupportedColumn, Value, decode_mysql, decode_postgres, decode_sqlite, decoders_for,
    mysql_decoder, postgres_decoder, sqlite_decoder,
};

/// Batches read ahead of the writer.
const READ_AHEAD: usize = 2;

pub(crate) struct LoadStep<'a> {
    pub step: &'a str,
    pub source: &'a Source,
    pub target: &'a Target,
    pub batch_size: usize,
    pub max_errors: u32,
}

struct Loaded {
    totals: RowTotals,
    rows: Vec<RowError>,
}

pub(crate) async fn run_load(
    load: &LoadStep<'_>,
    ctx: &RunContext,
    token: &CancellationToken,
) -> StepEnd {
    let sessions = async {
        let source = ctx.connections.session(&load.source.connection).await?;
        let target = ctx.connections.session(&load.target.connection).await?;
        Ok::<_, String>((source, target))
    };
    let (mut source, mut target) = match sessions.await {
        Ok(pair) => pair,
        Err(message) => return StepEnd::Failed(StepError::Connection(message), Vec::new()),
    };
    let cancellers = [source.canceller.clone(), target.canceller.clone()];
    let work = transfer(load, ctx, &mut source, &mut target);
    match until_stopped(token, &cancellers, work).await {
        None => {
            source.discard();
            target.discard();
            StepEnd::Stopped
        }
        Some(Ok(loaded)) => StepEnd::Done(loaded.totals, loaded.rows),
        Some(Err(failure)) => StepEnd::Failed(StepError::Database(failure.message), failure.rows),
    }
}

async fn transfer(
    load: &LoadStep<'_>,
    ctx: &RunContext,
    source: &mut Session,
    target: &mut Session,
) -> Result<Loaded, LoadFailure> {
    let query = load.source.query.trim().trim_end_matches(';');
    let bound = positional(query, source.spec.kind);
    let copy_through = source.spec.kind == DbKind::Postgres
        && target.spec.kind == DbKind::Postgres
        && bound.binds.is_empty();
    let values: Vec<Value> = bound.binds.iter().map(|b| bind_value(ctx, b)).collect();
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let source_spec = source.spec.clone();
    let reading = async {
        let batch_size = load.batch_size.max(1);
        let read = if copy_through && let DbConn::Postgres(c) = &mut source.conn {
            read_copy_out(c, query, batch_size, &sender).await
        } else {
            let read = Read::Typed;
            read_values(
                &mut source.conn,
                &bound.text,
                &values,
                batch_size,
                read,
                &sender,
            )
            .await
        };
        if read.is_ok() {
            let _ = sender.send(Message::End).await;
        }
        drop(sender);
        read
    };
    let plan = WritePlan {
        table: load.target.table.clone(),
        mode: load.target.mode,
        key: load.target.key.clone(),
        keep: Vec::new(),
        truncate: load.target.mode == LoadMode::Truncate,
        max_errors: load.max_errors,
        step: load.step.to_string(),
        log: Some(ctx.run_log()),
    };
    let writing = write_target(&mut target.conn, &plan, receiver);
    let (read, written) = tokio::join!(reading, writing);
    match (read, written) {
        (Ok(read_rows), Ok(written)) => Ok(Loaded {
            totals: RowTotals {
                source: read_rows,
                target: written.accepted,
                errors: i64::try_from(written.rows.len()).unwrap_or(i64::MAX),
            },
            rows: written.rows,
        }),
        // A failed read ends the writer too; the read's error is the cause.
        (Err(cause), written) => Err(LoadFailure {
            message: source_spec.error(format!("reading the source failed: {cause}")),
            rows: written.err().map(|w| w.rows).unwrap_or_default(),
        }),
        (Ok(_), Err(mut failure)) => {
            failure.message = target.spec.error(failure.message);
            Err(failure)
        }
    }
}

/// How SQLite values are read: by their column's declared type (a `DATE` column's text
/// as a date), or as stored, as Python's `sqlite3` returns them (for DWTOOL's hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    Typed,
    AsStored,
}

/// Streams a query's rows, decoded, in batches.
pub(crate) async fn read_values(
    conn: &mut DbConn,
    sql: &str,
    values: &[Value],
    batch_size: usize,
    read: Read,
    sender: &mpsc::Sender<Message>,
) -> Result<i64, String> {
    match conn {
        DbConn::Postgres(c) => {
            read_rows!(
                sqlx::Postgres,
                c,
                sql,
                values,
                batch_size,
                sender,
                |row: &sqlx::postgres::PgRow| decoders_for(columns_of(row), postgres_decoder),
                decode_postgres
            )
        }
        DbConn::MySql(c) => {
            read_rows!(
                sqlx::MySql,
                c,
                sql,
                values,
                batch_size,
                sender,
                |row: &sqlx::mysql::MySqlRow| decoders_for(columns_of(row), mysql_decoder),
                decode_mysql
            )
        }
        DbConn::Sqlite(c) => {
            read_rows!(
                sqlx::Sqlite,
                c,
                sql,
                values,
                batch_size,
                sender,
                |row: &sqlx::sqlite::SqliteRow| Ok::<_, UnsupportedColumn>(
                    row.columns()
                        .iter()
                        .map(|c| match read {
                            Read::Typed => sqlite_decoder(c.type_info().name()),
                            Read::AsStored => Decoder::Dynamic,
                        })
                        .collect()
                ),
                decode_sqlite
            )
        }
    }
}

/// The rows of a query on a named connection, decoded as a load reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Connections {
    /// Runs `sql` (without binds) on the connection `name` and returns its rows.
    pub async fn query(&self, name: &str, sql: &str) -> Result<QueryRows, String> {
        let mut session = self.session(name).await?;
        let (sender, mut receiver) = mpsc::channel(1);
        let reading = async {
            let read = read_values(&mut session.conn, sql, &[], 1000, Read::Typed, &sender).await;
            drop(sender);
            read
        };
        let collecting = async {
            let mut out = QueryRows {
                columns: Vec::new(),
                rows: Vec::new(),
            };
            while let Some(Message::Batch(batch)) = receiver.recv().await {
                out.columns = batch.columns.to_vec();
                for index in 0..batch.rows.len() {
                    out.rows.push(batch.rows.row(index).into_owned());
                }
            }
            out
        };
        let (read, rows) = tokio::join!(reading, collecting);
        read.map_err(|e| session.spec.error(e))?;
        Ok(rows)
    }
}

fn columns_of<R: sqlx::Row>(row: &R) -> impl Iterator<Item = (String, String)> + '_ {
    row.columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
}

/// Streams a query's rows as decoded values, `batch_size` rows per message.
macro_rules! read_rows {
    ($db:ty, $conn:expr, $sql:expr, $values:expr, $batch_size:expr, $sender:expr, $decoders:expr, $decode:expr) => {{
        async {
            let mut args = <$db as Database>::Arguments::default();
            for value in $values {
                push_value::<$db>(&mut args, value).map_err(|e| crate::db_error(&e))?;
            }
            let mut stream =
                sqlx::query_with(AssertSqlSafe($sql.to_string()), args).fetch(&mut **$conn);
            let mut columns: Option<(Arc<[String]>, Vec<Decoder>)> = None;
            let mut rows = Vec::with_capacity($batch_size);
            let mut read: i64 = 0;
            while let Some(row) = stream.try_next().await.map_err(|e| crate::db_error(&e))? {
                if columns.is_none() {
                    let names: Arc<[String]> =
                        row.columns().iter().map(|c| c.name().to_string()).collect();
                    let decoders = ($decoders)(&row).map_err(|e| e.to_string())?;
                    columns = Some((names, decoders));
                }
                let (names, decoders) = columns.as_ref().expect("set above");
                let mut values = Vec::with_capacity(decoders.len());
                for (index, decoder) in decoders.iter().enumerate() {
                    let value = ($decode)(&row, index, *decoder)
                        .map_err(|e| format!("row {}, column '{}': {e}", read + 1, names[index]))?;
                    values.push(value);
                }
                rows.push(values);
                read += 1;
                if rows.len() >= $batch_size {
                    let batch = Batch {
                        columns: names.clone(),
                        tags: None,
                        rows: Rows::Values(std::mem::replace(
                            &mut rows,
                            Vec::with_capacity($batch_size),
                        )),
                    };
                    if $sender.send(Message::Batch(batch)).await.is_err() {
                        return Err(String::from("the writer stopped"));
                    }
                }
            }
            if let (Some((names, _)), false) = (&columns, rows.is_empty()) {
                let batch = Batch {
                    columns: names.clone(),
                    tags: None,
                    rows: Rows::Values(rows),
                };
                if $sender.send(Message::Batch(batch)).await.is_err() {
                    return Err(String::from("the writer stopped"));
                }
            }
            Ok::<i64, String>(read)
        }
        .await
    }};
}
use read_rows;

/// Streams a PostgreSQL query's rows as COPY text, split into batches at line ends.
async fn read_copy_out(
    conn: &mut sqlx::PgConnection,
    query: &str,
    batch_size: usize,
    sender: &mpsc::Sender<Message>,
) -> Result<i64, String> {
    let prepared = (&mut *conn)
        .prepare(AssertSqlSafe(query.to_string()).into_sql_str())
        .await
        .map_err(|e| crate::db_error(&e))?;
    let columns: Arc<[String]> = sqlx::Statement::columns(&prepared)
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut stream = conn
        .copy_out_raw(&format!("COPY ({query}) TO STDOUT"))
        .await
        .map_err(|e| crate::db_error(&e))?;
    let mut text: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(batch_size);
    let mut read: i64 = 0;
    while let Some(chunk) = stream.try_next().await.map_err(|e| crate::db_error(&e))? {
        let scan_from = text.len();
        text.extend_from_slice(&chunk);
        // COPY text escapes newlines inside values: each line is one row.
        for (at, byte) in text.iter().enumerate().skip(scan_from) {
            if *byte == b'\n' {
                ends.push(at + 1);
                read += 1;
            }
        }
        while ends.len() >= batch_size {
            let cut = ends[batch_size - 1];
            let rest = text.split_off(cut);
            let full = std::mem::replace(&mut text, rest);
            let pending: Vec<usize> = ends.drain(batch_size..).map(|end| end - cut).collect();
            let batch = Batch {
                columns: columns.clone(),
                tags: None,
                rows: Rows::Copy {
                    text: full,
                    ends: std::mem::replace(&mut ends, pending),
                },
            };
            if sender.send(Message::Batch(batch)).await.is_err() {
                return Err(String::from("the writer stopped"));
            }
        }
    }
    if !ends.is_empty() {
        let batch = Batch {
            columns,
            rows: Rows::Copy { text, ends },
            tags: None,
        };
        if sender.send(Message::Batch(batch)).await.is_err() {
            return Err(String::from("the writer stopped"));
        }
    }
    Ok(read)
}

/// Empties the targets of `append` loads once before a run whose request asked for it
/// (`truncate_flag`).
pub(crate) async fn truncate_targets(
    targets: &[(&str, &str)],
    ctx: &RunContext,
) -> Result<(), String> {
    for (connection, table) in targets {
        let mut session = ctx.connections.session(connection).await?;
        let sql = match session.spec.kind {
            DbKind::Postgres | DbKind::MySql => format!("TRUNCATE TABLE {table}"),
            DbKind::Sqlite => format!("DELETE FROM {table}"),
        };
        let result = match &mut session.conn {
            DbConn::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut **c)
                .await
                .map(drop),
            DbConn::MySql(c) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut **c)
                .await
                .map(drop),
            DbConn::Sqlite(c) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut **c)
                .await
                .map(drop),
        };
        result.map_err(|e| {
            session.spec.error(format!(
                "emptying {table} before the run failed: {}",
                crate::db_error(&e)
            ))
        })?;
    }
    Ok(())
}
