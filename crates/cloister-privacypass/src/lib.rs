//! Privacy Pass for Cloister: anonymous, rate-limitable credentials.
//!
//! A genuine client proves to the issuer who it is (an account key, see
//! [`account`]) and receives blind-signed tokens; it later spends one token
//! per OHTTP request at the gateway, which learns only that *some* genuine
//! client is asking. The issuer never sees the tokens it signed, so it cannot
//! link a spent token to an account. This crate is token type 0x0002
//! (RFC 9578 §6: blind RSA-2048, RSABSSA-SHA384-PSS-Deterministic, publicly
//! verifiable) end to end, shared by the client, the issuer and the gateway.
//!
//! # Main types
//!
//! - [`wire`]: [`TokenChallenge`], [`TokenRequest`], [`TokenResponse`], [`Token`];
//! - [`client`]: blind a request ([`request_token`]), finalize a response
//!   into a token ([`PendingToken::finalize`]);
//! - [`issuer`]: blind-sign a request with the key it names ([`issue`]);
//! - [`keys`]: issuer keys ([`IssuerSecretKey`], [`IssuerPublicKey`]) and
//!   token key ids;
//! - [`header`]: RFC 9577 `WWW-Authenticate`/`Authorization: PrivateToken`;
//! - [`directory`]: the RFC 9578 §4 issuer key directory ([`IssuerDirectory`]);
//! - [`redeemer`]: the gateway's check ([`Redeemer`], [`TrustedKey`]), with
//!   double-spend prevention;
//! - [`account`]: Ed25519 signatures over token requests, for the issuer's
//!   per-account rate limit.
//!
//! The RSA arithmetic is `blind-rsa-signatures` (RFC 9474); this crate only
//! adds the Privacy Pass framing, and is tested on the RFC 9474 and
//! RFC 9578 vectors. Type 0x0001 (VOPRF P-384) is not implemented.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! Issuance and redemption of one token; the second redemption is refused.
//!
//! ```rust
//! use cloister_privacypass::header::format_authorization;
//! use cloister_privacypass::{
//!     IssuerSecretKey, RedeemError, Redeemer, TokenChallenge, TrustedKey, issue, request_token,
//! };
//!
//! let issuer_key = IssuerSecretKey::generate()?;
//! let challenge = TokenChallenge::new("issuer.example", None, &["gateway.example"])?;
//!
//! // Client: blind a request for the gateway's challenge.
//! let (request, pending) = request_token(issuer_key.public_key(), &challenge)?;
//! // Issuer: signs the blinded message; it never sees the token.
//! let response = issue(std::slice::from_ref(&issuer_key), &request)?;
//! // Client: unblind (this also verifies the signature).
//! let token = pending.finalize(&response)?;
//!
//! // Gateway: trusts the issuer's key and its own challenge.
//! let trusted = TrustedKey { key: issuer_key.public_key().clone(), not_before: 0, not_after: u64::MAX };
//! // Spent nonces go to a state store: a redb file or Redis in production.
//! let spent = cloister_state_store::StateStore::in_memory()?.once_set("spent", 1_000);
//! let redeemer = Redeemer::new(vec![trusted], &[challenge], spent);
//! let authorization = format_authorization(&token);
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(redeemer.redeem(&authorization))?;
//! assert_eq!(
//!     runtime.block_on(redeemer.redeem(&authorization)),
//!     Err(RedeemError::DoubleSpend)
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod account;
mod base64url;
pub mod client;
pub mod directory;
pub mod fuzz_support;
pub mod header;
pub mod issuer;
pub mod keys;
pub mod redeemer;
pub mod wire;

pub use client::{ClientError, PendingToken, request_token};
pub use directory::IssuerDirectory;
pub use issuer::{IssueError, issue};
pub use keys::{IssuerPublicKey, IssuerSecretKey, KeyError};
pub use redeemer::{RedeemError, Redeemer, Redemption, TrustedKey};
pub use wire::{Token, TokenChallenge, TokenRequest, TokenResponse};
