//! Step timings for the report.

use std::time::{Duration, Instant};

use crate::Result;

/// Durations of the steps, in order, for the report.
#[derive(Debug, Default)]
pub struct Timings {
    entries: Vec<(String, Duration)>,
}

impl Timings {
    /// Runs `f` and records how long it took under `name`.
    pub fn measure<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let out = f();
        self.record(name, start.elapsed());
        out
    }

    /// Records a duration.
    pub fn record(&mut self, name: &str, d: Duration) {
        self.entries.push((name.to_owned(), d));
    }

    /// One line per step: `   123.4 ms  name`.
    pub fn table(&self) -> String {
        self.entries
            .iter()
            .map(|(n, d)| format!("{:>10.1} ms  {n}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
