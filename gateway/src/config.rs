//! The gateway's TOML configuration. Every field has a default that works on
//! loopback; see `gateway.example.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use cloister_ohttp_keys::{AeadChoice, RotationPolicy};
use cloister_state_store::StateConfig;
use cloister_tls::TlsSettings;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address of the OHTTP endpoint (and, unless `keys.listen` is set, the key endpoint).
    pub listen: SocketAddr,
    /// Path that accepts `message/ohttp-req` POSTs.
    pub path: String,
    /// Largest encapsulated request accepted, in bytes (larger: 413). The
    /// default fits the largest padded request (a 64 KiB RA-TLS frame) with
    /// its TLS, Binary HTTP, token and OHTTP overhead.
    pub max_request_bytes: usize,
    /// Keys and their publication.
    pub keys: KeyConfigSettings,
    /// Replay defence.
    pub replay: ReplaySettings,
    /// Privacy Pass tokens.
    pub tokens: TokenSettings,
    /// Where inner requests go.
    pub router: RouterSettings,
    /// Where spent tokens and the replay guard's requests are kept: a redb
    /// file (default `gateway-state.redb`) for one gateway, or Redis shared
    /// by every replica.
    pub state: StateConfig,
    /// HTTPS: the certificate relays see, and the CA bundle that hosts',
    /// the issuer's and the ledger's certificates must chain to. Without
    /// `cert` and `key` the gateway serves plain HTTP on loopback only;
    /// without `ca` it reaches only loopback neighbours, over plain HTTP.
    pub tls: TlsSettings,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7200)),
            path: "/gateway".into(),
            max_request_bytes: 72 * 1024,
            keys: KeyConfigSettings::default(),
            replay: ReplaySettings::default(),
            tokens: TokenSettings::default(),
            router: RouterSettings::default(),
            state: StateConfig::redb("gateway-state.redb"),
            tls: TlsSettings::default(),
        }
    }
}

/// Key generation, rotation, persistence and publication.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfigSettings {
    /// Key file; created on first start, reused afterwards. Unset: keys live
    /// in memory and are new on every start (clients must refetch).
    pub file: Option<PathBuf>,
    /// AEADs offered, in order of preference.
    pub aeads: Vec<AeadChoice>,
    /// Key lifetime before rotation, in seconds.
    pub rotate_every_secs: u64,
    /// How long a replaced key keeps working, in seconds.
    pub overlap_secs: u64,
    /// Upper bound of the advertised `max-age` of the key list, in seconds.
    pub max_cache_secs: u64,
    /// How often to check whether rotation is due, in seconds.
    pub check_every_secs: u64,
    /// A separate listener for the key configuration endpoint; unset:
    /// served on the main listener. Clients do not fetch it here: relays
    /// fetch it and serve their copy, so no client address reaches the
    /// gateway.
    pub listen: Option<SocketAddr>,
    /// Log each key in the transparency ledger before it is used (clients
    /// that trust a ledger use no other). Unset: keys rotate on schedule and
    /// someone else (a release) must log them.
    pub ledger: Option<cloister_ledger_verify::publish::PublisherSettings>,
}

impl Default for KeyConfigSettings {
    fn default() -> Self {
        Self {
            file: Some(PathBuf::from("gateway-keys.json")),
            aeads: vec![AeadChoice::Aes128Gcm, AeadChoice::Chacha20Poly1305],
            rotate_every_secs: 24 * 3600,
            overlap_secs: 3600,
            max_cache_secs: 3600,
            check_every_secs: 30,
            listen: None,
            ledger: None,
        }
    }
}

impl KeyConfigSettings {
    /// The rotation policy these settings describe.
    #[must_use]
    pub fn policy(&self) -> RotationPolicy {
        RotationPolicy {
            rotate_every: std::time::Duration::from_secs(self.rotate_every_secs),
            overlap: std::time::Duration::from_secs(self.overlap_secs),
        }
    }
}

/// Replay defence (see [`crate::ReplayGuard`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySettings {
    /// Accepted distance between the inner `Date` and the gateway clock, in seconds.
    pub window_secs: u64,
    /// Most requests remembered at once; beyond it new requests are refused
    /// (with Redis, its `maxmemory` bounds them instead).
    pub capacity: u64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            window_secs: 60,
            capacity: 1_000_000,
        }
    }
}

/// Token policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// Require a Privacy Pass token on every request. On by default: a
    /// gateway that serves without tokens lets anyone run the hosts and
    /// fill the replay store, so turning it off must be written down.
    pub require: bool,
    /// The Privacy Pass issuer whose tokens are redeemed. Without it no token
    /// can be checked, so `require = true` refuses every request.
    pub issuer: Option<IssuerSettings>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            require: true,
            issuer: None,
        }
    }
}

/// Where the gateway learns the issuer's keys and which challenge it accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The issuer's key directory (RFC 9578 §4).
    pub directory_url: String,
    /// The issuer name in accepted token challenges.
    pub issuer_name: String,
    /// The origin name in accepted token challenges (this gateway).
    pub origin: String,
    /// The issuer's key lifetime: a key's tokens are accepted this long after its not-before.
    #[serde(default = "IssuerSettings::default_lifetime")]
    pub key_lifetime_secs: u64,
    /// Most spent tokens remembered; past it every token is refused until
    /// keys expire (with Redis, its `maxmemory` bounds them instead).
    #[serde(default = "IssuerSettings::default_max_spent")]
    pub max_spent: u64,
    /// How often the directory is fetched again for rotated keys.
    #[serde(default = "IssuerSettings::default_refresh")]
    pub refresh_secs: u64,
}

impl IssuerSettings {
    fn default_lifetime() -> u64 {
        7 * 24 * 3600
    }
    fn default_max_spent() -> u64 {
        1_000_000
    }
    fn default_refresh() -> u64 {
        300
    }
}

/// The router to the hosts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterSettings {
    /// Host base URLs (`http[s]://host[:port]`). A new session goes to the
    /// healthy host of highest rendezvous weight for its id and stays there.
    /// Re-read on SIGHUP.
    pub hosts: Vec<String>,
    /// Time allowed for a host to answer, in seconds.
    ///
    /// A feature request is one OHTTP round trip that lasts as long as the
    /// plugin's inference, so this outlasts the largest wall-time budget of
    /// the shipped plugin manifests (`time-ms` in `policies/plugins/*.toml`:
    /// 60 s) plus the host's own work on the request (RA-TLS records,
    /// instantiation: seconds on a loaded CPU). A slow request then fails
    /// with the host's budget error, which names the limit, not with this
    /// gateway's 504; the relay's timeout in turn outlasts this one.
    pub timeout_secs: u64,
    /// Largest host response forwarded, in bytes.
    pub max_response_bytes: usize,
    /// Time allowed to open a connection to a host, in milliseconds: a host
    /// that does not accept in time is taken as gone.
    pub connect_timeout_ms: u64,
    /// How the hosts are probed.
    pub health: HealthSettings,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            hosts: vec!["http://127.0.0.1:7500".into()],
            timeout_secs: 75,
            max_response_bytes: 1024 * 1024,
            connect_timeout_ms: 3000,
            health: HealthSettings::default(),
        }
    }
}

/// Health checks: `GET /healthz` on every host, answered `200` with
/// `"status": "ok"` by a serving host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// Time between probes of a host, in milliseconds.
    pub every_ms: u64,
    /// Time a probe may take, in milliseconds.
    pub timeout_ms: u64,
    /// Consecutive failed probes that take a healthy host out of the
    /// placement of new sessions.
    pub unhealthy_after: u32,
    /// Consecutive good probes that put it back.
    pub healthy_after: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            every_ms: 2000,
            timeout_ms: 1000,
            unhealthy_after: 2,
            healthy_after: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    /// The part of a plugin manifest (`policies/plugins/*.toml`) that bounds
    /// how long a host works on one request.
    #[derive(Deserialize)]
    struct Manifest {
        limits: ManifestLimits,
    }

    #[derive(Deserialize)]
    struct ManifestLimits {
        #[serde(rename = "time-ms")]
        time_ms: u64,
    }

    /// The largest wall-time budget of the plugin manifests the host ships with.
    fn largest_plugin_wall_time() -> Duration {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/plugins");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut budgets = Vec::new();
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let manifest: Manifest =
                    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                budgets.push(Duration::from_millis(manifest.limits.time_ms));
            }
        }
        budgets
            .into_iter()
            .max()
            .unwrap_or_else(|| panic!("no plugin manifests in {}", dir.display()))
    }

    #[test]
    fn the_router_outwaits_the_largest_plugin_budget_and_the_hosts_own_work() {
        // What the host does around the plugin (RA-TLS, instantiation) on a loaded CPU.
        const HOST_WORK: Duration = Duration::from_secs(10);
        let budget = largest_plugin_wall_time();
        let router = Duration::from_secs(RouterSettings::default().timeout_secs);
        assert!(
            router >= budget + HOST_WORK,
            "the router gives a host {router:?}, but a plugin may run {budget:?} and the host needs {HOST_WORK:?} more"
        );
    }

    #[tokio::test]
    async fn the_gateway_requires_tokens_by_default() {
        use crate::token::{NoRedeemer, TokenRedeemer, TokenRejection};
        let example: GatewayConfig =
            toml::from_str(include_str!("../gateway.example.toml")).expect("example parses");
        for config in [
            GatewayConfig::default(),
            toml::from_str("").expect("empty file"),
            toml::from_str("[tokens]\n").expect("empty [tokens]"),
            example,
        ] {
            assert!(config.tokens.require);
            // What the binary runs without a [tokens.issuer]: tokenless requests refused.
            let redeemer = NoRedeemer {
                require_tokens: config.tokens.require,
            };
            assert_eq!(redeemer.redeem(None).await, Err(TokenRejection::Missing));
        }
        let open: GatewayConfig = toml::from_str("[tokens]\nrequire = false\n").expect("parses");
        assert!(!open.tokens.require, "turned off only when written down");
    }

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../gateway.example.toml");
        let parsed: GatewayConfig = toml::from_str(text).expect("example parses");
        let default = GatewayConfig::default();
        assert_eq!(parsed.listen, default.listen);
        assert_eq!(parsed.keys.aeads, default.keys.aeads);
        assert_eq!(parsed.keys.policy(), default.keys.policy());
        assert_eq!(parsed.router.hosts, default.router.hosts);
        assert_eq!(parsed.router.timeout_secs, default.router.timeout_secs);
        assert_eq!(parsed.state, default.state);
        let shared: GatewayConfig = toml::from_str(
            "[state]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nprefix = \"gw:\"\n",
        )
        .expect("redis state parses");
        assert!(matches!(shared.state, StateConfig::Redis { .. }));
        assert_eq!(
            parsed.router.connect_timeout_ms,
            default.router.connect_timeout_ms
        );
        assert_eq!(parsed.router.health, default.router.health);
        assert!(
            toml::from_str::<GatewayConfig>("typo = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
