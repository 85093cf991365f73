use crate::{Flow, FlowFormat, LoadMode, StepKind, binds_in, parse_flow};

fn toml(text: &str) -> Result<Flow, String> {
    parse_flow(text, FlowFormat::Toml).map_err(|e| e.to_string())
}

fn check_err(text: &str, expected: &str) {
    assert_eq!(toml(text).unwrap_err(), expected);
}

#[test]
fn the_example_flow_parses_and_round_trips_through_json() {
    let text = include_str!("../../../examples/flows/daily_sales.toml");
    let flow = toml(text).unwrap();
    assert_eq!(flow.steps.len(), 3);
    assert_eq!(
        flow.steps[1].depends_on,
        ["stage"],
        "default: the step before"
    );
    assert_eq!(flow.steps[2].depends_on, ["load_facts"]);
    assert_eq!(flow.steps[0].depends_on, Vec::<String>::new());
    match &flow.steps[1].kind {
        StepKind::Load {
            target,
            batch_size,
            max_errors,
            ..
        } => {
            assert_eq!(target.mode, LoadMode::Upsert);
            assert_eq!(target.key, ["id"]);
            assert_eq!((*batch_size, *max_errors), (10_000, 100));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        flow.steps[2].timeout,
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(
        flow.connections().into_iter().collect::<Vec<_>>(),
        ["shop", "warehouse"]
    );

    let json = flow.to_json();
    let again = parse_flow(&json, FlowFormat::Json).unwrap();
    assert_eq!(
        again, flow,
        "the normalised JSON reads back as the same flow"
    );
    assert!(json.contains(r#""depends_on":["stage"]"#), "{json}");
}

#[test]
fn empty_flows_are_valid_and_a_missing_list_is_not() {
    assert!(toml("steps = []").unwrap().steps.is_empty());
    assert!(parse_flow(r#"{"steps":[]}"#, FlowFormat::Json).is_ok());
    check_err(
        "description = \"x\"",
        "the flow has no 'steps' list (an empty list is a valid no-op flow)",
    );
}

#[test]
fn syntax_errors_say_which_format() {
    assert!(toml("steps = [").unwrap_err().starts_with("not valid TOML"));
    let err = parse_flow("{", FlowFormat::Json).unwrap_err().to_string();
    assert!(err.starts_with("not valid JSON"), "{err}");
    assert!(
        toml("stepz = []")
            .unwrap_err()
            .contains("unknown field `stepz`")
    );
}

#[test]
fn steps_are_checked_field_by_field() {
    let step = |body: &str| format!("[[steps]]\nname = \"s\"\n{body}\n");
    check_err(
        &step("kind = \"python\""),
        "step 's', field 'kind': 'python' is not sql, load, mapping or command",
    );
    check_err(
        &step(""),
        "step 's', field 'kind': missing; use sql, load, mapping or command",
    );
    check_err(
        &step("kind = \"sql\"\nsql = \"select 1\""),
        "step 's', field 'connection': is required",
    );
    check_err(
        &step("kind = \"sql\"\nconnection = \"w\"\nsql = []"),
        "step 's', field 'sql': needs one or more non-empty statements",
    );
    check_err(
        &step("kind = \"sql\"\nconnection = \"w\"\nsql = \"select 1\"\nprogram = \"x\""),
        "step 's', field 'program': does not apply to a sql step",
    );
    check_err(
        &step("kind = \"sql\"\nconnection = \"w\"\nsql = \"select * from t where d = :rundate\""),
        "step 's', field 'sql': unknown bind ':rundate'; a run provides :run_date, :param1, :param2, :param3, :param4, :param5, :param6, :param7, :param8, :param9, :param10, :prcid, :mapref",
    );
    check_err(
        &step(
            "kind = \"load\"\nsource = { connection = \"a\", query = \"select 1\" }\ntarget = { connection = \"b\", table = \"t\", mode = \"upsert\" }",
        ),
        "step 's', field 'target.key': upsert needs the key columns",
    );
    check_err(
        &step(
            "kind = \"load\"\nsource = { connection = \"a\", query = \"select 1\" }\ntarget = { connection = \"b\", table = \"t; drop\" }",
        ),
        "step 's', field 'target.table': 't; drop' is not a table name (name or schema.name)",
    );
    check_err(
        &step(
            "kind = \"load\"\nsource = { connection = \"a\", query = \"select 1\" }\ntarget = { connection = \"b\", table = \"t\", mode = \"merge\" }",
        ),
        "step 's', field 'target.mode': 'merge' is not append, truncate or upsert",
    );
    check_err(
        &step("kind = \"command\""),
        "step 's', field 'program': is required",
    );
    check_err(
        &step("kind = \"command\"\nprogram = \"true\"\ntimeout = \"soon\""),
        "step 's', field 'timeout': 'soon' is not a duration such as 90s, 10m or 1h30m: expected number at 0",
    );
    check_err(
        &step("kind = \"command\"\nprogram = \"true\"\ntimeout = 0"),
        "step 's', field 'timeout': must be more than 0",
    );
    check_err("[[steps]]\nkind = \"sql\"", "step 1 has no name");
}

#[test]
fn names_and_dependencies_form_a_dag() {
    let two = "[[steps]]\nname = \"a\"\nkind = \"command\"\nprogram = \"true\"\n\
               [[steps]]\nname = \"a\"\nkind = \"command\"\nprogram = \"true\"\n";
    check_err(two, "step 'a', field 'name': another step has this name");
    let unknown =
        "[[steps]]\nname = \"a\"\nkind = \"command\"\nprogram = \"true\"\ndepends_on = [\"zz\"]\n";
    check_err(
        unknown,
        "step 'a', field 'depends_on': there is no step named 'zz'",
    );
    let cycle = "[[steps]]\nname = \"a\"\nkind = \"command\"\nprogram = \"true\"\ndepends_on = [\"c\"]\n\
                 [[steps]]\nname = \"b\"\nkind = \"command\"\nprogram = \"true\"\n\
                 [[steps]]\nname = \"c\"\nkind = \"command\"\nprogram = \"true\"\n";
    check_err(
        cycle,
        "step 'b', field 'depends_on': the steps form a cycle: a -> c -> b -> a",
    );
    let own =
        "[[steps]]\nname = \"a\"\nkind = \"command\"\nprogram = \"true\"\ndepends_on = [\"a\"]\n";
    check_err(
        own,
        "step 'a', field 'depends_on': a step cannot depend on itself",
    );
}

#[test]
fn binds_skip_quotes_comments_and_casts() {
    assert_eq!(
        binds_in(
            "select ':x', \":y\", a::date -- :z\n from t where d = :run_date and p = :param1 /* :w */"
        ),
        ["run_date", "param1"]
    );
}

#[test]
fn a_field_of_the_wrong_type_or_kind_is_named() {
    let step = |body: &str| format!("[[steps]]\nname = \"s\"\n{body}\n");
    check_err(
        &step("kind = \"sql\"\nconnection = \"w\"\nsql = 5"),
        "step 's', field 'sql': needs a statement or a list of statements",
    );
    check_err(
        &step(
            "kind = \"load\"\nsource = { connection = \"a\", query = \"select 1\" }\ntarget = { connection = \"b\", table = \"t\", foo = 1 }",
        ),
        "step 's', field 'target.foo': is not a field of target",
    );
    check_err(
        &step("kind = \"command\"\nprogram = \"x\"\nargs = \"ls\""),
        "step 's', field 'args': invalid type: string \"ls\", expected a sequence",
    );
    check_err(
        &step("kind = \"command\"\nprogram = \"x\"\nretries = \"x\""),
        "step 's', field 'retries': invalid type: string \"x\", expected u32",
    );
    check_err(
        &step("kind = 5\nprogram = \"x\""),
        "step 's', field 'kind': '5' is not sql, load, mapping or command",
    );
    check_err(
        &step("kind = \"command\"\nprogram = \"x\"\nconnection = \"w\""),
        "step 's', field 'connection': does not apply to a command step",
    );
    check_err("steps = [5]", "step 1 is not a table of fields");
}

#[test]
fn a_mapping_step_names_its_mapping_job() {
    let flow =
        toml("[[steps]]\nname = \"dim\"\nkind = \"mapping\"\nmapref = \"DIM_CUSTOMER\"\n").unwrap();
    assert_eq!(
        flow.steps[0].kind,
        StepKind::Mapping {
            mapref: "DIM_CUSTOMER".into()
        }
    );
    assert_eq!(
        flow.mappings().into_iter().collect::<Vec<_>>(),
        ["DIM_CUSTOMER"]
    );
    assert!(flow.connections().is_empty());
    check_err(
        "[[steps]]\nname = \"dim\"\nkind = \"mapping\"\n",
        "step 'dim', field 'mapref': is required",
    );
    check_err(
        "[[steps]]\nname = \"dim\"\nkind = \"mapping\"\nmapref = \"X\"\nconnection = \"dw\"\n",
        "step 'dim', field 'connection': does not apply to a mapping step",
    );
}

#[test]
fn statements_are_counted_outside_quotes_and_comments() {
    use crate::statement_count;
    assert_eq!(statement_count("SELECT 1"), 1);
    assert_eq!(statement_count("SELECT 1;"), 1);
    assert_eq!(statement_count("SELECT 1; SELECT 2"), 2);
    assert_eq!(statement_count("SELECT ';'; -- a; b\n"), 1);
    assert_eq!(statement_count("/* ; */ SELECT \"a;b\" FROM t"), 1);
    assert_eq!(statement_count(" ; ;SELECT 1;; "), 1);
}

#[test]
fn several_statements_with_binds_are_refused_at_registration() {
    let flow = |sql: &str| {
        format!("[[steps]]\nname = \"s\"\nkind = \"sql\"\nconnection = \"c\"\nsql = \"{sql}\"\n")
    };
    let err = toml(&flow(
        "DELETE FROM t WHERE d = :run_date; INSERT INTO t VALUES (:run_date)",
    ))
    .unwrap_err();
    assert!(err.contains("several statements and uses binds"), "{err}");
    // Without binds several statements go as one text; one statement with binds is fine.
    toml(&flow("DELETE FROM t; INSERT INTO t VALUES (1)")).unwrap();
    toml(&flow("DELETE FROM t WHERE d = :run_date;")).unwrap();
}

#[test]
fn a_run_from_a_step_skips_what_it_depends_on_only() {
    let flow = toml(
        r#"
[[steps]]
name = "extract"
kind = "command"
program = "true"
[[steps]]
name = "stage"
kind = "command"
program = "true"
[[steps]]
name = "side"
kind = "command"
program = "true"
depends_on = []
[[steps]]
name = "publish"
kind = "command"
program = "true"
depends_on = ["stage", "side"]
"#,
    )
    .unwrap();
    let skipped = |from: &str| crate::skipped_before(&flow, from).unwrap();
    assert_eq!(skipped("extract"), Vec::<&str>::new());
    assert_eq!(skipped("stage"), ["extract"]);
    // `side` does not depend on `stage`: a run from `stage` runs it as usual.
    assert_eq!(skipped("publish"), ["extract", "stage", "side"]);
    let err = crate::skipped_before(&flow, "nope").unwrap_err();
    assert!(err.contains("extract, stage, side, publish"), "{err}");
}
