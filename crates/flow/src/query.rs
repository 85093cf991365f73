//! A read-only query whose rows stream to a consumer: what a report runs (SPEC §7.2).
//!
//! The query is one statement, run in a read-only transaction (PostgreSQL, MySQL) or on
//! a `query_only` session (SQLite), so a report's SQL can read but never change its
//! database. Named binds (`:name`) take the values the caller gives by name. A time
//! limit, and the run's stop, cancel the statement on its server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Executor as _, SqlSafeStr as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect::{Connections, DbConn, until_stopped};
use crate::load::{Read, read_values};
use crate::sql::positional_cast;
use crate::step::StopSignal;
use crate::target::{Message, Rows};
use crate::value::Value;

/// The read's error when the consumer of its rows went away.
const CONSUMER_GONE: &str = "the consumer of the rows stopped";

/// Rows per message to the consumer.
const BATCH_ROWS: usize = 4_096;

/// What the consumer of a query receives: its column names first, then its rows in
/// batches, in order.
#[derive(Debug)]
pub enum StreamedRows {
    Columns(Arc<[String]>),
    Rows(Vec<Vec<Value>>),
}

/// A query to read: `sql` on connection `connection`, with `binds` for its named binds.
pub struct ReadOnlyQuery<'a> {
    pub connection: &'a str,
    pub sql: &'a str,
    pub binds: &'a BTreeMap<String, Value>,
    pub time_limit: Duration,
}

/// Why a query did not read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The run was stopped.
    Stopped,
    /// The consumer of the rows went away (it failed, and says why).
    ConsumerGone,
    /// Anything else, as a message naming the connection and the cause.
    Failed(String),
}

impl Connections {
    /// Runs `query` and sends its columns and rows to `rows`; the number of rows read.
    pub async fn read_only(
        &self,
        query: &ReadOnlyQuery<'_>,
        stop: &StopSignal,
        rows: mpsc::Sender<StreamedRows>,
    ) -> Result<i64, QueryError> {
        let sql = query.sql.trim().trim_end_matches(';').trim_end();
        let statements = crate::statement_count(sql);
        if statements != 1 {
            return Err(QueryError::Failed(format!(
                "the query holds {statements} statements; a report runs exactly one"
            )));
        }
        let mut session = self
            .session(query.connection)
            .await
            .map_err(QueryError::Failed)?;
        let spec = session.spec.clone();
        let bound = positional_cast(sql, spec.kind, |name| {
            query.binds.get(name).map(postgres_type)
        });
        let mut values = Vec::with_capacity(bound.binds.len());
        for name in &bound.binds {
            let value = query.binds.get(name).ok_or_else(|| {
                QueryError::Failed(format!(
                    "the query uses the bind :{name}, which the request's parameters do not give"
                ))
            })?;
            values.push(value.clone());
        }
        // The run's stop or the time limit, whichever comes first, cancels the statement.
        let token = CancellationToken::new();
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watch = {
            let (token, timed_out) = (token.clone(), timed_out.clone());
            let stop = stop.clone();
            let limit = query.time_limit;
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.stopped() => {}
                    () = tokio::time::sleep(limit) => {
                        timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    () = token.cancelled() => return,
                }
                token.cancel();
            })
        };
        let cancellers = [session.canceller.clone()];
        let work = read_in_transaction(&mut session.conn, &bound.text, &values, &rows);
        let ended = until_stopped(&token, &cancellers, work).await;
        token.cancel();
        let _ = watch.await;
        let timed_out = timed_out.load(std::sync::atomic::Ordering::SeqCst);
        match ended {
            Some(Ok(count)) => Ok(count),
            Some(Err(cause)) if cause == CONSUMER_GONE => Err(QueryError::ConsumerGone),
            Some(Err(cause)) if !timed_out && !stop.is_stopped() => {
                Err(QueryError::Failed(spec.error(cause)))
            }
            // Cancelled: the statement ended with the error its cancellation caused, or
            // was dropped. Its connection is not to be trusted after.
            Some(Err(_)) | None => {
                session.discard();
                if timed_out {
                    Err(QueryError::Failed(spec.error(format!(
                        "the query ran longer than its time limit of {} s and was cancelled",
                        query.time_limit.as_secs()
                    ))))
                } else {
                    Err(QueryError::Stopped)
                }
            }
        }
    }
}

/// Reads the query's rows inside a read-only transaction, which is rolled back after
/// (a report writes nothing, so there is nothing to keep).
async fn read_in_transaction(
    conn: &mut DbConn,
    sql: &str,
    values: &[Value],
    rows: &mpsc::Sender<StreamedRows>,
) -> Result<i64, String> {
    let (begin, end) = match conn {
        DbConn::Postgres(_) | DbConn::MySql(_) => (
            match conn {
                DbConn::Postgres(_) => "BEGIN READ ONLY",
                _ => "START TRANSACTION READ ONLY",
            },
            "ROLLBACK",
        ),
        DbConn::Sqlite(_) => ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
    };
    raw(conn, begin).await?;
    let read = read_to(conn, sql, values, rows).await;
    let ended = raw(conn, end).await;
    let count = read?;
    ended?;
    Ok(count)
}

async fn read_to(
    conn: &mut DbConn,
    sql: &str,
    values: &[Value],
    rows: &mpsc::Sender<StreamedRows>,
) -> Result<i64, String> {
    // The column names come from the prepared statement, so an empty result has its
    // header too.
    let columns = column_names(conn, sql).await?;
    if rows.send(StreamedRows::Columns(columns)).await.is_err() {
        return Err(String::from(CONSUMER_GONE));
    }
    let (sender, mut receiver) = mpsc::channel(2);
    let reading = async {
        let read = read_values(conn, sql, values, BATCH_ROWS, Read::Typed, &sender).await;
        drop(sender);
        read
    };
    let forwarding = async {
        while let Some(message) = receiver.recv().await {
            if let Message::Batch(batch) = message {
                let values = match batch.rows {
                    Rows::Values(values) => values,
                    copy @ Rows::Copy { .. } => (0..copy.len())
                        .map(|index| copy.row(index).into_owned())
                        .collect(),
                };
                if rows.send(StreamedRows::Rows(values)).await.is_err() {
                    return Err(String::from(CONSUMER_GONE));
                }
            }
        }
        Ok(())
    };
    let (read, forwarded) = tokio::join!(reading, forwarding);
    let count = read?;
    forwarded?;
    Ok(count)
}

async fn column_names(conn: &mut DbConn, sql: &str) -> Result<Arc<[String]>, String> {
    let sql = || AssertSqlSafe(sql.to_string()).into_sql_str();
    let fail = |e: sqlx::Error| crate::db_error(&e);
    Ok(match conn {
        DbConn::Postgres(c) => names_of(sqlx::Statement::columns(
            &(&mut **c).prepare(sql()).await.map_err(fail)?,
        )),
        DbConn::MySql(c) => names_of(sqlx::Statement::columns(
            &(&mut **c).prepare(sql()).await.map_err(fail)?,
        )),
        DbConn::Sqlite(c) => names_of(sqlx::Statement::columns(
            &(&mut **c).prepare(sql()).await.map_err(fail)?,
        )),
    })
}

/// The PostgreSQL type a bind value is sent as.
fn postgres_type(value: &Value) -> &'static str {
    match value {
        Value::Null | Value::Text(_) => "text",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "bigint",
        Value::Float(_) => "double precision",
        Value::Decimal(_) => "numeric",
        Value::Bytes(_) => "bytea",
        Value::Date(_) => "date",
        Value::Time(_) => "time",
        Value::Timestamp(_) => "timestamp",
        Value::TimestampTz(_) => "timestamptz",
    }
}

fn names_of<C: sqlx::Column>(columns: &[C]) -> Arc<[String]> {
    columns.iter().map(|c| c.name().to_string()).collect()
}

async fn raw(conn: &mut DbConn, sql: &'static str) -> Result<(), String> {
    let done = match conn {
        DbConn::Postgres(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(|_| ()),
        DbConn::MySql(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(|_| ()),
        DbConn::Sqlite(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(|_| ()),
    };
    done.map_err(|e| crate::db_error(&e))
}
