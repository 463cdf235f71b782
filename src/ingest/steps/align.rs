//! Alignment arithmetic on timestamps alone (no rows): the step clock, the split into
//! episodes, and which message of a source each step takes. Pass 1 and the matching
//! half of pass 2 of step building; nanoseconds throughout.

use super::config::Method;
use std::ops::Range;

/// Most steps one file may produce from a fixed fps (a typo like `fps = 1e6` on an
/// hour-long bag must not allocate gigabytes).
pub const MAX_STEPS: usize = 50_000_000;

/// Step times at a fixed rate from `start` through `end` inclusive.
pub fn clock_from_fps(start: i64, end: i64, fps: f64) -> Result<Vec<i64>, String> {
    let period = 1e9 / fps;
    let span = (end - start).max(0) as f64;
    let n = (span / period).floor() as usize + 1;
    if n > MAX_STEPS {
        return Err(format!(
            "fps {fps} over {:.1} s makes {n} steps, more than {MAX_STEPS}",
            span / 1e9
        ));
    }
    Ok((0..n)
        .map(|k| start + (k as f64 * period).round() as i64)
        .collect())
}

/// The median interval between consecutive steps (None with fewer than two).
pub fn period(steps: &[i64]) -> Option<i64> {
    let mut d: Vec<i64> = steps.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return None;
    }
    let mid = d.len() / 2;
    Some(*d.select_nth_unstable(mid).1)
}

/// Splits sorted step times into episodes: a new one after a gap longer than `gap`,
/// and at the first step at or after each event time. Never yields an empty range.
pub fn split(steps: &[i64], gap: Option<i64>, events: &[i64]) -> Vec<Range<usize>> {
    let mut events: Vec<i64> = events.to_vec();
    events.sort_unstable();
    let mut ev = events.iter().peekable();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..steps.len() {
        let mut cut = i > 0 && gap.is_some_and(|g| steps[i] - steps[i - 1] > g);
        while ev.peek().is_some_and(|e| **e <= steps[i]) {
            ev.next();
            cut |= i > 0;
        }
        if cut && i > start {
            out.push(start..i);
            start = i;
        }
    }
    if start < steps.len() {
        out.push(start..steps.len());
    }
    out
}

/// A source's message times sorted, with each one's row in the topic table.
pub struct Sorted {
    pub times: Vec<i64>,
    pub rows: Vec<u32>,
}

impl Sorted {
    /// `times` in row order (as stored); rows past u32::MAX are not expected from one
    /// file's topic and are refused by the caller.
    pub fn new(times: &[i64]) -> Sorted {
        let mut pairs: Vec<(i64, u32)> = times
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u32))
            .collect();
        pairs.sort_unstable();
        Sorted {
            times: pairs.iter().map(|p| p.0).collect(),
            rows: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// Whether any message lies in [from, to].
    pub fn any_within(&self, from: i64, to: i64) -> bool {
        let i = self.times.partition_point(|t| *t < from);
        self.times.get(i).is_some_and(|t| *t <= to)
    }
}

/// For each sorted step time, the row of the source message it takes, or None when
/// the closest candidate is further than `tolerance` (None = no limit).
pub fn matches(
    steps: &[i64],
    src: &Sorted,
    method: Method,
    tolerance: Option<i64>,
) -> Vec<Option<u32>> {
    let within = |d: i64| tolerance.is_none_or(|t| d <= t);
    let mut j = 0;
    steps
        .iter()
        .map(|&t| {
            while j < src.times.len() && src.times[j] <= t {
                j += 1;
            }
            // j-1: last message at or before t; j: first one after t.
            let before = j.checked_sub(1).map(|i| (t - src.times[i], i));
            let pick = match method {
                Method::Previous => before,
                Method::Nearest => {
                    let after = src.times.get(j).map(|s| (s - t, j));
                    match (before, after) {
                        (Some(b), Some(a)) => Some(if a.0 < b.0 { a } else { b }),
                        (b, a) => b.or(a),
                    }
                }
            };
            pick.filter(|(d, _)| within(*d)).map(|(_, i)| src.rows[i])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_and_previous_with_tolerance() {
        let steps = [0, 100, 200, 300, 1000];
        // Stored out of order: rows 0..4 at these times.
        let src = Sorted::new(&[190, 10, 260, 95]);
        assert_eq!(
            matches(&steps, &src, Method::Nearest, Some(50)),
            vec![Some(1), Some(3), Some(0), Some(2), None]
        );
        assert_eq!(
            matches(&steps, &src, Method::Previous, Some(30)),
            vec![None, Some(3), Some(0), None, None]
        );
        assert_eq!(
            matches(&steps, &src, Method::Previous, None),
            vec![None, Some(3), Some(0), Some(2), Some(2)]
        );
    }

    #[test]
    fn nearest_tie_takes_the_earlier() {
        let src = Sorted::new(&[90, 110]);
        assert_eq!(matches(&[100], &src, Method::Nearest, None), vec![Some(0)]);
    }

    #[test]
    fn split_by_gap_and_events() {
        let steps = [0, 10, 20, 100, 110, 120];
        assert_eq!(split(&steps, None, &[]), vec![0..6]);
        assert_eq!(split(&steps, Some(50), &[]), vec![0..3, 3..6]);
        assert_eq!(
            split(&steps, None, &[-5, 15, 16, 110]),
            vec![0..2, 2..4, 4..6]
        );
        assert!(split(&[], Some(1), &[]).is_empty());
    }

    #[test]
    fn fps_clock() {
        assert_eq!(clock_from_fps(0, 1_000_000_000, 4.0).unwrap().len(), 5);
        assert!(clock_from_fps(0, i64::MAX / 2, 1e6).is_err());
        assert_eq!(period(&[0, 10, 30, 40]), Some(10));
    }
}
