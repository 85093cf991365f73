//! DWTOOL's report and file-upload schedules (`DMS_RPRT_SCHD`, `DMS_FLUPLD_SCHD`): the
//! fire of a due row, planned as the original's scheduler queues it (SPEC §7.2, §7.3),
//! with the next time from the row's `FRQNCY` and `TM_PRM` in the default zone rather
//! than the original's fixed delta.
//! The store applies a fire only while the row is as read, so one node fires it once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use dwsched_model::{DwtoolFire, NewRequest, ReportScheduleRow, RequestType, UploadScheduleRow};
use dwsched_schedule::{ReportTimes, ScheduleError, report_schedule, to_local, upload_schedule};

/// The fire of a due report schedule row at `now`: its `REPORT` request and where the
/// row moves. `IMMEDIATE`, or a rule with no time left, leaves the row `PAUSED`.
pub fn plan_report_fire(
    row: &ReportScheduleRow,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<DwtoolFire, ScheduleError> {
    let times = report_schedule(
        row.schdid,
        row.rprtid,
        row.frqncy.as_deref(),
        row.tm_prm.as_deref(),
        zone,
    )?;
    let next = match times {
        ReportTimes::Once => None,
        ReportTimes::Recurring(schedule) => schedule.next_fire(now),
    };
    Ok(fire(
        row.schdid,
        row.nxt_run_dt,
        next,
        now,
        zone,
        NewRequest::new(
            format!("REPORT:{}", row.rprtid),
            RequestType::Report,
            report_payload(row),
        ),
    ))
}

/// The fire of a due file-upload schedule row at `now` (SPEC §7.3): its `FILE_UPLOAD`
/// request, as the original queues it, and the next time from `FRQNCY`/`TM_PRM` in
/// the default zone; a rule with no time left leaves the row `PAUSED`.
pub fn plan_upload_fire(
    row: &UploadScheduleRow,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<DwtoolFire, ScheduleError> {
    let schedule = upload_schedule(
        row.schdid,
        &row.flupldref,
        row.frqncy.as_deref(),
        row.tm_prm.as_deref(),
        zone,
    )?;
    let quoted = serde_json::Value::from(row.flupldref.as_str()).to_string();
    Ok(fire(
        row.schdid,
        row.nxt_run_dt,
        schedule.next_fire(now),
        now,
        zone,
        NewRequest::new(
            format!("FLUPLD:{}", row.flupldref),
            RequestType::FileUpload,
            format!("{{\"load_mode\": \"INSERT\", \"flupldref\": {quoted}}}"),
        ),
    ))
}

/// Row `schdid`, planned from `expected_next`, fired at `now` with `request`: it moves
/// to `next` in the default zone, or is left `PAUSED` when no time is left.
fn fire(
    schdid: i64,
    expected_next: Option<chrono::NaiveDateTime>,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    zone: Tz,
    request: NewRequest,
) -> DwtoolFire {
    DwtoolFire {
        schdid,
        expected_next,
        next: next.map(|at| to_local(zone, at)),
        status: if next.is_some() { "ACTIVE" } else { "PAUSED" }.into(),
        fired_at: to_local(zone, now),
        request,
    }
}

/// The payload the original's scheduler queues, its keys in the same order:
/// `outputFormat` (`CSV` when empty), `destination` (`FILE`), `requestedBy`, then
/// `email` and `filePath` when the row has them, and `reportId`.
fn report_payload(row: &ReportScheduleRow) -> String {
    fn text(value: Option<&str>) -> Option<&str> {
        value.map(str::trim).filter(|v| !v.is_empty())
    }
    let quoted = |value: &str| serde_json::Value::from(value).to_string();
    let mut parts = vec![
        format!(
            "\"outputFormat\": {}",
            quoted(text(row.otpt_fmt.as_deref()).unwrap_or("CSV"))
        ),
        format!(
            "\"destination\": {}",
            quoted(text(row.dstn_typ.as_deref()).unwrap_or("FILE"))
        ),
        "\"requestedBy\": \"system\"".to_string(),
    ];
    if let Some(email) = text(row.emal_to.as_deref()) {
        parts.push(format!("\"email\": {}", quoted(email)));
    }
    if let Some(path) = text(row.fl_pth.as_deref()) {
        parts.push(format!("\"filePath\": {}", quoted(path)));
    }
    parts.push(format!("\"reportId\": {}", row.rprtid));
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn row(frqncy: &str, tm_prm: &str) -> ReportScheduleRow {
        ReportScheduleRow {
            schdid: 7,
            rprtid: 4,
            frqncy: Some(frqncy.into()),
            tm_prm: Some(tm_prm.into()),
            nxt_run_dt: Some(local("2026-03-28 09:00:00")),
            stts: Some("ACTIVE".into()),
            otpt_fmt: Some("CSV".into()),
            dstn_typ: Some("FILE".into()),
            fl_pth: Some("/srv/dw/reports/sales".into()),
            ..ReportScheduleRow::default()
        }
    }

    #[test]
    fn a_fire_queues_the_originals_request_and_keeps_wall_clock_time() {
        let london: Tz = "Europe/London".parse().unwrap();
        // Fired a little late on the day before the clocks go forward.
        let now: DateTime<Utc> = "2026-03-28T09:00:41Z".parse().unwrap();
        let fire = plan_report_fire(&row("DAILY", "DL_09:00"), now, london).unwrap();
        assert_eq!(fire.expected_next, Some(local("2026-03-28 09:00:00")));
        // 09:00 the next day, though a day later is 23 hours away.
        assert_eq!(fire.next, Some(local("2026-03-29 09:00:00")));
        assert_eq!(fire.status, "ACTIVE");
        assert_eq!(fire.fired_at, local("2026-03-28 09:00:41"));
        assert_eq!(fire.request.mapref, "REPORT:4");
        assert_eq!(fire.request.request_type.as_str(), "REPORT");
        assert_eq!(
            fire.request.payload,
            r#"{"outputFormat": "CSV", "destination": "FILE", "requestedBy": "system", "filePath": "/srv/dw/reports/sales", "reportId": 4}"#
        );
        // MONTHLY is the day of the month (its last, for 31), not 30 days.
        let monthly = plan_report_fire(&row("MONTHLY", "MN_31_06:30"), now, london).unwrap();
        assert_eq!(monthly.next, Some(local("2026-03-31 06:30:00")));
    }

    #[test]
    fn immediate_runs_once_and_e_mail_rows_name_their_recipients() {
        let now: DateTime<Utc> = "2026-03-02T08:00:05Z".parse().unwrap();
        let e_mail = ReportScheduleRow {
            otpt_fmt: None,
            dstn_typ: Some("EMAIL".into()),
            emal_to: Some("sales-team@example.com, cfo@example.com".into()),
            fl_pth: None,
            ..row("IMMEDIATE", "")
        };
        let fire = plan_report_fire(&e_mail, now, Tz::UTC).unwrap();
        assert_eq!((fire.next, fire.status.as_str()), (None, "PAUSED"));
        assert_eq!(
            fire.request.payload,
            r#"{"outputFormat": "CSV", "destination": "EMAIL", "requestedBy": "system", "email": "sales-team@example.com, cfo@example.com", "reportId": 4}"#
        );
        let err = plan_report_fire(&row("DAILY", "DL_9"), now, Tz::UTC).unwrap_err();
        assert_eq!(err.field, "TM_PRM");
    }

    #[test]
    fn upload_fires_queue_the_originals_request_and_follow_tm_prm() {
        let london: Tz = "Europe/London".parse().unwrap();
        let now: DateTime<Utc> = "2026-03-15T10:30:20Z".parse().unwrap();
        let row = |frqncy: &str, tm_prm: &str| UploadScheduleRow {
            schdid: 3,
            flupldref: "CUST_IMPORT".into(),
            frqncy: Some(frqncy.into()),
            tm_prm: Some(tm_prm.into()),
            nxt_run_dt: Some(local("2026-03-15 10:30:00")),
            stts: Some("ACTIVE".into()),
            ..UploadScheduleRow::default()
        };
        let fire = plan_upload_fire(&row("DL", "DL_10:30"), now, london).unwrap();
        assert_eq!(fire.request.mapref, "FLUPLD:CUST_IMPORT");
        assert_eq!(fire.request.request_type.as_str(), "FILE_UPLOAD");
        assert_eq!(
            fire.request.payload,
            r#"{"load_mode": "INSERT", "flupldref": "CUST_IMPORT"}"#
        );
        assert_eq!(fire.next, Some(local("2026-03-16 10:30:00")));
        // Hourly at :15, the half-year on 15 January and 15 July, the year on 15 January.
        let hourly = plan_upload_fire(&row("ID", "ID_00:15"), now, london).unwrap();
        assert_eq!(hourly.next, Some(local("2026-03-15 11:15:00")));
        let half = plan_upload_fire(&row("HY", "HY_15_10:30"), now, london).unwrap();
        assert_eq!(half.next, Some(local("2026-07-15 10:30:00")));
        let yearly = plan_upload_fire(&row("YR", "YR_15_10:30"), now, london).unwrap();
        assert_eq!(yearly.next, Some(local("2027-01-15 10:30:00")));
        // A day past a month's end is its last day.
        let monthly = plan_upload_fire(&row("MN", "MN_31_10:30"), now, london).unwrap();
        assert_eq!(monthly.next, Some(local("2026-03-31 10:30:00")));
    }
}
