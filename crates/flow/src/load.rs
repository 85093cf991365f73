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

use std::borrow::Cow;
use std::ops::Range;
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
use crate::value::{
    Decoder, UnsupportedColumn, Value, decode_mysql, decode_postgres, decode_sqlite, decoders_for,
    mysql_decoder, parse_copy_line, postgres_decoder, sqlite_decoder, write_copy_field,
};

/// Batches read ahead of the writer.
const READ_AHEAD: usize = 2;
/// Bind parameters per `INSERT` statement (MySQL allows 65,535, SQLite 32,766).
const MAX_PARAMS_PER_INSERT: usize = 30_000;
/// Rows per `INSERT` statement at most, however narrow the rows.
const MAX_ROWS_PER_INSERT: usize = 1_000;

pub(crate) struct LoadStep<'a> {
    pub step: &'a str,
    pub source: &'a Source,
    pub target: &'a Target,
    pub batch_size: usize,
    pub max_errors: u32,
}

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
    fn len(&self) -> usize {
        match self {
            Self::Values(rows) => rows.len(),
            Self::Copy { ends, .. } => ends.len(),
        }
    }

    fn row(&self, index: usize) -> Cow<'_, [Value]> {
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

struct Batch {
    columns: Arc<[String]>,
    rows: Rows,
}

enum Message {
    Batch(Batch),
    /// The source was read to its end.
    End,
}

/// Why a load ended early.
struct LoadFailure {
    message: String,
    rows: Vec<RowError>,
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
            read_values(&mut source.conn, &bound.text, &values, batch_size, &sender).await
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
        truncate: load.target.mode == LoadMode::Truncate,
        max_errors: load.max_errors,
        step: load.step.to_string(),
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

/// Streams a query's rows, decoded, in batches.
async fn read_values(
    conn: &mut DbConn,
    sql: &str,
    values: &[Value],
    batch_size: usize,
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
                        .map(|c| sqlite_decoder(c.type_info().name()))
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
            let read = read_values(&mut session.conn, sql, &[], 1000, &sender).await;
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
                push_value::<$db>(&mut args, value).map_err(|e| e.to_string())?;
            }
            let mut stream =
                sqlx::query_with(AssertSqlSafe($sql.to_string()), args).fetch(&mut **$conn);
            let mut columns: Option<(Arc<[String]>, Vec<Decoder>)> = None;
            let mut rows = Vec::with_capacity($batch_size);
            let mut read: i64 = 0;
            while let Some(row) = stream.try_next().await.map_err(|e| e.to_string())? {
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
        .map_err(|e| e.to_string())?;
    let columns: Arc<[String]> = sqlx::Statement::columns(&prepared)
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut stream = conn
        .copy_out_raw(&format!("COPY ({query}) TO STDOUT"))
        .await
        .map_err(|e| e.to_string())?;
    let mut text: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(batch_size);
    let mut read: i64 = 0;
    while let Some(chunk) = stream.try_next().await.map_err(|e| e.to_string())? {
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
        };
        if sender.send(Message::Batch(batch)).await.is_err() {
            return Err(String::from("the writer stopped"));
        }
    }
    Ok(read)
}

struct WritePlan {
    table: String,
    mode: LoadMode,
    key: Vec<String>,
    truncate: bool,
    max_errors: u32,
    step: String,
}

struct Written {
    accepted: i64,
    rows: Vec<RowError>,
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

async fn write_target(
    conn: &mut DbConn,
    plan: &WritePlan,
    receiver: mpsc::Receiver<Message>,
) -> Result<Written, LoadFailure> {
    let begun = |e: sqlx::Error| LoadFailure {
        message: format!("starting the transaction failed: {e}"),
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
        fail!(format!("emptying {} failed: {e}", plan.table));
    }
    let mut prepared = false;
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
                    "preparing the load into {} failed: {e}",
                    plan.table
                ));
            }
            prepared = true;
        }
        // Halve failing ranges until the bad rows stand alone.
        let mut pending: Vec<Range<usize>> = Vec::with_capacity(16);
        pending.push(0..batch.rows.len());
        while let Some(range) = pending.pop() {
            if let Err(e) = writer.execute("SAVEPOINT dwsched_batch").await {
                fail!(format!("writing {} failed: {e}", plan.table));
            }
            match writer.write(&batch.rows, range.clone()).await {
                Ok(()) => {
                    if let Err(e) = writer.execute("RELEASE SAVEPOINT dwsched_batch").await {
                        fail!(format!("writing {} failed: {e}", plan.table));
                    }
                    written.accepted += i64::try_from(range.len()).unwrap_or(i64::MAX);
                }
                Err(e) if W::is_row_error(&e) => {
                    if let Err(e) = writer.execute("ROLLBACK TO SAVEPOINT dwsched_batch").await {
                        fail!(format!("writing {} failed: {e}", plan.table));
                    }
                    if range.len() > 1 {
                        let middle = range.start + range.len() / 2;
                        pending.push(middle..range.end);
                        pending.push(range.start..middle);
                        continue;
                    }
                    let row = batch.rows.row(range.start);
                    written.rows.push(RowError {
                        step: plan.step.clone(),
                        key: key_value(&batch.columns, &key_columns, &row),
                        db_message: database_message(&e),
                    });
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
                Err(e) => fail!(format!("writing {} failed: {e}", plan.table)),
            }
        }
    };
    if !finished {
        // The reader failed; its error is the cause, and nothing is committed.
        fail!(String::from("the source ended early"));
    }
    if let Err(e) = writer.commit().await {
        fail!(format!(
            "committing the load into {} failed: {e}",
            plan.table
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
    match error.as_database_error() {
        Some(db) => db.message().to_string(),
        None => error.to_string(),
    }
}

fn sqlstate_class(error: &sqlx::Error) -> Option<String> {
    let code = error.as_database_error()?.code()?;
    Some(code.chars().take(2).collect())
}

/// The source columns that are key columns (named as the source names them), and the
/// others.
fn split_key<'a>(columns: &'a [String], key: &[String]) -> (Vec<&'a String>, Vec<&'a String>) {
    columns
        .iter()
        .partition(|c| key.iter().any(|k| k.eq_ignore_ascii_case(c)))
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
        let (keys, others) = split_key(columns, &self.key);
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
        let (keys, others) = split_key(columns, &self.key);
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
            session
                .spec
                .error(format!("emptying {table} before the run failed: {e}"))
        })?;
    }
    Ok(())
}
