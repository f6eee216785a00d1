//! LATENCY GRAPH's drawing: an event's samples as Redis draws them, four rows of a filled
//! sparkline (`_`, `o`, `#` within a row, `|` below a higher one) 80 columns wide, each
//! column labelled, vertically, with how long ago its sample was taken.

use std::fmt::Write as _;

use crate::latency_monitor::EventHistory;

/// Columns per block of the graph.
const COLS: usize = 80;
/// Rows of the sparkline.
const ROWS: usize = 4;
/// A row's three heights.
const FILL: [u8; 3] = [b'_', b'o', b'#'];
/// Blank rows between the sparkline and the labels.
const LABEL_MARGIN: usize = 1;

/// The graph of event `name` at unix second `now`.
pub fn render(name: &str, e: &EventHistory, now: u64) -> String {
    let samples = e.samples();
    let low = samples.iter().map(|s| s.latency).min().unwrap_or(0);
    let high = samples.iter().map(|s| s.latency).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{name} - high {high} ms, low {low} ms (all time high {} ms)",
        e.max
    );
    out.push_str(&"-".repeat(COLS));
    out.push('\n');
    let columns: Vec<(u64, String)> = samples
        .iter()
        .map(|s| (s.latency, ago(now.saturating_sub(s.time))))
        .collect();
    for (i, block) in columns.chunks(COLS).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        block_rows(block, low, high, &mut out);
    }
    out
}

/// How long ago, as the column's label: `12s`, `5m`, `3h`, `2d`.
fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One block of up to [`COLS`] columns: the sparkline's rows, a blank row, then the labels
/// one character per row.
fn block_rows(block: &[(u64, String)], low: u64, high: u64, out: &mut String) {
    let steps = (FILL.len() * ROWS) as i64;
    let range = if high == low {
        1.0
    } else {
        (high - low) as f64
    };
    let step_of = |v: u64| -> i64 {
        let scaled = (((v - low) as f64) * steps as f64).trunc();
        ((scaled / range) as i64).clamp(0, steps - 1)
    };
    for row in 0..ROWS {
        let line: String = block
            .iter()
            .map(|(v, _)| {
                let at = step_of(*v) - ((ROWS - row - 1) * FILL.len()) as i64;
                match at {
                    a if a < 0 => ' ',
                    a if (a as usize) < FILL.len() => char::from(FILL[a as usize]),
                    _ => '|',
                }
            })
            .collect();
        out.push_str(&line);
        out.push('\n');
    }
    for _ in 0..LABEL_MARGIN {
        out.push_str(&" ".repeat(block.len()));
        out.push('\n');
    }
    let longest = block.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    for i in 0..longest {
        let line: String = block
            .iter()
            .map(|(_, l)| l.as_bytes().get(i).map_or(' ', |&b| char::from(b)))
            .collect();
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency_monitor::LatencyMonitor;

    #[test]
    fn two_samples_draw_as_redis_draws_them() {
        let m = LatencyMonitor::new(1, 1, true);
        m.record_sample_at("command", 98, 31);
        m.record_sample_at("command", 100, 83);
        let e = m.event_history(b"command").unwrap_or_default();
        let want = format!(
            "command - high 83 ms, low 31 ms (all time high 83 ms)\n{}\n #\n |\n |\n_|\n  \n20\nss\n",
            "-".repeat(80)
        );
        assert_eq!(render("command", &e, 100), want);
    }

    #[test]
    fn labels() {
        assert_eq!(ago(59), "59s");
        assert_eq!(ago(60), "1m");
        assert_eq!(ago(7200), "2h");
        assert_eq!(ago(200_000), "2d");
    }
}
