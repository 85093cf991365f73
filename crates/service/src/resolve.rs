//! What a run needs before its first step: the flow its job's `DWLOGIC` holds (a
//! flow, or a DWTOOL mapping job's one `mapping` step), the connections the flow names,
//! and the plans of its mapping steps with their connections.

use std::collections::BTreeMap;
use std::sync::Arc;

use dwsched_flow::mapping::MappingRun;
use dwsched_flow::{ConnectionSpec, Connections, Flow, FlowFormat, parse_flow};
use dwsched_model::JobFlow;

use crate::state::Shared;

/// The flow a job runs: its `DWLOGIC` as a flow (SPEC §7), or one `mapping` step when
/// it is DWTOOL-generated mapping code (§7.1).
pub(crate) fn flow_of(mapref: &str, flow_row: &JobFlow) -> Result<Flow, String> {
    let text = flow_row.dwlogic.as_deref().unwrap_or("");
    if dwsched_flow::mapping::is_mapping_code(text) {
        return Ok(Flow::for_mapping_job(mapref));
    }
    parse_flow(text, FlowFormat::Json).map_err(|err| {
        if text.trim_start().starts_with('{') {
            format!(
                "the flow of job '{mapref}' (JOBFLWID {}) is not valid: {err}",
                flow_row.jobflwid
            )
        } else {
            format!(
                "job '{mapref}' (JOBFLWID {}) is not a mapping job: its DWLOGIC is code that DWTOOL's generator did not write for a mapping, and dwsched runs only flows (SPEC §7) and DWTOOL mapping jobs (§7.1)",
                flow_row.jobflwid
            )
        }
    })
}

/// The named connections a flow uses, read from `DMS_DBCONDTLS` as the run starts (a
/// changed connection takes effect with the next run), and the plans of its mapping
/// steps with the connections they name by `CONID`.
pub(crate) async fn resolve_connections(
    shared: &Shared,
    flow: &Flow,
) -> Result<(Connections, Arc<BTreeMap<String, MappingRun>>), String> {
    let mut specs: Vec<ConnectionSpec> = Vec::new();
    for name in flow.connections() {
        let row = shared
            .store
            .get_connection(name)
            .await
            .map_err(|e| format!("reading connection '{name}' failed: {e}"))?
            .ok_or_else(|| {
                format!("connection '{name}' is not registered (dwsched conn put {name} --url URL)")
            })?;
        specs.push(ConnectionSpec::from_row(&row)?);
    }
    let mut mappings = BTreeMap::new();
    for mapref in flow.mappings() {
        let resolved = crate::dwtool::resolve_mapping(&*shared.store, mapref)
            .await
            .map_err(|e| format!("reading the metadata of mapping job '{mapref}' failed: {e}"))?;
        for warning in &resolved.report.warnings {
            tracing::warn!(mapref, "mapping job {mapref}: {warning}");
        }
        let (run, connections) = resolved.into_run()?;
        for row in connections {
            if !specs.iter().any(|s| s.name == row.connm) {
                specs.push(ConnectionSpec::from_row(&row)?);
            }
        }
        mappings.insert(mapref.to_string(), run);
    }
    Ok((
        Connections::new(specs, shared.pools.clone()),
        Arc::new(mappings),
    ))
}

/// A `DMS_DBCONDTLS` row as the only connection of a run that names it by `CONID` (a
/// DWTOOL report or upload), over the node's pools; its name and backend. `what` names
/// the object in messages (`report 4`).
pub(crate) fn sole_connection(
    shared: &Shared,
    row: &dwsched_model::Connection,
    what: &str,
) -> Result<(Connections, String, dwsched_flow::DbKind), String> {
    let spec = ConnectionSpec::from_row(row).map_err(|e| format!("{what}: {e}"))?;
    let (name, kind) = (spec.name.clone(), spec.kind);
    Ok((Connections::new([spec], shared.pools.clone()), name, kind))
}

/// The current `DMS_DBCONDTLS` row of `CONID` `conid`, or why there is none.
pub(crate) async fn connection_by_id(
    shared: &Shared,
    conid: i64,
    what: &str,
) -> Result<dwsched_model::Connection, String> {
    shared
        .store
        .get_connection_by_id(conid)
        .await
        .map_err(|e| format!("{what}: reading connection {conid} failed: {e}"))?
        .ok_or_else(|| format!("{what}: connection {conid} is not in DMS_DBCONDTLS (CURFLG='Y')"))
}
