//! `mapping` steps: a DWTOOL mapping job's SCD load, run natively and set-based
//! (SPEC §7.1).
//!
//! The source query's rows are mapped to the target's columns, hashed (`RWHKEY`, bit
//! for bit as DWTOOL's mapper hashes them) and streamed into a staging table on the
//! target: `COPY` on PostgreSQL, multi-row `INSERT`s on MySQL. Rows with a NULL key
//! part are rejected on the way. Duplicate keys keep their last row. Then a few
//! statements per batch, joined on the key and the current flag, expire and insert
//! (SCD type 2), update and insert (type 1), or upsert (facts). Everything happens in
//! one transaction on the target, so a failure or a stop leaves it as it was.
//!
//! Memory holds one batch of source rows, whatever the source's size.

pub mod dwlogic;
pub mod plan;
pub mod rwhkey;
mod statements;

use std::fmt::Write as _;
use std::ops::RangeInclusive;

use chrono::{NaiveDateTime, Timelike as _, Utc};
use sqlx::{AssertSqlSafe, Database, Executor as _, SqlSafeStr as _, Statement as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect::{DbConn, DbKind, Session, until_stopped};
use crate::load::{Read, read_values};
use crate::sql::push_value;
use crate::step::{RowError, RowTotals, RunContext, RunProgress, StepEnd, StepError};
use crate::target::{Message, Rows};
use crate::value::{Value, write_copy_field};

pub use dwlogic::{DwLogic, DwLogicError, is_mapping_code};
pub use plan::{Checkpoint, MappedColumn, MappingPlan, PlanReport, TargetKind, build_plan};
use statements::{Dialect, Statements};

/// Staged rows each apply statement covers. Each statement joins its batch with the
/// whole target (DWTOOL's tables have no index on the business key), so batches are
/// large; they are bounded so that one statement's work, and the wait for a stop to
/// land between two, stays bounded too.
const APPLY_BATCH_ROWS: i64 = 250_000;
/// Source rows read ahead of the staging.
const READ_AHEAD: usize = 2;

/// What a mapping step does with the staged source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The SCD load.
    Load,
    /// Only `RWHKEY` of the current rows is rewritten (`dwtool rehash`).
    Rehash,
}

/// Recomputes `RWHKEY` of the current target rows from the source, as the next load
/// will compute it, and changes nothing else: for rows whose hashes another driver
/// rendered. Gives the source rows read and the target rows rewritten.
pub async fn rehash(run: &MappingRun, ctx: &RunContext) -> Result<RowTotals, StepError> {
    let sessions = async {
        let source = ctx.connections.session(&run.source_connection).await?;
        let target = ctx.connections.session(&run.target_connection).await?;
        Ok::<_, String>((source, target))
    };
    let (mut source, mut target) = sessions.await.map_err(StepError::Connection)?;
    let step = format!("rehash {}", run.plan.mapref);
    load(&step, run, ctx, Mode::Rehash, &mut source, &mut target)
        .await
        .map(|loaded| loaded.totals)
        .map_err(|failure| failure.error)
}

/// A mapping job ready to run: its plan, with its connections resolved to names.
#[derive(Debug, Clone)]
pub struct MappingRun {
    pub plan: MappingPlan,
    pub source_connection: String,
    pub target_connection: String,
}

pub(crate) async fn run_mapping(
    step: &str,
    mapref: &str,
    ctx: &RunContext,
    token: &CancellationToken,
) -> StepEnd {
    let Some(run) = ctx.mappings.get(mapref) else {
        return StepEnd::Failed(
            StepError::Plan(format!(
                "mapping job '{mapref}' has no plan for this run (its metadata was not read)"
            )),
            Vec::new(),
        );
    };
    let sessions = async {
        let source = ctx.connections.session(&run.source_connection).await?;
        let target = ctx.connections.session(&run.target_connection).await?;
        Ok::<_, String>((source, target))
    };
    let (mut source, mut target) = match sessions.await {
        Ok(pair) => pair,
        Err(message) => return StepEnd::Failed(StepError::Connection(message), Vec::new()),
    };
    let cancellers = [source.canceller.clone(), target.canceller.clone()];
    let work = load(step, run, ctx, Mode::Load, &mut source, &mut target);
    match until_stopped(token, &cancellers, work).await {
        None => {
            source.discard();
            target.discard();
            StepEnd::Stopped
        }
        Some(Ok(loaded)) => {
            if loaded.duplicates > 0 {
                ctx.append_log(
                    format!(
                        "mapping {mapref}: {} rows repeated a key loaded later in the same source; the last row of each key was loaded\n",
                        loaded.duplicates
                    )
                    .as_bytes(),
                );
            }
            StepEnd::Done(loaded.totals, loaded.rejected)
        }
        Some(Err(failure)) => {
            // A failed statement may leave the session mid-transaction.
            target.discard();
            StepEnd::Failed(failure.error, failure.rejected)
        }
    }
}

struct Loaded {
    totals: RowTotals,
    rejected: Vec<RowError>,
    duplicates: u64,
}

struct Failure {
    error: StepError,
    rejected: Vec<RowError>,
}

impl Failure {
    fn plan(message: String) -> Self {
        Self {
            error: StepError::Plan(message),
            rejected: Vec::new(),
        }
    }

    fn database(message: String) -> Self {
        Self {
            error: StepError::Database(message),
            rejected: Vec::new(),
        }
    }
}

/// Where each mapped value comes from in the source query's row.
struct RowShape {
    /// Per plan column (in `ALL_COLUMNS` order), its source column's position.
    columns: Vec<usize>,
    /// Per key column, its source column's position.
    key: Vec<usize>,
    key_names: Vec<String>,
    /// Positions among `columns` of the hashed ones.
    hashed: Vec<usize>,
}

impl RowShape {
    fn new(plan: &MappingPlan, source_columns: &[String]) -> Result<Self, String> {
        let find = |column: &MappedColumn| {
            position(source_columns, &column.source)
                .or_else(|| position(source_columns, &column.target))
                .ok_or_else(|| {
                    format!(
                        "the source query of mapping {} has no column '{}'{} for target column {} (it returns {})",
                        plan.mapref,
                        column.source,
                        if column.source.eq_ignore_ascii_case(&column.target) {
                            String::new()
                        } else {
                            format!(" nor '{}'", column.target)
                        },
                        column.target,
                        source_columns.join(", ")
                    )
                })
        };
        Ok(Self {
            columns: plan.columns.iter().map(find).collect::<Result<_, _>>()?,
            key: plan.key.iter().map(find).collect::<Result<_, _>>()?,
            key_names: plan.key.iter().map(|k| k.target.clone()).collect(),
            hashed: plan
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.hashed)
                .map(|(i, _)| i)
                .collect(),
        })
    }

    /// `COL=value|COL=value`, as `DMS_JOBERR.KEYVALUE` names a row.
    fn key_value(&self, row: &[Value]) -> String {
        let mut out = String::new();
        for (i, (&at, name)) in self.key.iter().zip(&self.key_names).enumerate() {
            if i > 0 {
                out.push('|');
            }
            let _ = write!(out, "{name}={}", row[at]);
        }
        out
    }
}

fn position(columns: &[String], name: &str) -> Option<usize> {
    columns.iter().position(|c| c.eq_ignore_ascii_case(name))
}

async fn load(
    step: &str,
    run: &MappingRun,
    ctx: &RunContext,
    mode: Mode,
    source: &mut Session,
    target: &mut Session,
) -> Result<Loaded, Failure> {
    let plan = &run.plan;
    let dialect = match target.spec.kind {
        DbKind::Postgres => Dialect::Postgres,
        DbKind::MySql => Dialect::MySql,
        DbKind::Sqlite => {
            return Err(Failure::plan(format!(
                "mapping {}: its target {} is SQLite, which mapping loads do not write (PostgreSQL or MySQL targets)",
                plan.mapref, target.spec.name
            )));
        }
    };
    let target_columns = describe_columns(&mut target.conn, &Statements::probe(plan, dialect)?)
        .await
        .map_err(|e| {
            Failure::plan(target.spec.error(format!(
                "the target table {} of mapping {} cannot be read: {}",
                plan.target_table,
                plan.mapref,
                crate::db_error(&e)
            )))
        })?;
    let statements = Statements::new(plan, dialect, &target_columns)?;
    // One timestamp for the run's versions, to the second: an expired row's TODT is its
    // successor's FROMDT.
    let now = Utc::now().naive_utc();
    let stamp = now.with_nanosecond(0).unwrap_or(now);

    let query = source_query(plan, ctx, source.spec.kind);
    let source_kind = source.spec.kind;
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let source_spec = source.spec.clone();
    let reading = async {
        let as_stored = Read::AsStored;
        let read = read_values(
            &mut source.conn,
            &query,
            &[],
            plan.batch_rows,
            as_stored,
            &sender,
        );
        let read = read.await;
        if read.is_ok() {
            let _ = sender.send(Message::End).await;
        }
        drop(sender);
        read
    };
    let target_spec = target.spec.clone();
    let writing = async {
        let how = How {
            mode,
            truncate: ctx.truncate,
            source_kind,
            stamp,
        };
        let begun = |e: sqlx::Error| {
            Failure::database(format!(
                "starting the transaction failed: {}",
                crate::db_error(&e)
            ))
        };
        let (statements, progress) = (&statements, &ctx.progress);
        match &mut target.conn {
            DbConn::Postgres(c) => {
                let tx = sqlx::Connection::begin(&mut **c).await.map_err(begun)?;
                let target = PgTarget {
                    tx,
                    copy: Vec::new(),
                };
                write(target, step, plan, how, statements, progress, receiver).await
            }
            DbConn::MySql(c) => {
                let tx = sqlx::Connection::begin(&mut **c).await.map_err(begun)?;
                let target = MySqlTarget { tx };
                write(target, step, plan, how, statements, progress, receiver).await
            }
            DbConn::Sqlite(_) => unreachable!("refused above"),
        }
    };
    let (read, written) = tokio::join!(reading, writing);
    match (read, written) {
        (Ok(_), Ok(loaded)) => Ok(loaded),
        (Err(cause), written) => Err(Failure {
            error: StepError::Database(source_spec.error(format!(
                "reading the source of mapping {} failed: {cause}",
                plan.mapref
            ))),
            rejected: written.err().map(|f| f.rejected).unwrap_or_default(),
        }),
        (Ok(_), Err(mut failure)) => {
            if let StepError::Database(message) = &failure.error {
                failure.error = StepError::Database(target_spec.error(message));
            }
            Err(failure)
        }
    }
}

/// The source query, with `DWT_PARAMn` given the request's parameters and resumed from
/// `param1` as the plan's checkpoint says. The values go in as quoted literals, as the
/// original's driver sends them: the database then reads each as the type it is
/// compared with (a date, a number), which a text bind would not allow on PostgreSQL.
fn source_query(plan: &MappingPlan, ctx: &RunContext, kind: DbKind) -> String {
    let literal = |value: Option<&str>| match value {
        None => "NULL".to_string(),
        Some(text) => quote_literal(text, kind),
    };
    let sql = plan.combination.sql.trim().trim_end_matches(';');
    let mut text = replace_dwt_params(sql, |n| {
        literal(ctx.params.get(n - 1).and_then(|p| p.as_deref()))
    });
    let resume_from = ctx.params[0]
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("COMPLETED"));
    match (&plan.checkpoint, resume_from) {
        (Checkpoint::Key(columns), Some(last)) => {
            // Resume after the last key loaded, in key order.
            let parts: Vec<&str> = last.split('|').collect();
            let list = columns.join(", ");
            let values: Vec<String> = (0..columns.len())
                .map(|i| literal(Some(parts.get(i).copied().unwrap_or(""))))
                .collect();
            let (left, right) = if columns.len() == 1 {
                (list.clone(), values[0].clone())
            } else {
                (format!("({list})"), format!("({})", values.join(", ")))
            };
            text = format!(
                "SELECT * FROM ({text}) source_data WHERE {left} > {right} ORDER BY {list}"
            );
        }
        (Checkpoint::SkipRows, Some(skip)) if skip.parse::<u64>().is_ok() => {
            text = format!(
                "SELECT * FROM ({text}) source_data LIMIT {} OFFSET {skip}",
                i64::MAX
            );
        }
        _ => {}
    }
    text
}

/// A string literal for `kind`: quotes doubled, and backslashes too on MySQL, which
/// reads them as escapes.
fn quote_literal(text: &str, kind: DbKind) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if kind == DbKind::MySql => out.push_str("\\\\"),
            '\0' => {}
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// Replaces each `DWT_PARAMn` token (any case, outside quotes and comments) with
/// `placeholder(n)`.
fn replace_dwt_params(sql: &str, mut placeholder: impl FnMut(usize) -> String) -> String {
    const TOKEN: &str = "DWT_PARAM";
    let bytes = sql.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    crate::scan_code(sql, |i| {
        let token_end = i + TOKEN.len();
        if !bytes
            .get(i..token_end)
            .is_some_and(|word| word.eq_ignore_ascii_case(TOKEN.as_bytes()))
            || (i > 0 && is_word(bytes[i - 1]))
        {
            return None;
        }
        let end = bytes[token_end..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(bytes.len(), |n| token_end + n);
        let number = sql[token_end..end].parse::<usize>().ok();
        let ends_word = bytes.get(end).is_none_or(|b| !is_word(*b));
        match number {
            Some(n @ 1..=dwsched_model::PARAM_COUNT) if ends_word => {
                out.push_str(&sql[copied..i]);
                out.push_str(&placeholder(n));
                copied = end;
                Some(end)
            }
            _ => Some(token_end),
        }
    });
    out.push_str(&sql[copied..]);
    out
}

/// The names of the columns a statement returns, from its preparation.
async fn describe_columns(conn: &mut DbConn, sql: &str) -> Result<Vec<String>, sqlx::Error> {
    fn names<C: sqlx::Column>(columns: &[C]) -> Vec<String> {
        columns.iter().map(|c| c.name().to_string()).collect()
    }
    let sql = AssertSqlSafe(sql.to_string()).into_sql_str();
    Ok(match conn {
        DbConn::Postgres(c) => names((&mut **c).prepare(sql).await?.columns()),
        DbConn::MySql(c) => names((&mut **c).prepare(sql).await?.columns()),
        DbConn::Sqlite(c) => names((&mut **c).prepare(sql).await?.columns()),
    })
}

/// Runs `$sql` with `$binds` on `$executor` of database `$db`; gives the rows affected.
macro_rules! execute_with {
    ($db:ty, $executor:expr, $sql:expr, $binds:expr) => {{
        let mut args = <$db as Database>::Arguments::default();
        for value in $binds {
            push_value::<$db>(&mut args, value)?;
        }
        sqlx::query_with(AssertSqlSafe($sql.to_string()), args)
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
    }};
}

/// What a target database does for a mapping load, in the load's transaction.
trait TargetTx {
    async fn execute(&mut self, sql: &str, binds: &[Value]) -> Result<u64, sqlx::Error>;
    /// Appends rows (business values, sequence number, hash) to the staging table.
    async fn stage(
        &mut self,
        statements: &Statements,
        rows: &[Vec<Value>],
    ) -> Result<(), sqlx::Error>;
    async fn commit(self) -> Result<(), sqlx::Error>;
}

struct PgTarget<'c> {
    tx: sqlx::Transaction<'c, sqlx::Postgres>,
    copy: Vec<u8>,
}

impl TargetTx for PgTarget<'_> {
    async fn execute(&mut self, sql: &str, binds: &[Value]) -> Result<u64, sqlx::Error> {
        execute_with!(sqlx::Postgres, &mut *self.tx, sql, binds)
    }

    async fn stage(
        &mut self,
        statements: &Statements,
        rows: &[Vec<Value>],
    ) -> Result<(), sqlx::Error> {
        self.copy.clear();
        for row in rows {
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    self.copy.push(b'\t');
                }
                write_copy_field(&mut self.copy, value);
            }
            self.copy.push(b'\n');
        }
        let mut copy = self.tx.copy_in_raw(&statements.copy_into_stage()).await?;
        copy.send(self.copy.as_slice()).await?;
        copy.finish().await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

struct MySqlTarget<'c> {
    tx: sqlx::Transaction<'c, sqlx::MySql>,
}

impl TargetTx for MySqlTarget<'_> {
    async fn execute(&mut self, sql: &str, binds: &[Value]) -> Result<u64, sqlx::Error> {
        execute_with!(sqlx::MySql, &mut *self.tx, sql, binds)
    }

    async fn stage(
        &mut self,
        statements: &Statements,
        rows: &[Vec<Value>],
    ) -> Result<(), sqlx::Error> {
        let width = rows.first().map_or(1, Vec::len).max(1);
        // MySQL takes at most 65,535 binds per statement.
        let per_statement = (30_000 / width).clamp(1, 1_000);
        for chunk in rows.chunks(per_statement) {
            let flat: Vec<Value> = chunk.iter().flatten().cloned().collect();
            let sql = statements.insert_into_stage(chunk.len());
            execute_with!(sqlx::MySql, &mut *self.tx, sql, &flat)?;
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// How a load applies its rows.
#[derive(Clone, Copy)]
struct How {
    mode: Mode,
    /// Empty the target first (`truncate_flag`).
    truncate: bool,
    /// The source's database, whose driver's renderings the hash follows.
    source_kind: DbKind,
    /// The run's timestamp for versions and audit columns.
    stamp: NaiveDateTime,
}

/// Stages the source, then applies it, in `tx`.
async fn write<T: TargetTx>(
    mut tx: T,
    step: &str,
    plan: &MappingPlan,
    how: How,
    statements: &Statements,
    progress: &RunProgress,
    mut receiver: mpsc::Receiver<Message>,
) -> Result<Loaded, Failure> {
    let mut rejected: Vec<RowError> = Vec::new();
    macro_rules! fail {
        ($what:expr, $error:expr) => {
            return Err(Failure {
                error: StepError::Database(format!(
                    "{} for mapping {} failed: {}",
                    $what, plan.mapref, $error
                )),
                rejected: std::mem::take(&mut rejected),
            })
        };
    }
    for sql in statements.prepare_stage() {
        if let Err(e) = tx.execute(&sql, &[]).await {
            fail!("preparing the staging table", e);
        }
    }
    let mut shape: Option<RowShape> = None;
    let mut fetched: i64 = 0;
    let mut staged: i64 = 0;
    let mut hash_text = String::new();
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(plan.batch_rows);
    let finished = loop {
        let Some(message) = receiver.recv().await else {
            break false;
        };
        let source_batch = match message {
            Message::Batch(batch) => batch,
            Message::End => break true,
        };
        if shape.is_none() {
            shape = match RowShape::new(plan, &source_batch.columns) {
                Ok(shape) => Some(shape),
                Err(message) => {
                    return Err(Failure {
                        error: StepError::Plan(message),
                        rejected,
                    });
                }
            };
        }
        let shape = shape.as_ref().expect("set above");
        let Rows::Values(rows) = source_batch.rows else {
            unreachable!("mapping sources are read as values")
        };
        batch.clear();
        for row in rows {
            fetched += 1;
            if let Some(null) = shape.key.iter().position(|&at| row[at] == Value::Null) {
                rejected.push(RowError {
                    step: step.to_string(),
                    key: shape.key_value(&row),
                    db_message: format!(
                        "key column {} is NULL; the row is not loaded",
                        shape.key_names[null]
                    ),
                    tag: None,
                });
                continue;
            }
            staged += 1;
            let hash = rwhkey::row_hash(
                shape.hashed.iter().map(|&i| &row[shape.columns[i]]),
                how.source_kind,
                &mut hash_text,
            );
            let mut values: Vec<Value> = shape.columns.iter().map(|&at| row[at].clone()).collect();
            values.push(Value::Int(staged));
            values.push(Value::Text(hash));
            batch.push(values);
        }
        if !batch.is_empty()
            && let Err(e) = tx.stage(statements, &batch).await
        {
            fail!("staging the source rows", e);
        }
        progress.set(RowTotals {
            source: fetched,
            target: 0,
            errors: rejected.len() as i64,
        });
    };
    if !finished {
        // The reader failed; its error is the cause.
        fail!("reading the source", "it ended early");
    }
    let totals = |written: i64| RowTotals {
        source: fetched,
        target: written,
        errors: rejected.len() as i64,
    };
    let report = |written: i64| progress.set(totals(written));
    let (duplicates, written) = match apply(&mut tx, how, statements, staged, report).await {
        Ok(counts) => counts,
        Err((what, e)) => fail!(what, e),
    };
    if let Err(e) = tx.commit().await {
        fail!("committing the load", e);
    }
    Ok(Loaded {
        totals: totals(written),
        rejected,
        duplicates,
    })
}

/// Applies the `staged` rows: duplicates dropped, the target emptied on `truncate`,
/// then the SCD writes batch by batch. Gives the duplicates dropped and the rows
/// written, or what failed.
async fn apply<T: TargetTx>(
    tx: &mut T,
    how: How,
    statements: &Statements,
    staged: i64,
    report: impl Fn(i64),
) -> Result<(u64, i64), (&'static str, sqlx::Error)> {
    for sql in statements.analyze_stage() {
        tx.execute(&sql, &[])
            .await
            .map_err(|e| ("analysing the staging table", e))?;
    }
    let mut duplicates = 0;
    for (sql, counts) in statements.drop_duplicates() {
        let n = tx
            .execute(&sql, &[])
            .await
            .map_err(|e| ("dropping duplicate keys", e))?;
        if counts {
            duplicates += n;
        }
    }
    if how.truncate && how.mode == Mode::Load {
        tx.execute(&statements.truncate(), &[])
            .await
            .map_err(|e| ("emptying the target", e))?;
    }
    if let (Some(sql), Mode::Load) = (statements.ensure_sequence(), how.mode) {
        tx.execute(&sql, &[])
            .await
            .map_err(|e| ("creating the SKEY sequence", e))?;
    }
    let mut written: i64 = 0;
    let mut low = 1;
    while low <= staged {
        let range: RangeInclusive<i64> = low..=(low + APPLY_BATCH_ROWS - 1).min(staged);
        let batch = match how.mode {
            Mode::Load => statements.apply(how.stamp, &range),
            Mode::Rehash => statements.rehash(&range),
        };
        for (what, sql, binds, counts) in batch {
            let n = tx.execute(&sql, &binds).await.map_err(|e| (what, e))?;
            if counts {
                written += i64::try_from(n).unwrap_or(i64::MAX);
            }
        }
        // Written in the load's transaction: committed with its last batch.
        report(written);
        low = range.end() + 1;
    }
    Ok((duplicates, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dwt_params_become_placeholders_outside_quotes() {
        let mut seen = Vec::new();
        let text = replace_dwt_params(
            "SELECT * FROM s WHERE region = DWT_PARAM1 AND day >= dwt_param10 \
             AND note <> 'DWT_PARAM2' AND x = DWT_PARAM11 AND MY_DWT_PARAM3 = 1 -- DWT_PARAM4",
            |n| {
                seen.push(n);
                format!("${}", seen.len())
            },
        );
        assert_eq!(
            text,
            "SELECT * FROM s WHERE region = $1 AND day >= $2 \
             AND note <> 'DWT_PARAM2' AND x = DWT_PARAM11 AND MY_DWT_PARAM3 = 1 -- DWT_PARAM4"
        );
        assert_eq!(seen, [1, 10]);
    }
}
