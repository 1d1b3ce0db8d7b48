//! Choosing the next token from a row of logits, as llama.cpp's users
//! expect: a repeat penalty over a recent window, then greedy decoding at
//! temperature 0, or else a draw from the softmax at the temperature,
//! narrowed to the `top_k` most likely tokens and then to the fewest whose
//! probability reaches `top_p` (renormalised after each step).
//!
//! Each request has its own seeded generator, so a request sent again with
//! the same seed gets the same tokens.

use std::collections::HashSet;

use cloister_inference::SamplingParams;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// One sequence's sampler.
#[derive(Debug)]
pub(crate) struct Sampler {
    /// 0 (or less, or NaN): greedy.
    temperature: f32,
    /// 0: no limit.
    top_k: usize,
    /// 1 or more: no limit.
    top_p: f32,
    rng: StdRng,
}

impl Sampler {
    pub(crate) fn new(params: &SamplingParams) -> Self {
        Self {
            temperature: params.temperature,
            top_k: params.top_k as usize,
            top_p: params.top_p,
            rng: StdRng::seed_from_u64(params.seed),
        }
    }

    /// The next token, given one logit per vocabulary entry.
    pub(crate) fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut candidates = softmax(logits, self.temperature);
        if self.top_k > 0 && self.top_k < candidates.len() {
            candidates.select_nth_unstable_by(self.top_k - 1, more_likely_first);
            candidates.truncate(self.top_k);
        }
        if self.top_p < 1.0 {
            candidates.sort_unstable_by(more_likely_first);
            let total: f32 = candidates.iter().map(|(_, p)| p).sum();
            let mut reached = 0.0;
            let kept = candidates
                .iter()
                .position(|(_, p)| {
                    reached += p;
                    reached >= self.top_p * total
                })
                .map_or(candidates.len(), |last| last + 1);
            candidates.truncate(kept);
        }
        let total: f64 = candidates.iter().map(|(_, p)| f64::from(*p)).sum();
        let mut point = self.rng.random::<f64>() * total;
        for &(token, p) in &candidates {
            point -= f64::from(p);
            if point < 0.0 {
                return token;
            }
        }
        // Rounding left the point at the very end: the last candidate.
        candidates
            .last()
            .map_or_else(|| argmax(logits), |(token, _)| *token)
    }
}

fn more_likely_first(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1)
}

/// The index of the largest logit (the first of equals; NaN never wins).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0, f32::NEG_INFINITY);
    for (token, &logit) in (0u32..).zip(logits) {
        if logit > best.1 {
            best = (token, logit);
        }
    }
    best.0
}

/// Each token with its (unnormalised) probability at `temperature`.
fn softmax(logits: &[f32], temperature: f32) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (0u32..)
        .zip(logits)
        .map(|(token, logit)| {
            let p = ((logit - max) / temperature).exp();
            (token, if p.is_nan() { 0.0 } else { p })
        })
        .collect()
}

/// Makes the tokens of `recent` less likely, each once however often it
/// occurs: a positive logit is divided by `penalty`, a negative one
/// multiplied (llama.cpp's rule, so a penalty above 1 always lowers it).
pub(crate) fn penalise_repeats(logits: &mut [f32], penalty: f32, recent: &[u32]) {
    let mut seen = HashSet::new();
    for &token in recent {
        if !seen.insert(token) {
            continue;
        }
        if let Some(logit) = logits.get_mut(token as usize) {
            if *logit >= 0.0 {
                *logit /= penalty;
            } else {
                *logit *= penalty;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(temperature: f32, top_k: u32, top_p: f32, seed: u64) -> Sampler {
        Sampler::new(&SamplingParams {
            temperature,
            top_k,
            top_p,
            seed,
            ..SamplingParams::default()
        })
    }

    /// How often each token is drawn in `draws` draws.
    fn counts(sampler: &mut Sampler, logits: &[f32], draws: usize) -> Vec<usize> {
        let mut counts = vec![0; logits.len()];
        for _ in 0..draws {
            counts[sampler.sample(logits) as usize] += 1;
        }
        counts
    }

    #[test]
    fn temperature_zero_takes_the_largest_logit_and_the_first_of_equals() {
        let mut greedy = sampler(0.0, 0, 1.0, 1);
        assert_eq!(greedy.sample(&[0.5, 2.0, -1.0, 1.9]), 1);
        assert_eq!(greedy.sample(&[0.5, 3.0, 3.0]), 1);
        assert_eq!(greedy.sample(&[f32::NAN, -4.0, -5.0]), 1);
    }

    #[test]
    fn draws_follow_the_softmax_at_the_temperature() {
        // Probabilities 1/4 and 3/4 at temperature 1.
        let logits = [0.0, 3f32.ln()];
        let drawn = counts(&mut sampler(1.0, 0, 1.0, 7), &logits, 4000);
        let share = drawn[1] as f64 / 4000.0;
        assert!((0.72..0.78).contains(&share), "drawn {drawn:?}");
        // A low temperature sharpens: e^4 : 1 at a quarter.
        let drawn = counts(&mut sampler(0.25, 0, 1.0, 7), &[0.0, 1.0], 4000);
        assert!(drawn[1] > 3850, "drawn {drawn:?}");
    }

    #[test]
    fn top_k_keeps_only_the_k_most_likely() {
        let logits = [1.0, 0.2, 1.1, 0.9, 0.0];
        let drawn = counts(&mut sampler(5.0, 2, 1.0, 3), &logits, 2000);
        assert_eq!(drawn[1] + drawn[3] + drawn[4], 0, "drawn {drawn:?}");
        assert!(drawn[0] > 700 && drawn[2] > 700, "drawn {drawn:?}");
        let drawn = counts(&mut sampler(100.0, 1, 1.0, 3), &logits, 200);
        assert_eq!(drawn[2], 200, "drawn {drawn:?}");
    }

    #[test]
    fn top_p_keeps_the_fewest_tokens_that_reach_it() {
        // Probabilities 0.5, 0.3, 0.2 at temperature 1: 0.8 needs the first two.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let drawn = counts(&mut sampler(1.0, 0, 0.8, 5), &logits, 2000);
        assert_eq!(drawn[2], 0, "drawn {drawn:?}");
        assert!(drawn[1] > 600, "drawn {drawn:?}");
        let drawn = counts(&mut sampler(1.0, 0, 0.1, 5), &logits, 200);
        assert_eq!(drawn[0], 200, "drawn {drawn:?}");
        // After top-k keeps two, top-p applies to their renormalised shares
        // (0.625 and 0.375): 0.6 keeps only the first.
        let drawn = counts(&mut sampler(1.0, 2, 0.6, 5), &logits, 200);
        assert_eq!(drawn[0], 200, "drawn {drawn:?}");
    }

    #[test]
    fn the_same_seed_draws_the_same_tokens_and_another_seed_others() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut s = sampler(1.0, 0, 1.0, seed);
            (0..40).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(11), draw(11));
        assert_ne!(draw(11), draw(12));
    }

    #[test]
    fn repeats_are_penalised_once_each_towards_unlikely() {
        let mut logits = [2.0, -2.0, 1.0, 4.0];
        penalise_repeats(&mut logits, 2.0, &[0, 1, 0, 0, 9]);
        assert_eq!(logits, [1.0, -4.0, 1.0, 4.0]);
    }
}
