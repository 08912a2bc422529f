//! Output of `berth admin` commands: aligned tables for people, `--json`
//! (the API's own JSON) for scripts.

use serde_json::Value;

/// A column: its header and the field of each JSON object it shows.
pub type Column = (&'static str, &'static str);

pub fn render(rows: &[Value], columns: &[Column]) -> String {
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| columns.iter().map(|(_, key)| cell(&r[*key])).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |values: Vec<&str>| {
        let padded: Vec<String> =
            values.iter().zip(&widths).map(|(v, w)| format!("{v}{}", " ".repeat(w - v.chars().count()))).collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(columns.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_and_missing_fields_show_a_dash() {
        let rows = [
            json!({"name": "library", "public": true}),
            json!({"name": "team-a", "public": false, "role": "projectAdmin"}),
        ];
        let out = render(&rows, &[("NAME", "name"), ("PUBLIC", "public"), ("ROLE", "role")]);
        assert_eq!(out, "NAME     PUBLIC  ROLE\nlibrary  yes     -\nteam-a   no      projectAdmin\n");
    }
}
