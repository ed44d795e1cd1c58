//! Samples, percentiles and the interleaved rounds that make ratios hold on a busy machine.

use crate::runner::*;
use std::time::Duration;

/// Samples of one variant, in milliseconds.
#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) add: Vec<f64>,
    pub(crate) del: Vec<f64>,
    pub(crate) total: Vec<f64>,
    pub(crate) cpu: Vec<f64>,
}

impl Samples {
    pub(crate) fn push(&mut self, c: &Cycle) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.add.push(ms(c.add));
        self.del.push(ms(c.del));
        self.total.push(ms(c.add + c.del));
        self.cpu.push(ms(c.cpu));
    }
}

/// Nearest-rank percentile.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs `variants` (each a closure doing one measured cycle) interleaved: `warmup` unrecorded
/// rounds, then `rounds` rounds, the starting variant rotating every round.
pub(crate) fn interleave(
    rounds: usize,
    warmup: usize,
    variants: &mut [&mut dyn FnMut() -> Cycle],
) -> Vec<Samples> {
    let n = variants.len();
    let mut samples: Vec<Samples> = (0..n).map(|_| Samples::default()).collect();
    for round in 0..warmup + rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let cycle = (variants[i])();
            if round >= warmup {
                samples[i].push(&cycle);
            }
        }
    }
    samples
}
