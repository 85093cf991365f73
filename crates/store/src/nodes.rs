//! Nodes and leases: `DMS_SCHNODE` rows and their heartbeats, and the named leases of
//! `DMS_SCHLEASE`, with every deadline taken from the database's clock.

use chrono::NaiveDateTime;
use dwsched_model::{Lease, Node};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::common::NODE_COLUMNS;
use crate::driver::{Affected, Conn, Driver, utc};
use crate::{Context as _, Result};

/// The statements of nodes and leases, for every backend.
pub(crate) trait Nodes: Driver
where
    for<'c> &'c mut Conn<Self>: Executor<'c, Database = Self::Db>,
    for<'p> &'p sqlx::Pool<Self::Db>: Executor<'p, Database = Self::Db>,
    usize: sqlx::ColumnIndex<<Self::Db as Database>::Row>,
    <Self::Db as Database>::Arguments: sqlx::IntoArguments<Self::Db>,
    <Self::Db as Database>::QueryResult: Affected,
    for<'q> &'q str: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> String: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<String>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<i64>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> f64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<NaiveDateTime>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    fn decode_node(row: &<Self::Db as Database>::Row) -> sqlx::Result<Node> {
        Ok(Node {
            node_id: row.try_get(0)?,
            host: row.try_get(1)?,
            pid: row.try_get(2)?,
            version: row.try_get(3)?,
            started_at: utc(row.try_get(4)?),
            heartbeat_at: utc(row.try_get(5)?),
            role: row.try_get(6)?,
            http_addr: row.try_get(7)?,
            lease_seconds: row.try_get(8)?,
        })
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {NODE_COLUMNS} FROM DMS_SCHNODE ORDER BY NODE_ID"
        )))
        .fetch_all(self.pool())
        .await
        .context(|| "listing scheduler nodes".to_string())?;
        rows.iter()
            .map(Self::decode_node)
            .collect::<sqlx::Result<_>>()
            .context(|| "reading scheduler nodes".to_string())
    }

    async fn get_lease(&self, name: &str) -> Result<Option<Lease>> {
        let row = sqlx::query(self.sql(
            "SELECT NAME, HOLDER, LEASE_UNTIL, ACQUIRED_AT FROM DMS_SCHLEASE WHERE NAME = $1",
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .context(|| format!("reading the {name} lease"))?;
        row.map(|row| {
            Ok(Lease {
                name: row.try_get(0)?,
                holder: row.try_get(1)?,
                lease_until: utc(row.try_get(2)?),
                acquired_at: utc(row.try_get(3)?),
            })
        })
        .transpose()
        .context(|| format!("reading the {name} lease"))
    }

    async fn register_node(&self, node: &Node) -> Result<()> {
        let context = || format!("registering node {}", node.node_id);
        let mut tx = self.begin_write().await.context(context)?;
        sqlx::query(self.sql("DELETE FROM DMS_SCHNODE WHERE NODE_ID = $1"))
            .bind(&node.node_id)
            .execute(&mut *tx)
            .await
            .context(context)?;
        sqlx::query(self.sql(
            "INSERT INTO DMS_SCHNODE (NODE_ID, HOST, PID, VERSION, STARTED_AT, HEARTBEAT_AT, ROLE, \
             HTTP_ADDR, LEASE_SECONDS) \
             VALUES ($1, $2, $3, $4, COALESCE($5, DB_NOW()), COALESCE($6, DB_NOW()), $7, $8, $9)",
        ))
        .bind(&node.node_id)
        .bind(&node.host)
        .bind(node.pid)
        .bind(&node.version)
        .bind(node.started_at.map(|t| t.naive_utc()))
        .bind(node.heartbeat_at.map(|t| t.naive_utc()))
        .bind(&node.role)
        .bind(&node.http_addr)
        .bind(node.lease_seconds)
        .execute(&mut *tx)
        .await
        .context(context)?;
        tx.commit().await.context(context)
    }

    async fn get_node(&self, node_id: &str) -> Result<Option<Node>> {
        Ok(self
            .list_nodes()
            .await?
            .into_iter()
            .find(|n| n.node_id == node_id))
    }

    async fn stale_nodes(&self, lease: std::time::Duration) -> Result<Vec<Node>> {
        let context = || "looking for nodes that stopped heartbeating".to_string();
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {NODE_COLUMNS} FROM DMS_SCHNODE WHERE {} ORDER BY NODE_ID",
            crate::common::node_is_stale(1)
        )))
        .bind(-lease.as_secs_f64())
        .fetch_all(self.pool())
        .await
        .context(context)?;
        rows.iter()
            .map(Self::decode_node)
            .collect::<sqlx::Result<_>>()
            .context(context)
    }

    async fn heartbeat_node(&self, node_id: &str, lease: std::time::Duration) -> Result<bool> {
        let context = || format!("heartbeat of node {node_id}");
        let mut tx = self.begin_write().await.context(context)?;
        let alive = sqlx::query(
            self.sql("UPDATE DMS_SCHNODE SET HEARTBEAT_AT = DB_NOW() WHERE NODE_ID = $1"),
        )
        .bind(node_id)
        .execute(&mut *tx)
        .await
        .context(context)?
        .affected()
            > 0;
        if alive {
            sqlx::query(self.sql(
                "UPDATE DMS_PRCREQ SET LEASE_UNTIL = DB_NOW_PLUS($1) WHERE CLAIMED_BY = $2 \
                 AND STATUS IN ('PROCESSING', 'CLAIMED')",
            ))
            .bind(lease.as_secs_f64())
            .bind(node_id)
            .execute(&mut *tx)
            .await
            .context(context)?;
        }
        tx.commit().await.context(context)?;
        Ok(alive)
    }

    async fn set_node_role(&self, node_id: &str, role: &str) -> Result<()> {
        sqlx::query(self.sql("UPDATE DMS_SCHNODE SET ROLE = $1 WHERE NODE_ID = $2"))
            .bind(role)
            .bind(node_id)
            .execute(self.pool())
            .await
            .context(|| format!("recording the role of node {node_id}"))?;
        Ok(())
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        lease: std::time::Duration,
    ) -> Result<bool> {
        let context = || format!("taking the {name} lease for node {holder}");
        let seconds = lease.as_secs_f64();
        // ACQUIRED_AT first: MySQL evaluates SET left to right, on updated values.
        let taken = sqlx::query(self.sql(
            "UPDATE DMS_SCHLEASE SET ACQUIRED_AT = CASE WHEN HOLDER = $1 THEN ACQUIRED_AT ELSE DB_NOW() END, \
             HOLDER = $2, LEASE_UNTIL = DB_NOW_PLUS($3) \
             WHERE NAME = $4 AND (HOLDER = $5 OR HOLDER IS NULL OR LEASE_UNTIL IS NULL OR LEASE_UNTIL < DB_NOW())",
        ))
        .bind(holder)
        .bind(holder)
        .bind(seconds)
        .bind(name)
        .bind(holder)
        .execute(self.pool())
        .await
        .context(context)?
        .affected()
            > 0;
        if taken {
            return Ok(true);
        }
        // The first node to want the lease makes its row; a node that loses that
        // race finds the row taken.
        let inserted = sqlx::query(self.sql(
            "INSERT INTO DMS_SCHLEASE (NAME, HOLDER, LEASE_UNTIL, ACQUIRED_AT) \
             VALUES ($1, $2, DB_NOW_PLUS($3), DB_NOW())",
        ))
        .bind(name)
        .bind(holder)
        .bind(seconds)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(err) => Err(err).context(context),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query(self.sql(
            "UPDATE DMS_SCHLEASE SET HOLDER = NULL, LEASE_UNTIL = NULL WHERE NAME = $1 AND HOLDER = $2",
        ))
        .bind(name)
        .bind(holder)
        .execute(self.pool())
        .await
        .context(|| format!("releasing the {name} lease of node {holder}"))?;
        Ok(())
    }

    async fn deregister_node(&self, node_id: &str) -> Result<()> {
        sqlx::query(self.sql("DELETE FROM DMS_SCHNODE WHERE NODE_ID = $1"))
            .bind(node_id)
            .execute(self.pool())
            .await
            .context(|| format!("deregistering node {node_id}"))?;
        Ok(())
    }
}
