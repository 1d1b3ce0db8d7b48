//! Cloister's wire vocabulary, defined once for every party.
//!
//! The client, relay, gateway, host, issuer and ledger agree on a handful of
//! names and formats; each is defined here and nowhere else:
//!
//! * [`media`]: the media types of OHTTP requests, responses and key lists,
//!   RA-TLS record bodies and problem details;
//! * [`problem`]: the problem types of refused requests;
//! * [`header`]: header names, such as the inner request's
//!   [`header::SESSION`];
//! * [`session`]: what a session id looks like, and how a client makes one;
//! * [`ledger`]: the transparency ledger's HTTP paths;
//! * [`OHTTP_KEYS_PATH`]: where the gateway publishes its key configurations;
//! * [`Measurement`] and [`HostData`]: the two attested values of an
//!   SEV-SNP report, as distinct types that travel as lower-case hex;
//!   [`launch`]: what HOST_DATA binds (policies, model, settings);
//!   [`HexBytes`] for other fixed-size byte strings (digests, keys);
//! * [`unix_now`]: the system clock in Unix seconds, the unit of every
//!   time on the wire (token expiry, key rotation, the replay window);
//!   [`max_age`] reads a `Cache-Control` lifetime in the same unit.
//!
//! # Example
//!
//! ```
//! use cloister_wire::{HostData, Measurement, header, media, session};
//!
//! let measurement: Measurement = "ab".repeat(48).parse()?;
//! assert_eq!(measurement.to_string(), "ab".repeat(48));
//! assert_eq!(serde_json::to_string(&HostData([1; 32]))?, format!("\"{}\"", "01".repeat(32)));
//! // A 47-byte value is not a measurement.
//! assert!("ab".repeat(47).parse::<Measurement>().is_err());
//!
//! let id = session::id_from_random([7; 16]);
//! assert!(session::is_valid_id(&id));
//! assert!(!session::is_valid_id("has space"));
//! assert_eq!(header::SESSION, "cloister-session");
//! assert_eq!(media::OHTTP_REQUEST, "message/ohttp-req");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! None.

mod bytes;
pub mod launch;

use std::time::{SystemTime, UNIX_EPOCH};

pub use bytes::{HexBytes, HexError, HostData, Measurement};

/// Where clients fetch the gateway's key configurations (RFC 9540 §3).
pub const OHTTP_KEYS_PATH: &str = "/.well-known/ohttp-gateway";

/// Media types.
pub mod media {
    /// An encapsulated request (RFC 9458 §9.1).
    pub const OHTTP_REQUEST: &str = "message/ohttp-req";
    /// An encapsulated response (RFC 9458 §9.2).
    pub const OHTTP_RESPONSE: &str = "message/ohttp-res";
    /// A list of OHTTP key configurations (RFC 9540 §3).
    pub const OHTTP_KEYS: &str = "application/ohttp-keys";
    /// RA-TLS request and response bodies: raw TLS records.
    pub const RATLS_RECORDS: &str = "application/octet-stream";
    /// Problem details (RFC 9457).
    pub const PROBLEM_JSON: &str = "application/problem+json";
}

/// Problem types (RFC 9457) the gateway answers with and the client acts on.
pub mod problem {
    /// The request's key configuration is not held (RFC 9458 §5.3); the
    /// client refetches the key list (RFC 9540).
    pub const OHTTP_KEY: &str = "https://iana.org/assignments/http-problem-types#ohttp-key";
    /// The inner request's `Date` is outside the accepted window (RFC 9458
    /// §6.5.2); the answer carries the gateway's `Date`.
    pub const DATE: &str = "https://iana.org/assignments/http-problem-types#date";
    /// The encapsulated request was accepted once already.
    pub const REPLAYED: &str = "urn:cloister:problem:replayed-request";
    /// The host that held the request's session is gone (no longer
    /// configured, or unreachable): the session cannot continue anywhere
    /// else, so the client opens a new one. Answered with 503.
    pub const SESSION_HOST_GONE: &str = "urn:cloister:problem:session-host-gone";
}

/// Header names.
pub mod header {
    /// Inner request header naming the RA-TLS session: the gateway routes
    /// on it, so all requests of one session reach one host.
    pub const SESSION: &str = "cloister-session";
    /// Inner header naming the host a session was opened on, as an opaque
    /// label: the gateway sets it on the answer that opened the session and
    /// the client sends it back with every later request of that session,
    /// so any gateway replica finds the session's host without shared state.
    pub const ROUTE: &str = "cloister-route";
}

/// Session ids: chosen by the client, carried in [`header::SESSION`](crate::header::SESSION).
pub mod session {
    /// Longest accepted session id, in bytes.
    pub const MAX_ID_LEN: usize = 64;

    /// Whether `id` is a session id a host accepts: 1 to [`MAX_ID_LEN`]
    /// visible ASCII characters (so it is a valid header value and prints
    /// safely).
    #[must_use]
    pub fn is_valid_id(id: &str) -> bool {
        !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
    }

    /// The session id for 128 random bits: their hex. Unguessable, so no
    /// one can target another client's session.
    #[must_use]
    pub fn id_from_random(bits: [u8; 16]) -> String {
        hex::encode(bits)
    }

    /// True if a session's `records` begin with a TLS handshake record
    /// holding a ClientHello: the records that open a new session. The
    /// record and handshake headers are cleartext, so the gateway reads
    /// them as the host does.
    #[must_use]
    pub fn starts_with_client_hello(records: &[u8]) -> bool {
        const HANDSHAKE_RECORD: u8 = 22;
        const CLIENT_HELLO: u8 = 1;
        records.first() == Some(&HANDSHAKE_RECORD) && records.get(5) == Some(&CLIENT_HELLO)
    }
}

/// The transparency ledger's HTTP paths. Templates in braces are for the
/// server's router; the functions fill them in for clients.
pub mod ledger {
    /// `GET`: the log's public key.
    pub const LOG_KEY: &str = "/v1/log-key";
    /// `GET`: the latest signed tree head.
    pub const TREE_HEAD: &str = "/v1/tree-head";
    /// `GET`: the latest tree head as a C2SP signed checkpoint
    /// (`text/plain; charset=utf-8`), at the path `tlog-tiles` gives it.
    pub const CHECKPOINT: &str = "/checkpoint";
    /// `POST`: submit an entry.
    pub const ENTRIES: &str = "/v1/entries";
    /// `GET`: one entry by index (template).
    pub const ENTRY: &str = "/v1/entries/{index}";
    /// `GET`: every entry vouching for a digest (template).
    pub const ENTRIES_BY_DIGEST: &str = "/v1/entries/by-digest/{digest}";
    /// `GET ?leaf_hash=..&tree_size=..`: an inclusion proof.
    pub const INCLUSION_PROOF: &str = "/v1/proof/inclusion";
    /// `GET ?first=..&second=..`: a consistency proof.
    pub const CONSISTENCY_PROOF: &str = "/v1/proof/consistency";

    /// [`ENTRY`] for `index`.
    #[must_use]
    pub fn entry(index: u64) -> String {
        format!("{ENTRIES}/{index}")
    }

    /// [`ENTRIES_BY_DIGEST`] for `digest`.
    #[must_use]
    pub fn entries_by_digest(digest: &[u8]) -> String {
        format!("{ENTRIES}/by-digest/{}", hex::encode(digest))
    }
}

/// Seconds since the Unix epoch by the system clock (0 if the clock is set
/// before 1970).
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The `max-age` of a `Cache-Control` value, in seconds: how long a key
/// list may be reused by whoever fetched it (the relay, the client).
#[must_use]
pub fn max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=x"), None);
    }

    #[test]
    fn ledger_paths_fill_their_templates() {
        assert_eq!(ledger::entry(7), ledger::ENTRY.replace("{index}", "7"));
        assert_eq!(
            ledger::entries_by_digest(&[0xab, 0x01]),
            ledger::ENTRIES_BY_DIGEST.replace("{digest}", "ab01")
        );
    }

    #[test]
    fn session_ids_are_bounded_visible_ascii() {
        assert!(session::is_valid_id("a"));
        assert!(session::is_valid_id(&"x".repeat(session::MAX_ID_LEN)));
        assert!(!session::is_valid_id(""));
        assert!(!session::is_valid_id(&"x".repeat(session::MAX_ID_LEN + 1)));
        assert!(!session::is_valid_id("tab\there"));
        assert!(!session::is_valid_id("é"));
        let id = session::id_from_random([0xff; 16]);
        assert_eq!(id, "ff".repeat(16));
        assert!(session::is_valid_id(&id));
    }

    #[test]
    fn the_clock_is_past_2020() {
        assert!(unix_now() > 1_577_836_800);
    }
}
