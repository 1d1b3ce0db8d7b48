//! Input limits as typed errors.

use crate::{FeatureError, LimitExceeded};

/// Fails with `input-too-large` when `actual` exceeds `limit`.
pub fn at_most(what: &str, actual: usize, limit: usize) -> Result<(), FeatureError> {
    if actual <= limit {
        return Ok(());
    }
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Err(FeatureError::InputTooLarge(LimitExceeded {
        what: what.to_owned(),
        limit: as_u64(limit),
        actual: as_u64(actual),
    }))
}
