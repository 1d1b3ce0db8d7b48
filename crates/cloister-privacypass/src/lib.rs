//! Privacy Pass for Cloister: anonymous, rate-limitable credentials.
//!
//! A genuine client proves to the issuer who it is (an account key, see
//! [`account`]) and receives blind-signed tokens; it later spends one token
//! per session at the gateway, which learns only that *some* genuine client
//! is asking. This crate is token type 0x0002 (RFC 9578 §6: blind RSA-2048,
//! RSABSSA-SHA384-PSS-Deterministic, publicly verifiable) end to end:
//!
//! - [`wire`]: `TokenChallenge`, `TokenRequest`, `TokenResponse`, `Token`;
//! - [`client`]: blind a request, finalize a response into a token;
//! - [`issuer`]: blind-sign a request with the key it names;
//! - [`header`]: RFC 9577 `WWW-Authenticate`/`Authorization: PrivateToken`;
//! - [`directory`]: the RFC 9578 §4 issuer key directory;
//! - [`redeemer`]: the gateway's check, with double-spend prevention;
//! - [`keys`]: issuer keys and token key ids.
//!
//! The RSA arithmetic is `blind-rsa-signatures` (RFC 9474); this crate only
//! adds the Privacy Pass framing, and is tested on the RFC 9474 and
//! RFC 9578 vectors. Type 0x0001 (VOPRF P-384) is not implemented.

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
