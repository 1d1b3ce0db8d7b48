//! The reviewed policy set: plugin manifests and the log allow-list, read
//! through a read-only directory handle.
//!
//! The set keeps the bytes of every file it parsed, so that the digest the
//! host checks against its attested HOST_DATA ([`PolicySet::digest`]) is over
//! exactly what it enforces, not over a second reading of the folder.

use cap_std::fs::Dir;

use crate::capabilities::Capabilities;
use crate::error::LoadError;
use crate::logfilter::AllowList;
use crate::manifest::PluginManifest;

/// Folder of plugin manifests inside the policy directory.
pub const MANIFEST_DIR: &str = "plugins";
/// The log allow-list inside the policy directory.
pub const ALLOW_LIST_FILE: &str = "log-allowlist.toml";

/// Everything the host enforces that a reviewer signed off.
#[derive(Debug, Clone)]
pub struct PolicySet {
    manifests: Vec<PluginManifest>,
    allow_list: AllowList,
    files: Vec<PolicyFile>,
}

/// One policy file as read: its path relative to the policy folder (with
/// `/` separators, e.g. `plugins/summarise.toml`) and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// Path relative to the policy folder.
    pub name: String,
    /// The exact text parsed.
    pub contents: String,
}

impl PolicySet {
    /// Reads `plugins/*.toml` and `log-allowlist.toml` from `dir`.
    pub fn load(dir: &Dir) -> Result<Self, LoadError> {
        let mut files = Vec::new();
        let mut read = |path: &str| {
            let contents = dir.read_to_string(path).map_err(|source| LoadError::Io {
                path: path.to_owned(),
                source,
            })?;
            files.push(PolicyFile {
                name: path.to_owned(),
                contents: contents.clone(),
            });
            Ok::<_, LoadError>(contents)
        };
        let allow_list =
            toml::from_str(&read(ALLOW_LIST_FILE)?).map_err(|e| LoadError::AllowList {
                path: ALLOW_LIST_FILE.to_owned(),
                reason: e.to_string(),
            })?;

        let io = |source| LoadError::Io {
            path: MANIFEST_DIR.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in dir.read_dir(MANIFEST_DIR).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            if let Some(name) = name.to_str().filter(|n| n.ends_with(".toml")) {
                paths.push(format!("{MANIFEST_DIR}/{name}"));
            }
        }
        paths.sort();
        let provided = Capabilities::interfaces();
        let mut manifests: Vec<PluginManifest> = Vec::with_capacity(paths.len());
        for path in paths {
            let manifest = PluginManifest::parse(&read(&path)?, &provided).map_err(|source| {
                LoadError::Manifest {
                    path: path.clone(),
                    source,
                }
            })?;
            if manifests.iter().any(|m| m.name == manifest.name) {
                return Err(LoadError::DuplicatePlugin(manifest.name));
            }
            manifests.push(manifest);
        }
        Ok(Self {
            manifests,
            allow_list,
            files,
        })
    }

    /// A policy set from parts, for tests and tools. It has no files, so its
    /// [`digest`](Self::digest) is that of the empty set.
    pub fn new(manifests: Vec<PluginManifest>, allow_list: AllowList) -> Self {
        Self {
            manifests,
            allow_list,
            files: Vec::new(),
        }
    }

    /// The plugin manifests, sorted by file name.
    pub fn manifests(&self) -> &[PluginManifest] {
        &self.manifests
    }

    /// The log allow-list.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow_list
    }

    /// Every file read, in reading order (allow-list, then manifests by name).
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// The files as `(name, contents)` pairs, the input of
    /// [`cloister_attestation::policy_set_digest`].
    pub fn named_contents(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files
            .iter()
            .map(|file| (file.name.as_str(), file.contents.as_bytes()))
    }

    /// The policy-set digest, one part of the HOST_DATA of a CVM running
    /// these policies (see [`cloister_attestation::policy_set_digest`]).
    pub fn digest(&self) -> Result<[u8; 32], cloister_attestation::PolicySetError> {
        cloister_attestation::policy_set_digest(self.named_contents())
    }
}
