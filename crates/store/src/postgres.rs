//! The PostgreSQL store. Tables live unquoted (lower-case) in the configured schema,
//! which is put first on each connection's `search_path`; ids come from the original
//! install's sequences (`DMS_JOBSCHSEQ`, …); claims use `FOR UPDATE SKIP LOCKED`.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, Postgres};

use dwsched_model::{Request, RunWrite, RunWritten, ScheduleRow};

use crate::common::{claim_update_sql, sort_oldest_first, store_impl};
use crate::driver::Driver;
use crate::driver::decode_all;
use crate::schema::Table;
use crate::{Backend, Context as _};
use crate::{StoreOptions, redact_url};

/// Opens the runs of requests their nodes still hold (the request rows locked, so that
/// a rescue waits), with the `PRCID` of each by request. A run already open for the
/// same request, node, mapref and date (a retry after a lost reply to the commit) is
/// answered with its `PRCID` instead.
const OPEN_RUNS: &str = "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
     $4::bigint[], $5::bigint[], $6::timestamp[], $7::text[], $8::bigint[], $9::text[], $10::text[], \
     $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::date[]) \
     AS i(request_id, node, mapref, jobid, jobflwid, started, prclog, sessionid, \
     p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, run_date)), \
     held AS (SELECT i.* FROM input i JOIN DMS_PRCREQ q ON q.REQUEST_ID = i.request_id \
     AND q.CLAIMED_BY = i.node AND q.STATUS IN ('PROCESSING', 'CLAIMED') FOR UPDATE OF q), \
     existing AS (SELECT CAST(l.PRCID AS BIGINT) AS prcid, l.REQUEST_ID AS request_id FROM DMS_PRCLOG l \
     JOIN held h ON l.MAPREF = h.mapref AND l.STATUS = 'IP' AND l.REQUEST_ID = h.request_id \
     AND l.NODE = h.node AND l.RUN_DATE = h.run_date), \
     opened AS (INSERT INTO DMS_PRCLOG (PRCID, JOBID, JOBFLWID, STRTDT, STATUS, PRCLOG, MAPREF, SESSIONID, \
     PARAM1, PARAM2, PARAM3, PARAM4, PARAM5, PARAM6, PARAM7, PARAM8, PARAM9, PARAM10, \
     RECCRDT, RECUPDT, REQUEST_ID, NODE, RUN_DATE) \
     SELECT nextval('dms_prclogseq'), jobid, jobflwid, started, 'IP', prclog, mapref, sessionid, \
     p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, started, started, request_id, node, run_date FROM held h \
     WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.request_id = h.request_id) \
     RETURNING CAST(PRCID AS BIGINT) AS prcid, REQUEST_ID AS request_id) \
     SELECT prcid, request_id FROM opened UNION ALL SELECT prcid, request_id FROM existing";

/// Closes the runs still `IP` and writes every run's `DMS_JOBLOG` row, except for a run
/// this very end closed already (a retry after a lost answer: the CTEs see the rows as
/// they were before the statement); returns the runs it closed.
const FINISH_RUNS: &str = "WITH input AS (SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], \
     $4::timestamp[], $5::timestamp[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], \
     $10::bigint[], $11::bigint[], $12::bigint[]) \
     AS i(prcid, status, msg, ended, prcdt, mapref, jobid, srcrows, trgrows, errrows, log_prcid, sessionid)), \
     closed AS (UPDATE DMS_PRCLOG l SET STATUS = i.status, MSG = i.msg, ENDDT = i.ended, RECUPDT = i.ended \
     FROM input i WHERE l.PRCID = i.prcid AND l.STATUS = 'IP' RETURNING CAST(l.PRCID AS BIGINT) AS prcid), \
     logged AS (INSERT INTO DMS_JOBLOG (JOBLOGID, PRCDT, MAPREF, JOBID, SRCROWS, TRGROWS, ERRROWS, \
     PRCID, SESSIONID, RECCRDT) SELECT nextval('dms_joblogseq'), prcdt, mapref, jobid, srcrows, \
     trgrows, errrows, log_prcid, sessionid, $13 FROM input i \
     WHERE NOT EXISTS (SELECT 1 FROM DMS_PRCLOG l WHERE l.PRCID = i.prcid AND l.STATUS = i.status \
     AND l.ENDDT = i.ended)) \
     SELECT prcid FROM closed";

/// Completes the requests their nodes still hold; returns those it completed.
const COMPLETE_REQUESTS: &str = "UPDATE DMS_PRCREQ q SET STATUS = i.status, RESULT_PAYLOAD = i.payload, \
     COMPLETED_AT = i.completed_at, LEASE_UNTIL = NULL \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamp[], $5::text[]) \
     AS i(request_id, status, payload, completed_at, node) \
     WHERE q.REQUEST_ID = i.request_id AND q.STATUS IN ('PROCESSING', 'CLAIMED') \
     AND (i.node IS NULL OR q.CLAIMED_BY = i.node) RETURNING q.REQUEST_ID";

/// A claim: the candidates are skipped while another claim holds them, and the
/// claiming node's row is held against a rescue's delete (which does not conflict with
/// its heartbeat's update).
pub(crate) fn claim_sql(class: dwsched_model::RequestClass) -> String {
    claim_update_sql(class, "FOR UPDATE OF r SKIP LOCKED", "FOR KEY SHARE")
}

pub(crate) const RUN_WRITE_STATEMENTS: [&str; 3] = [OPEN_RUNS, FINISH_RUNS, COMPLETE_REQUESTS];

pub struct PgStore {
    pool: PgPool,
    schema: String,
}

impl PgStore {
    pub async fn open(options: &StoreOptions) -> crate::Result<Self> {
        let schema = options
            .validated_schema()?
            .unwrap_or("public")
            .to_ascii_lowercase();
        let connect = PgConnectOptions::from_str(&options.url).map_err(|err| {
            crate::StoreError::BadUrl(format!("'{}': {err}", redact_url(&options.url)))
        })?;
        let connect = connect
            .options([("search_path", schema.as_str())])
            .application_name("dwsched");
        // A direct first connection reports the real cause (refused, bad password, no
        // such database) where a pool would only report its own timeout.
        let probe = tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| options.connect_error(crate::Backend::Postgres, "timed out"))?
        .map_err(|err| options.connect_error(crate::Backend::Postgres, err))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|err| options.connect_error(crate::Backend::Postgres, err))?;
        if options.create {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&pool)
            .await
            .map_err(|source| crate::StoreError::Database {
                context: format!("creating schema {schema}"),
                source,
            })?;
        }
        Ok(Self { pool, schema })
    }
}

impl Driver for PgStore {
    type Db = Postgres;
    const BACKEND: Backend = Backend::Postgres;

    fn pool(&self) -> &sqlx::Pool<Self::Db> {
        &self.pool
    }

    fn schema_name(&self) -> String {
        self.schema.clone()
    }
    async fn lock_for_migration(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(format!("dwsched migrate {schema}"))
            .execute(conn)
            .await
            .map(drop)
    }
    async fn unlock_after_migration(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(format!("dwsched migrate {schema}"))
            .execute(conn)
            .await
            .map(drop)
    }
    /// Creates the table's sequence when missing. A table the original tool filled
    /// already has ids, so a new sequence starts above the largest.
    async fn prepare_table(conn: &mut PgConnection, table: &Table) -> sqlx::Result<()> {
        for sequence in table.sequences() {
            let sequence = sequence.to_ascii_lowercase();
            let exists: Option<String> = sqlx::query_scalar("SELECT CAST(to_regclass($1) AS TEXT)")
                .bind(&sequence)
                .fetch_one(&mut *conn)
                .await?;
            if exists.is_some() {
                continue;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SEQUENCE IF NOT EXISTS {sequence}"
            )))
            .execute(&mut *conn)
            .await?;
            if Self::table_columns(&mut *conn, table.name).await?.is_some() {
                let id = table.columns[0].name;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SELECT setval('{sequence}', CAST(MAX({id}) AS BIGINT)) FROM {} HAVING MAX({id}) IS NOT NULL",
                    table.name
                )))
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
    /// The upper-case names of a table's columns, `None` when it does not exist.
    async fn table_columns(
        conn: &mut PgConnection,
        table: &str,
    ) -> sqlx::Result<Option<Vec<String>>> {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT upper(CAST(column_name AS TEXT)) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = lower($1)",
        )
        .bind(table)
        .fetch_all(conn)
        .await?;
        Ok((!columns.is_empty()).then_some(columns))
    }
    async fn index_exists(conn: &mut PgConnection, index: &str) -> sqlx::Result<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = lower($1)",
        )
        .bind(index)
        .fetch_optional(conn)
        .await?;
        Ok(found.is_some())
    }
    /// A trigger that notifies the schema's channel after each insert into the queue,
    /// whichever tool inserts.
    async fn install_notify(conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::raw_sql(
            "CREATE OR REPLACE FUNCTION dwsched_notify_request() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_notify('dwsched_' || left(TG_TABLE_SCHEMA, 55), ''); RETURN NULL; END $$; \
             DROP TRIGGER IF EXISTS dwsched_request_inserted ON dms_prcreq; \
             CREATE TRIGGER dwsched_request_inserted AFTER INSERT ON dms_prcreq \
             FOR EACH STATEMENT EXECUTE FUNCTION dwsched_notify_request()",
        )
        .execute(conn)
        .await
        .map(drop)
    }
    async fn request_watcher(&self) -> crate::Result<Option<Box<dyn crate::RequestWatcher>>> {
        let context = || "listening for new requests".to_string();
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .context(context)?;
        let channel: String = format!(
            "dwsched_{}",
            self.schema.chars().take(55).collect::<String>()
        );
        listener.listen(&channel).await.context(context)?;
        Ok(Some(Box::new(PgWatcher { listener })))
    }
    /// Ends a queue insert so that a taken dedupe key skips the row.
    const IGNORE_DUPLICATE_DEDUPE_KEY: &str = "ON CONFLICT (DEDUPE_KEY) DO NOTHING";
    async fn read_scheduled_ids(&self) -> crate::Result<Vec<i64>> {
        crate::schedules::Schedules::scheduled_id_rows(self).await
    }
    async fn list_schedules_where(&self, filter: &str) -> crate::Result<Vec<ScheduleRow>> {
        crate::schedules::Schedules::list_schedule_rows(self, filter).await
    }
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await
    }
    async fn insert_returning_id(
        conn: &mut PgConnection,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::Result<i64> {
        use sqlx::Row as _;
        query.fetch_one(conn).await?.try_get(0)
    }
    /// A batch of run writes in one transaction with one statement per kind (`UNNEST`ed
    /// arrays), instead of one or two per write: under load the statements, not the
    /// commits, are what the server spends its time on. A batch with a write the set
    /// statements do not cover (a run without a request, a finish with error rows)
    /// goes write by write.
    async fn write_run_batch(
        &self,
        writes: &[RunWrite],
    ) -> crate::Result<Vec<crate::Result<RunWritten>>> {
        let plain = writes.iter().all(|write| match write {
            RunWrite::Open(run) => run.request_id.is_some() && run.node.is_some(),
            RunWrite::Step { .. } => true,
            RunWrite::Finish(finish) => {
                finish.errors.is_empty()
                    && finish.joblogid.is_none()
                    && finish.status != dwsched_model::RunStatus::InProgress
            }
            RunWrite::Complete(c) => matches!(
                c.status,
                dwsched_model::RequestStatus::Done | dwsched_model::RequestStatus::Failed
            ),
        });
        if !plain || writes.len() == 1 {
            return crate::runs::Runs::write_runs_each(self, writes).await;
        }
        let context = || format!("writing {} run records", writes.len());
        let mut tx = self.pool.begin().await.context(context)?;
        let (mut opens, mut finishes, mut completions) = (Vec::new(), Vec::new(), Vec::new());
        for write in writes {
            match write {
                RunWrite::Open(run) => opens.push(run),
                // Few beside the runs' opens and ends: written one by one.
                RunWrite::Step { record, new } => {
                    crate::runs::Runs::write_step_in(self, &mut tx, record, *new).await?;
                }
                RunWrite::Finish(finish) => finishes.push(finish),
                RunWrite::Complete(completion) => completions.push(completion),
            }
        }
        let mut opened: HashMap<String, i64> = HashMap::new();
        if !opens.is_empty() {
            let mut query = sqlx::query_as::<_, (i64, String)>(OPEN_RUNS)
                .bind(
                    opens
                        .iter()
                        .map(|r| r.request_id.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(opens.iter().map(|r| r.node.clone()).collect::<Vec<_>>())
                .bind(opens.iter().map(|r| r.mapref.clone()).collect::<Vec<_>>())
                .bind(opens.iter().map(|r| r.jobid).collect::<Vec<_>>())
                .bind(opens.iter().map(|r| r.jobflwid).collect::<Vec<_>>())
                .bind(
                    opens
                        .iter()
                        .map(|r| r.started_at.naive_utc())
                        .collect::<Vec<_>>(),
                )
                .bind(opens.iter().map(|r| r.prclog.clone()).collect::<Vec<_>>())
                .bind(opens.iter().map(|r| r.sessionid).collect::<Vec<_>>());
            for index in 0..dwsched_model::PARAM_COUNT {
                query = query.bind(
                    opens
                        .iter()
                        .map(|r| r.params[index].clone())
                        .collect::<Vec<_>>(),
                );
            }
            query = query.bind(opens.iter().map(|r| r.run_date).collect::<Vec<_>>());
            opened = query
                .fetch_all(&mut *tx)
                .await
                .context(context)?
                .into_iter()
                .map(|(prcid, id)| (id, prcid))
                .collect();
        }
        let mut closed: HashSet<i64> = HashSet::new();
        if !finishes.is_empty() {
            let logged_at = chrono::Utc::now().naive_utc();
            closed = sqlx::query_scalar::<_, i64>(FINISH_RUNS)
                .bind(finishes.iter().map(|f| f.prcid).collect::<Vec<_>>())
                .bind(
                    finishes
                        .iter()
                        .map(|f| f.status.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(finishes.iter().map(|f| f.msg.clone()).collect::<Vec<_>>())
                .bind(
                    finishes
                        .iter()
                        .map(|f| f.ended_at.naive_utc())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    finishes
                        .iter()
                        .map(|f| f.log.prcdt.naive_utc())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    finishes
                        .iter()
                        .map(|f| f.log.mapref.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(finishes.iter().map(|f| f.log.jobid).collect::<Vec<_>>())
                .bind(finishes.iter().map(|f| f.log.srcrows).collect::<Vec<_>>())
                .bind(finishes.iter().map(|f| f.log.trgrows).collect::<Vec<_>>())
                .bind(finishes.iter().map(|f| f.log.errrows).collect::<Vec<_>>())
                .bind(finishes.iter().map(|f| f.log.prcid).collect::<Vec<_>>())
                .bind(finishes.iter().map(|f| f.log.sessionid).collect::<Vec<_>>())
                .bind(logged_at)
                .fetch_all(&mut *tx)
                .await
                .context(context)?
                .into_iter()
                .collect();
        }
        let mut completed: HashSet<String> = HashSet::new();
        if !completions.is_empty() {
            completed = sqlx::query_scalar::<_, String>(COMPLETE_REQUESTS)
                .bind(
                    completions
                        .iter()
                        .map(|c| c.request_id.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    completions
                        .iter()
                        .map(|c| c.status.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    completions
                        .iter()
                        .map(|c| c.result_payload.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    completions
                        .iter()
                        .map(|c| c.completed_at.naive_utc())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    completions
                        .iter()
                        .map(|c| c.claimed_by.clone())
                        .collect::<Vec<_>>(),
                )
                .fetch_all(&mut *tx)
                .await
                .context(context)?
                .into_iter()
                .collect();
        }
        tx.commit().await.context(context)?;
        Ok(writes
            .iter()
            .map(|write| match write {
                RunWrite::Open(run) => {
                    let request_id = run.request_id.clone().unwrap_or_default();
                    match opened.get(&request_id) {
                        Some(prcid) => Ok(RunWritten::Opened(*prcid)),
                        None => Err(crate::StoreError::ClaimLost {
                            request_id,
                            node: run.node.clone().unwrap_or_default(),
                        }),
                    }
                }
                RunWrite::Finish(finish) => {
                    Ok(RunWritten::Finished(closed.contains(&finish.prcid)))
                }
                RunWrite::Complete(c) => {
                    Ok(RunWritten::Completed(completed.contains(&c.request_id)))
                }
                RunWrite::Step { .. } => Ok(RunWritten::Step),
            })
            .collect())
    }
    async fn claim_batch(&self, claim: &dwsched_model::Claim) -> sqlx::Result<Vec<Request>> {
        let sql = claim_sql(claim.class);
        let now = claim.now.naive_utc();
        let rows = sqlx::query(self.sql(&sql))
            .bind(now)
            .bind(i64::from(claim.limit))
            .bind(&claim.node)
            .bind(claim.lease.as_secs_f64())
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = decode_all(rows, <Self as crate::queue::Queue>::decode_request)?;
        sort_oldest_first(&mut claimed);
        Ok(claimed)
    }
}

struct PgWatcher {
    listener: PgListener,
}

#[async_trait::async_trait]
impl crate::RequestWatcher for PgWatcher {
    async fn changed(&mut self) -> crate::Result<()> {
        // After a lost connection the listener reconnects on its own; what was notified
        // meanwhile is caught by the poll fallback.
        self.listener
            .recv()
            .await
            .map(drop)
            .context(|| "waiting for request notifications".to_string())
    }
}

store_impl!(PgStore);
