//! The typed entries of the ledger and their canonical encoding.
//!
//! Every entry names one artefact a client may be asked to trust, by digest,
//! together with where it was built from. A [`SignedEntry`] adds the reviewer
//! signatures that admitted it; the log commits to the whole signed entry, so
//! an auditor can re-check every admission against the reviewer policy.

use serde::{Deserialize, Serialize};

use crate::HexBytes;
use crate::encoding::Canonical;
use crate::merkle::{self, Hash};

/// Longest accepted text field, in bytes. Names, versions, commits and builder
/// identities are short; a bound keeps the log from storing arbitrary blobs.
pub const MAX_TEXT_LEN: usize = 256;

/// Most signatures one entry may carry (far above any sensible reviewer set).
pub const MAX_SIGNATURES: usize = 32;

/// A SHA-256 digest of an artefact.
pub type Sha256Digest = HexBytes<32>;

pub use cloister_wire::{HostData, Measurement};

/// An Ed25519 public key (32 bytes).
pub type PublicKeyBytes = HexBytes<32>;

/// An Ed25519 signature (64 bytes).
pub type SignatureBytes = HexBytes<64>;

/// Most plugins one release may name.
pub const MAX_RELEASED_PLUGINS: usize = 64;

/// What an entry vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subject {
    /// Everything one deployment runs together (see [`Release`]).
    Release(Release),
    /// Withdraws a release at once, whatever its overlap window: for a
    /// release found to be vulnerable. Admitted like any entry (k of n
    /// reviewers), so no single party can revoke or un-revoke.
    Revocation {
        /// The revoked release's series.
        series: String,
        /// The revoked release's sequence number.
        sequence: u64,
        /// Why, for auditors and for the error a client shows.
        reason: String,
    },
    /// A feature plugin: a WebAssembly component.
    PluginComponent {
        /// Plugin name as in its manifest.
        name: String,
        /// Plugin version.
        version: String,
        /// The WIT world it targets, e.g. `cloister:summarise/summarise`.
        wit_world: String,
        /// SHA-256 of the `.wasm` file.
        digest: Sha256Digest,
    },
    /// An OHTTP key configuration of the gateway (key consistency, RFC 9540),
    /// logged before the gateway serves it.
    OhttpKeyConfig {
        /// The configuration's key identifier.
        key_id: u8,
        /// SHA-256 of the encoded key configuration.
        digest: Sha256Digest,
        /// When the gateway may serve it.
        window: KeyWindow,
    },
    /// A Privacy Pass issuer key, logged before the issuer signs with it.
    IssuerKey {
        /// The key's `token_key_id`: SHA-256 of its encoded public key (RFC 9578).
        token_key_id: Sha256Digest,
        /// When the issuer may sign with it.
        window: KeyWindow,
    },
    /// A reviewed policy file (manifests, log allow-list, attestation policy).
    PolicyFile {
        /// The file's name under `policies/`.
        name: String,
        /// SHA-256 of the file's bytes.
        digest: Sha256Digest,
    },
}

/// One deployment, as a host runs it: the CVM launch (image, SNP guest
/// policy and platform info, none of which the measurement covers, and the
/// HOST_DATA that binds its policies, model and settings, with those three
/// parts) and every plugin it serves.
///
/// A client accepts a host only if its report names the launch of one
/// release that is current: a release of a series is superseded once a
/// later one of the same series has been published for its
/// `overlap_secs`, and a [`Subject::Revocation`] withdraws it at once. An
/// old image with an old, weaker policy set therefore stops being
/// accepted, and no host can combine parts of two releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The deployment this release belongs to, e.g. `production`.
    pub series: String,
    /// Position in the series: a higher number supersedes a lower one.
    pub sequence: u64,
    /// When it takes effect, in seconds since the Unix epoch.
    pub published_at: u64,
    /// How long the releases it supersedes stay acceptable after
    /// `published_at`: the time a fleet needs to roll over.
    pub overlap_secs: u64,
    /// The `MEASUREMENT` field of the SNP attestation report.
    pub measurement: Measurement,
    /// The SNP guest policy (the report's `POLICY` field) the image expects.
    pub snp_policy: u64,
    /// The report's `PLATFORM_INFO` (SMT, TSME, ...) the image expects.
    pub platform_info: u64,
    /// The report's `HOST_DATA`: [`HostData::of_launch`] of the three below.
    pub host_data: HostData,
    /// The digest of the host's policy set (manifests, log allow-list).
    pub policy_set: Sha256Digest,
    /// SHA-256 of the model file; `None` for a simulated engine without weights.
    pub model: Option<Sha256Digest>,
    /// The digest of every host and engine setting that changes behaviour.
    pub host_config: Sha256Digest,
    /// Every plugin the deployment serves, sorted by name (the policy set
    /// binds them; listing them lets reviewers and clients read them).
    pub plugins: Vec<ReleasedPlugin>,
    /// How the host binary and the plugins were built, so anyone can
    /// rebuild them and compare (`cargo xtask rebuild-check`). Optional:
    /// releases logged without it keep their encoding and leaf hash.
    /// Boxed: most entries are not releases, and a [`Subject`] is as large
    /// as its largest kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Box<ReleaseBuild>>,
}

/// The toolchains a release's host binary and plugins were built with (the
/// source commit is the entry's [`Provenance`]), and the host binary's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBuild {
    /// `rustc -vV`'s first line, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub rustc: String,
    /// `cargo -V`.
    pub cargo: String,
    /// The toolchain that built the plugins for wasm32 (rustup's target of
    /// that rustc, or Debian's `rustc-web` and `lld` package versions).
    pub wasm: String,
    /// SHA-256 of the `cloister-host` binary.
    pub host_binary: Sha256Digest,
}

/// A plugin one release serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedPlugin {
    /// Plugin name as in its manifest.
    pub name: String,
    /// SHA-256 of its component.
    pub digest: Sha256Digest,
}

/// When a logged key may be used: from `not_before` (inclusive) to
/// `not_after` (exclusive), in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyWindow {
    /// First second the key may be used.
    pub not_before: u64,
    /// First second the key may no longer be used.
    pub not_after: u64,
}

impl KeyWindow {
    /// Whether `now` (seconds since the Unix epoch) falls in the window.
    pub fn contains(&self, now: u64) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// Where an artefact was built from and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The source commit the artefact was built from.
    pub source_commit: String,
    /// Who or what built it (a CI job, a reproducible-build identity).
    pub builder: String,
}

/// The claim reviewers sign: a subject and its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// The artefact vouched for.
    pub subject: Subject,
    /// How it was built.
    pub provenance: Provenance,
}

/// One reviewer's signature over [`EntryBody::review_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewerSignature {
    /// The reviewer's Ed25519 public key.
    pub public_key: PublicKeyBytes,
    /// Ed25519 signature over the review message.
    pub signature: SignatureBytes,
}

/// An entry with the reviewer signatures that admit it: what the log stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    /// The claim.
    pub body: EntryBody,
    /// Reviewer signatures over the claim.
    #[serde(default)]
    pub signatures: Vec<ReviewerSignature>,
}

/// An entry whose shape the log refuses regardless of who signed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A text field is empty or longer than [`MAX_TEXT_LEN`].
    #[error("field `{field}` must be 1 to {MAX_TEXT_LEN} bytes long")]
    BadText {
        /// Which field.
        field: &'static str,
    },
    /// More than [`MAX_SIGNATURES`] signatures.
    #[error("an entry carries at most {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A release whose HOST_DATA is not what its parts hash to: no host
    /// could both run those parts and report that HOST_DATA.
    #[error("host_data is not HostData::of_launch(policy_set, model, host_config)")]
    HostDataMismatch,
    /// A release's plugins are not sorted by name without repeats, or are
    /// more than [`MAX_RELEASED_PLUGINS`].
    #[error("plugins must be at most {MAX_RELEASED_PLUGINS}, sorted by name, each named once")]
    BadPluginList,
    /// A key window that ends before it starts.
    #[error("not_after must be later than not_before")]
    EmptyKeyWindow,
}

fn check_text(field: &'static str, value: &str) -> Result<(), EntryError> {
    if value.is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(EntryError::BadText { field });
    }
    Ok(())
}

impl Subject {
    /// The digest (or measurement) this entry vouches for; what clients look
    /// entries up by (`None` for a revocation, which vouches for nothing).
    pub fn digest_bytes(&self) -> Option<&[u8]> {
        match self {
            Subject::Release(release) => Some(release.measurement.as_bytes()),
            Subject::PluginComponent { digest, .. }
            | Subject::OhttpKeyConfig { digest, .. }
            | Subject::PolicyFile { digest, .. } => Some(digest.as_bytes()),
            Subject::IssuerKey { token_key_id, .. } => Some(token_key_id.as_bytes()),
            Subject::Revocation { .. } => None,
        }
    }

    fn encode(&self, out: &mut Canonical) {
        match self {
            Subject::Release(release) => release.encode(out.u8(1)),
            Subject::PluginComponent {
                name,
                version,
                wit_world,
                digest,
            } => {
                out.u8(2)
                    .str(name)
                    .str(version)
                    .str(wit_world)
                    .fixed(digest.as_bytes());
            }
            Subject::OhttpKeyConfig {
                key_id,
                digest,
                window,
            } => {
                out.u8(3).u8(*key_id).fixed(digest.as_bytes());
                window.encode(out);
            }
            Subject::PolicyFile { name, digest } => {
                out.u8(4).str(name).fixed(digest.as_bytes());
            }
            Subject::Revocation {
                series,
                sequence,
                reason,
            } => {
                out.u8(5).str(series).u64(*sequence).str(reason);
            }
            Subject::IssuerKey {
                token_key_id,
                window,
            } => {
                out.u8(6).fixed(token_key_id.as_bytes());
                window.encode(out);
            }
        }
    }

    fn validate(&self) -> Result<(), EntryError> {
        match self {
            Subject::Release(release) => release.validate(),
            Subject::Revocation { series, reason, .. } => {
                check_text("series", series)?;
                check_text("reason", reason)
            }
            Subject::PluginComponent {
                name,
                version,
                wit_world,
                ..
            } => {
                check_text("name", name)?;
                check_text("version", version)?;
                check_text("wit_world", wit_world)
            }
            Subject::PolicyFile { name, .. } => check_text("name", name),
            Subject::OhttpKeyConfig { window, .. } | Subject::IssuerKey { window, .. } => {
                if window.not_after > window.not_before {
                    Ok(())
                } else {
                    Err(EntryError::EmptyKeyWindow)
                }
            }
        }
    }
}

impl Release {
    fn encode(&self, out: &mut Canonical) {
        out.str(&self.series)
            .u64(self.sequence)
            .u64(self.published_at)
            .u64(self.overlap_secs)
            .fixed(self.measurement.as_bytes())
            .u64(self.snp_policy)
            .u64(self.platform_info)
            .fixed(self.host_data.as_bytes())
            .fixed(self.policy_set.as_bytes());
        match &self.model {
            Some(model) => out.u8(1).fixed(model.as_bytes()),
            None => out.u8(0),
        };
        out.fixed(self.host_config.as_bytes())
            .u64(self.plugins.len() as u64);
        for plugin in &self.plugins {
            out.str(&plugin.name).fixed(plugin.digest.as_bytes());
        }
        // Absent, nothing is written: older releases encode as they did.
        // Present, its marker 1 cannot be confused with what follows a
        // release (a u32 length or a u64 count, both below 2^24: first byte 0).
        if let Some(build) = &self.build {
            out.u8(1)
                .str(&build.rustc)
                .str(&build.cargo)
                .str(&build.wasm)
                .fixed(build.host_binary.as_bytes());
        }
    }

    fn validate(&self) -> Result<(), EntryError> {
        check_text("series", &self.series)?;
        let parts = HostData::of_launch(
            self.policy_set.as_bytes(),
            self.model.as_ref().map(HexBytes::as_bytes),
            self.host_config.as_bytes(),
        );
        if parts != self.host_data {
            return Err(EntryError::HostDataMismatch);
        }
        if self.plugins.len() > MAX_RELEASED_PLUGINS
            || self
                .plugins
                .windows(2)
                .any(|pair| pair[0].name >= pair[1].name)
        {
            return Err(EntryError::BadPluginList);
        }
        for plugin in &self.plugins {
            check_text("plugins.name", &plugin.name)?;
        }
        if let Some(build) = &self.build {
            check_text("build.rustc", &build.rustc)?;
            check_text("build.cargo", &build.cargo)?;
            check_text("build.wasm", &build.wasm)?;
        }
        Ok(())
    }
}

impl KeyWindow {
    fn encode(&self, out: &mut Canonical) {
        out.u64(self.not_before).u64(self.not_after);
    }
}

impl EntryBody {
    /// Refuses entries whose shape is wrong: empty or oversized text, a
    /// release whose HOST_DATA is not that of its parts or whose plugin list
    /// is not sorted, an empty key window.
    pub fn validate(&self) -> Result<(), EntryError> {
        self.subject.validate()?;
        check_text("source_commit", &self.provenance.source_commit)?;
        check_text("builder", &self.provenance.builder)
    }

    fn encode(&self, out: &mut Canonical) {
        self.subject.encode(out);
        out.str(&self.provenance.source_commit)
            .str(&self.provenance.builder);
    }

    /// The bytes a reviewer signs: a review label and the canonical body.
    pub fn review_message(&self) -> Vec<u8> {
        let mut out = Canonical::new("cloister-ledger-review-v1");
        self.encode(&mut out);
        out.finish()
    }
}

impl SignedEntry {
    /// Refuses entries whose shape is wrong (see [`EntryBody::validate`]).
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(EntryError::TooManySignatures);
        }
        self.body.validate()
    }

    /// The leaf data the Merkle tree commits to: body and signatures, canonically encoded.
    pub fn leaf_data(&self) -> Vec<u8> {
        let mut out = Canonical::new("cloister-ledger-entry-v1");
        self.body.encode(&mut out);
        out.u64(self.signatures.len() as u64);
        for signature in &self.signatures {
            out.fixed(signature.public_key.as_bytes())
                .fixed(signature.signature.as_bytes());
        }
        out.finish()
    }

    /// `SHA-256(0x00 || leaf_data)`: how the log and its proofs name this entry.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.leaf_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str) -> EntryBody {
        EntryBody {
            subject: Subject::PluginComponent {
                name: name.into(),
                version: "1.0.0".into(),
                wit_world: "cloister:feature/feature".into(),
                digest: HexBytes([7; 32]),
            },
            provenance: Provenance {
                source_commit: "abc".into(),
                builder: "ci".into(),
            },
        }
    }

    #[test]
    fn encoding_separates_adjacent_fields() {
        // Without length prefixes "ab"+"c" and "a"+"bc" would collide.
        let mut first = plugin("ab");
        let mut second = plugin("a");
        if let (
            Subject::PluginComponent { version: v1, .. },
            Subject::PluginComponent { version: v2, .. },
        ) = (&mut first.subject, &mut second.subject)
        {
            *v1 = "c".into();
            *v2 = "bc".into();
        }
        assert_ne!(first.review_message(), second.review_message());
    }

    #[test]
    fn leaf_hash_covers_signatures() {
        let unsigned = SignedEntry {
            body: plugin("p"),
            signatures: vec![],
        };
        let signed = SignedEntry {
            body: plugin("p"),
            signatures: vec![ReviewerSignature {
                public_key: HexBytes([1; 32]),
                signature: HexBytes([2; 64]),
            }],
        };
        assert_ne!(unsigned.leaf_hash(), signed.leaf_hash());
    }

    #[test]
    fn validation_rejects_empty_and_oversized_text() {
        assert_eq!(
            plugin("").validate(),
            Err(EntryError::BadText { field: "name" })
        );
        let long = "x".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(
            plugin(&long).validate(),
            Err(EntryError::BadText { field: "name" })
        );
        plugin("summarise").validate().expect("well-formed entry");
    }

    fn release(host_data: HostData, plugins: &[&str]) -> EntryBody {
        EntryBody {
            subject: Subject::Release(Release {
                series: "production".into(),
                sequence: 1,
                published_at: 1_700_000_000,
                overlap_secs: 3600,
                measurement: Measurement([1; 48]),
                snp_policy: 0x3_0000,
                platform_info: 1,
                host_data,
                policy_set: HexBytes([2; 32]),
                model: Some(HexBytes([3; 32])),
                host_config: HexBytes([4; 32]),
                plugins: plugins
                    .iter()
                    .map(|name| ReleasedPlugin {
                        name: (*name).into(),
                        digest: HexBytes([5; 32]),
                    })
                    .collect(),
                build: None,
            }),
            provenance: plugin("p").provenance,
        }
    }

    #[test]
    fn a_release_must_name_the_host_data_of_its_parts() {
        let parts = HostData::of_launch(&[2; 32], Some(&[3; 32]), &[4; 32]);
        assert_eq!(release(parts, &["suggest"]).validate(), Ok(()));
        assert_eq!(
            release(HostData([5; 32]), &["suggest"]).validate(),
            Err(EntryError::HostDataMismatch)
        );
    }

    #[test]
    fn a_release_lists_its_plugins_sorted_and_once() {
        let parts = HostData::of_launch(&[2; 32], Some(&[3; 32]), &[4; 32]);
        assert_eq!(release(parts, &["suggest", "summarise"]).validate(), Ok(()));
        for bad in [&["summarise", "suggest"][..], &["suggest", "suggest"]] {
            assert_eq!(
                release(parts, bad).validate(),
                Err(EntryError::BadPluginList)
            );
        }
    }

    /// Releases logged before the build record existed keep their review
    /// message and leaf hash: the record adds bytes only when present.
    #[test]
    fn a_release_without_build_keeps_its_encoding() {
        let parts = HostData::of_launch(&[2; 32], Some(&[3; 32]), &[4; 32]);
        let body = release(parts, &["suggest"]);
        let entry = SignedEntry {
            body: body.clone(),
            signatures: vec![],
        };
        assert_eq!(
            entry.leaf_hash().to_string(),
            "6427b360edc3ebeef1b61de08427d07f1a595218d7fcff58a9e711be644b4436"
        );
        let json = serde_json::to_value(&body).expect("serialises");
        assert!(json["subject"].get("build").is_none(), "{json}");
    }

    /// The build record of a release body (which the test gave one).
    fn build_of(body: &mut EntryBody) -> &mut ReleaseBuild {
        match &mut body.subject {
            Subject::Release(Release {
                build: Some(build), ..
            }) => build,
            _ => unreachable!("a release with a build record"),
        }
    }

    #[test]
    fn a_release_build_record_is_signed() {
        let parts = HostData::of_launch(&[2; 32], Some(&[3; 32]), &[4; 32]);
        let without = release(parts, &["suggest"]);
        let mut with = without.clone();
        if let Subject::Release(release) = &mut with.subject {
            release.build = Some(Box::new(ReleaseBuild {
                rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
                cargo: "cargo 1.95.0".into(),
                wasm: "rustup wasm32-unknown-unknown".into(),
                host_binary: HexBytes([9; 32]),
            }));
        }
        assert_eq!(with.validate(), Ok(()));
        assert_ne!(with.review_message(), without.review_message());
        let mut other_host = with.clone();
        build_of(&mut other_host).host_binary = HexBytes([8; 32]);
        assert_ne!(with.review_message(), other_host.review_message());
        let json = serde_json::to_value(&with).expect("serialises");
        let back: EntryBody = serde_json::from_value(json).expect("parses");
        assert_eq!(back, with);
        build_of(&mut with).wasm = String::new();
        assert_eq!(
            with.validate(),
            Err(EntryError::BadText {
                field: "build.wasm"
            })
        );
    }

    #[test]
    fn a_key_window_must_not_be_empty() {
        let key = |not_before, not_after| EntryBody {
            subject: Subject::OhttpKeyConfig {
                key_id: 1,
                digest: HexBytes([1; 32]),
                window: KeyWindow {
                    not_before,
                    not_after,
                },
            },
            provenance: plugin("p").provenance,
        };
        assert_eq!(key(10, 11).validate(), Ok(()));
        assert_eq!(key(10, 10).validate(), Err(EntryError::EmptyKeyWindow));
        assert!(
            KeyWindow {
                not_before: 10,
                not_after: 11
            }
            .contains(10)
        );
        assert!(
            !KeyWindow {
                not_before: 10,
                not_after: 11
            }
            .contains(11)
        );
    }

    #[test]
    fn a_release_round_trips_through_json() {
        let parts = HostData::of_launch(&[2; 32], Some(&[3; 32]), &[4; 32]);
        let body = release(parts, &["suggest"]);
        let json = serde_json::to_value(&body).expect("serialises");
        assert_eq!(json["subject"]["kind"], "release");
        let back: EntryBody = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(back, body);
        let mut bad = json;
        bad["subject"]["extra"] = serde_json::Value::Bool(true);
        assert!(serde_json::from_value::<EntryBody>(bad).is_err());
    }

    #[test]
    fn json_form_is_tagged_and_strict() {
        let json = serde_json::to_value(plugin("p")).expect("serialises");
        assert_eq!(json["subject"]["kind"], "plugin_component");
        let mut bad = json.clone();
        bad["subject"]["extra"] = serde_json::Value::Bool(true);
        assert!(serde_json::from_value::<EntryBody>(bad).is_err());
    }
}
