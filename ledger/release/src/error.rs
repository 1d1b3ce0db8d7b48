//! Why a release could not be computed, signed or logged.

use std::path::PathBuf;

use cloister_ledger_verify::client::VerifyError;
use cloister_ledger_verify::entry::{EntryError, Sha256Digest};
use cloister_ledger_verify::remote::RemoteError;

/// Everything that stops a release. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A built component is missing.
    #[error("reading {path} (run `cargo xtask build-plugins` first): {source}")]
    ComponentMissing {
        /// Where the component should be.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A plugin manifest is not valid TOML of the expected shape.
    #[error("parsing plugin manifest {path}: {source}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// A built component differs from the digest its manifest names.
    #[error(
        "{component} does not hash to the digest in {manifest} (run `cargo xtask build-plugins`)"
    )]
    StaleManifest {
        /// The component.
        component: PathBuf,
        /// Its manifest.
        manifest: PathBuf,
    },
    /// The host loads a plugin this tree did not build.
    #[error(
        "the host loads plugin {name} {version} with digest {digest}, which is not the component built here"
    )]
    UnbuiltPlugin {
        /// Manifest name.
        name: String,
        /// Manifest version.
        version: String,
        /// The digest the host measured.
        digest: Sha256Digest,
    },
    /// A policy file name that would leave the `policies/` folder.
    #[error("policy file name {0:?} is not a plain relative path")]
    PolicyName(String),
    /// A policy file differs from the one the host measured.
    #[error(
        "the host measured {name} as {measured}, but this tree's file hashes to {actual}: measure again"
    )]
    StaleMeasurement {
        /// The policy file, relative to `policies/`.
        name: String,
        /// What the host measured.
        measured: Sha256Digest,
        /// What the file in this tree hashes to.
        actual: Sha256Digest,
    },
    /// The build record names another host binary than the one measured.
    #[error(
        "the build record names host binary {recorded}, but the host that measured is {measured}: \
         measure with the recorded build's host"
    )]
    OtherHostBinary {
        /// The host binary's digest in the build record.
        recorded: Sha256Digest,
        /// The digest of the host binary that measured.
        measured: Sha256Digest,
    },
    /// The build record is of another commit than the release's provenance.
    #[error("the build record is of commit {recorded}, the release of {release}")]
    OtherCommit {
        /// The commit in the build record.
        recorded: String,
        /// The release's source commit.
        release: String,
    },
    /// The host cannot know its launch measurement (real SEV-SNP hardware).
    #[error(
        "the host reports no launch measurement (real SEV-SNP launch): pass --cvm-launch \
         (from `cargo xtask cvm-image`) and --platform-info, or --measurement, --snp-policy \
         and --platform-info"
    )]
    NoMeasurement,
    /// The gateway's key list is empty.
    #[error("the gateway publishes no OHTTP key configuration")]
    NoKeyConfig,
    /// The gateway's key list is not an `application/ohttp-keys` body.
    #[error("the gateway's key list is not a valid application/ohttp-keys body: {0}")]
    KeyList(#[from] cloister_ohttp_keys::KeyListError),
    /// A key configuration in the list is empty.
    #[error("empty OHTTP key configuration")]
    EmptyKeyConfig,
    /// The gateway's key endpoint could not be read.
    #[error(
        "fetching the gateway's key configurations from {url} (is the gateway running?): {reason}"
    )]
    FetchKeys {
        /// The endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The issuer's directory does not parse or lists no usable key.
    #[error("issuer directory: {0}")]
    IssuerDirectory(String),
    /// A computed entry is not valid.
    #[error("entry {subject}: {source}")]
    InvalidEntry {
        /// The entry, named for people.
        subject: String,
        /// The cause.
        #[source]
        source: EntryError,
    },
    /// The host's measurement is not the JSON `cloister-host measure` prints.
    #[error("parsing the host measurement from {from}: {source}")]
    Measurement {
        /// Where it came from.
        from: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A record written by the build tooling is not the JSON expected.
    #[error("parsing {what} {path}: {source}")]
    Record {
        /// Which record (and what writes it).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// `cloister-host measure` could not be run or failed.
    #[error(
        "running `{host} measure` (build it with `cargo build -p cloister-host-cli`): {reason}"
    )]
    HostMeasure {
        /// The host binary.
        host: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `git` could not tell the source commit.
    #[error("git {args}: {reason}")]
    Git {
        /// The git arguments.
        args: String,
        /// What went wrong.
        reason: String,
    },
    /// A key or reviewer policy file could not be read or made.
    #[error("{path}: {source}")]
    Keys {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: cloister_ledger::LedgerError,
    },
    /// The demo reviewer policy or ledger configuration could not be written as TOML.
    #[error("writing TOML: {0}")]
    Toml(#[from] toml::ser::Error),
    /// The demo reviewer policy is not valid.
    #[error("demo reviewer policy: {0}")]
    Policy(#[from] cloister_ledger_verify::review::PolicyError),
    /// A demo path is not UTF-8, so it cannot go into the ledger configuration.
    #[error("demo path {0} is not UTF-8")]
    NonUtf8Path(PathBuf),
    /// The ledger refused an entry for want of reviewer signatures.
    #[error(
        "the ledger refused {what}: {message}; pass one --reviewer-key per reviewer, \
         as many as the ledger's reviewer policy requires (nothing of this entry was logged)"
    )]
    NotAdmitted {
        /// The entry, named for people.
        what: String,
        /// The ledger's explanation.
        message: String,
    },
    /// Talking to the ledger failed.
    #[error("{what}: {source}")]
    Ledger {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: RemoteError,
    },
    /// The log key given is not a valid Ed25519 key.
    #[error("--log-key: {0}")]
    LogKey(#[from] VerifyError),
    /// The policy set could not be loaded.
    #[error("loading the policies in {path}: {reason}")]
    Policies {
        /// The policy folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A WIT file could not be read or parsed.
    #[error("reading WIT {path}: {reason}")]
    Wit {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A `--ledger-config` file is not a `[ledger]` (and `[tls]`) configuration.
    #[error("ledger configuration {path}: {reason}")]
    LedgerConfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The ledger's view could not be opened or synced: nothing is said about the ledger.
    #[error("ledger view: {0}")]
    LedgerView(#[source] cloister_ledger_verify::view::LedgerTrustError),
}
