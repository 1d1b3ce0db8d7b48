//! What is current in a log at a given time: releases and logged keys.
//!
//! Everything ever logged stays in the log, so "is it logged?" cannot be
//! the question a client asks: an operator could run an old image with an
//! old, weaker policy set, or hand each targeted user a different old key
//! configuration and tell them apart by key id. These books answer "is it
//! current?" instead, from the entries alone, so that every client with the
//! same view of the log gets the same answer at the same time.
//!
//! * [`ReleaseBook`]: a release is current from its `published_at` until a
//!   later release of its series has been published for that release's
//!   overlap window, and never once revoked.
//! * [`KeyBook`]: a key is usable inside its window, and only while it is
//!   one of the [`USABLE_KEYS`] newest keys whose window is open: an
//!   operator that logs many keys at once still can give clients at most
//!   two to choose from, one bit, visible to every auditor of the log.

use serde::{Deserialize, Serialize};

use crate::entry::{KeyWindow, Release, Sha256Digest};

/// How many keys of one kind may be usable at a time: the current one and
/// the one before it (clients holding a cached copy during a rotation), or
/// the next one once it is open.
pub const USABLE_KEYS: usize = 2;

/// Whether a release may run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseStatus {
    /// It may.
    Current,
    /// Its `published_at` is still ahead.
    NotYetPublished {
        /// When it takes effect.
        published_at: u64,
    },
    /// A later release of its series took over and the overlap has passed.
    Superseded {
        /// The sequence number of the release that took over.
        by: u64,
        /// When this release stopped being accepted.
        since: u64,
    },
    /// Reviewers withdrew it.
    Revoked {
        /// Their stated reason.
        reason: String,
    },
}

/// A revocation, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedRelease {
    /// The revoked release's series.
    pub series: String,
    /// Its sequence number.
    pub sequence: u64,
    /// Why.
    pub reason: String,
}

/// Every release and revocation a client has verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBook {
    releases: Vec<Release>,
    revocations: Vec<RevokedRelease>,
}

impl ReleaseBook {
    /// Records a verified release. A second, different release under the
    /// same series and sequence is not recorded (returns `false`): the first
    /// logged wins, so a later entry cannot rewrite what a sequence number means.
    pub fn record_release(&mut self, release: &Release) -> bool {
        match self.find(&release.series, release.sequence) {
            Some(known) => known == release,
            None => {
                self.releases.push(release.clone());
                true
            }
        }
    }

    /// Records a verified revocation (revoking twice changes nothing).
    pub fn record_revocation(&mut self, revocation: RevokedRelease) {
        if self
            .revocation(&revocation.series, revocation.sequence)
            .is_none()
        {
            self.revocations.push(revocation);
        }
    }

    /// Every recorded release.
    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    /// Whether `release` may run at `now` (seconds since the Unix epoch).
    pub fn status(&self, release: &Release, now: u64) -> ReleaseStatus {
        if let Some(revoked) = self.revocation(&release.series, release.sequence) {
            return ReleaseStatus::Revoked {
                reason: revoked.reason.clone(),
            };
        }
        if release.published_at > now {
            return ReleaseStatus::NotYetPublished {
                published_at: release.published_at,
            };
        }
        // The earliest moment a later, published release ends this one's overlap.
        let superseded = self
            .releases
            .iter()
            .filter(|later| {
                later.series == release.series
                    && later.sequence > release.sequence
                    && later.published_at <= now
            })
            .map(|later| {
                (
                    later.published_at.saturating_add(later.overlap_secs),
                    later.sequence,
                )
            })
            .min();
        match superseded {
            Some((since, by)) if since <= now => ReleaseStatus::Superseded { by, since },
            _ => ReleaseStatus::Current,
        }
    }

    /// The releases that may run at `now`.
    pub fn current(&self, now: u64) -> impl Iterator<Item = &Release> {
        self.releases
            .iter()
            .filter(move |release| self.status(release, now) == ReleaseStatus::Current)
    }

    fn find(&self, series: &str, sequence: u64) -> Option<&Release> {
        self.releases
            .iter()
            .find(|release| release.series == series && release.sequence == sequence)
    }

    fn revocation(&self, series: &str, sequence: u64) -> Option<&RevokedRelease> {
        self.revocations
            .iter()
            .find(|revoked| revoked.series == series && revoked.sequence == sequence)
    }
}

/// Whether a key may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// It may.
    Usable,
    /// The log does not hold it.
    NotLogged,
    /// Its window has not opened yet.
    NotYetValid {
        /// When it opens.
        not_before: u64,
    },
    /// Its window has closed.
    Expired {
        /// When it closed.
        not_after: u64,
    },
    /// Newer keys with open windows replaced it.
    Superseded,
}

/// A logged key: its digest, window and position in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedKey {
    /// SHA-256 of the key (configuration) as the entry names it.
    pub digest: Sha256Digest,
    /// When it may be used.
    pub window: KeyWindow,
    /// The entry's index in the log: of two keys opening at the same
    /// second, the later logged is the newer.
    pub index: u64,
}

/// Every logged key of one kind (OHTTP key configurations, or issuer keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBook {
    keys: Vec<LoggedKey>,
}

impl KeyBook {
    /// Records a verified key entry (a key logged again with another window
    /// is a second entry: each window counts on its own).
    pub fn record(&mut self, key: LoggedKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Whether the key with `digest` may be used at `now`.
    pub fn status(&self, digest: &[u8; 32], now: u64) -> KeyStatus {
        let mut open: Vec<&LoggedKey> = self
            .keys
            .iter()
            .filter(|key| key.window.contains(now))
            .collect();
        open.sort_by_key(|key| std::cmp::Reverse((key.window.not_before, key.index)));
        // The newest distinct keys: one key logged twice (by a release and
        // by its publisher) counts once.
        let mut newest: Vec<&Sha256Digest> = Vec::with_capacity(USABLE_KEYS);
        for key in &open {
            if newest.len() == USABLE_KEYS {
                break;
            }
            if !newest.contains(&&key.digest) {
                newest.push(&key.digest);
            }
        }
        if newest.iter().any(|newest| newest.as_bytes() == digest) {
            return KeyStatus::Usable;
        }
        if open.iter().any(|key| key.digest.as_bytes() == digest) {
            return KeyStatus::Superseded;
        }
        let logged = || {
            self.keys
                .iter()
                .filter(|key| key.digest.as_bytes() == digest)
        };
        if let Some(not_before) = logged()
            .map(|key| key.window.not_before)
            .filter(|&not_before| not_before > now)
            .min()
        {
            return KeyStatus::NotYetValid { not_before };
        }
        logged()
            .map(|key| key.window.not_after)
            .max()
            .map_or(KeyStatus::NotLogged, |not_after| KeyStatus::Expired {
                not_after,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HexBytes;
    use crate::entry::Measurement;
    use cloister_wire::HostData;

    fn release(sequence: u64, published_at: u64, overlap_secs: u64) -> Release {
        Release {
            series: "production".into(),
            sequence,
            published_at,
            overlap_secs,
            measurement: Measurement([u8::try_from(sequence).unwrap_or(0); 48]),
            snp_policy: 0x3_0000,
            platform_info: 0,
            host_data: HostData([0; 32]),
            policy_set: HexBytes([0; 32]),
            model: None,
            host_config: HexBytes([0; 32]),
            plugins: Vec::new(),
            build: None,
        }
    }

    #[test]
    fn a_release_is_current_from_publication_until_its_successor_overlap_ends() {
        let mut book = ReleaseBook::default();
        let first = release(1, 100, 50);
        let second = release(2, 200, 30);
        assert!(book.record_release(&first));
        assert!(book.record_release(&second));
        assert_eq!(
            book.status(&first, 99),
            ReleaseStatus::NotYetPublished { published_at: 100 }
        );
        assert_eq!(book.status(&first, 229), ReleaseStatus::Current);
        assert_eq!(
            book.status(&first, 230),
            ReleaseStatus::Superseded { by: 2, since: 230 }
        );
        assert_eq!(book.status(&second, 230), ReleaseStatus::Current);
        let current: Vec<u64> = book.current(230).map(|release| release.sequence).collect();
        assert_eq!(current, [2]);
    }

    #[test]
    fn a_revoked_release_is_never_current() {
        let mut book = ReleaseBook::default();
        let only = release(1, 100, 50);
        book.record_release(&only);
        book.record_revocation(RevokedRelease {
            series: "production".into(),
            sequence: 1,
            reason: "CVE".into(),
        });
        assert_eq!(
            book.status(&only, 150),
            ReleaseStatus::Revoked {
                reason: "CVE".into()
            }
        );
        assert_eq!(book.current(150).count(), 0);
    }

    #[test]
    fn a_sequence_number_cannot_be_rewritten() {
        let mut book = ReleaseBook::default();
        assert!(book.record_release(&release(1, 100, 50)));
        assert!(book.record_release(&release(1, 100, 50)));
        assert!(!book.record_release(&release(1, 100, 9999)));
        assert_eq!(book.releases().len(), 1);
    }

    #[test]
    fn another_series_does_not_supersede() {
        let mut book = ReleaseBook::default();
        let production = release(1, 100, 0);
        let mut staging = release(5, 110, 0);
        staging.series = "staging".into();
        book.record_release(&production);
        book.record_release(&staging);
        assert_eq!(book.status(&production, 500), ReleaseStatus::Current);
    }

    fn key(byte: u8, not_before: u64, not_after: u64, index: u64) -> LoggedKey {
        LoggedKey {
            digest: HexBytes([byte; 32]),
            window: KeyWindow {
                not_before,
                not_after,
            },
            index,
        }
    }

    #[test]
    fn only_the_two_newest_open_keys_are_usable() {
        let mut book = KeyBook::default();
        book.record(key(1, 0, 1000, 0));
        book.record(key(2, 100, 1000, 1));
        book.record(key(3, 200, 1000, 2));
        book.record(key(4, 200, 1000, 3));
        assert_eq!(book.status(&[4; 32], 250), KeyStatus::Usable);
        assert_eq!(book.status(&[3; 32], 250), KeyStatus::Usable);
        assert_eq!(book.status(&[2; 32], 250), KeyStatus::Superseded);
        assert_eq!(book.status(&[2; 32], 150), KeyStatus::Usable);
        assert_eq!(book.status(&[1; 32], 150), KeyStatus::Usable);
    }

    #[test]
    fn a_key_logged_twice_counts_once() {
        let mut book = KeyBook::default();
        book.record(key(1, 0, 1000, 0));
        book.record(key(2, 100, 1000, 1));
        book.record(key(2, 100, 2000, 2));
        assert_eq!(book.status(&[1; 32], 150), KeyStatus::Usable);
    }

    #[test]
    fn keys_outside_their_window_or_unlogged_are_not_usable() {
        let mut book = KeyBook::default();
        book.record(key(1, 100, 200, 0));
        assert_eq!(
            book.status(&[1; 32], 99),
            KeyStatus::NotYetValid { not_before: 100 }
        );
        assert_eq!(
            book.status(&[1; 32], 200),
            KeyStatus::Expired { not_after: 200 }
        );
        assert_eq!(book.status(&[9; 32], 150), KeyStatus::NotLogged);
    }
}
