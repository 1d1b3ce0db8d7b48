//! The digest of a host's policy set, one of the three parts of its HOST_DATA
//! (see `cloister_wire::launch`).
//!
//! The policy set is the files the host runs under (plugin manifests with
//! their digests, log allow-list, budgets). At start-up the host hashes the
//! files it actually loaded into its expected HOST_DATA and refuses to run
//! if the report's differs, so an attested report names exactly the
//! policies in force.
//!
//! Construction (SHA-256, all lengths u64 big-endian):
//!
//! ```text
//! "cloister-policy-set-v1" || count
//!   || for each file, sorted by name (bytewise):
//!        len(name) || name || SHA-256(contents)
//! ```
//!
//! Names are part of the digest, so renaming or moving a file changes it;
//! sorting makes the digest independent of directory listing order; the
//! length prefixes make the encoding unambiguous.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Domain-separation prefix of the policy-set digest.
pub const POLICY_SET_DOMAIN: &[u8] = b"cloister-policy-set-v1";

/// Why a policy set could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicySetError {
    /// Two files share a name.
    #[error("policy set names {0:?} twice")]
    DuplicateName(String),
    /// A file has an empty name.
    #[error("policy set contains a file with an empty name")]
    EmptyName,
}

/// The digest of a set of named policy files.
pub fn policy_set_digest<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<[u8; 32], PolicySetError> {
    let mut sorted = BTreeMap::new();
    for (name, contents) in files {
        if name.is_empty() {
            return Err(PolicySetError::EmptyName);
        }
        if sorted
            .insert(name.as_bytes(), Sha256::digest(contents))
            .is_some()
        {
            return Err(PolicySetError::DuplicateName(name.to_owned()));
        }
    }
    let mut hash = Sha256::new();
    hash.update(POLICY_SET_DOMAIN);
    hash.update((sorted.len() as u64).to_be_bytes());
    for (name, contents_digest) in sorted {
        hash.update((name.len() as u64).to_be_bytes());
        hash.update(name);
        hash.update(contents_digest);
    }
    Ok(hash.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: [(&str, &[u8]); 2] = [
        ("log.toml", b"events = []"),
        ("summarise.toml", b"digest = \"ab\""),
    ];

    fn digest(files: &[(&str, &[u8])]) -> [u8; 32] {
        policy_set_digest(files.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn order_does_not_matter() {
        let mut reversed = SET;
        reversed.reverse();
        assert_eq!(digest(&SET), digest(&reversed));
    }

    #[test]
    fn contents_names_and_membership_all_matter() {
        let base = digest(&SET);
        assert_ne!(
            base,
            digest(&[SET[0], ("summarise.toml", b"digest = \"ac\"")])
        );
        assert_ne!(base, digest(&[SET[0], ("suggest.toml", SET[1].1)]));
        assert_ne!(base, digest(&SET[..1]));
        // Moving bytes between name and contents changes the digest too.
        assert_ne!(digest(&[("ab", b"c")]), digest(&[("a", b"bc")]));
    }

    #[test]
    fn the_construction_is_the_documented_one() {
        let mut hash = Sha256::new();
        hash.update(b"cloister-policy-set-v1");
        hash.update(1u64.to_be_bytes());
        hash.update(1u64.to_be_bytes());
        hash.update(b"a");
        hash.update(Sha256::digest(b"x"));
        let expected: [u8; 32] = hash.finalize().into();
        assert_eq!(digest(&[("a", b"x")]), expected);
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let twice = [SET[0], SET[0]];
        assert_eq!(
            policy_set_digest(twice),
            Err(PolicySetError::DuplicateName("log.toml".into()))
        );
        assert_eq!(
            policy_set_digest([("", &b""[..])]),
            Err(PolicySetError::EmptyName)
        );
    }
}
