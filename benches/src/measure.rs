//! Measuring: percentiles, resident memory, sizes on disk, and the markdown table.

use std::path::Path;
use std::time::Duration;

/// The `p`-th percentile (0..=100) of `samples`, nearest rank; zero when empty.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// This process's resident memory in KiB (`VmRSS` of `/proc/self/status`), when readable.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This process's CPU time (user + system) in seconds, from `/proc/self/stat`.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Total size in bytes of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `n` per `elapsed`, per second.
pub fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A number with thousands separators and no decimals: `12,345`.
pub fn grouped(v: f64) -> String {
    let n = v.round() as i128;
    let digits = n.unsigned_abs().to_string();
    // Groups of three from the right; the first group may be shorter.
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        r => r,
    };
    let mut out = digits[..head].to_string();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A duration in the unit that reads best: `850 µs`, `12.3 ms`, `4.56 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Whether a figure meets its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// No target for this figure (or not comparable, e.g. a `--quick` run).
    None,
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn of(ok: bool) -> Verdict {
        if ok {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    fn cell(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::None => "",
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// `W1 sequential`, `Replay`, ...
    pub workload: String,
    /// `memory`, `sled`, or `-`.
    pub store: String,
    /// What was measured, with its size (`activities/s, 1,000 activities`).
    pub metric: String,
    /// The figure.
    pub value: String,
    /// The target, or empty.
    pub target: String,
    /// Whether the target was met.
    pub verdict: Verdict,
}

impl Row {
    /// A row without a target.
    pub fn new(workload: &str, store: &str, metric: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            workload: workload.into(),
            store: store.into(),
            metric: metric.into(),
            value: value.into(),
            target: String::new(),
            verdict: Verdict::None,
        }
    }

    /// Adds a target and whether it was met.
    pub fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.verdict = Verdict::of(met);
        self
    }
}

/// Renders rows as a markdown table. With `judge` false (a `--quick` run) verdicts are left
/// out: small sizes do not measure what the targets are about.
pub fn markdown(rows: &[Row], judge: bool) -> String {
    let mut out = String::from("| Workload | Store | Metric | Value | Target | |\n|---|---|---|---:|---|---|\n");
    for r in rows {
        let verdict = if judge { r.verdict.cell() } else { "" };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.workload, r.store, r.metric, r.value, r.target, verdict
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&mut v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(1234567.4), "1,234,567");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(human(Duration::from_millis(1500)), "1.50 s");
        assert!(rss_kib().is_some_and(|k| k > 0));
    }
}
