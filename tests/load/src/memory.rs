//! Each party's memory, from `/proc/<pid>/status`: resident set now
//! (`VmRSS`) and at its peak (`VmHWM`), in KiB.
//!
//! Which process is which party comes from a pids file, one `name pid` per
//! line, that whoever starts the parties writes (and rewrites when it
//! restarts one): it is read again at every sample.

use std::path::Path;

/// One process's resident memory, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    /// `VmRSS`: resident now.
    pub now_kib: u64,
    /// `VmHWM`: the most it has been resident since it started.
    pub peak_kib: u64,
}

/// Why memory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The pids file or a status file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A line of the pids file is not `name pid`.
    #[error("{path}: line {line:?} is not `name pid`")]
    BadLine {
        /// The pids file.
        path: String,
        /// The line.
        line: String,
    },
    /// A status file lacks `VmRSS` or `VmHWM` (the process is a zombie).
    #[error("/proc/{pid}/status has no VmRSS and VmHWM")]
    NoFigures {
        /// The process.
        pid: u32,
    },
}

/// The parties of a pids file, in its order.
///
/// # Errors
/// [`MemoryError::Read`] or [`MemoryError::BadLine`].
pub fn read_pids(path: &Path) -> Result<Vec<(String, u32)>, MemoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| MemoryError::Read {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next().map(str::parse), words.next()) {
                (Some(name), Some(Ok(pid)), None) => Ok((name.to_owned(), pid)),
                _ => Err(MemoryError::BadLine {
                    path: path.display().to_string(),
                    line: line.to_owned(),
                }),
            }
        })
        .collect()
}

/// `pid`'s resident memory now and at its peak.
///
/// # Errors
/// [`MemoryError::Read`] if the process is gone, [`MemoryError::NoFigures`].
pub fn resident(pid: u32) -> Result<Resident, MemoryError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|source| MemoryError::Read {
        path: path.clone(),
        source,
    })?;
    parse_status(&text).ok_or(MemoryError::NoFigures { pid })
}

/// `VmRSS` and `VmHWM` of a `/proc/<pid>/status` text.
fn parse_status(text: &str) -> Option<Resident> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Resident {
        now_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_figures_are_read_in_kib() {
        let status = "Name:\tcloister-gateway\nVmPeak:\t  900000 kB\nVmHWM:\t   45312 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Resident {
                now_kib: 40_960,
                peak_kib: 45_312
            })
        );
        assert_eq!(parse_status("Name:\tzombie\n"), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        let me = resident(std::process::id()).unwrap_or_else(|e| panic!("{e}"));
        assert!(me.now_kib > 0 && me.peak_kib >= me.now_kib, "{me:?}");
    }

    #[test]
    fn the_pids_file_names_each_party() {
        let dir = std::env::temp_dir().join(format!("cloister-load-pids-{}", std::process::id()));
        std::fs::write(&dir, "gateway 12\n\nrelay 13\n").unwrap_or_else(|e| panic!("{e}"));
        let read = read_pids(&dir);
        std::fs::write(&dir, "gateway twelve\n").unwrap_or_else(|e| panic!("{e}"));
        let bad = read_pids(&dir);
        let _ = std::fs::remove_file(&dir);
        assert_eq!(
            read.unwrap_or_else(|e| panic!("{e}")),
            [("gateway".to_owned(), 12), ("relay".to_owned(), 13)]
        );
        assert!(matches!(bad, Err(MemoryError::BadLine { .. })));
    }
}
