//! `cargo xtask release`: log what this tree releases in the transparency ledger.
//!
//! A release is the set of digests a client may trust: every plugin component,
//! every policy file the host loads and their combined digest (the host's
//! HOST_DATA), the CVM launch measurement, and the OHTTP key configurations the
//! gateway publishes. Each becomes one [`EntryBody`] with the build's
//! provenance, is signed with every `--reviewer-key` given, and is submitted;
//! the ledger admits it only with signatures from k of its n reviewers.
//!
//! The measurement, HOST_DATA and the list of policy files come from the
//! host binary itself (`cloister-host measure`), so what is logged is what
//! the host will attest to. Plugin digests are recomputed from the built
//! components and must agree with both the manifests and the host.
//!
//! Running a release twice is harmless: an entry whose body is already logged
//! (looked up by digest) is skipped, so only new artefacts are submitted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use clap::Args;
use cloister_ledger::keys;
use cloister_ledger_server::{LedgerClient, RemoteError};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::client::LogVerifier;
use cloister_ledger_verify::entry::{
    EntryBody, Measurement, Provenance, PublicKeyBytes, ReviewerSignature, Sha256Digest,
    SignedEntry, Subject,
};
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The WIT world every feature component targets.
pub(crate) const FEATURE_WORLD: &str = "cloister:feature/feature";
/// The name of the [`Subject::PolicyFile`] entry holding the digest of the whole policy set (HOST_DATA).
pub(crate) const POLICY_SET_NAME: &str = "policy-set";

/// Options of `cargo xtask release`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// The ledger's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    ledger: String,
    /// A reviewer's key file (repeat once per reviewer signing this release).
    #[arg(long = "reviewer-key", value_name = "FILE")]
    reviewer_keys: Vec<PathBuf>,
    /// Print the entries as JSON instead of signing and submitting them.
    #[arg(long)]
    dry_run: bool,
    /// Read the host's measurement (the JSON `cloister-host measure` prints)
    /// from FILE instead of running the host.
    #[arg(long, value_name = "FILE")]
    measure_json: Option<PathBuf>,
    /// The gateway's RFC 9540 key endpoint, whose configurations are logged.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7200/.well-known/ohttp-gateway"
    )]
    ohttp_keys: String,
    /// Read the `application/ohttp-keys` list from FILE instead of --ohttp-keys.
    #[arg(long, value_name = "FILE")]
    ohttp_keys_file: Option<PathBuf>,
    /// Where the built components are (default: target/plugins).
    #[arg(long, env = "CLOISTER_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// The log's public key (hex): when given, each entry's inclusion is
    /// checked the way a client checks it.
    #[arg(long)]
    log_key: Option<PublicKeyBytes>,
    /// Source commit recorded as provenance (default: `git rev-parse HEAD`,
    /// with `-dirty` if the tree has uncommitted changes).
    #[arg(long)]
    source_commit: Option<String>,
    /// The launch measurement (96 hex digits) of a real SEV-SNP image, computed
    /// from the image by the VMM's tooling; replaces the host's own (simulated) one.
    #[arg(long, requires = "snp_policy")]
    measurement: Option<Measurement>,
    /// The SNP guest policy that image is launched with (with --measurement).
    #[arg(long)]
    snp_policy: Option<u64>,
    /// Builder recorded as provenance (default: $CLOISTER_BUILDER, else user@host).
    #[arg(long, env = "CLOISTER_BUILDER")]
    builder: Option<String>,
}

/// What `cloister-host measure` prints: the host's own account of what it runs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct HostMeasurement {
    /// `simulated` or `snp`.
    pub mode: String,
    /// The launch measurement; only a simulated launch knows its own.
    pub measurement: Option<Measurement>,
    pub host_data: Sha256Digest,
    /// The SNP guest policy; only a simulated launch knows its own.
    pub snp_policy: Option<u64>,
    pub plugins: Vec<MeasuredPlugin>,
    pub policy_files: Vec<MeasuredFile>,
}

/// A plugin as the host loaded it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MeasuredPlugin {
    pub name: String,
    pub version: String,
    pub digest: Sha256Digest,
}

/// A policy file as the host loaded it; `name` is relative to `policies/`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MeasuredFile {
    pub name: String,
    pub digest: Sha256Digest,
}

/// The fields of a plugin manifest (`policies/plugins/*.toml`) a release needs.
#[derive(Debug, Deserialize)]
struct PluginManifest {
    name: String,
    version: String,
    component: String,
    digest: String,
}

/// Everything a release is computed from.
pub(crate) struct ReleaseInputs<'a> {
    /// The repository root (holding `policies/`).
    pub root: &'a Path,
    /// Where the built components are.
    pub plugin_dir: &'a Path,
    /// The host's measurement.
    pub host: &'a HostMeasurement,
    /// The gateway's key configurations, each without its list prefix.
    pub ohttp_configs: &'a [Vec<u8>],
    /// Provenance recorded with every entry.
    pub provenance: &'a Provenance,
}

/// What a submission did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ReleaseSummary {
    /// Entries newly appended.
    pub appended: usize,
    /// Entries whose body was already logged.
    pub already_logged: usize,
}

pub(crate) fn run(root: &Path, args: &ReleaseArgs) -> Result<()> {
    let mut host = match &args.measure_json {
        Some(path) => read_measurement(path)?,
        None => measure_host(root)?,
    };
    if let Some(measurement) = args.measurement {
        host.measurement = Some(measurement);
        host.snp_policy = args.snp_policy;
    }
    if host.mode != "snp" {
        eprintln!(
            "xtask: WARNING: releasing a {} CVM measurement, not one of real SEV-SNP hardware",
            host.mode
        );
    }
    let ohttp_list = match &args.ohttp_keys_file {
        Some(path) => fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => fetch_key_list(&args.ohttp_keys)?,
    };
    let ohttp_configs: Vec<Vec<u8>> = cloister_ohttp_keys::split_key_list(&ohttp_list)
        .context("the gateway's key list is not a valid application/ohttp-keys body")?
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let provenance = Provenance {
        source_commit: match &args.source_commit {
            Some(commit) => commit.clone(),
            None => source_commit(root)?,
        },
        builder: args.builder.clone().unwrap_or_else(default_builder),
    };
    let plugin_dir = args
        .plugin_dir
        .clone()
        .unwrap_or_else(|| root.join("target/plugins"));
    let inputs = ReleaseInputs {
        root,
        plugin_dir: &plugin_dir,
        host: &host,
        ohttp_configs: &ohttp_configs,
        provenance: &provenance,
    };
    let bodies = release_entries(&inputs)?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&bodies)?);
        return Ok(());
    }
    let reviewer_keys = args
        .reviewer_keys
        .iter()
        .map(|path| {
            keys::read_key_file(path)
                .with_context(|| format!("reading reviewer key {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let summary = submit(
        &LedgerClient::new(&args.ledger),
        &bodies,
        &reviewer_keys,
        args.log_key.as_ref(),
    )?;
    println!(
        "release logged in {}: {} entries appended, {} already logged",
        args.ledger, summary.appended, summary.already_logged
    );
    Ok(())
}

/// The entries of a release, in a stable order: plugins, policy files, the
/// policy set, the CVM measurement, the OHTTP key configurations.
pub(crate) fn release_entries(inputs: &ReleaseInputs<'_>) -> Result<Vec<EntryBody>> {
    let host = inputs.host;
    let mut subjects = plugin_subjects(inputs.root, inputs.plugin_dir, &host.plugins)?;
    for file in &host.policy_files {
        ensure!(
            file.name != POLICY_SET_NAME,
            "the host names a policy file `{POLICY_SET_NAME}`, a reserved name"
        );
        check_policy_file(inputs.root, file)?;
        subjects.push(Subject::PolicyFile {
            name: file.name.clone(),
            digest: file.digest,
        });
    }
    subjects.push(Subject::PolicyFile {
        name: POLICY_SET_NAME.into(),
        digest: host.host_data,
    });
    let (Some(measurement), Some(snp_policy)) = (host.measurement, host.snp_policy) else {
        bail!(
            "the host reports no launch measurement ({} mode): pass --measurement and --snp-policy",
            host.mode
        );
    };
    subjects.push(Subject::CvmMeasurement {
        measurement,
        snp_policy,
    });
    ensure!(
        !inputs.ohttp_configs.is_empty(),
        "the gateway publishes no OHTTP key configuration"
    );
    for config in inputs.ohttp_configs {
        let key_id =
            cloister_ohttp_keys::leading_key_id(config).context("empty OHTTP key configuration")?;
        subjects.push(Subject::OhttpKeyConfig {
            key_id,
            digest: HexBytes(cloister_ohttp_keys::key_config_digest(config)),
        });
    }
    let bodies: Vec<EntryBody> = subjects
        .into_iter()
        .map(|subject| EntryBody {
            subject,
            provenance: inputs.provenance.clone(),
        })
        .collect();
    for body in &bodies {
        body.validate()
            .with_context(|| format!("entry {:?}", body.subject))?;
    }
    Ok(bodies)
}

/// One entry per plugin manifest, with the digest of the built component.
/// The component must match its manifest's digest (else the manifest is
/// stale), and every plugin the host measured must be one of these.
fn plugin_subjects(
    root: &Path,
    plugin_dir: &Path,
    measured: &[MeasuredPlugin],
) -> Result<Vec<Subject>> {
    let manifest_dir = root.join("policies/plugins");
    let mut manifests: Vec<PathBuf> = fs::read_dir(&manifest_dir)
        .with_context(|| format!("listing {}", manifest_dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    manifests.retain(|path| path.extension().is_some_and(|ext| ext == "toml"));
    manifests.sort();
    let mut built = BTreeMap::new();
    for path in manifests {
        let manifest: PluginManifest = toml::from_str(&fs::read_to_string(&path)?)
            .with_context(|| format!("parsing plugin manifest {}", path.display()))?;
        let component_path = plugin_dir.join(&manifest.component);
        let component = fs::read(&component_path).with_context(|| {
            format!(
                "reading {} (run `cargo xtask build-plugins` first)",
                component_path.display()
            )
        })?;
        let digest = HexBytes(Sha256::digest(&component).into());
        ensure!(
            manifest.digest == format!("sha256:{digest}"),
            "{} does not hash to the digest in {} (run `cargo xtask build-plugins`)",
            component_path.display(),
            path.display()
        );
        built.insert(manifest.name.clone(), (manifest.version, digest));
    }
    for plugin in measured {
        match built.get(&plugin.name) {
            Some((version, digest)) if *version == plugin.version && *digest == plugin.digest => {}
            _ => bail!(
                "the host loads plugin {} {} with digest {}, which is not the component built here",
                plugin.name,
                plugin.version,
                plugin.digest
            ),
        }
    }
    Ok(built
        .into_iter()
        .map(|(name, (version, digest))| Subject::PluginComponent {
            name,
            version,
            wit_world: FEATURE_WORLD.into(),
            digest,
        })
        .collect())
}

/// A policy file the host measured must be the one in this tree: otherwise the
/// measurement is stale and the release would log digests nobody reviewed here.
fn check_policy_file(root: &Path, file: &MeasuredFile) -> Result<()> {
    ensure!(
        !file
            .name
            .split('/')
            .any(|part| part.is_empty() || part == ".." || part == "."),
        "policy file name {:?} is not a plain relative path",
        file.name
    );
    let path = root.join("policies").join(&file.name);
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let digest = HexBytes::<32>(Sha256::digest(&bytes).into());
    ensure!(
        digest == file.digest,
        "the host measured {} as {}, but this tree's file hashes to {digest}: measure again",
        file.name,
        file.digest
    );
    Ok(())
}

/// Signs each entry with every reviewer key and submits it, skipping entries
/// whose body the ledger already holds. Stops at the first refusal: the
/// ledger writes nothing for a refused entry, so the release can be rerun.
pub(crate) fn submit(
    ledger: &LedgerClient,
    bodies: &[EntryBody],
    reviewer_keys: &[ed25519_dalek::SigningKey],
    log_key: Option<&PublicKeyBytes>,
) -> Result<ReleaseSummary> {
    let mut verifier = log_key
        .map(|key| LogVerifier::new(key.as_bytes(), None))
        .transpose()?;
    let mut summary = ReleaseSummary::default();
    for body in bodies {
        let logged = ledger
            .entries_for_digest(body.subject.digest_bytes())
            .with_context(|| format!("looking up {:?} in the ledger", body.subject))?;
        let entry = match logged.into_iter().find(|logged| logged.entry.body == *body) {
            Some(logged) => {
                summary.already_logged += 1;
                logged.entry
            }
            None => {
                let entry = SignedEntry {
                    body: body.clone(),
                    signatures: reviewer_keys
                        .iter()
                        .map(|key| ReviewerSignature::sign(key, body))
                        .collect(),
                };
                let placed = ledger
                    .submit(&entry)
                    .map_err(|error| refusal(error, &body.subject))?;
                eprintln!(
                    "xtask: logged {} at index {}",
                    describe(&body.subject),
                    placed.index
                );
                summary.appended += usize::from(placed.appended);
                summary.already_logged += usize::from(!placed.appended);
                entry
            }
        };
        if let Some(verifier) = &mut verifier {
            ledger
                .verify_entry(verifier, &entry)
                .with_context(|| format!("verifying {}", describe(&body.subject)))?;
        }
    }
    Ok(summary)
}

/// Turns the ledger's refusal into an error that says what to do.
fn refusal(error: RemoteError, subject: &Subject) -> anyhow::Error {
    let what = describe(subject);
    match &error {
        RemoteError::Refused {
            code: Some(code),
            message,
            ..
        } if code == "not_admitted" => anyhow::anyhow!(
            "the ledger refused {what}: {message}; pass one --reviewer-key per reviewer, \
             as many as the ledger's reviewer policy requires (nothing of this entry was logged)"
        ),
        _ => anyhow::Error::new(error).context(format!("submitting {what}")),
    }
}

/// A short human name for an entry.
fn describe(subject: &Subject) -> String {
    match subject {
        Subject::CvmMeasurement { measurement, .. } => format!("CVM measurement {measurement}"),
        Subject::PluginComponent { name, version, .. } => format!("plugin {name} {version}"),
        Subject::OhttpKeyConfig { key_id, .. } => format!("OHTTP key configuration {key_id}"),
        Subject::PolicyFile { name, .. } => format!("policy file {name}"),
    }
}

pub(crate) fn read_measurement(path: &Path) -> Result<HostMeasurement> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("parsing the host measurement {}", path.display()))
}

/// Runs `cloister-host measure` from this tree: the host binary hashes itself,
/// its plugins and its policies, so it is the single source of these digests.
fn measure_host(root: &Path) -> Result<HostMeasurement> {
    let output = crate::cargo()
        .current_dir(root)
        .args(["run", "--quiet", "-p", "cloister-host", "--", "measure"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running `cloister-host measure`")?;
    ensure!(
        output.status.success(),
        "`cloister-host measure` failed with {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("parsing the output of `cloister-host measure`")
}

/// `GET` the gateway's `application/ohttp-keys` list.
fn fetch_key_list(url: &str) -> Result<Vec<u8>> {
    let mut response = ureq::get(url)
        .header("accept", cloister_wire::media::OHTTP_KEYS)
        .call()
        .with_context(|| {
            format!(
                "fetching the gateway's key configurations from {url} (is the gateway running?)"
            )
        })?;
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ensure!(
        media_type == cloister_wire::media::OHTTP_KEYS,
        "{url} answered with {media_type:?}, not {}",
        cloister_wire::media::OHTTP_KEYS
    );
    Ok(response.body_mut().read_to_vec()?)
}

/// `git rev-parse HEAD`, with `-dirty` when the work tree has uncommitted changes.
fn source_commit(root: &Path) -> Result<String> {
    let git = |args: &[&str]| -> Result<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .context("running git")?;
        ensure!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = !git(&["status", "--porcelain"])?.is_empty();
    Ok(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// `user@host` of whoever runs the release.
fn default_builder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |h| h.trim().to_owned());
    format!("{user}@{host}")
}

/// Options of `cargo xtask demo-reviewers`.
#[derive(Debug, Args)]
pub(crate) struct DemoReviewersArgs {
    /// Where to put the demo keys, reviewer policy and ledger configuration.
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
}

/// The demo reviewer set: k of n.
const DEMO_REVIEWERS: usize = 3;
const DEMO_THRESHOLD: usize = 2;

/// What [`demo_reviewers`] made.
pub(crate) struct DemoLedger {
    /// The reviewers' key files.
    pub reviewer_keys: Vec<PathBuf>,
    /// The demo-only reviewer policy.
    pub policy_path: PathBuf,
    /// A `cloister-ledger serve` configuration using it.
    pub config_path: PathBuf,
    /// The demo log's public key, for clients to pin.
    pub log_public_key: PublicKeyBytes,
}

/// Creates (or reuses) throwaway reviewer keys, a demo-only reviewer policy
/// and a ledger configuration under `dir`. Never for a real ledger: the keys
/// sit unprotected in the build directory.
pub(crate) fn demo_reviewers(dir: &Path) -> Result<DemoLedger> {
    let keys_dir = dir.join("reviewers");
    fs::create_dir_all(&keys_dir).with_context(|| format!("creating {}", keys_dir.display()))?;
    let dir = fs::canonicalize(dir)?;
    let mut reviewers = Vec::new();
    let mut reviewer_keys = Vec::new();
    for index in 1..=DEMO_REVIEWERS {
        let name = format!("demo-reviewer-{index}");
        let path = dir.join("reviewers").join(format!("{name}.key"));
        let (key, _) = keys::read_or_generate_key_file(&path)?;
        reviewers.push(Reviewer {
            name,
            public_key: HexBytes(key.verifying_key().to_bytes()),
        });
        reviewer_keys.push(path);
    }
    let policy = ReviewerPolicy {
        threshold: DEMO_THRESHOLD,
        reviewers,
    };
    policy.validate()?;
    let policy_path = dir.join("ledger-reviewers.toml");
    fs::write(
        &policy_path,
        format!(
            "# DEMO ONLY: throwaway reviewer keys made by `cargo xtask demo-reviewers`.\n\
             # Their secret keys are in {}; never let a real ledger trust them.\n\
             # The production reviewer set is policies/ledger-reviewers.toml.\n\n{}",
            keys_dir.display(),
            toml::to_string(&policy)?
        ),
    )?;
    let log_key_path = dir.join("ledger-log.key");
    let (log_key, _) = keys::read_or_generate_key_file(&log_key_path)?;
    let config_path = dir.join("cloister-ledger.toml");
    let mut config = toml::Table::new();
    config.insert("listen".into(), "127.0.0.1:7400".into());
    for (key, path) in [
        ("database", dir.join("cloister-ledger.redb")),
        ("log_key", log_key_path),
        ("reviewers", policy_path.clone()),
    ] {
        config.insert(
            key.into(),
            path.to_str().context("demo paths must be UTF-8")?.into(),
        );
    }
    fs::write(
        &config_path,
        format!(
            "# DEMO ONLY ledger configuration made by `cargo xtask demo-reviewers`.\n{}",
            toml::to_string(&config)?
        ),
    )?;
    Ok(DemoLedger {
        reviewer_keys,
        policy_path,
        config_path,
        log_public_key: HexBytes(log_key.verifying_key().to_bytes()),
    })
}

pub(crate) fn run_demo_reviewers(root: &Path, args: &DemoReviewersArgs) -> Result<()> {
    let demo = demo_reviewers(&root.join(&args.dir))?;
    eprintln!(
        "xtask: DEMO ONLY reviewer keys and ledger configuration (never use them for a real ledger)"
    );
    println!("reviewer policy: {}", demo.policy_path.display());
    println!(
        "ledger:          cloister-ledger serve --config {}",
        demo.config_path.display()
    );
    let keys: Vec<String> = demo
        .reviewer_keys
        .iter()
        .map(|key| format!("--reviewer-key {}", key.display()))
        .collect();
    println!("release:         cargo xtask release {}", keys.join(" "));
    println!("log public key:  {}", demo.log_public_key);
    Ok(())
}

#[cfg(test)]
mod tests {
    use cloister_ledger::Ledger;
    use ed25519_dalek::SigningKey;

    use super::*;

    const COMPONENT: &[u8] = b"\0asm pretend component";
    const ALLOWLIST: &[u8] = b"# allow-list\n";
    /// An OHTTP key configuration as the gateway publishes it (key id 7).
    const KEY_CONFIG: &[u8] = &[7, 0, 0x20, 1, 2, 3];

    /// A scratch tree: one plugin manifest and component, one more policy file,
    /// and the measurement a host would print for them.
    struct Tree {
        dir: tempfile::TempDir,
        host: HostMeasurement,
    }

    fn sha256(bytes: &[u8]) -> Sha256Digest {
        HexBytes(Sha256::digest(bytes).into())
    }

    fn tree() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("policies/plugins")).expect("mkdir");
        fs::create_dir_all(root.join("target/plugins")).expect("mkdir");
        fs::write(root.join("target/plugins/summarise.wasm"), COMPONENT).expect("write");
        let manifest = format!(
            "name = \"summarise\"\nversion = \"0.1.0\"\ncomponent = \"summarise.wasm\"\ndigest = \"sha256:{}\"\n",
            sha256(COMPONENT)
        );
        fs::write(root.join("policies/plugins/summarise.toml"), &manifest).expect("write");
        fs::write(root.join("policies/log-allowlist.toml"), ALLOWLIST).expect("write");
        let host = HostMeasurement {
            mode: "simulated".into(),
            measurement: Some(Measurement([0xab; 48])),
            host_data: HexBytes([0xcd; 32]),
            snp_policy: Some(0x30000),
            plugins: vec![MeasuredPlugin {
                name: "summarise".into(),
                version: "0.1.0".into(),
                digest: sha256(COMPONENT),
            }],
            policy_files: vec![
                MeasuredFile {
                    name: "log-allowlist.toml".into(),
                    digest: sha256(ALLOWLIST),
                },
                MeasuredFile {
                    name: "plugins/summarise.toml".into(),
                    digest: sha256(manifest.as_bytes()),
                },
            ],
        };
        Tree { dir, host }
    }

    fn provenance() -> Provenance {
        Provenance {
            source_commit: "0123abcd".into(),
            builder: "test@ci".into(),
        }
    }

    fn entries(tree: &Tree) -> Result<Vec<EntryBody>> {
        let root = tree.dir.path();
        let configs = [KEY_CONFIG.to_vec()];
        release_entries(&ReleaseInputs {
            root,
            plugin_dir: &root.join("target/plugins"),
            host: &tree.host,
            ohttp_configs: &configs,
            provenance: &provenance(),
        })
    }

    #[test]
    fn dry_run_lists_every_artefact_of_the_release() {
        let tree = tree();
        let bodies = entries(&tree).expect("entries");
        assert!(bodies.iter().all(|body| body.provenance == provenance()));
        let subjects: Vec<Subject> = bodies.into_iter().map(|body| body.subject).collect();
        assert_eq!(
            subjects,
            [
                Subject::PluginComponent {
                    name: "summarise".into(),
                    version: "0.1.0".into(),
                    wit_world: FEATURE_WORLD.into(),
                    digest: sha256(COMPONENT),
                },
                Subject::PolicyFile {
                    name: "log-allowlist.toml".into(),
                    digest: sha256(ALLOWLIST)
                },
                Subject::PolicyFile {
                    name: "plugins/summarise.toml".into(),
                    digest: tree.host.policy_files[1].digest
                },
                Subject::PolicyFile {
                    name: POLICY_SET_NAME.into(),
                    digest: HexBytes([0xcd; 32])
                },
                Subject::CvmMeasurement {
                    measurement: Measurement([0xab; 48]),
                    snp_policy: 0x30000
                },
                Subject::OhttpKeyConfig {
                    key_id: 7,
                    digest: sha256(KEY_CONFIG)
                },
            ]
        );
    }

    #[test]
    fn refuses_stale_manifests_and_measurements() {
        let tree = tree();
        fs::write(
            tree.dir.path().join("target/plugins/summarise.wasm"),
            b"rebuilt",
        )
        .expect("write");
        let stale_manifest = entries(&tree).expect_err("component no longer matches its manifest");
        assert!(
            stale_manifest.to_string().contains("build-plugins"),
            "{stale_manifest}"
        );

        let mut tree = self::tree();
        tree.host.policy_files[0].digest = HexBytes([0; 32]);
        let stale_measurement = entries(&tree).expect_err("measured policy differs from the tree");
        assert!(
            stale_measurement.to_string().contains("measure again"),
            "{stale_measurement}"
        );

        let mut tree = self::tree();
        tree.host.plugins[0].version = "9.9.9".into();
        assert!(
            entries(&tree).is_err(),
            "host loads a plugin this tree did not build"
        );

        let mut tree = self::tree();
        tree.host.measurement = None;
        let no_measurement = entries(&tree).expect_err("real hardware: measurement must be given");
        assert!(
            no_measurement.to_string().contains("--measurement"),
            "{no_measurement}"
        );

        let mut tree = self::tree();
        tree.host.policy_files[0].name = "../escape.toml".into();
        assert!(
            entries(&tree).is_err(),
            "policy names must stay under policies/"
        );
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A real ledger (2 of 3 reviewers) serving on a loopback port until dropped.
    struct TestLedger {
        url: String,
        log_key: PublicKeyBytes,
        _runtime: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    fn start_ledger() -> TestLedger {
        let dir = tempfile::tempdir().expect("tempdir");
        let reviewers = (1..=3)
            .map(|seed| Reviewer {
                name: format!("r{seed}"),
                public_key: HexBytes(key(seed).verifying_key().to_bytes()),
            })
            .collect();
        let log_key = key(9);
        let log_public = HexBytes(log_key.verifying_key().to_bytes());
        let ledger = Ledger::open(
            &dir.path().join("ledger.redb"),
            log_key,
            ReviewerPolicy {
                threshold: 2,
                reviewers,
            },
        )
        .expect("open ledger");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        runtime.spawn(async move {
            axum::serve(listener, cloister_ledger_server::router(ledger)).await
        });
        TestLedger {
            url,
            log_key: log_public,
            _runtime: runtime,
            _dir: dir,
        }
    }

    #[test]
    fn release_is_admitted_once_and_rerunning_it_changes_nothing() {
        let tree = tree();
        let bodies = entries(&tree).expect("entries");
        let ledger = start_ledger();
        let client = LedgerClient::new(&ledger.url);
        let reviewers = [key(1), key(3)];

        let first =
            submit(&client, &bodies, &reviewers, Some(&ledger.log_key)).expect("release admitted");
        assert_eq!(
            first,
            ReleaseSummary {
                appended: bodies.len(),
                already_logged: 0
            }
        );
        let head = client.tree_head().expect("head");
        assert_eq!(head.head.tree_size, bodies.len() as u64);

        let second = submit(&client, &bodies, &reviewers, Some(&ledger.log_key)).expect("rerun");
        assert_eq!(
            second,
            ReleaseSummary {
                appended: 0,
                already_logged: bodies.len()
            }
        );
        assert_eq!(
            client.tree_head().expect("head"),
            head,
            "a rerun must not touch the log"
        );
    }

    #[test]
    fn release_with_too_few_reviewers_is_refused_and_logs_nothing() {
        let tree = tree();
        let bodies = entries(&tree).expect("entries");
        let ledger = start_ledger();
        let client = LedgerClient::new(&ledger.url);

        let error =
            submit(&client, &bodies, &[key(2)], None).expect_err("one reviewer is not enough");
        let message = error.to_string();
        assert!(
            message.contains("1 reviewer signature(s), 2 required"),
            "{message}"
        );
        assert!(message.contains("--reviewer-key"), "{message}");
        let unknown =
            submit(&client, &bodies, &[key(1), key(7)], None).expect_err("unknown reviewer");
        assert!(unknown.to_string().contains("unknown key"), "{unknown}");
        assert_eq!(client.tree_head().expect("head").head.tree_size, 0);
    }

    #[test]
    fn demo_reviewers_make_a_usable_demo_only_policy_and_reuse_their_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = demo_reviewers(dir.path()).expect("demo reviewers");
        let policy = keys::read_reviewer_policy(&first.policy_path).expect("valid policy");
        assert_eq!(
            (policy.threshold, policy.reviewers.len()),
            (DEMO_THRESHOLD, DEMO_REVIEWERS)
        );
        assert!(
            fs::read_to_string(&first.policy_path)
                .expect("read")
                .starts_with("# DEMO ONLY")
        );
        for (reviewer, path) in policy.reviewers.iter().zip(&first.reviewer_keys) {
            let key = keys::read_key_file(path).expect("reviewer key");
            assert_eq!(
                reviewer.public_key.as_bytes(),
                key.verifying_key().as_bytes()
            );
        }
        let config: toml::Table =
            toml::from_str(&fs::read_to_string(&first.config_path).expect("read")).expect("toml");
        assert_eq!(config["reviewers"].as_str(), first.policy_path.to_str());
        let log_key =
            keys::read_key_file(Path::new(config["log_key"].as_str().expect("log key path")))
                .expect("log key");
        assert_eq!(
            log_key.verifying_key().to_bytes(),
            *first.log_public_key.as_bytes()
        );

        let again = demo_reviewers(dir.path()).expect("rerun");
        assert_eq!(
            again.log_public_key, first.log_public_key,
            "keys are reused, not replaced"
        );
        assert_eq!(
            keys::read_reviewer_policy(&again.policy_path).expect("policy"),
            policy
        );
    }
}
