//! The target side of a `load` step: batches from the reader written in one
//! transaction, each under a savepoint, with the rows at fault isolated by halving a
//! failed batch (`COPY` on PostgreSQL, multi-row `INSERT`s elsewhere).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Database};
use tokio::sync::mpsc;

use crate::connect::DbConn;
use crate::model::LoadMode;
use crate::sql::push_value;
use crate::step::RowError;
use crate::value::{Value, parse_copy_line, write_copy_field};

/// Bind parameters per `INSERT` statement (MySQL allows 65,535, SQLite 32,766).
const MAX_PARAMS_PER_INSERT: usize = 30_000;
/// Rows per `INSERT` statement at most, however narrow the rows.
const MAX_ROWS_PER_INSERT: usize = 1_000;

/// Rows read from the source.
pub(crate) enum Rows {
    Values(Vec<Vec<Value>>),
    /// Lines of PostgreSQL COPY text; `ends[i]` is where row `i` ends.
    Copy {
        text: Vec<u8>,
        ends: Vec<usize>,
    },
}

impl Rows {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Values(rows) => rows.len(),
            Self::Copy { ends, .. } => ends.len(),
        }
    }

    pub(crate) fn row(&self, index: usize) -> Cow<'_, [Value]> {
        match self {
            Self::Values(rows) => Cow::Borrowed(&rows[index]),
            Self::Copy { text, ends } => {
                let start = if index == 0 { 0 } else { ends[index - 1] };
                Cow::Owned(parse_copy_line(&text[start..ends[index]]))
            }
        }
    }

    /// Appends the rows of `range` as COPY text.
    fn copy_text(&self, range: Range<usize>, out: &mut Vec<u8>) {
        match self {
            Self::Values(rows) => {
                for row in &rows[range] {
                    for (i, value) in row.iter().enumerate() {
                        if i > 0 {
                            out.push(b'\t');
                        }
                        write_copy_field(out, value);
                    }
                    out.push(b'\n');
                }
            }
            Self::Copy { text, ends } => {
                let start = if range.start == 0 {
                    0
                } else {
                    ends[range.start - 1]
                };
                out.extend_from_slice(&text[start..ends[range.end - 1]]);
            }
        }
    }
}

pub(crate) struct Batch {
    pub columns: Arc<[String]>,
    pub rows: Rows,
    /// What the sender calls each row (an upload: its line in the file), given back
    /// with a rejected row.
    pub tags: Option<Vec<i64>>,
}

pub(crate) enum Message {
    Batch(Batch),
    /// The source was read to its end.
    End,
}

/// Why a load ended early.
pub(crate) struct LoadFailure {
    pub message: String,
    pub rows: Vec<RowError>,
}

pub(crate) struct WritePlan {
    pub table: String,
    pub mode: LoadMode,
    pub key: Vec<String>,
    /// Columns an upsert leaves as they are in rows that exist (an upload's
    /// `CRTDBY`/`CRTDDT`).
    pub keep: Vec<String>,
    pub truncate: bool,
    pub max_errors: u32,
    pub step: String,
    /// Where each batch and rejected row is written as a line.
    pub log: Option<crate::step::RunLog>,
}

pub(crate) struct Written {
    pub accepted: i64,
    pub rows: Vec<RowError>,
}

/// What a writer does on each backend.
trait Writer {
    /// Prepares the statements once the columns are known.
    async fn prepare(&mut self, columns: &[String]) -> Result<(), sqlx::Error>;
    async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error>;
    async fn write(&mut self, rows: &Rows, range: Range<usize>) -> Result<(), sqlx::Error>;
    async fn commit(self) -> Result<(), sqlx::Error>;
    /// Whether the error is about the rows written (bad value, constraint), so that
    /// smaller batches may succeed.
    fn is_row_error(error: &sqlx::Error) -> bool;
}

pub(crate) async fn write_target(
    conn: &mut DbConn,
    plan: &WritePlan,
    receiver: mpsc::Receiver<Message>,
) -> Result<Written, LoadFailure> {
    let begun = |e: sqlx::Error| LoadFailure {
        message: format!("starting the transaction failed: {}", crate::db_error(&e)),
        rows: Vec::new(),
    };
    match conn {
        DbConn::Postgres(c) => {
            let tx = sqlx::Connection::begin(&mut **c).await.map_err(begun)?;
            drive(PgWriter::new(tx, plan), plan, receiver, "TRUNCATE").await
        }
        DbConn::MySql(c) => {
            let tx = sqlx::Connection::begin(&mut **c).await.map_err(begun)?;
            let writer = InsertWriter::<sqlx::MySql>::new(tx, plan, '`');
            // TRUNCATE would commit the transaction on MySQL.
            drive(writer, plan, receiver, "DELETE FROM").await
        }
        DbConn::Sqlite(c) => {
            let tx = sqlx::Connection::begin(&mut **c).await.map_err(begun)?;
            let writer = InsertWriter::<sqlx::Sqlite>::new(tx, plan, '"');
            drive(writer, plan, receiver, "DELETE FROM").await
        }
    }
}

/// Writes every batch, isolating bad rows, and commits when the source was read to its
/// end.
async fn drive<W: Writer>(
    mut writer: W,
    plan: &WritePlan,
    mut receiver: mpsc::Receiver<Message>,
    truncate_with: &str,
) -> Result<Written, LoadFailure> {
    let mut written = Written {
        accepted: 0,
        rows: Vec::new(),
    };
    macro_rules! fail {
        ($message:expr) => {
            return Err(LoadFailure {
                message: $message,
                rows: std::mem::take(&mut written.rows),
            })
        };
    }
    if plan.truncate
        && let Err(e) = writer
            .execute(&format!("{truncate_with} {}", plan.table))
            .await
    {
        fail!(format!(
            "emptying {} failed: {}",
            plan.table,
            crate::db_error(&e)
        ));
    }
    let mut prepared = false;
    let mut batches = 0u64;
    let mut key_columns: Vec<usize> = Vec::new();
    let finished = loop {
        let Some(message) = receiver.recv().await else {
            break false;
        };
        let batch = match message {
            Message::Batch(batch) => batch,
            Message::End => break true,
        };
        if !prepared {
            key_columns = match key_indexes(&batch.columns, &plan.key) {
                Ok(indexes) => indexes,
                Err(message) => fail!(message),
            };
            if let Err(e) = writer.prepare(&batch.columns).await {
                fail!(format!(
                    "preparing the load into {} failed: {}",
                    plan.table,
                    crate::db_error(&e)
                ));
            }
            prepared = true;
        }
        batches += 1;
        let accepted_before = written.accepted;
        let rejected_before = written.rows.len();
        // Halve failing ranges until the bad rows stand alone.
        let mut pending: Vec<Range<usize>> = Vec::with_capacity(16);
        pending.push(0..batch.rows.len());
        while let Some(range) = pending.pop() {
            if let Err(e) = writer.execute("SAVEPOINT dwsched_batch").await {
                fail!(format!(
                    "writing {} failed: {}",
                    plan.table,
                    crate::db_error(&e)
                ));
            }
            match writer.write(&batch.rows, range.clone()).await {
                Ok(()) => {
                    if let Err(e) = writer.execute("RELEASE SAVEPOINT dwsched_batch").await {
                        fail!(format!(
                            "writing {} failed: {}",
                            plan.table,
                            crate::db_error(&e)
                        ));
                    }
                    written.accepted += i64::try_from(range.len()).unwrap_or(i64::MAX);
                }
                Err(e) if W::is_row_error(&e) => {
                    if let Err(e) = writer.execute("ROLLBACK TO SAVEPOINT dwsched_batch").await {
                        fail!(format!(
                            "writing {} failed: {}",
                            plan.table,
                            crate::db_error(&e)
                        ));
                    }
                    if range.len() > 1 {
                        let middle = range.start + range.len() / 2;
                        pending.push(middle..range.end);
                        pending.push(range.start..middle);
                        continue;
                    }
                    let row = batch.rows.row(range.start);
                    let rejected = RowError {
                        step: plan.step.clone(),
                        key: key_value(&batch.columns, &key_columns, &row),
                        db_message: database_message(&e),
                        tag: batch
                            .tags
                            .as_ref()
                            .and_then(|t| t.get(range.start).copied()),
                    };
                    if let Some(log) = &plan.log {
                        log.line(format_args!(
                            "==> step '{}': {} rejected row {}: {}",
                            plan.step, plan.table, rejected.key, rejected.db_message
                        ));
                    }
                    written.rows.push(rejected);
                    if written.rows.len() > plan.max_errors as usize {
                        let first = &written.rows[0];
                        fail!(format!(
                            "{} rows rejected by {}, more than max_errors = {}; the first ({}): {}",
                            written.rows.len(),
                            plan.table,
                            plan.max_errors,
                            first.key,
                            first.db_message
                        ));
                    }
                }
                Err(e) => fail!(format!(
                    "writing {} failed: {}",
                    plan.table,
                    crate::db_error(&e)
                )),
            }
        }
        if let Some(log) = &plan.log {
            log.line(format_args!(
                "==> step '{}': batch {batches} into {}: {} rows written, {} rejected ({} written so far)",
                plan.step,
                plan.table,
                written.accepted - accepted_before,
                written.rows.len() - rejected_before,
                written.accepted
            ));
        }
    };
    if !finished {
        // The reader failed; its error is the cause, and nothing is committed.
        fail!(String::from("the source ended early"));
    }
    if let Err(e) = writer.commit().await {
        fail!(format!(
            "committing the load into {} failed: {}",
            plan.table,
            crate::db_error(&e)
        ));
    }
    Ok(written)
}

/// The positions of the key columns among the source's; a row error names a row by its
/// key, or by its first column when the load has no key.
fn key_indexes(columns: &[String], key: &[String]) -> Result<Vec<usize>, String> {
    if key.is_empty() {
        return Ok(if columns.is_empty() { vec![] } else { vec![0] });
    }
    key.iter()
        .map(|k| {
            columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(k))
                .ok_or_else(|| {
                    format!(
                        "key column '{k}' is not among the source query's columns ({})",
                        columns.join(", ")
                    )
                })
        })
        .collect()
}

fn key_value(columns: &[String], key_columns: &[usize], row: &[Value]) -> String {
    key_columns
        .iter()
        .map(|&i| {
            let value = row.get(i).map_or_else(String::new, ToString::to_string);
            format!("{}={value}", columns[i])
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn database_message(error: &sqlx::Error) -> String {
    crate::db_error(error)
}

fn sqlstate_class(error: &sqlx::Error) -> Option<String> {
    let code = error.as_database_error()?.code()?;
    Some(code.chars().take(2).collect())
}

/// The source columns that are key columns (named as the source names them), and the
/// others.
/// The key columns, and the others an upsert updates (all but `keep`).
fn split_key<'a>(
    columns: &'a [String],
    key: &[String],
    keep: &[String],
) -> (Vec<&'a String>, Vec<&'a String>) {
    let named = |names: &[String], c: &str| names.iter().any(|k| k.eq_ignore_ascii_case(c));
    let (keys, others): (Vec<&String>, Vec<&String>) = columns.iter().partition(|c| named(key, c));
    let others = others.into_iter().filter(|c| !named(keep, c)).collect();
    (keys, others)
}

/// Quotes a column name for the target's dialect.
fn quote(name: &str, quote: char) -> String {
    let doubled = format!("{quote}{quote}");
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

struct PgWriter<'c> {
    tx: sqlx::Transaction<'c, sqlx::Postgres>,
    table: String,
    mode: LoadMode,
    key: Vec<String>,
    keep: Vec<String>,
    /// `COPY … FROM STDIN` into the table, or into the staging table of an upsert.
    copy: String,
    /// For an upsert: moves the staged rows into the table, then empties the stage.
    merge: Option<[String; 2]>,
    buffer: Vec<u8>,
}

impl<'c> PgWriter<'c> {
    fn new(tx: sqlx::Transaction<'c, sqlx::Postgres>, plan: &WritePlan) -> Self {
        Self {
            tx,
            table: plan.table.clone(),
            mode: plan.mode,
            key: plan.key.clone(),
            keep: plan.keep.clone(),
            copy: String::new(),
            merge: None,
            buffer: Vec::new(),
        }
    }
}

impl Writer for PgWriter<'_> {
    async fn prepare(&mut self, columns: &[String]) -> Result<(), sqlx::Error> {
        let list = columns
            .iter()
            .map(|c| quote(c, '"'))
            .collect::<Vec<_>>()
            .join(", ");
        if self.mode != LoadMode::Upsert {
            self.copy = format!("COPY {} ({list}) FROM STDIN", self.table);
            return Ok(());
        }
        let stage = "dwsched_load_stage";
        self.execute(&format!(
            "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {list} FROM {} WITH NO DATA",
            self.table
        ))
        .await?;
        let (keys, others) = split_key(columns, &self.key, &self.keep);
        let updates: Vec<String> = others
            .iter()
            .map(|c| format!("{0} = EXCLUDED.{0}", quote(c, '"')))
            .collect();
        let conflict = keys
            .iter()
            .map(|k| quote(k, '"'))
            .collect::<Vec<_>>()
            .join(", ");
        let action = if updates.is_empty() {
            String::from("DO NOTHING")
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        self.copy = format!("COPY {stage} ({list}) FROM STDIN");
        self.merge = Some([
            format!(
                "INSERT INTO {} ({list}) SELECT {list} FROM {stage} ON CONFLICT ({conflict}) {action}",
                self.table
            ),
            format!("TRUNCATE {stage}"),
        ]);
        Ok(())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut *self.tx)
            .await
            .map(drop)
    }

    async fn write(&mut self, rows: &Rows, range: Range<usize>) -> Result<(), sqlx::Error> {
        self.buffer.clear();
        rows.copy_text(range, &mut self.buffer);
        let mut copy = self.tx.copy_in_raw(&self.copy).await?;
        copy.send(self.buffer.as_slice()).await?;
        copy.finish().await?;
        if let Some([merge, empty]) = self.merge.clone() {
            self.execute(&merge).await?;
            self.execute(&empty).await?;
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    fn is_row_error(error: &sqlx::Error) -> bool {
        // 22: data exception; 23: integrity constraint violation.
        matches!(sqlstate_class(error).as_deref(), Some("22" | "23"))
    }
}

/// Multi-row `INSERT`s with bind parameters: MySQL and SQLite targets.
struct InsertWriter<'c, DB: Database> {
    tx: sqlx::Transaction<'c, DB>,
    table: String,
    mode: LoadMode,
    key: Vec<String>,
    keep: Vec<String>,
    quote: char,
    columns: usize,
    /// The statement's text up to `VALUES`, and what follows the rows.
    head: String,
    tail: String,
}

impl<'c, DB: Database> InsertWriter<'c, DB> {
    fn new(tx: sqlx::Transaction<'c, DB>, plan: &WritePlan, quote: char) -> Self {
        Self {
            tx,
            table: plan.table.clone(),
            mode: plan.mode,
            key: plan.key.clone(),
            keep: plan.keep.clone(),
            quote,
            columns: 0,
            head: String::new(),
            tail: String::new(),
        }
    }

    fn rows_per_statement(&self) -> usize {
        (MAX_PARAMS_PER_INSERT / self.columns.max(1)).clamp(1, MAX_ROWS_PER_INSERT)
    }

    fn statement(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; self.columns].join(", "));
        let mut sql = String::with_capacity(self.head.len() + rows * (row.len() + 2));
        sql.push_str(&self.head);
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&row);
        }
        sql.push_str(&self.tail);
        sql
    }

    fn prepare_text(&mut self, columns: &[String], mysql: bool) {
        self.columns = columns.len();
        let list = columns
            .iter()
            .map(|c| quote(c, self.quote))
            .collect::<Vec<_>>()
            .join(", ");
        self.head = format!("INSERT INTO {} ({list}) VALUES ", self.table);
        if self.mode != LoadMode::Upsert {
            return;
        }
        let (keys, others) = split_key(columns, &self.key, &self.keep);
        self.tail = if mysql {
            let first = quote(&columns[0], self.quote);
            let updates: Vec<String> = if others.is_empty() {
                vec![format!("{first} = {first}")]
            } else {
                others
                    .iter()
                    .map(|c| format!("{0} = VALUES({0})", quote(c, self.quote)))
                    .collect()
            };
            format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "))
        } else {
            let conflict = keys
                .iter()
                .map(|k| quote(k, self.quote))
                .collect::<Vec<_>>()
                .join(", ");
            if others.is_empty() {
                format!(" ON CONFLICT ({conflict}) DO NOTHING")
            } else {
                let updates: Vec<String> = others
                    .iter()
                    .map(|c| format!("{0} = excluded.{0}", quote(c, self.quote)))
                    .collect();
                format!(
                    " ON CONFLICT ({conflict}) DO UPDATE SET {}",
                    updates.join(", ")
                )
            }
        };
    }
}

macro_rules! insert_writer {
    ($db:ty, $mysql:expr, $is_row_error:expr) => {
        impl Writer for InsertWriter<'_, $db> {
            async fn prepare(&mut self, columns: &[String]) -> Result<(), sqlx::Error> {
                self.prepare_text(columns, $mysql);
                Ok(())
            }

            async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
                sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                    .execute(&mut *self.tx)
                    .await
                    .map(drop)
            }

            async fn write(&mut self, rows: &Rows, range: Range<usize>) -> Result<(), sqlx::Error> {
                let per_statement = self.rows_per_statement();
                let mut start = range.start;
                while start < range.end {
                    let end = (start + per_statement).min(range.end);
                    let mut args = <$db as Database>::Arguments::default();
                    for index in start..end {
                        for value in rows.row(index).iter() {
                            push_value::<$db>(&mut args, value)?;
                        }
                    }
                    let sql = self.statement(end - start);
                    sqlx::query_with(AssertSqlSafe(sql), args)
                        .execute(&mut *self.tx)
                        .await?;
                    start = end;
                }
                Ok(())
            }

            async fn commit(self) -> Result<(), sqlx::Error> {
                self.tx.commit().await
            }

            fn is_row_error(error: &sqlx::Error) -> bool {
                $is_row_error(error)
            }
        }
    };
}

insert_writer!(sqlx::MySql, true, mysql_row_error);
insert_writer!(sqlx::Sqlite, false, sqlite_row_error);

fn mysql_row_error(error: &sqlx::Error) -> bool {
    // Bad values (1366 incorrect value, 1292 truncated, 1265 data truncated, 1264 out of
    // range, 1406 too long), NULL into NOT NULL (1048), duplicate key (1062), foreign
    // and check constraints (1451, 1452, 3819, 4025).
    const ROW_ERRORS: [u16; 11] = [
        1366, 1292, 1265, 1264, 1406, 1048, 1062, 1451, 1452, 3819, 4025,
    ];
    if matches!(sqlstate_class(error).as_deref(), Some("22" | "23")) {
        return true;
    }
    error
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|db| ROW_ERRORS.contains(&db.number()))
}

fn sqlite_row_error(error: &sqlx::Error) -> bool {
    // SQLITE_CONSTRAINT (19) and SQLITE_MISMATCH (20), with their extended codes.
    error
        .as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, 19 | 20))
}
