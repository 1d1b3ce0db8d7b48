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

/// What an entry vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subject {
    /// A confidential VM launch as a deployment runs it: the image, the SNP
    /// guest policy and platform info it must run under (neither is covered
    /// by the measurement), and the HOST_DATA that binds its policies, model
    /// and settings, with those three parts. A client accepts a host only if
    /// its report names all four attested values of one such entry.
    CvmMeasurement {
        /// The `MEASUREMENT` field of the SNP attestation report.
        measurement: Measurement,
        /// The SNP guest policy (the report's `POLICY` field) the image expects.
        snp_policy: u64,
        /// The report's `PLATFORM_INFO` (SMT, TSME, ...) the image expects.
        platform_info: u64,
        /// The report's `HOST_DATA`: [`HostData::of_launch`] of the three below.
        host_data: HostData,
        /// The digest of the host's policy set (manifests, log allow-list).
        policy_set: Sha256Digest,
        /// SHA-256 of the model file; `None` for a simulated engine without weights.
        model: Option<Sha256Digest>,
        /// The digest of every host and engine setting that changes behaviour.
        host_config: Sha256Digest,
    },
    /// A feature plugin: a WebAssembly component.
    PluginComponent {
        /// Plugin name as in its manifest.
        name: String,
        /// Plugin version.
        version: String,
        /// The WIT world it targets, e.g. `cloister:feature/feature`.
        wit_world: String,
        /// SHA-256 of the `.wasm` file.
        digest: Sha256Digest,
    },
    /// An OHTTP key configuration of the gateway (key consistency, RFC 9540).
    OhttpKeyConfig {
        /// The configuration's key identifier.
        key_id: u8,
        /// SHA-256 of the encoded key configuration.
        digest: Sha256Digest,
    },
    /// A reviewed policy file (manifests, log allow-list, attestation policy).
    PolicyFile {
        /// The file's name under `policies/`.
        name: String,
        /// SHA-256 of the file's bytes.
        digest: Sha256Digest,
    },
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
    /// A CVM launch whose HOST_DATA is not what its parts hash to: no host
    /// could both run those parts and report that HOST_DATA.
    #[error("host_data is not HostData::of_launch(policy_set, model, host_config)")]
    HostDataMismatch,
}

fn check_text(field: &'static str, value: &str) -> Result<(), EntryError> {
    if value.is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(EntryError::BadText { field });
    }
    Ok(())
}

impl Subject {
    /// The digest (or measurement) this entry vouches for; what clients look entries up by.
    pub fn digest_bytes(&self) -> &[u8] {
        match self {
            Subject::CvmMeasurement { measurement, .. } => measurement.as_bytes(),
            Subject::PluginComponent { digest, .. }
            | Subject::OhttpKeyConfig { digest, .. }
            | Subject::PolicyFile { digest, .. } => digest.as_bytes(),
        }
    }

    fn encode(&self, out: &mut Canonical) {
        match self {
            Subject::CvmMeasurement {
                measurement,
                snp_policy,
                platform_info,
                host_data,
                policy_set,
                model,
                host_config,
            } => {
                out.u8(1)
                    .fixed(measurement.as_bytes())
                    .u64(*snp_policy)
                    .u64(*platform_info)
                    .fixed(host_data.as_bytes())
                    .fixed(policy_set.as_bytes());
                match model {
                    Some(model) => out.u8(1).fixed(model.as_bytes()),
                    None => out.u8(0),
                };
                out.fixed(host_config.as_bytes());
            }
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
            Subject::OhttpKeyConfig { key_id, digest } => {
                out.u8(3).u8(*key_id).fixed(digest.as_bytes());
            }
            Subject::PolicyFile { name, digest } => {
                out.u8(4).str(name).fixed(digest.as_bytes());
            }
        }
    }
}

impl EntryBody {
    /// Refuses empty or oversized text fields.
    pub fn validate(&self) -> Result<(), EntryError> {
        match &self.subject {
            Subject::PluginComponent {
                name,
                version,
                wit_world,
                ..
            } => {
                check_text("name", name)?;
                check_text("version", version)?;
                check_text("wit_world", wit_world)?;
            }
            Subject::PolicyFile { name, .. } => check_text("name", name)?,
            Subject::CvmMeasurement {
                host_data,
                policy_set,
                model,
                host_config,
                ..
            } => {
                let parts = HostData::of_launch(
                    policy_set.as_bytes(),
                    model.as_ref().map(HexBytes::as_bytes),
                    host_config.as_bytes(),
                );
                if parts != *host_data {
                    return Err(EntryError::HostDataMismatch);
                }
            }
            Subject::OhttpKeyConfig { .. } => {}
        }
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

    #[test]
    fn a_launch_must_name_the_host_data_of_its_parts() {
        let launch = |host_data| EntryBody {
            subject: Subject::CvmMeasurement {
                measurement: Measurement([1; 48]),
                snp_policy: 0x3_0000,
                platform_info: 1,
                host_data,
                policy_set: HexBytes([2; 32]),
                model: Some(HexBytes([3; 32])),
                host_config: HexBytes([4; 32]),
            },
            provenance: plugin("p").provenance,
        };
        let parts = HostData::of_launch(&[2; 32], Some(&[3; 32]), &[4; 32]);
        assert_eq!(launch(parts).validate(), Ok(()));
        assert_eq!(
            launch(HostData([5; 32])).validate(),
            Err(EntryError::HostDataMismatch)
        );
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
