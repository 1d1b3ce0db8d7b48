//! The canonical byte encoding that log entries, reviews and tree heads are hashed and signed in.
//!
//! JSON is how entries travel, but JSON has many spellings of one value, so
//! hashes and signatures cover this encoding instead: a domain-separation
//! label, then fields in a fixed order, integers big-endian, variable-length
//! fields prefixed by their `u32` length. One value has exactly one encoding.

/// Builds a canonical encoding; each message type starts with its own label.
pub(crate) struct Canonical(Vec<u8>);

impl Canonical {
    /// Starts a message with a domain-separation label such as `cloister-ledger-sth-v1`.
    pub(crate) fn new(label: &str) -> Self {
        let mut encoding = Self(Vec::with_capacity(256));
        encoding.bytes(label.as_bytes());
        encoding
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A fixed-size field (digest, key, signature), written without a length.
    pub(crate) fn fixed(&mut self, value: &[u8]) -> &mut Self {
        self.0.extend_from_slice(value);
        self
    }

    /// A length-prefixed byte string. Lengths above `u32::MAX` cannot occur:
    /// entries are bounded far below that by [`crate::entry::EntryBody::validate`].
    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&length.to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}
