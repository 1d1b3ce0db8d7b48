//! The reviewed policy set: plugin manifests and the log allow-list, read
//! through a read-only directory handle.

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
}

impl PolicySet {
    /// Reads `plugins/*.toml` and `log-allowlist.toml` from `dir`.
    pub fn load(dir: &Dir) -> Result<Self, LoadError> {
        let read = |path: &str| {
            dir.read_to_string(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })
        };
        let allow_list = toml::from_str(&read(ALLOW_LIST_FILE)?).map_err(|e| LoadError::AllowList {
            path: ALLOW_LIST_FILE.to_owned(),
            reason: e.to_string(),
        })?;

        let io = |source| LoadError::Io { path: MANIFEST_DIR.to_owned(), source };
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
            let manifest = PluginManifest::parse(&read(&path)?, &provided)
                .map_err(|source| LoadError::Manifest { path: path.clone(), source })?;
            if manifests.iter().any(|m| m.name == manifest.name) {
                return Err(LoadError::DuplicatePlugin(manifest.name));
            }
            manifests.push(manifest);
        }
        Ok(Self { manifests, allow_list })
    }

    /// A policy set from parts, for tests and tools.
    pub fn new(manifests: Vec<PluginManifest>, allow_list: AllowList) -> Self {
        Self { manifests, allow_list }
    }

    /// The plugin manifests, sorted by file name.
    pub fn manifests(&self) -> &[PluginManifest] {
        &self.manifests
    }

    /// The log allow-list.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow_list
    }
}
