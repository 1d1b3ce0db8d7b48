//! Choosing the next token from a row of logits, as llama.cpp's users
//! expect: a repeat penalty over a recent window, then greedy decoding at
//! temperature 0, or else a draw from the softmax at the temperature,
//! narrowed to the `top_k` most likely tokens (their shares renormalised)
//! and then to the most likely ones whose shares reach `top_p`.
//!
//! Each request has its own generator seeded from its `seed`, so a request
//! sent again gets the same tokens. The probabilities come from candle's
//! softmax and the draw from rand's `WeightedIndex` over the vocabulary in
//! its order, as candle-transformers' `LogitsProcessor` draws: greedy,
//! temperature-only and top-p requests get the tokens it gives for the same
//! seed, so figures measured with it hold (checked against it with the
//! crate's `reference` feature). Top-k renormalises before top-p, as
//! llama.cpp does and candle-transformers does not: only there do the
//! draws differ.

use std::collections::HashSet;

use candle_core::{Device, Tensor};
use cloister_inference::SamplingParams;
use rand::SeedableRng as _;
use rand::distr::Distribution as _;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;

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
    pub(crate) fn sample(&mut self, logits: &[f32]) -> candle_core::Result<u32> {
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return Ok(argmax(logits));
        }
        let row = Tensor::from_slice(logits, logits.len(), &Device::Cpu)?;
        let scaled = (row / f64::from(self.temperature))?;
        let mut shares = candle_nn::ops::softmax_last_dim(&scaled)?.to_vec1::<f32>()?;
        if self.top_k > 0 && self.top_k < shares.len() {
            keep_most_likely(&mut shares, self.top_k);
        }
        if self.top_p < 1.0 {
            keep_nucleus(&mut shares, self.top_p);
        }
        // No weight left (a top_p of 0): the most likely token.
        Ok(match WeightedIndex::new(&shares) {
            Ok(weights) => u32::try_from(weights.sample(&mut self.rng)).unwrap_or(u32::MAX),
            Err(_) => argmax(logits),
        })
    }
}

/// Indices of `shares`, most likely first (equal shares in vocabulary order).
fn by_likelihood(shares: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].total_cmp(&shares[a]));
    order
}

/// Zeroes all but the `k` largest shares and renormalises those to sum to 1.
/// A selection, not a sort: this runs for every token over the vocabulary.
fn keep_most_likely(shares: &mut [f32], k: usize) {
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.select_nth_unstable_by(k, |&a, &b| shares[b].total_cmp(&shares[a]));
    for &token in &order[k..] {
        shares[token] = 0.0;
    }
    let total: f32 = shares.iter().sum();
    if total > 0.0 {
        shares.iter_mut().for_each(|share| *share /= total);
    }
}

/// Zeroes every share after the most likely ones that reach `top_p` together.
fn keep_nucleus(shares: &mut [f32], top_p: f32) {
    let mut reached = 0.0;
    for token in by_likelihood(shares) {
        if reached >= top_p {
            shares[token] = 0.0;
        } else {
            reached += shares[token];
        }
    }
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
            counts[sampler.sample(logits).expect("sample") as usize] += 1;
        }
        counts
    }

    #[test]
    fn temperature_zero_takes_the_largest_logit_and_the_first_of_equals() {
        let mut greedy = sampler(0.0, 0, 1.0, 1);
        for (logits, expected) in [
            (&[0.5, 2.0, -1.0, 1.9][..], 1),
            (&[0.5, 3.0, 3.0], 1),
            (&[f32::NAN, -4.0, -5.0], 1),
        ] {
            assert_eq!(greedy.sample(logits).expect("sample"), expected);
        }
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
        // Probabilities 0.5, 0.3, 0.2 at temperature 1: 0.75 needs the first two.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let drawn = counts(&mut sampler(1.0, 0, 0.75, 5), &logits, 2000);
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
            (0..40)
                .map(|_| s.sample(&logits).expect("sample"))
                .collect::<Vec<_>>()
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

    /// The tokens candle-transformers' sampler draws for the same seeds,
    /// where this one promises them.
    #[cfg(feature = "reference")]
    #[test]
    fn seeded_draws_are_candle_transformers_draws() {
        use candle_transformers::generation::{LogitsProcessor, Sampling};
        let logits: Vec<f32> = (0..200u32)
            .map(|i| ((i * 7919) % 113) as f32 / 17.0)
            .collect();
        let row = Tensor::new(logits.as_slice(), &Device::Cpu).expect("row");
        for seed in 0..20 {
            for (top_p, sampling) in [
                (1.0, Sampling::All { temperature: 0.6 }),
                (
                    0.9,
                    Sampling::TopP {
                        p: 0.9,
                        temperature: 0.6,
                    },
                ),
                (
                    0.5,
                    Sampling::TopP {
                        p: 0.5,
                        temperature: 1.3,
                    },
                ),
            ] {
                let temperature = match sampling {
                    Sampling::All { temperature } | Sampling::TopP { temperature, .. } => {
                        temperature as f32
                    }
                    _ => unreachable!("only these are compared"),
                };
                let mut ours = sampler(temperature, 0, top_p, seed);
                let mut theirs = LogitsProcessor::from_sampling(seed, sampling);
                for step in 0..30 {
                    assert_eq!(
                        ours.sample(&logits).expect("ours"),
                        theirs.sample(&row).expect("theirs"),
                        "seed {seed}, top_p {top_p}, step {step}"
                    );
                }
            }
        }
    }
}
