//! Business calendars (`DMS_CALENDAR`, `DMS_CALDATE`): their work days and holidays.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use dwsched_model::{CalendarRecord, Holiday};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::driver::{Affected, Conn, Driver, utc};
use crate::{Context as _, Result};

/// The shared statements of this topic, for every backend.
pub(crate) trait Calendars: Driver
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
    for<'q> NaiveDate: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> NaiveDateTime: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> NaiveDate: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    /// Every calendar with its holidays, by name (`only`: that one alone).
    async fn read_calendars(&self, only: Option<&str>) -> Result<Vec<CalendarRecord>> {
        let context = || match only {
            Some(name) => format!("reading calendar '{name}'"),
            None => "reading the business calendars".to_string(),
        };
        let filter = if only.is_some() {
            "WHERE CALNM = $1"
        } else {
            ""
        };
        let mut query = sqlx::query(self.sql(&format!(
            "SELECT CALNM, WORKDAYS, DESCR, RECUPDT FROM DMS_CALENDAR {filter} ORDER BY CALNM"
        )));
        if let Some(name) = only {
            query = query.bind(name);
        }
        let rows = query.fetch_all(self.pool()).await.context(context)?;
        let mut calendars: BTreeMap<String, CalendarRecord> = BTreeMap::new();
        for row in rows {
            let name: String = row.try_get(0).context(context)?;
            calendars.insert(
                name.clone(),
                CalendarRecord {
                    name,
                    workdays: row.try_get(1).context(context)?,
                    description: row.try_get(2).context(context)?,
                    updated_at: utc(row.try_get(3).context(context)?),
                    holidays: Vec::new(),
                },
            );
        }
        let mut query = sqlx::query(self.sql(&format!(
            "SELECT CALNM, CALDT, DESCR FROM DMS_CALDATE {filter} ORDER BY CALNM, CALDT"
        )));
        if let Some(name) = only {
            query = query.bind(name);
        }
        for row in query.fetch_all(self.pool()).await.context(context)? {
            let name: String = row.try_get(0).context(context)?;
            // Holidays of a calendar without its DMS_CALENDAR row belong to none.
            if let Some(calendar) = calendars.get_mut(&name) {
                // A date another tool wrote as text, perhaps with a time of day
                // (SQLite keeps what it is given), is read by its date part.
                let date = match row.try_get::<NaiveDate, _>(1) {
                    Ok(date) => date,
                    Err(err) => row
                        .try_get::<String, _>(1)
                        .ok()
                        .and_then(|text| {
                            NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
                        })
                        .ok_or(err)
                        .context(|| format!("reading DMS_CALDATE of calendar '{name}'"))?,
                };
                calendar.holidays.push(Holiday {
                    date,
                    description: row.try_get(2).context(context)?,
                });
            }
        }
        Ok(calendars.into_values().collect())
    }

    /// Creates a calendar, or changes its work days and description; whether it was new.
    async fn put_calendar(
        &self,
        name: &str,
        workdays: &str,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let context = || format!("writing calendar '{name}'");
        let now = now.naive_utc();
        let mut tx = self.begin_write().await.context(context)?;
        let updated = sqlx::query(self.sql(
            "UPDATE DMS_CALENDAR SET WORKDAYS = $1, DESCR = $2, RECUPDT = $3 WHERE CALNM = $4",
        ))
        .bind(workdays)
        .bind(description)
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await
        .context(context)?
        .affected();
        if updated == 0 {
            sqlx::query(self.sql(
                "INSERT INTO DMS_CALENDAR (CALNM, WORKDAYS, DESCR, RECCRDT, RECUPDT) \
                 VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(name)
            .bind(workdays)
            .bind(description)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context(context)?;
        }
        tx.commit().await.context(context)?;
        Ok(updated == 0)
    }

    /// Adds holidays to a calendar in one transaction (a date it has already gets the
    /// new description); how many dates were new. `None` when there is no such
    /// calendar.
    async fn add_holidays(
        &self,
        name: &str,
        holidays: &[Holiday],
        now: DateTime<Utc>,
    ) -> Result<Option<usize>> {
        let context = || format!("adding holidays to calendar '{name}'");
        let mut tx = self.begin_write().await.context(context)?;
        let touched =
            sqlx::query(self.sql("UPDATE DMS_CALENDAR SET RECUPDT = $1 WHERE CALNM = $2"))
                .bind(now.naive_utc())
                .bind(name)
                .execute(&mut *tx)
                .await
                .context(context)?
                .affected();
        if touched == 0 {
            tx.rollback().await.context(context)?;
            return Ok(None);
        }
        let mut added = 0;
        for holiday in holidays {
            let replaced =
                sqlx::query(self.sql("DELETE FROM DMS_CALDATE WHERE CALNM = $1 AND CALDT = $2"))
                    .bind(name)
                    .bind(holiday.date)
                    .execute(&mut *tx)
                    .await
                    .context(context)?
                    .affected();
            sqlx::query(
                self.sql("INSERT INTO DMS_CALDATE (CALNM, CALDT, DESCR) VALUES ($1, $2, $3)"),
            )
            .bind(name)
            .bind(holiday.date)
            .bind(&holiday.description)
            .execute(&mut *tx)
            .await
            .context(context)?;
            if replaced == 0 {
                added += 1;
            }
        }
        tx.commit().await.context(context)?;
        Ok(Some(added))
    }

    /// Removes a holiday; whether the calendar had it.
    async fn remove_holiday(
        &self,
        name: &str,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let context = || format!("removing holiday {date} from calendar '{name}'");
        let mut tx = self.begin_write().await.context(context)?;
        let removed =
            sqlx::query(self.sql("DELETE FROM DMS_CALDATE WHERE CALNM = $1 AND CALDT = $2"))
                .bind(name)
                .bind(date)
                .execute(&mut *tx)
                .await
                .context(context)?
                .affected();
        sqlx::query(self.sql("UPDATE DMS_CALENDAR SET RECUPDT = $1 WHERE CALNM = $2"))
            .bind(now.naive_utc())
            .bind(name)
            .execute(&mut *tx)
            .await
            .context(context)?;
        tx.commit().await.context(context)?;
        Ok(removed > 0)
    }
}
