//! Files only this user may read, replaced whole or not at all: a party's
//! ledger view, and the client's wallet, key-configuration copy and chat
//! settings.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`: written to `<path>.tmp` (created afresh,
/// mode 0600, so a file or link planted there is never written through),
/// synced, renamed over `path`, and the directory synced, so a crash leaves
/// the old file or the new one and never a mix.
///
/// # Errors
/// The failing step's error and the path it failed on.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let at = |path: &Path| {
        let path = path.to_owned();
        move |error| (path, error)
    };
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err((temporary, error));
        }
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(at(&temporary))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(at(&temporary))?;
    std::fs::rename(&temporary, path).map_err(at(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(at(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::replace;

    #[test]
    fn a_replaced_file_is_private_and_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        replace(&path, b"first").expect("first write");
        replace(&path, b"second").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        assert!(!dir.path().join("state.json.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_temporary_path_is_not_written_through() {
        let dir = tempfile::tempdir().expect("temp dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").expect("victim");
        let path = dir.path().join("state.json");
        std::os::unix::fs::symlink(&victim, dir.path().join("state.json.tmp")).expect("link");
        replace(&path, b"new").expect("write");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"untouched");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
    }
}
