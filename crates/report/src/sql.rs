//! A report's final SQL: its source wrapped by its `DETAIL` fields, as DWTOOL builds it
//! on every run (`_build_final_sql_from_fields`); the stored `FINAL_SQL` is never used.

use dwsched_model::ReportField;

/// Text that is a value: not NULL, not empty.
fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.is_empty())
}

/// The SQL a report runs: `source` (its trailing `;` dropped) as `base_query`, with a
/// select item per usable `DETAIL` field (`<formula or column> AS "<alias, name or
/// COLUMN_n>"`), `GROUP BY` the expressions of grouped fields, and `ORDER BY` the
/// aliases of ordered fields. `None` when no field is usable: the source runs as it is.
pub fn final_sql(source: &str, fields: &[ReportField]) -> Option<String> {
    let base = source.trim().trim_end_matches(';').trim();
    if base.is_empty() || fields.is_empty() {
        return None;
    }
    let detail = fields
        .iter()
        .filter(|f| given(&f.panel).is_none_or(|panel| panel.eq_ignore_ascii_case("DETAIL")));
    let mut select = Vec::new();
    let mut group = Vec::new();
    let mut order: Vec<(i64, String)> = Vec::new();
    // COLUMN_n counts every DETAIL field, the skipped ones too.
    for (index, field) in detail.enumerate() {
        let Some(expression) = given(&field.inline_formula).or(given(&field.source_column)) else {
            continue;
        };
        let alias = given(&field.alias)
            .or(given(&field.name))
            .map_or_else(|| format!("COLUMN_{}", index + 1), str::to_string);
        select.push(format!("{expression} AS \"{alias}\""));
        if field.group_by {
            group.push(expression.to_string());
        }
        if let Some(seq) = field.order_by_seq.filter(|seq| *seq > 0) {
            let direction = match field.order_by_dir.as_deref().map(str::to_ascii_uppercase) {
                Some(d) if d == "DESC" => "DESC",
                _ => "ASC",
            };
            order.push((seq, format!("\"{alias}\" {direction}")));
        }
    }
    if select.is_empty() {
        return None;
    }
    let mut lines = vec![
        "SELECT".to_string(),
        format!("    {}", select.join(",\n    ")),
        "FROM (".to_string(),
        base.to_string(),
        ") base_query".to_string(),
    ];
    if !group.is_empty() {
        lines.push(format!("GROUP BY {}", group.join(", ")));
    }
    if !order.is_empty() {
        // A stable sort: equal sequences keep the fields' order.
        order.sort_by_key(|(seq, _)| *seq);
        let items: Vec<String> = order.into_iter().map(|(_, item)| item).collect();
        lines.push(format!("ORDER BY {}", items.join(", ")));
    }
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> ReportField {
        ReportField {
            panel: Some("DETAIL".into()),
            name: Some(name.into()),
            source_column: Some(name.to_ascii_lowercase()),
            ..ReportField::default()
        }
    }

    #[test]
    fn fields_wrap_the_source_with_aliases_groups_and_order() {
        let fields = vec![
            ReportField {
                alias: Some("Region".into()),
                group_by: true,
                order_by_seq: Some(2),
                order_by_dir: Some("desc".into()),
                ..field("REGION")
            },
            ReportField {
                alias: Some("Total".into()),
                inline_formula: Some("SUM(amount)".into()),
                order_by_seq: Some(1),
                ..field("AMOUNT")
            },
            // Another panel takes no part; a field with neither column nor formula is
            // skipped but still counts for COLUMN_n.
            ReportField {
                panel: Some("HEADER".into()),
                ..field("TITLE")
            },
            ReportField {
                name: None,
                source_column: None,
                ..field("X")
            },
            ReportField {
                panel: None,
                name: None,
                source_column: Some("COUNT(*)".into()),
                order_by_seq: Some(0),
                order_by_dir: Some("SIDEWAYS".into()),
                ..ReportField::default()
            },
        ];
        let sql = final_sql("  SELECT region, amount FROM sales;\n", &fields).unwrap();
        assert_eq!(
            sql,
            "SELECT\n    region AS \"Region\",\n    SUM(amount) AS \"Total\",\n    COUNT(*) AS \"COLUMN_4\"\nFROM (\nSELECT region, amount FROM sales\n) base_query\nGROUP BY region\nORDER BY \"Total\" ASC, \"Region\" DESC"
        );
    }

    /// The report of the reports note's PostgreSQL fixture (§5): its stored `FINAL_SQL`
    /// is what the original built from these fields.
    #[test]
    fn the_fixtures_final_sql() {
        let fields = vec![
            ReportField {
                alias: Some("REGION".into()),
                source_column: Some("region".into()),
                group_by: true,
                order_by_seq: Some(1),
                order_by_dir: Some("ASC".into()),
                ..field("REGION")
            },
            ReportField {
                alias: Some("TOTAL_AMOUNT".into()),
                source_column: Some("amount".into()),
                inline_formula: Some("SUM(amount)".into()),
                order_by_seq: Some(2),
                order_by_dir: Some("DESC".into()),
                ..field("TOTAL_AMOUNT")
            },
            ReportField {
                alias: Some("ORDERS".into()),
                source_column: None,
                inline_formula: Some("COUNT(*)".into()),
                ..field("ORDERS")
            },
        ];
        assert_eq!(
            final_sql("SELECT region, amount, order_dt FROM sales.orders", &fields).unwrap(),
            "SELECT\n    region AS \"REGION\",\n    SUM(amount) AS \"TOTAL_AMOUNT\",\n    COUNT(*) AS \"ORDERS\"\nFROM (\nSELECT region, amount, order_dt FROM sales.orders\n) base_query\nGROUP BY region\nORDER BY \"REGION\" ASC, \"TOTAL_AMOUNT\" DESC"
        );
    }

    #[test]
    fn no_usable_field_runs_the_source_as_it_is() {
        assert_eq!(final_sql("SELECT 1", &[]), None);
        let unusable = ReportField {
            source_column: Some(String::new()),
            ..ReportField::default()
        };
        assert_eq!(final_sql("SELECT 1", &[unusable]), None);
        assert_eq!(final_sql(" ; ", &[field("A")]), None);
    }
}
