//! DWTOOL mapping jobs as the service sees them (SPEC §7.1): which jobs are mapping
//! jobs, and each one's plan read from the metadata and checked together with its
//! connections. Runs, `dwtool check` and `doctor` all read plans through here.

use dwsched_flow::mapping::{MappingRun, PlanReport, build_plan, is_mapping_code};
use dwsched_flow::{ConnectionSpec, DbKind};
use dwsched_model::Connection;
use dwsched_store::{Store, StoreError};

use crate::ops::{OpError, OpResult};

/// A mapping job's plan report, with its source and target connections when the plan
/// can run.
pub struct ResolvedMapping {
    /// Whether the mapref has a current `DMS_JOB` row or flow at all.
    pub known: bool,
    pub report: PlanReport,
    /// `(source, target)`.
    pub connections: Option<(Connection, Connection)>,
}

impl ResolvedMapping {
    /// The plan ready to run, with its connections' names, or why it cannot run.
    pub fn into_run(self) -> Result<(MappingRun, [Connection; 2]), String> {
        match (self.report.plan, self.connections) {
            (Some(plan), Some((source, target))) => Ok((
                MappingRun {
                    plan,
                    source_connection: source.connm.clone(),
                    target_connection: target.connm.clone(),
                },
                [source, target],
            )),
            _ => Err(format!(
                "mapping job '{}' cannot run: {}",
                self.report.mapref,
                self.report.failures.join("; ")
            )),
        }
    }
}

/// Reads and checks the plan of mapping job `mapref`: its metadata against its
/// `DWLOGIC`, and its connections (registered, usable, and a target that mapping loads
/// write).
pub async fn resolve_mapping(
    store: &dyn Store,
    mapref: &str,
) -> Result<ResolvedMapping, StoreError> {
    let rows = store.dwtool_mapping(mapref).await?;
    let known = rows.job.is_some() || rows.dwlogic.is_some();
    let mut report = build_plan(mapref, &rows);
    let Some(plan) = &report.plan else {
        return Ok(ResolvedMapping {
            known,
            report,
            connections: None,
        });
    };
    let (source_conid, target_conid) = (plan.combination.source_conid, plan.target_conid);
    let mut resolved = Vec::new();
    for (role, conid) in [("source", source_conid), ("target", target_conid)] {
        let Some(row) = store.get_connection_by_id(conid).await? else {
            report.failures.push(format!(
                "its {role} connection CONID {conid} is not a current DMS_DBCONDTLS row"
            ));
            continue;
        };
        match ConnectionSpec::from_row(&row) {
            Err(message) => report.failures.push(format!("its {role} {message}")),
            Ok(spec) if role == "target" && spec.kind == DbKind::Sqlite => {
                report.failures.push(format!(
                    "its target connection '{}' is SQLite; mapping loads write PostgreSQL or MySQL targets",
                    row.connm
                ));
            }
            Ok(_) => resolved.push(row),
        }
    }
    if !report.failures.is_empty() {
        report.plan = None;
        return Ok(ResolvedMapping {
            known,
            report,
            connections: None,
        });
    }
    let target = resolved.pop().expect("both connections resolved");
    let source = resolved.pop().expect("both connections resolved");
    Ok(ResolvedMapping {
        known,
        report,
        connections: Some((source, target)),
    })
}

/// The `CONID`s mapping job `mapref`'s plan reads and writes (none when it has no plan).
pub async fn connection_ids(store: &dyn Store, mapref: &str) -> Vec<i64> {
    match store.dwtool_mapping(mapref).await {
        Ok(rows) => build_plan(mapref, &rows)
            .plan
            .map(|plan| vec![plan.combination.source_conid, plan.target_conid])
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The jobs whose current flow is DWTOOL-generated mapping code, by mapref.
pub async fn mapping_jobs(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let mut maprefs = Vec::new();
    for job in store.list_jobs().await? {
        let flow = store.current_flow(&job.mapref).await?;
        if flow
            .and_then(|f| f.dwlogic)
            .is_some_and(|text| is_mapping_code(&text))
        {
            maprefs.push(job.mapref);
        }
    }
    Ok(maprefs)
}

/// The plan reports of `mapref`, or of every mapping job.
pub async fn check(store: &dyn Store, mapref: Option<&str>) -> OpResult<Vec<PlanReport>> {
    let maprefs = match mapref {
        Some(mapref) => vec![mapref.to_string()],
        None => mapping_jobs(store).await?,
    };
    let mut reports = Vec::with_capacity(maprefs.len());
    for mapref in maprefs {
        reports.push(resolve_known(store, &mapref).await?.report);
    }
    Ok(reports)
}

/// [`resolve_mapping`] for a mapref the user named: one with neither a `DMS_JOB` row
/// nor a flow is not found.
pub async fn resolve_known(store: &dyn Store, mapref: &str) -> OpResult<ResolvedMapping> {
    let resolved = resolve_mapping(store, mapref).await?;
    if !resolved.known {
        return Err(OpError::NotFound(format!(
            "no job '{mapref}' (no current DMS_JOB row and no current flow)"
        )));
    }
    Ok(resolved)
}

/// `dwtool rehash`: rewrites `RWHKEY` of mapping job `mapref`'s current target rows
/// from its source, versioning nothing. Gives the source rows read and the rows
/// rewritten.
pub async fn rehash(
    store: &dyn Store,
    mapref: &str,
    log_dir: std::path::PathBuf,
) -> OpResult<dwsched_flow::RowTotals> {
    let resolved = resolve_known(store, mapref).await?;
    let (run, connections) = resolved.into_run().map_err(OpError::Conflict)?;
    let specs = connections
        .iter()
        .map(ConnectionSpec::from_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(OpError::Conflict)?;
    let pools = dwsched_flow::Pools::new();
    let ctx = dwsched_flow::RunContext {
        prcid: 0,
        mapref: mapref.to_string(),
        run_date: chrono::Utc::now().date_naive(),
        params: Default::default(),
        truncate: false,
        log_dir,
        connections: dwsched_flow::Connections::new(specs, pools.clone()),
        mappings: Default::default(),
        progress: Default::default(),
        steps: Default::default(),
        from_step: None,
        stop: dwsched_flow::StopSignal::new(),
        supervisor: dwsched_flow::supervisor::this_executable(),
    };
    let totals = dwsched_flow::mapping::rehash(&run, &ctx)
        .await
        .map_err(|e| OpError::Conflict(format!("rehashing mapping job '{mapref}' failed: {e}")));
    pools.close().await;
    totals
}
