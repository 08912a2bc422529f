//! Cron schedules and the worker that runs a job on one.
//!
//! [`Schedule`] is the classic five fields, in UTC: minute, hour, day of
//! month, month, day of week (0 or 7 = Sunday); each `*`, a number, a range
//! `a-b`, a list `a,b`, and a step `*/n` or `a-b/n`; also `@hourly`,
//! `@daily`, `@weekly`, `@monthly`. As in cron, when both day fields are
//! restricted a day matching either runs.
//!
//! [`Worker::run_once`] runs the job if it is due at the clock's time and
//! computes the next time; [`Worker::spawn`] calls it in a loop. Running
//! once per cluster is the job's business (the GC job takes its lease).

use crate::Clock;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    any_day: bool,
    any_weekday: bool,
    source: String,
}

fn field(spec: &str, min: u32, max: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in {part:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {part:?}"));
        }
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().map_err(|_| format!("bad {part:?}"))?, b.parse().map_err(|_| format!("bad {part:?}"))?)
        } else {
            let v: u32 = range.parse().map_err(|_| format!("bad {part:?}"))?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    // 2440588 is the Julian day of 1970-01-01; day counts a cron looks at fit an i32 easily.
    let julian = i32::try_from(days + 2_440_588).unwrap_or(i32::MAX);
    match time::Date::from_julian_day(julian) {
        Ok(d) => (i64::from(d.year()), u32::from(u8::from(d.month())), u32::from(d.day())),
        Err(_) => (0, 0, 0), // beyond year ±9999: matches no schedule
    }
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let expanded = match s.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            other => other,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        let [min, hour, dom, mon, dow] = f[..] else {
            return Err(format!("cron expression {s:?} needs five fields (minute hour day month weekday)"));
        };
        let mut weekdays = field(dow, 0, 7).map_err(|e| format!("weekday: {e}"))?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Schedule {
            minutes: field(min, 0, 59).map_err(|e| format!("minute: {e}"))?,
            hours: field(hour, 0, 23).map_err(|e| format!("hour: {e}"))?,
            days: field(dom, 1, 31).map_err(|e| format!("day: {e}"))?,
            months: field(mon, 1, 12).map_err(|e| format!("month: {e}"))?,
            weekdays,
            any_day: dom == "*",
            any_weekday: dow == "*",
            source: s.to_owned(),
        })
    }

    fn matches_day(&self, days: i64) -> bool {
        let (_, m, d) = civil(days);
        let wd = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        let day_ok = self.days & (1 << d) != 0;
        let wd_ok = self.weekdays & (1 << wd) != 0;
        let day = match (self.any_day, self.any_weekday) {
            (false, false) => day_ok || wd_ok,
            _ => day_ok && wd_ok,
        };
        self.months & (1 << m) != 0 && day
    }

    /// The first matching minute strictly after `after_ms` (Unix ms, UTC);
    /// `None` if none within eight years (e.g. 31 February).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        const MIN: i64 = 60_000;
        let mut t = after_ms.div_euclid(MIN) + 1; // in minutes
        let limit = t + 8 * 366 * 24 * 60;
        while t < limit {
            let days = t.div_euclid(24 * 60);
            if !self.matches_day(days) {
                t = (days + 1) * 24 * 60;
                continue;
            }
            let (h, m) = ((t.rem_euclid(24 * 60)) / 60, t.rem_euclid(60));
            if self.hours & (1 << h) == 0 {
                t = (t / 60 + 1) * 60;
                continue;
            }
            if self.minutes & (1 << m) != 0 {
                return Some(t * MIN);
            }
            t += 1;
        }
        None
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// A job the worker runs: returns a line for the log, or an error to log.
pub type JobFn = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// Runs one job on a schedule.
pub struct Worker {
    name: String,
    schedule: Schedule,
    clock: Arc<dyn Clock>,
    job: JobFn,
    next_ms: Option<i64>,
}

impl Worker {
    pub fn new(name: impl Into<String>, schedule: Schedule, clock: Arc<dyn Clock>, job: JobFn) -> Self {
        let next_ms = schedule.next_after(clock.now_ms());
        Worker { name: name.into(), schedule, clock, job, next_ms }
    }

    /// When the job runs next.
    pub fn next_ms(&self) -> Option<i64> {
        self.next_ms
    }

    /// Runs the job if due now (once, however many times were missed) and
    /// schedules the next run. Returns the job's outcome if it ran.
    pub async fn run_once(&mut self) -> Option<Result<String, String>> {
        let now = self.clock.now_ms();
        if self.next_ms.is_none_or(|next| now < next) {
            return None;
        }
        let outcome = (self.job)().await;
        match &outcome {
            Ok(line) => tracing::info!(job = %self.name, "{line}"),
            Err(e) => tracing::warn!(job = %self.name, error = %e, "background job failed"),
        }
        self.next_ms = self.schedule.next_after(self.clock.now_ms());
        Some(outcome)
    }

    /// Runs [`Worker::run_once`] whenever due, until the task is dropped or aborted.
    pub fn spawn(mut self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Some(next) = self.next_ms else { return };
                let wait = (next - self.clock.now_ms()).clamp(0, 60_000);
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                self.run_once().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MIN: i64 = 60_000;
    // 2024-03-15 12:34:56 UTC, a Friday.
    const T: i64 = 1_710_506_096_000;

    #[test]
    fn cron_next_times() {
        let at = |s: &str| Schedule::parse(s).unwrap().next_after(T).unwrap();
        assert_eq!(at("* * * * *"), T - 56_000 + MIN);
        assert_eq!(at("*/15 * * * *"), T - 56_000 - 4 * MIN + 15 * MIN, "12:45");
        assert_eq!(at("0 3 * * *"), 1_710_558_000_000, "03:00 the next day");
        assert_eq!(at("@hourly"), T - 56_000 - 34 * MIN + 60 * MIN);
        assert_eq!(at("30 2 * * 0"), 1_710_642_600_000, "Sunday 2024-03-17 02:30");
        assert_eq!(at("0 0 1 * *"), 1_711_929_600_000, "2024-04-01");
        assert_eq!(at("0 0 29 2 *"), 1_835_395_200_000, "the next 29 February is in 2028");
        assert!(Schedule::parse("0 0 31 2 *").unwrap().next_after(T).is_none());
        for bad in ["", "* * * *", "61 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn worker_runs_when_due_on_an_injected_clock() {
        let clock = ManualClock::new(T);
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let job: JobFn = Arc::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Ok(format!("run {n}")) })
        });
        let mut w = Worker::new("test", Schedule::parse("0 * * * *").unwrap(), Arc::new(clock.clone()), job);
        let first = T - 56_000 - 34 * MIN + 60 * MIN;
        assert_eq!(w.next_ms(), Some(first));
        assert!(w.run_once().await.is_none(), "not due yet");
        clock.set(first - 1);
        assert!(w.run_once().await.is_none());
        clock.set(first);
        assert_eq!(w.run_once().await, Some(Ok("run 0".into())));
        assert!(w.run_once().await.is_none(), "once per due time");
        // Three hours missed: one run, then the next hour after now.
        clock.set(first + 3 * 60 * MIN + 5);
        assert!(w.run_once().await.is_some());
        assert_eq!(w.next_ms(), Some(first + 4 * 60 * MIN));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
