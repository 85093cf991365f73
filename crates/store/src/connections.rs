//! Named connections of flow steps (`DMS_DBCONDTLS`).

use chrono::NaiveDateTime;
use dwsched_model::Connection;
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::common::{CONNECTION_COLUMNS, flag};
use crate::driver::{Affected, Conn, Driver, decode_all};
use crate::{Context as _, Result};

/// The shared statements of this topic, for every backend.
pub(crate) trait Connections: Driver
where
    for<'c> &'c mut Conn<Self>: Executor<'c, Database = Self::Db>,
    for<'p> &'p sqlx::Pool<Self::Db>: Executor<'p, Database = Self::Db>,
    usize: sqlx::ColumnIndex<<Self::Db as Database>::Row>,
    <Self::Db as Database>::Arguments: sqlx::IntoArguments<Self::Db>,
    <Self::Db as Database>::QueryResult: Affected,
    for<'q> &'q str: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> String: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<String>: Encode<'q, Self::Db> + Type<Self::Db>,
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
    fn decode_connection(row: &<Self::Db as Database>::Row) -> sqlx::Result<Connection> {
        let curflg: Option<String> = row.try_get(10)?;
        Ok(Connection {
            conid: row.try_get(0)?,
            connm: row.try_get(1)?,
            dbtyp: row.try_get(2)?,
            dbhost: row.try_get(3)?,
            dbport: row.try_get(4)?,
            dbsrvnm: row.try_get(5)?,
            usrnm: row.try_get(6)?,
            passwd: row.try_get(7)?,
            constr: row.try_get(8)?,
            // The original install declares SCHNM NOT NULL, so "no default schema"
            // is stored as ''.
            schnm: row
                .try_get::<Option<String>, _>(9)?
                .filter(|s| !s.is_empty()),
            current: curflg.as_deref().unwrap_or("Y") == "Y",
        })
    }

    async fn put_connection(&self, c: &Connection) -> Result<i64> {
        let context = || format!("registering connection '{}'", c.connm);
        let mut tx = self.begin_write().await.context(context)?;
        let existing: Option<i64> = sqlx::query_scalar(
            self.sql("SELECT CAST(CONID AS BIGINT) FROM DMS_DBCONDTLS WHERE CONNM = $1"),
        )
        .bind(&c.connm)
        .fetch_optional(&mut *tx)
        .await
        .context(context)?;
        let conid = match existing {
            Some(conid) => {
                sqlx::query(self.sql(
                    "UPDATE DMS_DBCONDTLS SET DBTYP = $1, DBHOST = $2, DBPORT = $3, DBSRVNM = $4, \
                     USRNM = $5, PASSWD = $6, CONSTR = $7, SCHNM = $8, CURFLG = $9 WHERE CONID = $10",
                ))
                .bind(&c.dbtyp)
                .bind(&c.dbhost)
                .bind(c.dbport)
                .bind(&c.dbsrvnm)
                .bind(&c.usrnm)
                .bind(&c.passwd)
                .bind(&c.constr)
                .bind(c.schnm.as_deref().unwrap_or(""))
                .bind(flag(c.current))
                .bind(conid)
                .execute(&mut *tx)
                .await
                .context(context)?;
                conid
            }
            None => {
                let sql = self.insert_sql(
                    "DMS_DBCONDTLS",
                    "CONID",
                    "DMS_DBCONDTLSSEQ",
                    &[
                        "CONNM", "DBTYP", "DBHOST", "DBPORT", "DBSRVNM", "USRNM", "PASSWD",
                        "CONSTR", "SCHNM", "CURFLG",
                    ],
                );
                let query = sqlx::query(sql)
                    .bind(&c.connm)
                    .bind(&c.dbtyp)
                    .bind(&c.dbhost)
                    .bind(c.dbport)
                    .bind(&c.dbsrvnm)
                    .bind(&c.usrnm)
                    .bind(&c.passwd)
                    .bind(&c.constr)
                    .bind(c.schnm.as_deref().unwrap_or(""))
                    .bind(flag(c.current));
                Self::insert_returning_id(&mut tx, query)
                    .await
                    .context(context)?
            }
        };
        tx.commit().await.context(context)?;
        Ok(conid)
    }

    async fn retire_connection(&self, name: &str) -> Result<bool> {
        let done = sqlx::query(
            self.sql("UPDATE DMS_DBCONDTLS SET CURFLG = 'N' WHERE CONNM = $1 AND CURFLG = 'Y'"),
        )
        .bind(name)
        .execute(self.pool())
        .await
        .context(|| format!("retiring connection '{name}'"))?;
        Ok(done.affected() > 0)
    }

    async fn list_connections(&self) -> Result<Vec<Connection>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM DMS_DBCONDTLS WHERE COALESCE(CURFLG, 'Y') = 'Y' \
             ORDER BY CONNM"
        )))
        .fetch_all(self.pool())
        .await
        .context(|| "listing connections".to_string())?;
        decode_all(rows, Self::decode_connection).context(|| "reading connections".to_string())
    }

    async fn get_connection_by_id(&self, conid: i64) -> Result<Option<Connection>> {
        self.current_connection("CONID", conid, format!("CONID {conid}"))
            .await
    }

    async fn get_connection(&self, name: &str) -> Result<Option<Connection>> {
        self.current_connection("CONNM", name.to_string(), format!("'{name}'"))
            .await
    }

    /// The current connection whose `column` is `value`.
    async fn current_connection<T>(
        &self,
        column: &str,
        value: T,
        named: String,
    ) -> Result<Option<Connection>>
    where
        T: for<'q> Encode<'q, Self::Db> + Type<Self::Db> + Send,
    {
        let context = || format!("reading connection {named}");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM DMS_DBCONDTLS WHERE {column} = $1 \
             AND COALESCE(CURFLG, 'Y') = 'Y'"
        )))
        .bind(value)
        .fetch_optional(self.pool())
        .await
        .context(context)?;
        row.as_ref()
            .map(Self::decode_connection)
            .transpose()
            .context(context)
    }
}
