//! Privacy Pass tokens on the user's device (DESIGN.md phase 1).
//!
//! The gateway serves only requests that carry a token (RFC 9577
//! `Authorization: PrivateToken`), and the issuer hands tokens only to
//! genuine clients, but blind signing (RFC 9578 type 0x0002) means the
//! token the gateway sees cannot be linked to the account that asked for it.
//!
//! * [`AccountKey`]: the Ed25519 key that identifies this client to the
//!   issuer (who rate-limits per account);
//! * [`IssuerClient`]: reads the issuer directory (RFC 9578 §4), asks for a
//!   batch of tokens, one signed `TokenRequest` per POST, and checks every
//!   finalized token against the issuer key before keeping it;
//! * [`TokenWallet`]: the persistent store. A token leaves the store (and
//!   the store is on disk without it) *before* it is handed out, so a token
//!   is never offered twice, not even across a crash; spending the same
//!   token twice would let the gateway link the two requests.

mod account;
mod issuance;
mod wallet;

pub use account::{AccountKey, AccountKeyError};
pub use issuance::{FetchError, IssuanceError, IssuerClient, IssuerKeyCheck, IssuerSettings};
pub use wallet::{IssuedToken, TokenWallet, WalletError, WalletStatus};

/// Supplies a Privacy Pass token for each OHTTP request, when the gateway
/// requires one (each request spends one).
pub trait TokenSource: Send + Sync {
    /// The next base64url token, or `None` to send the request without one.
    fn next_token(&self) -> Option<String>;
}

pub(crate) use cloister_wire::unix_now;
