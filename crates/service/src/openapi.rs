//! The OpenAPI 3.1 description of the HTTP API, served at `/api/openapi.json`.

use serde_json::{Value, json};

/// What `validate_mapref` accepts.
const MAPREF_PATTERN: &str = "^[A-Za-z0-9_.$-]{1,100}$";
const DATE_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$";

fn error_responses(codes: &[&str]) -> Value {
    let mut responses = serde_json::Map::new();
    for code in codes {
        let description = match *code {
            "400" => "The input is not valid; the message says which field and why",
            "401" => "A token is set and the call did not bring it",
            "404" => "The job, schedule or endpoint does not exist",
            "409" => "The object is not in a state that allows this",
            "413" => "The body is larger than 64 KiB",
            _ => "The database cannot be reached",
        };
        responses.insert(
            (*code).to_string(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
            }),
        );
    }
    Value::Object(responses)
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

fn mapref_parameter() -> Value {
    json!({
        "name": "mapref", "in": "path", "required": true,
        "description": "The job's MAPREF",
        "schema": { "type": "string", "pattern": MAPREF_PATTERN }
    })
}

fn queued(summary: &str, body: &str) -> Value {
    json!({
        "summary": summary,
        "security": [{ "bearer": [] }, {}],
        "parameters": [mapref_parameter()],
        "requestBody": {
            "required": false,
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{body}") } } }
        },
        "responses": with(json!({
            "201": {
                "description": "The request is queued",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Queued" } } }
            }
        }), error_responses(&["400", "401", "404", "413", "503"]))
    })
}

fn toggle(summary: &str) -> Value {
    json!({
        "post": {
            "summary": summary,
            "security": [{ "bearer": [] }, {}],
            "parameters": [{
                "name": "id", "in": "path", "required": true,
                "description": "The schedule's JOBSCHID",
                "schema": { "type": "integer", "format": "int64" }
            }],
            "responses": with(json!({
                "200": {
                    "description": "The schedule's new state",
                    "content": { "application/json": { "schema": { "type": "object" } } }
                }
            }), error_responses(&["400", "401", "404", "409", "503"]))
        }
    })
}

pub fn document() -> Value {
    let params: serde_json::Map<String, Value> = (1..=10)
        .map(|i| {
            (
                format!("param{i}"),
                json!({ "type": ["string", "number", "boolean", "null"] }),
            )
        })
        .collect();
    let run_properties = with(
        Value::Object(params),
        json!({
            "truncate_flag": { "type": "string", "enum": ["Y", "N"] },
            "params": { "type": "object" }
        }),
    );
    let immediate_properties = with(
        run_properties.clone(),
        json!({
            "run_date": { "type": "string", "pattern": DATE_PATTERN, "description": "Business date, YYYY-MM-DD" },
            "from_step": { "type": "string", "description": "Run the flow from this step; the steps it depends on are recorded skipped (SK)" }
        }),
    );
    let schedule_fields = json!({
        "frqcd": { "type": "string", "enum": ["ID", "DL", "WK", "FN", "MN", "QT", "HY", "YR", "CR", "BD"] },
        "frqdd": { "type": "string", "description": "MON..SUN for WK and FN; 1..31 or L for MN, QT, HY, YR; 1..23 or -1..-23 for BD; refused for other codes" },
        "frqhh": { "type": "integer" },
        "frqmi": { "type": "integer" },
        "cron": { "type": "string", "description": "For frqcd CR only" },
        "start": { "type": "string" },
        "end": { "type": "string" },
        "timezone": { "type": "string", "description": "An IANA zone name such as Europe/London" },
        "misfire": { "type": "string", "enum": ["COALESCE", "SKIP", "CATCHUP"] },
        "depends_on": { "type": "integer", "description": "The JOBSCHID whose successful run starts this schedule ('after' is its old name)" },
        "after": { "type": "integer", "deprecated": true },
        "maxfail": { "type": "integer" },
        "calendar": { "type": "string", "description": "The business calendar (CALNM) the schedule follows" },
        "on_holiday": { "type": "string", "enum": ["skip", "next", "prev", "SKIP", "NEXT", "PREV"], "description": "What a slot on a day that is not a business day does (CALRULE); needs calendar" }
    });
    let calendar_parameter = json!({
        "name": "name", "in": "path", "required": true,
        "description": "The calendar's name (CALNM)",
        "schema": { "type": "string", "minLength": 1 }
    });
    let id_parameter = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The schedule's JOBSCHID",
        "schema": { "type": "integer", "format": "int64" }
    });
    let prcid_parameter = json!({
        "name": "prcid", "in": "path", "required": true,
        "description": "The run's PRCID",
        "schema": { "type": "integer", "format": "int64" }
    });
    let retired = json!({ "200": { "description": "Retired (CURFLG='N')", "content": { "application/json": { "schema": { "type": "object" } } } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dwsched",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A dwsched node's API: health, metrics, status, runs, schedules, business calendars, and requests to run, backfill or stop jobs."
        },
        "paths": {
            "/healthz": { "get": {
                "summary": "Whether the node is alive and reaches its database",
                "responses": {
                    "200": { "description": "Alive", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "503": { "description": "The database cannot be reached", "content": { "application/json": { "schema": { "type": "object" } } } }
                }
            } },
            "/metrics": { "get": {
                "summary": "Prometheus metrics",
                "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            } },
            "/api/status": { "get": {
                "summary": "Nodes, queue, runs in progress and recent, next fires, error rate",
                "responses": with(json!({ "200": { "description": "The status", "content": { "application/json": { "schema": { "type": "object" } } } } }), error_responses(&["503"]))
            } },
            "/api/runs": { "get": {
                "summary": "Runs, newest first",
                "parameters": [
                    { "name": "mapref", "in": "query", "schema": { "type": "string" } },
                    { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["IP", "PC", "FL", "ST"] } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                ],
                "responses": with(json!({ "200": { "description": "Runs", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object" } } } } } }), error_responses(&["400", "503"]))
            } },
            "/api/schedules": {
                "get": {
                    "summary": "Every schedule row with its next fire and last result",
                    "responses": with(json!({ "200": { "description": "Schedules", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object" } } } } } }), error_responses(&["503"]))
                },
                "post": {
                    "summary": "Add a schedule (the fields of `dwsched schedule add`)",
                    "security": [{ "bearer": [] }, {}],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewSchedule" } } }
                    },
                    "responses": with(json!({
                        "201": { "description": "The new schedule's JOBSCHID", "content": { "application/json": { "schema": { "type": "object", "properties": { "jobschid": { "type": "integer" } } } } } }
                    }), error_responses(&["400", "401", "404", "413", "503"]))
                }
            },
            "/api/runs/{prcid}": { "get": {
                "summary": "A run with its steps (DMS_PRCSTEP)",
                "parameters": [prcid_parameter.clone()],
                "responses": with(json!({ "200": { "description": "The run, with `steps`", "content": { "application/json": { "schema": { "type": "object" } } } } }), error_responses(&["400", "404", "503"]))
            } },
            "/api/runs/{prcid}/log": { "get": {
                "summary": "A run's log, from the node that keeps it (the token, when set, as a bearer header or access_token)",
                "security": [{ "bearer": [] }, {}],
                "parameters": [prcid_parameter, { "name": "access_token", "in": "query", "schema": { "type": "string" } }],
                "responses": with(json!({ "200": { "description": "The log", "content": { "text/plain": { "schema": { "type": "string" } } } } }), error_responses(&["400", "401", "404", "503"]))
            } },
            "/api/schedules/{id}": {
                "post": {
                    "summary": "Write a new version of a schedule with the fields given changed (a new JOBSCHID; the old row CURFLG='N')",
                    "security": [{ "bearer": [] }, {}],
                    "parameters": [id_parameter.clone()],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ScheduleEdit" } } } },
                    "responses": with(json!({
                        "201": { "description": "The new version's JOBSCHID", "content": { "application/json": { "schema": { "type": "object", "properties": { "jobschid": { "type": "integer" }, "replaces": { "type": "integer" } } } } } }
                    }), error_responses(&["400", "401", "404", "409", "413", "503"]))
                },
                "delete": {
                    "summary": "Retire a schedule; refused while other schedules run after it",
                    "security": [{ "bearer": [] }, {}],
                    "parameters": [id_parameter],
                    "responses": with(retired.clone(), error_responses(&["400", "401", "404", "409", "503"]))
                }
            },
            "/api/jobs/{mapref}": { "delete": {
                "summary": "Retire a job's flow and DMS_JOB row; refused while enabled schedules use it, unless force",
                "security": [{ "bearer": [] }, {}],
                "parameters": [mapref_parameter(), { "name": "force", "in": "query", "schema": { "type": "boolean" }, "description": "Retire its schedules with it" }],
                "responses": with(retired.clone(), error_responses(&["400", "401", "404", "409", "503"]))
            } },
            "/api/connections/{name}": { "delete": {
                "summary": "Retire a connection; refused while a current flow uses it",
                "security": [{ "bearer": [] }, {}],
                "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": with(retired, error_responses(&["401", "404", "409", "503"]))
            } },
            "/api/calendars": { "get": {
                "summary": "Every business calendar with its work days and holidays",
                "responses": with(json!({ "200": { "description": "Calendars", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Calendar" } } } } } }), error_responses(&["503"]))
            } },
            "/api/calendars/{name}": { "get": {
                "summary": "A business calendar with its work days and holidays",
                "parameters": [calendar_parameter.clone()],
                "responses": with(json!({ "200": { "description": "The calendar", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Calendar" } } } } }), error_responses(&["404", "503"]))
            } },
            "/api/calendars/{name}/holidays": { "post": {
                "summary": "Add a holiday to a calendar (a date it has already takes the new description); schedules using it follow at the next sync",
                "security": [{ "bearer": [] }, {}],
                "parameters": [calendar_parameter.clone()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Holiday" } } } },
                "responses": with(json!({
                    "201": { "description": "Added", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "200": { "description": "The date was a holiday already; its description is replaced", "content": { "application/json": { "schema": { "type": "object" } } } }
                }), error_responses(&["400", "401", "404", "413", "503"]))
            } },
            "/api/calendars/{name}/holidays/{date}": { "delete": {
                "summary": "Remove a holiday from a calendar",
                "security": [{ "bearer": [] }, {}],
                "parameters": [calendar_parameter, { "name": "date", "in": "path", "required": true, "description": "YYYY-MM-DD", "schema": { "type": "string" } }],
                "responses": with(json!({ "200": { "description": "Removed", "content": { "application/json": { "schema": { "type": "object" } } } } }), error_responses(&["400", "401", "404", "503"]))
            } },
            "/api/schedules/{id}/enable": toggle("Enable a schedule"),
            "/api/schedules/{id}/disable": toggle("Disable a schedule"),
            "/api/jobs/{mapref}/run": { "post": queued("Queue one run of a job (IMMEDIATE)", "RunRequest") },
            "/api/jobs/{mapref}/history": { "post": queued("Queue one run per business date (HISTORY)", "HistoryRequest") },
            "/api/jobs/{mapref}/stop": { "post": queued("Stop the job's running run (STOP)", "StopRequest") }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
                "Queued": { "type": "object", "required": ["request_id"], "properties": { "request_id": { "type": "string" } } },
                "RunRequest": { "type": "object", "additionalProperties": false, "properties": immediate_properties },
                "HistoryRequest": {
                    "type": "object",
                    "required": ["start_date", "end_date"],
                    "additionalProperties": false,
                    "properties": with(run_properties, json!({
                        "start_date": { "type": "string", "pattern": DATE_PATTERN, "description": "YYYY-MM-DD" },
                        "end_date": { "type": "string", "pattern": DATE_PATTERN, "description": "YYYY-MM-DD, not before start_date, at most 20 years after it" },
                        "continue_on_failure": { "type": "string", "enum": ["Y", "N"], "description": "Go on after a failed date (default N)" }
                    }))
                },
                "ScheduleEdit": { "type": "object", "additionalProperties": false, "properties": schedule_fields.clone() },
                "Holiday": {
                    "type": "object",
                    "required": ["date"],
                    "additionalProperties": false,
                    "properties": {
                        "date": { "type": "string", "pattern": DATE_PATTERN, "description": "YYYY-MM-DD" },
                        "description": { "type": ["string", "null"] }
                    }
                },
                "Calendar": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "workdays": { "type": ["string", "null"], "description": "MON,TUE,WED,THU,FRI when NULL" },
                        "description": { "type": ["string", "null"] },
                        "updated_at": { "type": ["string", "null"] },
                        "holidays": { "type": "array", "items": { "type": "object", "properties": {
                            "date": { "type": "string" },
                            "description": { "type": ["string", "null"] }
                        } } }
                    }
                },
                "StopRequest": { "type": "object", "additionalProperties": false, "properties": { "force": { "oneOf": [
                    { "type": "string", "enum": ["Y", "N", "y", "n"] },
                    { "type": "boolean" }
                ] } } },
                "NewSchedule": {
                    "type": "object",
                    "required": ["mapref", "frqcd"],
                    "additionalProperties": false,
                    "properties": with(schedule_fields, json!({
                        "mapref": { "type": "string", "pattern": MAPREF_PATTERN },
                        "enable": { "type": "boolean" }
                    }))
                }
            }
        }
    })
}
