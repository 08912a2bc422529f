//! Results: one [`Row`] per figure (Berth, Distribution, optionally nginx),
//! the targets checked against them, a Markdown table and JSON.

use serde_json::{json, Value};

/// One measured figure for each server.
pub struct Row {
    /// Stable key (JSON, target lookups).
    pub key: String,
    /// What was measured, for the table.
    pub label: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub berth: f64,
    pub distribution: f64,
    /// The same measurement against nginx (`sendfile`), where it applies.
    pub nginx: Option<f64>,
    /// Per-round values, latencies, client CPU, notes.
    pub detail: Value,
}

impl Row {
    pub fn new(key: impl Into<String>, label: impl Into<String>, unit: &'static str, higher_is_better: bool) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            unit,
            higher_is_better,
            berth: 0.0,
            distribution: 0.0,
            nginx: None,
            detail: json!({}),
        }
    }

    pub fn values(mut self, berth: f64, distribution: f64) -> Self {
        self.berth = berth;
        self.distribution = distribution;
        self
    }

    pub fn nginx(mut self, v: f64) -> Self {
        self.nginx = Some(v);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// Berth / Distribution.
    pub fn ratio(&self) -> f64 {
        if self.distribution == 0.0 {
            0.0
        } else {
            self.berth / self.distribution
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "key": self.key, "label": self.label, "unit": self.unit, "higher_is_better": self.higher_is_better,
            "berth": self.berth, "distribution": self.distribution, "nginx": self.nginx,
            "ratio_berth_over_distribution": self.ratio(), "detail": self.detail,
        })
    }
}

/// A target of issue 14 checked against the rows.
pub struct Check {
    pub target: String,
    pub kind: &'static str,
    pub measured: String,
    pub met: bool,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    /// Layer/blob bodies whose digest the client recomputed and found right.
    pub digests_verified: u64,
    pub notes: Vec<String>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {:<58} berth {:>12} | distribution {:>12}{} {}",
            row.label,
            fmt(row.berth),
            fmt(row.distribution),
            row.nginx.map(|n| format!(" | nginx {:>10}", fmt(n))).unwrap_or_default(),
            row.unit
        );
        self.rows.push(row);
    }

    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    pub fn check(&mut self, target: impl Into<String>, kind: &'static str, measured: String, met: bool) {
        self.checks.push(Check { target: target.into(), kind, measured, met });
    }

    /// Rows with a zero or non-finite figure (quick mode fails on them).
    pub fn zero_rows(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| {
                // Server CPU comes from /proc in 10 ms clock ticks: a tiny
                // --quick transfer may honestly measure 0 (nginx's sendfile
                // of 16 MiB does). Elsewhere zero means a broken scenario.
                let cpu = r.unit.starts_with("CPU-s");
                let bad = |v: f64| !(v.is_finite() && (v > 0.0 || (cpu && v == 0.0)));
                bad(r.berth) || bad(r.distribution) || r.nginx.is_some_and(bad)
            })
            .map(|r| r.key.as_str())
            .collect()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| scenario | unit | Berth | Distribution | Berth/Distribution | nginx (sendfile) |\n");
        out.push_str("|---|---|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let better = if r.higher_is_better { "" } else { " (lower is better)" };
            out.push_str(&format!(
                "| {} | {}{} | {} | {} | {:.2}× | {} |\n",
                r.label,
                r.unit,
                better,
                fmt(r.berth),
                fmt(r.distribution),
                r.ratio(),
                r.nginx.map(fmt).unwrap_or_default()
            ));
        }
        out.push_str("\n| target (issue 14) | kind | measured | met? |\n|---|---|---|---|\n");
        for c in &self.checks {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                c.target,
                c.kind,
                c.measured,
                if c.met { "**met**" } else { "**missed**" }
            ));
        }
        out
    }

    pub fn to_json(&self, header: Value) -> Value {
        let mut doc = header;
        doc["rows"] = self.rows.iter().map(Row::to_json).collect();
        doc["targets"] = self
            .checks
            .iter()
            .map(|c| json!({"target": c.target, "kind": c.kind, "measured": c.measured, "met": c.met}))
            .collect();
        doc["digests_verified"] = json!(self.digests_verified);
        doc["notes"] = json!(self.notes);
        doc
    }
}

/// A figure with as many decimals as it deserves.
pub fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let s = format!("{v:.0}");
        let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!("{sign}{grouped}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
