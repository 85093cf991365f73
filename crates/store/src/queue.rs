//! The request queue (`DMS_PRCREQ`): enqueue with dedupe keys, claims, completion, release and the counts operators read.

use chrono::{DateTime, NaiveDateTime, Utc};
use dwsched_model::{Claim, Completion, Enqueued, NewRequest, Request, RequestStatus, RequestType};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::common::REQUEST_COLUMNS;
use crate::driver::{Affected, Conn, Driver, utc};
use crate::{Context as _, Result};
use crate::{QueueDepth, StoreError};

/// The shared statements of this topic, for every backend.
pub(crate) trait Queue: Driver
where
    for<'c> &'c mut Conn<Self>: Executor<'c, Database = Self::Db>,
    for<'p> &'p sqlx::Pool<Self::Db>: Executor<'p, Database = Self::Db>,
    usize: sqlx::ColumnIndex<<Self::Db as Database>::Row>,
    <Self::Db as Database>::Arguments: sqlx::IntoArguments<Self::Db>,
    <Self::Db as Database>::QueryResult: Affected,
    for<'q> &'q str: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> String: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<String>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<&'q str>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> i64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<i64>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> f64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> NaiveDateTime: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<NaiveDateTime>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> i64: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    fn decode_request(row: &<Self::Db as Database>::Row) -> sqlx::Result<Request> {
        let request_type: String = row.try_get(2)?;
        let status: Option<String> = row.try_get(4)?;
        Ok(Request {
            request_id: row.try_get(0)?,
            mapref: row.try_get(1)?,
            request_type: RequestType::parse(&request_type),
            payload: row.try_get(3)?,
            status: status.as_deref().and_then(RequestStatus::parse),
            requested_at: utc(row.try_get(5)?),
            claimed_at: utc(row.try_get(6)?),
            claimed_by: row.try_get(7)?,
            completed_at: utc(row.try_get(8)?),
            result_payload: row.try_get(9)?,
            dedupe_key: row.try_get(10)?,
            not_before: utc(row.try_get(11)?),
            attempts: row.try_get::<Option<i64>, _>(12)?.unwrap_or(0),
            lease_until: utc(row.try_get(13)?),
        })
    }

    /// Completes a request on `conn` (see `Store::complete_request`).
    async fn complete_in(&self, conn: &mut Conn<Self>, c: &Completion) -> Result<bool> {
        if !matches!(c.status, RequestStatus::Done | RequestStatus::Failed) {
            return Err(StoreError::Invalid(format!(
                "request {} cannot be completed as {}",
                c.request_id, c.status
            )));
        }
        let done = sqlx::query(self.sql(
            "UPDATE DMS_PRCREQ SET STATUS = $1, RESULT_PAYLOAD = $2, COMPLETED_AT = $3, \
             LEASE_UNTIL = NULL WHERE REQUEST_ID = $4 AND STATUS IN ('PROCESSING', 'CLAIMED') \
             AND ($5 IS NULL OR CLAIMED_BY = $6)",
        ))
        .bind(c.status.as_str())
        .bind(&c.result_payload)
        .bind(c.completed_at.naive_utc())
        .bind(&c.request_id)
        .bind(&c.claimed_by)
        .bind(&c.claimed_by)
        .execute(&mut *conn)
        .await
        .context(|| format!("completing request {}", c.request_id))?;
        Ok(done.affected() > 0)
    }

    /// The insert of one `NEW` request with id `request_id`.
    fn request_insert<'q>(
        &self,
        request_id: &'q str,
        r: &'q NewRequest,
        now: DateTime<Utc>,
    ) -> sqlx::query::Query<'q, Self::Db, <Self::Db as Database>::Arguments> {
        sqlx::query(self.sql(
            "INSERT INTO DMS_PRCREQ (REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, \
             REQUESTED_AT, DEDUPE_KEY, NOT_BEFORE, ATTEMPTS, CLAIMED_BY) \
             VALUES ($1, $2, $3, $4, 'NEW', $5, $6, $7, 0, $8)",
        ))
        .bind(request_id)
        .bind(&r.mapref)
        .bind(r.request_type.as_str())
        .bind(&r.payload)
        .bind(now.naive_utc())
        .bind(&r.dedupe_key)
        .bind(r.not_before.map(|t| t.naive_utc()))
        .bind(&r.reserved_for)
    }

    async fn enqueue(&self, r: &NewRequest, now: DateTime<Utc>) -> Result<Enqueued> {
        let context = || format!("queueing a {} request for '{}'", r.request_type, r.mapref);
        let request_id = uuid::Uuid::new_v4().to_string();
        let inserted = self
            .request_insert(&request_id, r, now)
            .execute(self.pool())
            .await;
        match inserted {
            Ok(_) => Ok(Enqueued::Inserted(request_id)),
            Err(sqlx::Error::Database(db))
                if db.is_unique_violation() && r.dedupe_key.is_some() =>
            {
                let existing: String = sqlx::query_scalar(
                    self.sql("SELECT REQUEST_ID FROM DMS_PRCREQ WHERE DEDUPE_KEY = $1"),
                )
                .bind(&r.dedupe_key)
                .fetch_one(self.pool())
                .await
                .context(context)?;
                Ok(Enqueued::Duplicate(existing))
            }
            Err(err) => Err(err).context(context),
        }
    }

    async fn enqueue_many(&self, requests: &[NewRequest]) -> Result<usize> {
        let context = || format!("queueing {} requests", requests.len());
        let mut inserted = 0;
        // One multi-row insert per chunk: a minute's burst of fires is a few
        // round trips, not thousands.
        for chunk in requests.chunks(400) {
            let mut n = 0;
            let rows: Vec<String> = chunk
                .iter()
                .map(|_| {
                    let p: Vec<String> = (0..7)
                        .map(|_| {
                            n += 1;
                            format!("${n}")
                        })
                        .collect();
                    format!(
                        "({}, {}, {}, {}, 'NEW', {}, {}, {}, 0)",
                        p[0], p[1], p[2], p[3], p[4], p[5], p[6]
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO DMS_PRCREQ (REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, \
                 REQUESTED_AT, DEDUPE_KEY, NOT_BEFORE, ATTEMPTS) VALUES {} {}",
                rows.join(", "),
                Self::IGNORE_DUPLICATE_DEDUPE_KEY
            );
            // Time-ordered ids: requests written together share REQUESTED_AT, and the
            // claim takes them by id then, so they run in the order given (a schedule's
            // catch-up slots, fires a calendar moved onto one instant).
            let ids: Vec<String> = chunk
                .iter()
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect();
            // REQUESTED_AT is when the row is written, so lateness is measurable.
            let written = Utc::now().naive_utc();
            let mut query = sqlx::query(self.sql(&sql));
            for (r, id) in chunk.iter().zip(&ids) {
                query = query
                    .bind(id)
                    .bind(&r.mapref)
                    .bind(r.request_type.as_str())
                    .bind(&r.payload)
                    .bind(written)
                    .bind(&r.dedupe_key)
                    .bind(r.not_before.map(|t| t.naive_utc()));
            }
            let mut tx = self.begin_write().await.context(context)?;
            query.execute(&mut *tx).await.context(context)?;
            // Affected-row counts of a skipped insert differ between backends;
            // the fresh ids that exist are the rows added.
            let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
            let mut count = sqlx::query_scalar(self.sql(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM DMS_PRCREQ WHERE REQUEST_ID IN ({})",
                placeholders.join(", ")
            )));
            for id in &ids {
                count = count.bind(id);
            }
            let added: i64 = count.fetch_one(&mut *tx).await.context(context)?;
            inserted += usize::try_from(added).unwrap_or(0);
            tx.commit().await.context(context)?;
        }
        Ok(inserted)
    }

    async fn get_request(&self, request_id: &str) -> Result<Option<Request>> {
        let context = || format!("reading request {request_id}");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {REQUEST_COLUMNS} FROM DMS_PRCREQ WHERE REQUEST_ID = $1"
        )))
        .bind(request_id)
        .fetch_optional(self.pool())
        .await
        .context(context)?;
        row.as_ref()
            .map(Self::decode_request)
            .transpose()
            .context(context)
    }

    async fn held_requests(
        &self,
        node: &str,
        class: dwsched_model::RequestClass,
    ) -> Result<Vec<Request>> {
        let context = || format!("reading the requests node {node} holds");
        let kinds = match class {
            dwsched_model::RequestClass::Control => "NOT IN",
            dwsched_model::RequestClass::Runs | dwsched_model::RequestClass::Reserved => "IN",
        };
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {REQUEST_COLUMNS} FROM DMS_PRCREQ WHERE CLAIMED_BY = $1 \
             AND STATUS IN ('PROCESSING', 'CLAIMED') AND REQUEST_TYPE {kinds} {}",
            crate::common::run_types()
        )))
        .bind(node)
        .fetch_all(self.pool())
        .await
        .context(context)?;
        let mut held = crate::driver::decode_all(rows, Self::decode_request).context(context)?;
        crate::common::sort_oldest_first(&mut held);
        Ok(held)
    }

    async fn claim_requests(&self, claim: &Claim) -> Result<Vec<Request>> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        self.claim_batch(claim).await.context(|| {
            format!(
                "claiming {:?} requests for node {}",
                claim.class, claim.node
            )
        })
    }

    async fn complete_request(
        &self,
        request_id: &str,
        claimed_by: Option<&str>,
        status: RequestStatus,
        result_payload: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let completion = Completion {
            request_id: request_id.to_string(),
            claimed_by: claimed_by.map(str::to_string),
            status,
            result_payload: result_payload.to_string(),
            completed_at: now,
        };
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context(|| format!("completing request {request_id}"))?;
        self.complete_in(&mut conn, &completion).await
    }

    async fn cancel_request(
        &self,
        request_id: &str,
        result_payload: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(self.sql(
            "UPDATE DMS_PRCREQ SET STATUS = 'CANCELLED', RESULT_PAYLOAD = $1, COMPLETED_AT = $2 \
             WHERE REQUEST_ID = $3 AND STATUS IN ('NEW', 'QUEUED')",
        ))
        .bind(result_payload)
        .bind(now.naive_utc())
        .bind(request_id)
        .execute(self.pool())
        .await
        .context(|| format!("cancelling request {request_id}"))?;
        Ok(done.affected() > 0)
    }

    async fn queue_depth(&self) -> Result<QueueDepth> {
        let rows = sqlx::query(self.sql(
            "SELECT STATUS, CAST(COUNT(*) AS BIGINT) FROM DMS_PRCREQ GROUP BY STATUS ORDER BY STATUS",
        ))
        .fetch_all(self.pool())
        .await
        .context(|| "counting requests".to_string())?;
        let mut requests = Vec::new();
        for row in rows {
            let status: Option<String> = row.try_get(0).context(|| "counting requests".into())?;
            let count: i64 = row.try_get(1).context(|| "counting requests".into())?;
            requests.push((status.unwrap_or_default(), count));
        }
        Ok(QueueDepth { requests })
    }

    async fn live_counts(&self) -> Result<crate::LiveCounts> {
        let context = || "counting waiting requests and runs in progress".to_string();
        let row = sqlx::query(self.sql(
            "SELECT \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM DMS_PRCREQ WHERE STATUS = 'NEW'), \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM DMS_PRCREQ WHERE STATUS = 'PROCESSING'), \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM DMS_PRCLOG WHERE STATUS = 'IP')",
        ))
        .fetch_one(self.pool())
        .await
        .context(context)?;
        Ok(crate::LiveCounts {
            waiting: row.try_get(0).context(context)?,
            processing: row.try_get(1).context(context)?,
            runs_in_progress: row.try_get(2).context(context)?,
        })
    }

    async fn release_request(
        &self,
        request_id: &str,
        claimed_by: Option<&str>,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let done = sqlx::query(self.sql(
            "UPDATE DMS_PRCREQ SET STATUS = 'NEW', CLAIMED_AT = NULL, CLAIMED_BY = NULL, \
             LEASE_UNTIL = NULL, NOT_BEFORE = $1 \
             WHERE REQUEST_ID = $2 AND STATUS IN ('PROCESSING', 'CLAIMED') \
             AND ($3 IS NULL OR CLAIMED_BY = $4)",
        ))
        .bind(not_before.map(|t| t.naive_utc()))
        .bind(request_id)
        .bind(claimed_by)
        .bind(claimed_by)
        .execute(self.pool())
        .await
        .context(|| format!("returning request {request_id} to the queue"))?;
        Ok(done.affected() > 0)
    }

    #[cfg(feature = "test-support")]
    async fn list_requests(
        &self,
        status: Option<RequestStatus>,
        limit: u32,
    ) -> Result<Vec<Request>> {
        // Older tools' spellings of a status are listed with it.
        let statuses: [&str; 2] = match status {
            None => ["%", "%"],
            Some(RequestStatus::New) => ["NEW", "QUEUED"],
            Some(RequestStatus::Processing) => ["PROCESSING", "CLAIMED"],
            Some(other) => [other.as_str(), other.as_str()],
        };
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {REQUEST_COLUMNS} FROM DMS_PRCREQ \
             WHERE (STATUS LIKE $1 OR STATUS LIKE $2) \
             ORDER BY REQUESTED_AT DESC, REQUEST_ID DESC LIMIT $3"
        )))
        .bind(statuses[0])
        .bind(statuses[1])
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .context(|| "listing requests".to_string())?;
        crate::driver::decode_all(rows, Self::decode_request)
            .context(|| "reading requests".to_string())
    }
}
