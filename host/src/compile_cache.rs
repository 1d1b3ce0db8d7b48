//! DEVELOPMENT ONLY: the caches of compiled plugin code that tests and the
//! demo share ([`RuntimeConfig::compile_cache`](crate::RuntimeConfig)).
//!
//! Two caches in one folder: wasmtime's, of whole components
//! (`components/`), and Cranelift's, of single functions (`functions/`).
//! The second serves a component never seen before from the functions of
//! others: every componentize-py build carries the same CPython and every
//! componentize-js build the same SpiderMonkey, so a feature team's new
//! Python or JavaScript plugin compiles in a fraction of the time. Both hold
//! native code that is run without any check, so a host with real
//! attestation refuses the setting altogether
//! ([`LoadError::CompileCacheOutsideSimulation`]).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};
use wasmtime::{Cache, CacheConfig, CacheStore, Config};

use crate::error::LoadError;

/// Turns both caches on in `config`, under `dir` (relative: from the
/// working directory).
pub(crate) fn enable(config: &mut Config, dir: &Path) -> Result<(), LoadError> {
    let error = |e: &dyn std::fmt::Display| {
        LoadError::Engine(format!("compile cache `{}`: {e}", dir.display()))
    };
    let dir = std::path::absolute(dir).map_err(|e| error(&e))?;
    // wasmtime's cache deletes what it does not recognise in its folder, so
    // each cache has a folder of its own.
    let mut components = CacheConfig::new();
    components.with_directory(dir.join("components"));
    config.cache(Some(Cache::new(components).map_err(|e| error(&e))?));
    let functions = FunctionCache::new(dir.join("functions")).map_err(|e| error(&e))?;
    config
        .enable_incremental_compilation(Arc::new(functions))
        .map_err(|e| error(&e))?;
    Ok(())
}

/// Cranelift's compiled functions, a file each, named by the SHA-256 of
/// the key Cranelift gives (a hash of the function's code and settings).
#[derive(Debug)]
struct FunctionCache {
    dir: PathBuf,
    /// Numbers this process's files in flight.
    writes: AtomicU64,
}

impl FunctionCache {
    fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            writes: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        self.dir.join(hex::encode(Sha256::digest(key)))
    }
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        std::fs::read(self.path(key)).ok().map(Cow::Owned)
    }

    /// Written beside and renamed into place: test binaries running at
    /// once share the folder, and none may read half a file.
    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let path = self.path(key);
        let partial = path.with_extension(format!(
            "{}-{}.partial",
            std::process::id(),
            self.writes.fetch_add(1, Ordering::Relaxed)
        ));
        let written =
            std::fs::write(&partial, value).and_then(|()| std::fs::rename(&partial, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_found_under_its_key_and_no_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FunctionCache::new(dir.path().join("functions")).expect("cache");
        assert!(cache.get(b"one").is_none());
        assert!(cache.insert(b"one", b"code of one".to_vec()));
        assert_eq!(cache.get(b"one").as_deref(), Some(&b"code of one"[..]));
        assert!(cache.get(b"two").is_none());
        let leftovers = std::fs::read_dir(dir.path().join("functions"))
            .expect("folder")
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "partial"))
            .count();
        assert_eq!(leftovers, 0, "no file in flight is left behind");
    }
}
