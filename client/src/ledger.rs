//! The client's verified view of the transparency ledger (DESIGN.md, phases 2 and 4).
//!
//! The view itself, [`LedgerTrust`], is shared with the parties that judge
//! each other by their releases (`cloister_ledger_verify::view`, where its
//! guarantees are listed): it verifies every tree head (log key, witnesses'
//! cosignatures, consistency with the head it accepted last) and every
//! entry's inclusion, persists what it verified, and is the client's
//! [`MeasurementAuthority`](cloister_attestation::MeasurementAuthority).
//! Here it answers the client's two other questions before anything is
//! sent: is this OHTTP key configuration one everybody gets now
//! ([`KeyConsistency`]: logged, inside its window, one of the two newest),
//! and is this Privacy Pass issuer key logged and current ([`IssuerKeyCheck`]).

use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::current::KeyStatus;
use cloister_ohttp_keys::key_config_digest;

pub use cloister_ledger_verify::view::{
    DEFAULT_MAX_AGE, LedgerTrust, LedgerTrustConfig, LedgerTrustError, SyncReport,
    WitnessedCheckpoints,
};

use crate::tokens::IssuerKeyCheck;
use crate::{ClientError, KeyConsistency};

impl IssuerKeyCheck for LedgerTrust {
    /// Accepts a Privacy Pass issuer key only if its `token_key_id` is
    /// logged and current (inside its window, one of the two newest): an
    /// issuer handing one account a key of its own could otherwise
    /// recognise that account in every token it redeems.
    fn check_issuer_key(&self, token_key_id: &[u8; 32]) -> Result<(), String> {
        self.check_fresh()?;
        key_usable(
            self.issuer_key_status(token_key_id),
            "issuer key",
            token_key_id,
        )
    }
}

/// `Ok` for a usable key, else why `what` (named by `digest`) is refused.
fn key_usable(status: KeyStatus, what: &str, digest: &[u8; 32]) -> Result<(), String> {
    let digest = HexBytes(*digest);
    let why = match status {
        KeyStatus::Usable => return Ok(()),
        KeyStatus::NotLogged => "is not logged in the ledger".to_owned(),
        KeyStatus::NotYetValid { not_before } => format!("is not valid before {not_before}"),
        KeyStatus::Expired { not_after } => format!("expired at {not_after}"),
        KeyStatus::Superseded => "was superseded by two newer logged keys".to_owned(),
    };
    Err(format!("{what} {digest} {why}"))
}

impl KeyConsistency for LedgerTrust {
    /// Accepts a configuration whose SHA-256 is a logged OHTTP key
    /// configuration that is current: inside its window and one of the two
    /// newest open ones. A digest not logged yet, or a view older than the
    /// age limit, triggers one sync (the gateway may have rotated to a key
    /// logged since), then is refused if still not usable.
    async fn check(&self, encoded_config: &[u8]) -> Result<(), ClientError> {
        let digest = key_config_digest(encoded_config);
        let stale = self.check_fresh().is_err();
        let status = match self.ohttp_key_status(&digest) {
            status if status == KeyStatus::NotLogged || stale => {
                self.sync().await.map_err(|error| {
                    ClientError::KeyConsistency(format!("ledger sync failed: {error}"))
                })?;
                self.ohttp_key_status(&digest)
            }
            status => status,
        };
        key_usable(status, "OHTTP key configuration", &digest).map_err(ClientError::KeyConsistency)
    }
}
