//! The entries a release logs, computed from the host's [`LaunchDigests`]
//! and checked against this tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cloister_host::LaunchDigests;
use cloister_host::config::ProviderKind;
use cloister_host::launch::{PluginDigest, PolicyFileDigest};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{
    EntryBody, KeyWindow, Provenance, Release, ReleaseBuild, ReleasedPlugin, Subject,
};
use cloister_wire::{HostData, Measurement};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::ReleaseError;
use crate::submit::describe;

/// The WIT world of the feature component `name`: each feature declares
/// its own (`plugins/<name>/wit/world.wit`), and `cargo xtask build-plugins`
/// refuses a component whose world is elsewhere.
#[must_use]
pub fn feature_world(name: &str) -> String {
    format!("cloister:{name}/{name}")
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
#[derive(Debug)]
pub struct ReleaseInputs<'a> {
    /// The repository root (holding `policies/`).
    pub root: &'a Path,
    /// Where the built components are.
    pub plugin_dir: &'a Path,
    /// What the host measured (`cloister-host measure`).
    pub launch: &'a LaunchDigests,
    /// The gateway's key configurations, each without its list prefix.
    pub ohttp_configs: &'a [Vec<u8>],
    /// The issuer's token keys: `token_key_id` and window of each.
    pub issuer_keys: &'a [IssuerKeyWindow],
    /// Provenance recorded with every entry.
    pub provenance: &'a Provenance,
    /// Where the release sits in its series and when it and its keys apply.
    pub terms: &'a ReleaseTerms,
    /// How the host binary and plugins were built (`cargo xtask images`
    /// or `rebuild-check` record it), logged with the release when given.
    pub build: Option<&'a ReleaseBuild>,
}

/// One issuer token key as a release logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerKeyWindow {
    /// SHA-256 of the key's encoding (RFC 9578 `token_key_id`).
    pub token_key_id: [u8; 32],
    /// When the issuer may sign with it.
    pub window: KeyWindow,
}

/// The token keys of an issuer directory (RFC 9578 §4), each with the
/// window from its `not-before` for `lifetime_secs` (the issuer's key
/// lifetime). Keys without a `not-before` are left out: neither gateways
/// nor clients use them.
///
/// # Errors
/// [`ReleaseError::IssuerDirectory`] if the directory does not parse or
/// lists no usable key.
pub fn issuer_key_windows(
    directory: &[u8],
    lifetime_secs: u64,
) -> Result<Vec<IssuerKeyWindow>, ReleaseError> {
    let bad = |reason: String| ReleaseError::IssuerDirectory(reason);
    let keys: Vec<IssuerKeyWindow> = cloister_privacypass::IssuerDirectory::from_json(directory)
        .and_then(|directory| directory.blind_rsa_keys())
        .map_err(|error| bad(error.to_string()))?
        .into_iter()
        .filter_map(|published| {
            let not_before = published.not_before?;
            Some(IssuerKeyWindow {
                token_key_id: *published.key.key_id(),
                window: KeyWindow {
                    not_before,
                    not_after: not_before.saturating_add(lifetime_secs),
                },
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(bad("it lists no token key with a not-before".into()));
    }
    Ok(keys)
}

/// Where a release sits in its series, and when it and its keys apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTerms {
    /// The deployment, e.g. `production`.
    pub series: String,
    /// Position in the series (higher supersedes lower).
    pub sequence: u64,
    /// When it takes effect, in seconds since the Unix epoch.
    pub published_at: u64,
    /// How long the releases it supersedes stay acceptable.
    pub overlap_secs: u64,
    /// When the OHTTP key configurations it logs may be served.
    pub key_window: KeyWindow,
}

/// Whether `launch` ran on the simulated attestation provider: its
/// measurement is then not one of real SEV-SNP hardware, and a release of it
/// must say so. Only the host's own [`ProviderKind`] decides this.
pub fn is_simulated(launch: &LaunchDigests) -> bool {
    match launch.mode {
        ProviderKind::Simulated => true,
        ProviderKind::SevGuest => false,
    }
}

/// The entries of a release, in a stable order: plugins, policy files, the
/// release itself (measurement, guest policy, platform info, HOST_DATA and its
/// parts, every plugin), the OHTTP key configurations, the issuer keys.
///
/// # Errors
/// A component, manifest or policy file of this tree differs from what the
/// host measured, the launch has no measurement, guest policy or platform
/// info, or the gateway published no usable key configuration.
pub fn release_entries(inputs: &ReleaseInputs<'_>) -> Result<Vec<EntryBody>, ReleaseError> {
    let launch = inputs.launch;
    let mut subjects = plugin_subjects(inputs.root, inputs.plugin_dir, &launch.plugins)?;
    let plugins = subjects
        .iter()
        .filter_map(|subject| match subject {
            Subject::PluginComponent { name, digest, .. } => Some(ReleasedPlugin {
                name: name.clone(),
                digest: *digest,
            }),
            _ => None,
        })
        .collect();
    for file in &launch.policy_files {
        check_policy_file(inputs.root, file)?;
        subjects.push(Subject::PolicyFile {
            name: file.name.clone(),
            digest: HexBytes(file.digest),
        });
    }
    let (Some(measurement), Some(snp_policy), Some(platform_info)) =
        (launch.measurement, launch.snp_policy, launch.platform_info)
    else {
        return Err(ReleaseError::NoMeasurement);
    };
    if let Some(build) = inputs.build
        && *build.host_binary.as_bytes() != launch.host_binary
    {
        return Err(ReleaseError::OtherHostBinary {
            recorded: build.host_binary,
            measured: HexBytes(launch.host_binary),
        });
    }
    let terms = inputs.terms;
    subjects.push(Subject::Release(Release {
        series: terms.series.clone(),
        sequence: terms.sequence,
        published_at: terms.published_at,
        overlap_secs: terms.overlap_secs,
        measurement: Measurement(measurement),
        snp_policy,
        platform_info,
        host_data: HostData(launch.host_data),
        policy_set: HexBytes(launch.policy_set),
        model: launch.model.map(HexBytes),
        host_config: HexBytes(launch.host_config),
        plugins,
        build: inputs.build.cloned().map(Box::new),
    }));
    if inputs.ohttp_configs.is_empty() {
        return Err(ReleaseError::NoKeyConfig);
    }
    for config in inputs.ohttp_configs {
        let key_id =
            cloister_ohttp_keys::leading_key_id(config).ok_or(ReleaseError::EmptyKeyConfig)?;
        subjects.push(Subject::OhttpKeyConfig {
            key_id,
            digest: HexBytes(cloister_ohttp_keys::key_config_digest(config)),
            window: terms.key_window,
        });
    }
    subjects.extend(inputs.issuer_keys.iter().map(|key| Subject::IssuerKey {
        token_key_id: HexBytes(key.token_key_id),
        window: key.window,
    }));
    subjects
        .into_iter()
        .map(|subject| {
            let body = EntryBody {
                subject,
                provenance: inputs.provenance.clone(),
            };
            body.validate()
                .map_err(|source| ReleaseError::InvalidEntry {
                    subject: describe(&body.subject),
                    source,
                })
                .map(|()| body)
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, ReleaseError> {
    fs::read(path).map_err(|source| ReleaseError::Io {
        path: path.to_owned(),
        source,
    })
}

/// One entry per plugin manifest, with the digest of the built component.
/// The component must match its manifest's digest (else the manifest is
/// stale), and every plugin the host measured must be one of these.
fn plugin_subjects(
    root: &Path,
    plugin_dir: &Path,
    measured: &[PluginDigest],
) -> Result<Vec<Subject>, ReleaseError> {
    let manifest_dir = root.join("policies/plugins");
    let io = |source| ReleaseError::Io {
        path: manifest_dir.clone(),
        source,
    };
    let mut manifests: Vec<PathBuf> = fs::read_dir(&manifest_dir)
        .map_err(io)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    manifests.retain(|path| path.extension().is_some_and(|ext| ext == "toml"));
    manifests.sort();
    let mut built = BTreeMap::new();
    for path in manifests {
        let text = fs::read_to_string(&path).map_err(|source| ReleaseError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: PluginManifest =
            toml::from_str(&text).map_err(|source| ReleaseError::Manifest {
                path: path.clone(),
                source,
            })?;
        let component_path = plugin_dir.join(&manifest.component);
        let component =
            fs::read(&component_path).map_err(|source| ReleaseError::ComponentMissing {
                path: component_path.clone(),
                source,
            })?;
        let digest = HexBytes(Sha256::digest(&component).into());
        if manifest.digest != format!("sha256:{digest}") {
            return Err(ReleaseError::StaleManifest {
                component: component_path,
                manifest: path,
            });
        }
        built.insert(manifest.name.clone(), (manifest.version, digest));
    }
    for plugin in measured {
        match built.get(&plugin.name) {
            Some((version, digest))
                if *version == plugin.version && *digest.as_bytes() == plugin.digest => {}
            _ => {
                return Err(ReleaseError::UnbuiltPlugin {
                    name: plugin.name.clone(),
                    version: plugin.version.clone(),
                    digest: HexBytes(plugin.digest),
                });
            }
        }
    }
    Ok(built
        .into_iter()
        .map(|(name, (version, digest))| Subject::PluginComponent {
            wit_world: feature_world(&name),
            name,
            version,
            digest,
        })
        .collect())
}

/// A policy file the host measured must be the one in this tree: otherwise the
/// measurement is stale and the release would log digests nobody reviewed here.
fn check_policy_file(root: &Path, file: &PolicyFileDigest) -> Result<(), ReleaseError> {
    if file
        .name
        .split('/')
        .any(|part| part.is_empty() || part == ".." || part == ".")
    {
        return Err(ReleaseError::PolicyName(file.name.clone()));
    }
    let actual =
        HexBytes::<32>(Sha256::digest(read(&root.join("policies").join(&file.name))?).into());
    if *actual.as_bytes() != file.digest {
        return Err(ReleaseError::StaleMeasurement {
            name: file.name.clone(),
            measured: HexBytes(file.digest),
            actual,
        });
    }
    Ok(())
}
