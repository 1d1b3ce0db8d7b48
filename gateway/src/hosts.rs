//! The hosts a gateway routes to: where a session goes, which hosts are
//! healthy, and the host list swapped in on reload.
//!
//! # Placement
//!
//! A new session (its first records hold a TLS ClientHello) goes to the
//! healthy host with the highest rendezvous weight for its session id
//! ([`weight`]: SHA-256 over the host's URL and the session id, so every
//! gateway replica and every Rust version computes the same placement).
//! Adding a host moves to it only the sessions it now wins; removing one
//! moves only the sessions it held.
//!
//! # Stickiness without shared state
//!
//! The answer that opened a session carries the host's [`route label`]
//! (`cloister-route`), which the client sends back with every later request
//! of that session. The label is a digest of the host's URL, so any replica
//! with the same host list maps it back to the same host, whatever it
//! believes about that host's health. A later request therefore never moves:
//! a host that comes back does not take over sessions opened elsewhere
//! meanwhile, and a session whose host is gone (removed from the list, or
//! refusing connections) is answered `session host gone` rather than sent to
//! a host that does not know it.
//!
//! [`route label`]: Host::route

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::HealthSettings;

/// Domain of the rendezvous weight.
const WEIGHT_DOMAIN: &[u8] = b"cloister-hrw-v1";
/// Domain of a host's route label.
const ROUTE_DOMAIN: &[u8] = b"cloister-route-v1";

/// The rendezvous (highest-random-weight) weight of `host` for `session`:
/// the first 8 bytes of `SHA-256(domain || len(host) || host || session)`.
/// Stable across processes, replicas and compiler versions.
#[must_use]
pub fn weight(host: &str, session: &[u8]) -> u64 {
    let digest = Sha256::new()
        .chain_update(WEIGHT_DOMAIN)
        .chain_update((host.len() as u64).to_be_bytes())
        .chain_update(host.as_bytes())
        .chain_update(session)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `hosts` ordered by their weight for `session`, highest first (ties,
/// which SHA-256 makes unobservable, by URL).
pub fn rank<'a, H: AsRef<str>>(hosts: &'a [H], session: &[u8]) -> Vec<&'a H> {
    let mut ranked: Vec<(u64, &H)> = hosts
        .iter()
        .map(|h| (weight(h.as_ref(), session), h))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.as_ref().cmp(b.1.as_ref())));
    ranked.into_iter().map(|(_, h)| h).collect()
}

/// Why a host list was refused (the previous one stays in force).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HostListError {
    /// No host at all.
    #[error("the host list is empty")]
    Empty,
    /// An entry is not a base URL (`http://` or `https://`, a host, no
    /// path, query or fragment).
    #[error("{0:?} is not a host base URL (http[s]://host[:port])")]
    NotABaseUrl(String),
    /// The same host twice.
    #[error("{0} is listed twice")]
    Duplicate(String),
    /// A plain `http://` host that is not on loopback: the hop to a host
    /// must be HTTPS.
    #[error("{0}")]
    PlainHttp(String),
}

/// Checks `hosts` and returns them without trailing slashes.
///
/// # Errors
/// See [`HostListError`].
pub fn validate_hosts(hosts: &[String]) -> Result<Vec<String>, HostListError> {
    if hosts.is_empty() {
        return Err(HostListError::Empty);
    }
    let mut seen = HashSet::new();
    let mut valid = Vec::with_capacity(hosts.len());
    for entry in hosts {
        let bad = || HostListError::NotABaseUrl(entry.clone());
        let url = reqwest::Url::parse(entry).map_err(|_| bad())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !plain {
            return Err(bad());
        }
        cloister_tls::check_url("host URL", entry, cloister_tls::PlainHttp::Loopback)
            .map_err(|e| HostListError::PlainHttp(e.to_string()))?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        if !seen.insert(base.clone()) {
            return Err(HostListError::Duplicate(base));
        }
        valid.push(base);
    }
    Ok(valid)
}

/// One configured host: its URL, route label, health and counts.
#[derive(Debug)]
pub struct Host {
    url: String,
    route: String,
    healthy: AtomicBool,
    /// Consecutive probe results of the kind that would flip `healthy`.
    streak: AtomicU32,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl Host {
    fn new(url: String, healthy: bool) -> Self {
        let digest = Sha256::new()
            .chain_update(ROUTE_DOMAIN)
            .chain_update(url.as_bytes())
            .finalize();
        Self {
            route: hex::encode(&digest[..8]),
            url,
            healthy: AtomicBool::new(healthy),
            streak: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The base URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The opaque label clients send back in `cloister-route`: the first 8
    /// bytes of `SHA-256("cloister-route-v1" || url)`, in hex. It names the
    /// host to the gateway replicas and to nobody else.
    #[must_use]
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Whether new sessions may go here.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Requests forwarded here (including failed ones).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Forwarded requests that got no answer (connection refused, reset, timeout).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one probe result; the health flips after
    /// `settings.unhealthy_after` (or `healthy_after`) consecutive results
    /// that disagree with it. Returns the new health on a flip.
    pub(crate) fn probed(&self, ok: bool, settings: &HealthSettings) -> Option<bool> {
        if ok == self.is_healthy() {
            self.streak.store(0, Ordering::SeqCst);
            return None;
        }
        let threshold = if ok {
            settings.healthy_after
        } else {
            settings.unhealthy_after
        };
        let streak = self.streak.fetch_add(1, Ordering::SeqCst) + 1;
        if streak < threshold.max(1) {
            return None;
        }
        self.streak.store(0, Ordering::SeqCst);
        self.healthy.store(ok, Ordering::SeqCst);
        Some(ok)
    }

    /// A connection to the host was refused: no new session goes here
    /// until probes find it healthy again.
    pub(crate) fn mark_down(&self) -> bool {
        self.streak.store(0, Ordering::SeqCst);
        self.healthy.swap(false, Ordering::SeqCst)
    }
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostChange {
    /// Hosts now listed that were not (they get new sessions once a probe finds them healthy).
    pub added: Vec<String>,
    /// Hosts no longer listed (their sessions are answered `session host gone`).
    pub removed: Vec<String>,
    /// Hosts listed before and after (their health and sessions are kept).
    pub kept: usize,
}

impl HostChange {
    /// True if the list is the same.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl fmt::Display for HostChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "added {:?}, removed {:?}, kept {}",
            self.added, self.removed, self.kept
        )
    }
}

/// The configured hosts, replaced whole on reload.
#[derive(Debug)]
pub struct HostPool {
    hosts: RwLock<Arc<[Arc<Host>]>>,
}

impl HostPool {
    /// A pool of `hosts`, all taken as healthy until probes or refused
    /// connections say otherwise (so a gateway that restarts serves at
    /// once).
    ///
    /// # Errors
    /// See [`HostListError`].
    pub fn new(hosts: &[String]) -> Result<Self, HostListError> {
        let hosts = validate_hosts(hosts)?
            .into_iter()
            .map(|url| Arc::new(Host::new(url, true)))
            .collect();
        Ok(Self {
            hosts: RwLock::new(hosts),
        })
    }

    /// The hosts now configured.
    #[must_use]
    pub fn hosts(&self) -> Arc<[Arc<Host>]> {
        Arc::clone(&self.hosts.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the host list with `hosts`. Hosts in both lists keep their
    /// health and counts; added hosts get no new session until a probe
    /// finds them healthy.
    ///
    /// # Errors
    /// See [`HostListError`]; the current list then stays.
    pub fn replace(&self, hosts: &[String]) -> Result<HostChange, HostListError> {
        let urls = validate_hosts(hosts)?;
        let mut current = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        let mut change = HostChange::default();
        let next: Arc<[Arc<Host>]> = urls
            .iter()
            .map(|url| match current.iter().find(|h| h.url == *url) {
                Some(kept) => {
                    change.kept += 1;
                    Arc::clone(kept)
                }
                None => {
                    change.added.push(url.clone());
                    Arc::new(Host::new(url.clone(), false))
                }
            })
            .collect();
        change.removed = current
            .iter()
            .filter(|h| !urls.contains(&h.url))
            .map(|h| h.url.clone())
            .collect();
        *current = next;
        Ok(change)
    }

    /// Where a new session `session` may go, best first: the healthy hosts
    /// by rendezvous weight. With no healthy host at all, every host in the
    /// same order (probes may be wrong; a dead host then fails fast).
    #[must_use]
    pub fn candidates(&self, session: &[u8]) -> Vec<Arc<Host>> {
        let hosts = self.hosts();
        let healthy: Vec<&Arc<Host>> = hosts.iter().filter(|h| h.is_healthy()).collect();
        let pool: Vec<&Arc<Host>> = if healthy.is_empty() {
            hosts.iter().collect()
        } else {
            healthy
        };
        let urls: Vec<&str> = pool.iter().map(|h| h.url.as_str()).collect();
        rank(&urls, session)
            .into_iter()
            .filter_map(|url| pool.iter().find(|h| h.url == *url).map(|h| Arc::clone(h)))
            .collect()
    }

    /// The host whose route label is `route`, if it is still configured.
    #[must_use]
    pub fn by_route(&self, route: &[u8]) -> Option<Arc<Host>> {
        self.hosts()
            .iter()
            .find(|h| h.route.as_bytes() == route)
            .map(Arc::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("https://10.0.0.{i}:7500")).collect()
    }

    fn owner(hosts: &[String], session: &str) -> String {
        rank(hosts, session.as_bytes())[0].clone()
    }

    const SESSIONS: usize = 5000;

    fn session(i: usize) -> String {
        format!("{i:032x}")
    }

    #[test]
    fn the_weight_is_a_fixed_function_of_host_and_session() {
        // Pinned: a different hash (or a hash that changes between Rust
        // versions) would move every session when replicas are upgraded.
        assert_eq!(
            weight("http://10.0.0.1:7500", b"00000000000000000000000000000001"),
            weight("http://10.0.0.1:7500", b"00000000000000000000000000000001"),
        );
        let digest = Sha256::new()
            .chain_update(b"cloister-hrw-v1")
            .chain_update(20u64.to_be_bytes())
            .chain_update(b"http://10.0.0.1:7500")
            .chain_update(b"abc")
            .finalize();
        assert_eq!(
            weight("http://10.0.0.1:7500", b"abc").to_be_bytes(),
            digest[..8]
        );
        assert_ne!(weight("http://a:1", b"s"), weight("http://a:2", b"s"));
    }

    #[test]
    fn adding_a_host_moves_only_the_sessions_it_wins() {
        let before = urls(4);
        let mut after = before.clone();
        after.push("https://10.0.0.9:7500".into());
        let mut moved = 0;
        for i in 0..SESSIONS {
            let (old, new) = (owner(&before, &session(i)), owner(&after, &session(i)));
            if old != new {
                assert_eq!(new, after[4], "session {i} moved between old hosts");
                moved += 1;
            }
        }
        // About a fifth of the sessions move, all to the new host.
        assert!(
            (SESSIONS / 7..SESSIONS / 3).contains(&moved),
            "{moved} moved"
        );
    }

    #[test]
    fn removing_a_host_moves_only_its_own_sessions_and_spreads_them() {
        let before = urls(5);
        let removed = before[2].clone();
        let after: Vec<String> = before.iter().filter(|h| **h != removed).cloned().collect();
        let mut landed = HashSet::new();
        for i in 0..SESSIONS {
            let (old, new) = (owner(&before, &session(i)), owner(&after, &session(i)));
            if old == removed {
                landed.insert(new);
            } else {
                assert_eq!(
                    old, new,
                    "session {i} was not on the removed host but moved"
                );
            }
        }
        assert_eq!(
            landed.len(),
            4,
            "the removed host's sessions spread over the rest"
        );
    }

    #[test]
    fn sessions_spread_evenly_and_order_does_not_matter() {
        let hosts = urls(3);
        let mut reversed = hosts.clone();
        reversed.reverse();
        let mut counts = [0usize; 3];
        for i in 0..SESSIONS {
            let o = owner(&hosts, &session(i));
            assert_eq!(o, owner(&reversed, &session(i)));
            let index = hosts.iter().position(|h| *h == o).expect("listed");
            counts[index] += 1;
        }
        for count in counts {
            assert!((SESSIONS / 4..SESSIONS / 2).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn host_lists_are_checked() {
        let ok = validate_hosts(&["http://127.0.0.1:7500/".into(), "https://h.example".into()]);
        assert_eq!(
            ok,
            Ok(vec![
                "http://127.0.0.1:7500".to_owned(),
                "https://h.example".to_owned()
            ])
        );
        assert_eq!(validate_hosts(&[]), Err(HostListError::Empty));
        for bad in [
            "127.0.0.1:7500",
            "ftp://h",
            "http://h/session",
            "http://h?x=1",
            "http://u@h",
            "",
        ] {
            assert!(
                matches!(
                    validate_hosts(&[bad.into()]),
                    Err(HostListError::NotABaseUrl(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            validate_hosts(&["https://h:1".into(), "https://h:1/".into()]),
            Err(HostListError::Duplicate("https://h:1".into()))
        );
        assert!(
            matches!(
                validate_hosts(&["http://h.example:7500".into()]),
                Err(HostListError::PlainHttp(_))
            ),
            "plain HTTP to a host beyond loopback"
        );
    }

    #[test]
    fn health_flips_only_after_the_threshold_and_new_sessions_avoid_unhealthy_hosts() {
        let pool = HostPool::new(&urls(3)).expect("pool");
        let hosts = pool.hosts();
        let sick = &hosts[0];
        let settings = HealthSettings {
            unhealthy_after: 2,
            healthy_after: 3,
            ..HealthSettings::default()
        };
        assert_eq!(
            sick.probed(false, &settings),
            None,
            "one failure is not enough"
        );
        assert_eq!(
            sick.probed(true, &settings),
            None,
            "a success resets the streak"
        );
        assert_eq!(sick.probed(false, &settings), None);
        assert_eq!(sick.probed(false, &settings), Some(false));
        for i in 0..200 {
            let chosen = &pool.candidates(session(i).as_bytes())[0];
            assert_ne!(chosen.url(), sick.url());
        }
        assert_eq!(sick.probed(true, &settings), None);
        assert_eq!(sick.probed(true, &settings), None);
        assert_eq!(sick.probed(true, &settings), Some(true));
        assert!(
            (0..200).any(|i| pool.candidates(session(i).as_bytes())[0].url() == sick.url()),
            "a recovered host gets new sessions again"
        );
        // With every host down, new sessions still try them all.
        for host in hosts.iter() {
            host.mark_down();
        }
        assert_eq!(pool.candidates(b"s").len(), 3);
    }

    #[test]
    fn a_reload_keeps_listed_hosts_and_their_health_and_adds_new_ones_unhealthy() {
        let pool = HostPool::new(&urls(3)).expect("pool");
        let before = pool.hosts();
        before[1].mark_down();
        let route_of_0 = before[0].route().to_owned();
        let mut next = urls(2);
        next.push("https://10.0.0.7:7500".into());
        let change = pool.replace(&next).expect("valid");
        assert_eq!(change.added, vec!["https://10.0.0.7:7500".to_owned()]);
        assert_eq!(change.removed, vec!["https://10.0.0.2:7500".to_owned()]);
        assert_eq!(change.kept, 2);
        let after = pool.hosts();
        assert!(Arc::ptr_eq(&before[0], &after[0]));
        assert!(!after[1].is_healthy(), "health survives the reload");
        assert!(
            !after[2].is_healthy(),
            "a new host waits for its first probe"
        );
        assert!(pool.by_route(route_of_0.as_bytes()).is_some());
        assert!(pool.by_route(before[2].route().as_bytes()).is_none());
        assert_eq!(pool.replace(&[]), Err(HostListError::Empty));
        assert_eq!(pool.hosts().len(), 3, "a bad list keeps the old one");
        assert!(pool.replace(&next).expect("same").is_empty());
    }
}
