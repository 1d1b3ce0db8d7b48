//! One request's inference budget: the accounting alone, without engine,
//! wasm or clock, so that every rule is tested directly.
//!
//! Tokens are reserved when a call is admitted and the unused part is
//! returned when it settles, so concurrent streams cannot overspend. Every
//! refusal is remembered by kind, so the error a plugin passes back can be
//! reported with the host's own numbers, never the plugin's.

use cloister_api::BudgetKind;

use super::InferenceGrant;

/// A call refused because it would go over a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// Which budget.
    pub budget: BudgetKind,
    /// The budget's limit.
    pub limit: u64,
    /// What the request would have used with the refused call (or, for wall
    /// time, had used when it was refused); more than `limit`.
    pub used: u64,
}

/// Tokens held by an admitted generation until it settles.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reservation is returned with `Budget::settle`"]
pub struct Reservation(u32);

impl Reservation {
    /// The tokens reserved: the call's `max-tokens`.
    pub fn tokens(&self) -> u32 {
        self.0
    }
}

/// The budget of one request under one grant.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    max_tokens_per_call: u32,
    max_tokens_per_request: u32,
    max_calls_per_request: u32,
    max_prompt_bytes: u64,
    time_limit_ms: u64,
    /// Tokens generated plus tokens reserved by calls in flight.
    tokens_used: u32,
    calls_used: u32,
    refusals: Vec<Exceeded>,
}

impl Budget {
    /// A fresh budget under `grant` (none: nothing is allowed) for a request
    /// whose wall-time limit is `time_limit_ms`.
    pub fn new(grant: Option<&InferenceGrant>, time_limit_ms: u64) -> Self {
        let mut budget = Self {
            time_limit_ms,
            ..Self::default()
        };
        if let Some(grant) = grant {
            budget.max_tokens_per_call = grant.max_tokens_per_call;
            budget.max_tokens_per_request = grant.max_tokens_per_request;
            budget.max_calls_per_request = grant.max_calls_per_request;
            budget.max_prompt_bytes = grant.max_prompt_bytes;
        }
        budget
    }

    /// Admits a generation of at most `max_tokens` from a prompt of
    /// `prompt_bytes`, reserving its tokens and counting the call.
    ///
    /// # Errors
    /// The budget the call would exceed; nothing is reserved.
    pub fn admit(&mut self, max_tokens: u32, prompt_bytes: u64) -> Result<Reservation, Exceeded> {
        self.check_call()?;
        if max_tokens > self.max_tokens_per_call {
            return Err(self.refuse(
                BudgetKind::TokensPerCall,
                self.max_tokens_per_call.into(),
                max_tokens.into(),
            ));
        }
        let would_use = u64::from(self.tokens_used) + u64::from(max_tokens);
        if would_use > u64::from(self.max_tokens_per_request) {
            return Err(self.refuse(
                BudgetKind::TokensPerRequest,
                self.max_tokens_per_request.into(),
                would_use,
            ));
        }
        self.check_prompt(prompt_bytes)?;
        self.calls_used += 1;
        self.tokens_used += max_tokens;
        Ok(Reservation(max_tokens))
    }

    /// Admits a call that generates no tokens (embedding) over
    /// `prompt_bytes` of text, counting the call.
    ///
    /// # Errors
    /// The budget the call would exceed.
    pub fn admit_untokened(&mut self, prompt_bytes: u64) -> Result<(), Exceeded> {
        self.check_call()?;
        self.check_prompt(prompt_bytes)?;
        self.calls_used += 1;
        Ok(())
    }

    /// Ends a generation that produced `generated` tokens: the unused part
    /// of its reservation is returned (never more than was reserved).
    pub fn settle(&mut self, reservation: Reservation, generated: u32) {
        let unused = reservation.0 - generated.min(reservation.0);
        self.tokens_used -= unused;
    }

    /// Records that the request ran out of wall time `elapsed_ms` after it
    /// started.
    pub fn out_of_time(&mut self, elapsed_ms: u64) -> Exceeded {
        self.refuse(BudgetKind::WallTime, self.time_limit_ms, elapsed_ms)
    }

    /// The last refusal of `budget`, or, when there was none, its limit and
    /// what the request has used of it.
    pub fn exceeded(&self, budget: BudgetKind) -> Exceeded {
        if let Some(refusal) = self.refusals.iter().rev().find(|r| r.budget == budget) {
            return *refusal;
        }
        let (limit, used) = match budget {
            BudgetKind::TokensPerCall => (self.max_tokens_per_call.into(), 0),
            BudgetKind::TokensPerRequest => {
                (self.max_tokens_per_request.into(), self.tokens_used.into())
            }
            BudgetKind::CallsPerRequest => {
                (self.max_calls_per_request.into(), self.calls_used.into())
            }
            BudgetKind::PromptBytes => (self.max_prompt_bytes, 0),
            BudgetKind::WallTime => (self.time_limit_ms, 0),
        };
        Exceeded {
            budget,
            limit,
            used,
        }
    }

    /// Tokens generated, plus those reserved by calls in flight.
    pub fn tokens_used(&self) -> u32 {
        self.tokens_used
    }

    /// Tokens the request may still reserve.
    pub fn remaining_tokens(&self) -> u32 {
        self.max_tokens_per_request.saturating_sub(self.tokens_used)
    }

    /// Calls the request may still make.
    pub fn remaining_calls(&self) -> u32 {
        self.max_calls_per_request.saturating_sub(self.calls_used)
    }

    fn check_call(&mut self) -> Result<(), Exceeded> {
        if self.calls_used >= self.max_calls_per_request {
            return Err(self.refuse(
                BudgetKind::CallsPerRequest,
                self.max_calls_per_request.into(),
                u64::from(self.calls_used) + 1,
            ));
        }
        Ok(())
    }

    fn check_prompt(&mut self, prompt_bytes: u64) -> Result<(), Exceeded> {
        if prompt_bytes > self.max_prompt_bytes {
            return Err(self.refuse(BudgetKind::PromptBytes, self.max_prompt_bytes, prompt_bytes));
        }
        Ok(())
    }

    fn refuse(&mut self, budget: BudgetKind, limit: u64, used: u64) -> Exceeded {
        let exceeded = Exceeded {
            budget,
            limit,
            used,
        };
        // One entry per kind: a plugin looping on refusals grows nothing.
        self.refusals.retain(|r| r.budget != budget);
        self.refusals.push(exceeded);
        exceeded
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// 10 tokens a call, 25 a request, 3 calls, 100 prompt bytes, 500 ms.
    fn budget() -> Budget {
        let grant = InferenceGrant {
            models: BTreeSet::from(["m".to_owned()]),
            max_tokens_per_call: 10,
            max_tokens_per_request: 25,
            max_calls_per_request: 3,
            max_prompt_bytes: 100,
        };
        Budget::new(Some(&grant), 500)
    }

    #[test]
    fn admitted_calls_reserve_and_settling_returns_the_unused_part() {
        let mut budget = budget();
        let first = budget.admit(10, 50).expect("within budget");
        assert_eq!(first.tokens(), 10);
        assert_eq!(budget.tokens_used(), 10);
        budget.settle(first, 4);
        assert_eq!(budget.tokens_used(), 4);
        assert_eq!(budget.remaining_tokens(), 21);
        assert_eq!(budget.remaining_calls(), 2);
        // A generation cannot settle for more than it reserved.
        let second = budget.admit(5, 0).expect("within budget");
        budget.settle(second, 1_000);
        assert_eq!(budget.tokens_used(), 9);
    }

    #[test]
    fn a_call_over_the_per_call_maximum_is_refused() {
        let mut budget = budget();
        let refused = budget.admit(11, 0).expect_err("11 > 10");
        let expected = Exceeded {
            budget: BudgetKind::TokensPerCall,
            limit: 10,
            used: 11,
        };
        assert_eq!(refused, expected);
        assert_eq!(budget.tokens_used(), 0, "nothing reserved");
        assert_eq!(
            budget.remaining_calls(),
            3,
            "the refused call is not counted"
        );
        assert_eq!(budget.exceeded(BudgetKind::TokensPerCall), expected);
    }

    #[test]
    fn calls_over_the_per_request_maximum_are_refused_until_tokens_return() {
        let mut budget = budget();
        let a = budget.admit(10, 0).expect("10 of 25");
        let b = budget.admit(10, 0).expect("20 of 25");
        assert_eq!(
            budget.admit(10, 0),
            Err(Exceeded {
                budget: BudgetKind::TokensPerRequest,
                limit: 25,
                used: 30,
            })
        );
        budget.settle(a, 2);
        budget.settle(b, 2);
        let c = budget.admit(10, 0).expect("14 of 25 once settled");
        budget.settle(c, 10);
        assert_eq!(budget.remaining_tokens(), 11);
    }

    #[test]
    fn exhausted_calls_are_refused_for_generation_and_embedding() {
        let mut budget = budget();
        for _ in 0..2 {
            let call = budget.admit(1, 0).expect("call");
            budget.settle(call, 1);
        }
        budget.admit_untokened(10).expect("third call");
        let expected = Exceeded {
            budget: BudgetKind::CallsPerRequest,
            limit: 3,
            used: 4,
        };
        assert_eq!(budget.admit(1, 0), Err(expected));
        assert_eq!(budget.admit_untokened(0), Err(expected));
        assert_eq!(budget.remaining_calls(), 0);
    }

    #[test]
    fn prompts_over_the_byte_limit_are_refused() {
        let mut budget = budget();
        let expected = Exceeded {
            budget: BudgetKind::PromptBytes,
            limit: 100,
            used: 101,
        };
        assert_eq!(budget.admit(1, 101), Err(expected));
        assert_eq!(budget.admit_untokened(101), Err(expected));
        assert_eq!(budget.tokens_used(), 0);
    }

    #[test]
    fn without_a_grant_nothing_is_admitted() {
        let mut budget = Budget::new(None, 500);
        assert!(budget.admit(1, 0).is_err());
        assert_eq!(budget.remaining_tokens(), 0);
        assert_eq!(budget.remaining_calls(), 0);
    }

    #[test]
    fn unrecorded_kinds_report_the_limit_and_the_use_so_far() {
        let mut budget = budget();
        let call = budget.admit(7, 0).expect("call");
        budget.settle(call, 7);
        assert_eq!(
            budget.exceeded(BudgetKind::TokensPerRequest),
            Exceeded {
                budget: BudgetKind::TokensPerRequest,
                limit: 25,
                used: 7,
            }
        );
        assert_eq!(
            budget.out_of_time(612),
            Exceeded {
                budget: BudgetKind::WallTime,
                limit: 500,
                used: 612,
            }
        );
        assert_eq!(budget.exceeded(BudgetKind::WallTime).used, 612);
    }
}
