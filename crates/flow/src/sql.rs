//! `sql` steps, and the named binds every statement of a flow may use.
//!
//! Binds travel as real bind parameters, typed: `:run_date` is a DATE, `:prcid` a
//! BIGINT, `:mapref` and `:param1`..`:param10` text (NULL when the request gave none).

use std::io::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::{Arguments as _, AssertSqlSafe, Database, Encode, Type};
use tokio_util::sync::CancellationToken;

use crate::connect::{DbConn, DbKind, until_stopped};
use crate::step::{RowTotals, RunContext, StepEnd, StepError};
use crate::value::Value;

/// A statement with its named binds made positional for one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundSql {
    pub text: String,
    /// The bind of each placeholder, in order.
    pub binds: Vec<String>,
}

/// Rewrites `:name` binds to the backend's placeholders: `$1` (PostgreSQL, SQLite; a
/// repeated name reuses its number) or `?` (MySQL; one per use).
pub(crate) fn positional(sql: &str, kind: DbKind) -> BoundSql {
    positional_cast(sql, kind, |_| None)
}

/// As [`positional`], each PostgreSQL placeholder followed by the cast `cast` gives its
/// bind (`$1::text`), so that the server takes the value as that type whatever the
/// statement would infer for it (`CAST($1 AS DATE)` would otherwise expect a date's
/// binary form from a text value).
pub(crate) fn positional_cast(
    sql: &str,
    kind: DbKind,
    cast: impl Fn(&str) -> Option<&'static str>,
) -> BoundSql {
    let mut text = String::with_capacity(sql.len());
    let mut binds: Vec<String> = Vec::new();
    let mut copied = 0;
    for span in crate::bind_spans(sql) {
        text.push_str(&sql[copied..span.start]);
        let name = sql[span.start + 1..span.end].to_string();
        match kind {
            DbKind::MySql => {
                text.push('?');
                binds.push(name);
            }
            DbKind::Postgres | DbKind::Sqlite => {
                let cast = (kind == DbKind::Postgres).then(|| cast(&name)).flatten();
                let number = match binds.iter().position(|b| *b == name) {
                    Some(at) => at + 1,
                    None => {
                        binds.push(name);
                        binds.len()
                    }
                };
                text.push('$');
                text.push_str(&number.to_string());
                if let Some(cast) = cast {
                    text.push_str("::");
                    text.push_str(cast);
                }
            }
        }
        copied = span.end;
    }
    text.push_str(&sql[copied..]);
    BoundSql { text, binds }
}

/// The value of a named bind in a run.
pub(crate) fn bind_value(ctx: &RunContext, name: &str) -> Value {
    match name {
        "run_date" => Value::Date(ctx.run_date),
        "prcid" => Value::Int(ctx.prcid),
        "mapref" => Value::Text(ctx.mapref.clone()),
        other => other
            .strip_prefix("param")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| ctx.params.get(n.checked_sub(1)?))
            .and_then(Clone::clone)
            .map_or(Value::Null, Value::Text),
    }
}

/// Adds `value` to a statement's arguments, typed by its variant.
pub(crate) fn push_value<'q, DB>(args: &mut DB::Arguments, value: &Value) -> Result<(), sqlx::Error>
where
    DB: Database,
    bool: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    NaiveDate: Encode<'q, DB> + Type<DB>,
    NaiveTime: Encode<'q, DB> + Type<DB>,
    NaiveDateTime: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let pushed = match value.clone() {
        Value::Null => args.add(None::<String>),
        Value::Bool(b) => args.add(b),
        Value::Int(i) => args.add(i),
        Value::Float(x) => args.add(x),
        Value::Decimal(s) | Value::Text(s) => args.add(s),
        Value::Bytes(b) => args.add(b),
        Value::Date(d) => args.add(d),
        Value::Time(t) => args.add(t),
        Value::Timestamp(t) => args.add(t),
        Value::TimestampTz(t) => args.add(t),
    };
    pushed.map_err(sqlx::Error::Encode)
}

/// Runs a statement on `$conn` (any executor) with the values of `$binds`, giving its
/// affected row count.
macro_rules! execute_statement {
    ($db:ty, $conn:expr, $statement:expr, $values:expr) => {{
        let statement: &BoundSql = $statement;
        if statement.binds.is_empty() {
            // Without binds a text may hold several statements.
            sqlx::raw_sql(AssertSqlSafe(statement.text.clone()))
                .execute($conn)
                .await
                .map(|done| done.rows_affected())
        } else {
            let mut args = <$db as Database>::Arguments::default();
            for value in $values {
                push_value::<$db>(&mut args, value)?;
            }
            sqlx::query_with(AssertSqlSafe(statement.text.clone()), args)
                .execute($conn)
                .await
                .map(|done| done.rows_affected())
        }
    }};
}

pub(crate) struct SqlStep<'a> {
    pub step: &'a str,
    pub connection: &'a str,
    pub statements: &'a [String],
    pub transaction: bool,
}

/// A statement that failed: its number in the step (0 for BEGIN or COMMIT) and why.
type StatementError = (usize, sqlx::Error);

pub(crate) async fn run_sql(
    spec: &SqlStep<'_>,
    ctx: &RunContext,
    token: &CancellationToken,
) -> StepEnd {
    let mut session = match ctx.connections.session(spec.connection).await {
        Ok(session) => session,
        Err(message) => return StepEnd::Failed(StepError::Connection(message), Vec::new()),
    };
    let kind = session.spec.kind;
    let statements: Vec<(BoundSql, Vec<Value>)> = spec
        .statements
        .iter()
        .map(|sql| {
            let bound = positional(sql, kind);
            let values = bound.binds.iter().map(|b| bind_value(ctx, b)).collect();
            (bound, values)
        })
        .collect();
    let cancellers = [session.canceller.clone()];
    let work = execute_all(&mut session.conn, &statements, spec.transaction);
    let Some(result) = until_stopped(token, &cancellers, work).await else {
        session.discard();
        return StepEnd::Stopped;
    };
    match result {
        Ok(counts) => {
            let mut log = Vec::new();
            for (number, (count, sql)) in counts.iter().zip(spec.statements).enumerate() {
                let _ = writeln!(
                    log,
                    "==> step '{}': statement {} affected {count} rows: {}",
                    spec.step,
                    number + 1,
                    one_line(sql, 200)
                );
            }
            ctx.append_log(&log);
            StepEnd::Done(RowTotals::default(), Vec::new())
        }
        Err((number, err)) => {
            if err.as_database_error().is_none() {
                // A lost connection may be mid-transaction.
                session.discard();
            }
            let which = if number == 0 {
                String::from("the transaction")
            } else {
                format!("statement {number}")
            };
            StepEnd::Failed(
                StepError::Database(
                    session
                        .spec
                        .error(format!("{which}: {}", crate::db_error(&err))),
                ),
                Vec::new(),
            )
        }
    }
}

/// A statement on one line, cut at `limit` characters, for the run's log.
fn one_line(sql: &str, limit: usize) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

async fn execute_all(
    conn: &mut DbConn,
    statements: &[(BoundSql, Vec<Value>)],
    transaction: bool,
) -> Result<Vec<u64>, StatementError> {
    macro_rules! run_all {
        ($db:ty, $conn:expr) => {{
            let conn = &mut **$conn;
            let mut counts = Vec::with_capacity(statements.len());
            if transaction {
                let mut tx = sqlx::Connection::begin(conn).await.map_err(|e| (0, e))?;
                for (number, (statement, values)) in statements.iter().enumerate() {
                    let run = async { execute_statement!($db, &mut *tx, statement, values) };
                    counts.push(run.await.map_err(|e: sqlx::Error| (number + 1, e))?);
                }
                tx.commit().await.map_err(|e| (0, e))?;
            } else {
                for (number, (statement, values)) in statements.iter().enumerate() {
                    let run = async { execute_statement!($db, &mut *conn, statement, values) };
                    counts.push(run.await.map_err(|e: sqlx::Error| (number + 1, e))?);
                }
            }
            Ok(counts)
        }};
    }
    match conn {
        DbConn::Sqlite(c) => run_all!(sqlx::Sqlite, c),
        DbConn::Postgres(c) => run_all!(sqlx::Postgres, c),
        DbConn::MySql(c) => run_all!(sqlx::MySql, c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str, kind: DbKind, text: &str, binds: &[&str]) {
        let bound = positional(sql, kind);
        assert_eq!(bound.text, text, "{sql}");
        assert_eq!(bound.binds, binds, "{sql}");
    }

    #[test]
    fn binds_become_placeholders_of_each_backend() {
        let sql = "SELECT * FROM t WHERE d = :run_date AND x = ':param1' AND p = :param1 OR d2 = :run_date::date";
        check(
            sql,
            DbKind::Postgres,
            "SELECT * FROM t WHERE d = $1 AND x = ':param1' AND p = $2 OR d2 = $1::date",
            &["run_date", "param1"],
        );
        check(
            sql,
            DbKind::Sqlite,
            "SELECT * FROM t WHERE d = $1 AND x = ':param1' AND p = $2 OR d2 = $1::date",
            &["run_date", "param1"],
        );
        check(
            sql,
            DbKind::MySql,
            "SELECT * FROM t WHERE d = ? AND x = ':param1' AND p = ? OR d2 = ?::date",
            &["run_date", "param1", "run_date"],
        );
        check("DELETE FROM t", DbKind::Postgres, "DELETE FROM t", &[]);
    }
}
