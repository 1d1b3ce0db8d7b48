//! Every party's whole network surface, seen from outside: each binary
//! (`cloister-issuer`, `cloister-ledger`, `cloister-witness`,
//! `cloister-gateway`, `cloister-relay`, `cloister-host`) runs as its own process on loopback,
//! and the test compares what it exposes with what its documentation lists.
//!
//! * Sockets: every listening TCP socket, bound UDP socket and listening
//!   Unix socket the process holds (read from `/proc/<pid>/fd` and
//!   `/proc/<pid>/net/*`, no external tool) must be one of its configured
//!   listen addresses, and every configured address must be listening. The
//!   process must not have started any child process either.
//! * Documented routes: each answers its documented method with the
//!   documented status (its handler, not the router's 404 or 405).
//! * Everything else: common admin, debug, exec and upload paths, with every
//!   method, and every documented path with the methods it does not
//!   document, get 404 or 405 and an empty body.
//!
//! The binaries are the ones next to this test binary (`target/<profile>/`):
//! `cargo test --workspace` builds them; with `-p cloister-e2e` alone, build
//! them first (`cargo build --bins`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

/// How long a party may take to answer its first `/healthz` (the host
/// derives its simulated attestation chain at boot, slowly in debug builds).
const BOOT: Duration = Duration::from_secs(300);

/// Paths that a server exposing more than it should commonly answers.
const PROBED_PATHS: &[&str] = &[
    "/",
    "/admin",
    "/admin/",
    "/administrator",
    "/debug",
    "/debug/pprof",
    "/debug/pprof/profile",
    "/debug/vars",
    "/metrics/debug",
    "/healthz/debug",
    "/healthz/",
    "/metrics/",
    "//admin",
    "/exec",
    "/shell",
    "/cmd",
    "/eval",
    "/run",
    "/upload",
    "/uploads",
    "/files",
    "/console",
    "/actuator",
    "/actuator/env",
    "/actuator/health",
    "/.env",
    "/.git/config",
    "/config",
    "/configuration",
    "/env",
    "/server-status",
    "/server-info",
    "/status",
    "/health",
    "/v1/admin",
    "/v1/debug",
    "/v1/exec",
    "/api",
    "/api/v1",
    "/graphql",
    "/swagger",
    "/swagger-ui",
    "/swagger.json",
    "/openapi.json",
    "/docs",
    "/_internal",
    "/internal",
    "/login",
    "/token",
    "/keys",
    "/plugins",
    "/logs",
    "/trace",
    "/pprof",
    "/ws",
    "/websocket",
    "/session/debug",
    "/relay/admin",
    "/gateway/admin",
];

/// Every method a probe tries (HEAD is GET without a body, so it adds nothing).
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];

/// One documented route and the status its handler gives the test's request.
pub(crate) struct Route {
    method: &'static str,
    /// The path as requested (concrete, query included).
    path: String,
    status: u16,
}

fn route(method: &'static str, path: impl Into<String>, status: u16) -> Route {
    Route {
        method,
        path: path.into(),
        status,
    }
}

/// `routes` with the `GET /healthz` and `GET /metrics` that every party's
/// main listener documents.
fn observed(mut routes: Vec<Route>) -> Vec<Route> {
    routes.extend([route("GET", "/healthz", 200), route("GET", "/metrics", 200)]);
    routes
}

/// One listener of a party and the routes its documentation lists there.
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    pub(crate) routes: Vec<Route>,
}

/// A party's running process, killed when dropped.
pub(crate) struct Party {
    name: &'static str,
    pub(crate) child: Child,
    log: PathBuf,
    listeners: Vec<Listener>,
}

impl Drop for Party {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Party {
    /// Starts `name` with `config` written to a file and passed as
    /// `--config FILE` after the arguments `before` (a subcommand taking it).
    pub(crate) fn spawn(
        name: &'static str,
        dir: &Path,
        before: &[&str],
        config: &str,
        listeners: Vec<Listener>,
    ) -> Self {
        Self::spawn_in(name, dir, before, config, listeners, &[])
    }

    /// As [`Party::spawn`], with these environment variables set; its
    /// stdout and stderr both go to its log.
    pub(crate) fn spawn_in(
        name: &'static str,
        dir: &Path,
        before: &[&str],
        config: &str,
        listeners: Vec<Listener>,
        env: &[(&str, &Path)],
    ) -> Self {
        let config_file = dir.join(format!("{name}.toml"));
        std::fs::write(&config_file, config).unwrap_or_else(|e| panic!("{e}"));
        let log = dir.join(format!("{name}.log"));
        // Appended to: a party started again keeps its earlier lines.
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = stderr.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(binary(name))
            .args(before)
            .arg("--config")
            .arg(&config_file)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            name,
            child,
            log,
            listeners,
        }
    }

    /// Waits until every listener answers `/healthz`.
    pub(crate) async fn ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + BOOT;
        for addr in self.listeners.iter().map(|l| l.addr) {
            loop {
                if let Some(status) = self.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
                    panic!("{} exited ({status}):\n{}", self.name, self.log());
                }
                // Healthy, and the one listening there: another process
                // on the port would answer for it.
                let up = http
                    .get(format!("http://{addr}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
                    && listening_sockets(self.child.id()).contains(&addr.to_string());
                if up {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} not up on {addr}:\n{}",
                    self.name,
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What this party exposes beyond its documentation, one line each.
    async fn excess(&self, http: &reqwest::Client) -> Vec<String> {
        let name = self.name;
        let mut found = Vec::new();
        let pid = self.child.id();
        let configured: BTreeSet<String> =
            self.listeners.iter().map(|l| l.addr.to_string()).collect();
        let listening = listening_sockets(pid);
        for socket in listening.difference(&configured) {
            found.push(format!("{name}: undocumented listening socket {socket}"));
        }
        for addr in configured.difference(&listening) {
            found.push(format!(
                "{name}: configured address {addr} is not listening"
            ));
        }
        let children = child_processes(pid);
        if !children.is_empty() {
            found.push(format!("{name}: started child processes {children:?}"));
        }
        for listener in &self.listeners {
            let origin = format!("http://{}", listener.addr);
            for documented in &listener.routes {
                let (status, body) =
                    request(http, documented.method, &origin, &documented.path).await;
                if status.as_u16() != documented.status {
                    found.push(format!(
                        "{name}: {} {origin}{} answered {status} ({body:?}), documented {}",
                        documented.method, documented.path, documented.status
                    ));
                }
            }
            let documented_paths: BTreeSet<&str> =
                listener.routes.iter().map(|r| r.path.as_str()).collect();
            let probes = PROBED_PATHS
                .iter()
                .filter(|path| !documented_paths.contains(*path))
                .flat_map(|path| METHODS.iter().map(move |method| (*method, *path)))
                .chain(documented_paths.iter().flat_map(|path| {
                    METHODS
                        .iter()
                        .filter(|method| {
                            !listener
                                .routes
                                .iter()
                                .any(|r| r.path == *path && r.method == **method)
                        })
                        .map(move |method| (*method, *path))
                }));
            for (method, path) in probes {
                let (status, body) = request(http, method, &origin, path).await;
                let refused = matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                );
                if !refused || !body.is_empty() {
                    found.push(format!(
                        "{name}: {method} {origin}{path} answered {status} ({body:?})"
                    ));
                }
            }
        }
        found
    }
}

async fn request(
    http: &reqwest::Client,
    method: &str,
    origin: &str,
    path: &str,
) -> (StatusCode, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let response = http
        .request(method.clone(), format!("{origin}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {origin}{path}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    (status, body)
}

/// `target/<profile>`, the folder above this test binary's `deps/`.
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no target directory above {}", exe.display()))
        .to_owned()
}

/// The binary `name` beside this test binary (`target/<profile>/deps/it-…`).
pub(crate) fn binary(name: &str) -> PathBuf {
    let path = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the parties first (`cargo build --bins`)",
        path.display()
    );
    path
}

/// A loopback address for a party or a tap to listen on: free now, and
/// never handed out twice by this process.
///
/// The port lies below the kernel's ephemeral range, where `bind(…:0)` and
/// outgoing connections take theirs. A port merely seen free inside that
/// range can be taken by any other test before the party binds it, or while
/// the party is down for a restart; the party's health check then reaches
/// a stranger, and the client talks to another test's party.
pub(crate) fn free_addr() -> SocketAddr {
    const LOWEST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOWEST).max(1);
    // Test processes run one after another; the process id spreads any
    // that do not over the range.
    let offset = std::process::id().wrapping_mul(7_919);
    for _ in 0..span {
        let taken = NEXT.fetch_add(1, Ordering::Relaxed);
        let Ok(port) = u16::try_from(LOWEST + offset.wrapping_add(taken) % span) else {
            continue;
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port below {ephemeral}")
}

/// The socket inodes among `pid`'s open files.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap_or_else(|e| panic!("{e}"));
    dir.filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Every socket of `pid` that accepts traffic: listening TCP sockets and
/// bound UDP sockets as `ip:port`, listening Unix sockets as `unix:path`.
fn listening_sockets(pid: u32) -> BTreeSet<String> {
    let inodes = socket_inodes(pid);
    let mut found = BTreeSet::new();
    // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode.
    for (table, listening_state) in [("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let owned = inode
                .parse()
                .is_ok_and(|inode: u64| inodes.contains(&inode));
            if owned && *state == listening_state {
                found.insert(proc_net_addr(local));
            }
        }
    }
    // Columns: Num RefCount Protocol Flags Type St Inode [Path]; flag
    // 0x10000 (__SO_ACCEPTCON) marks a listening socket.
    let unix = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    for line in unix.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(flags), Some(inode)) = (fields.get(3), fields.get(6)) else {
            continue;
        };
        let owned = inode
            .parse()
            .is_ok_and(|inode: u64| inodes.contains(&inode));
        let accepts = u32::from_str_radix(flags, 16).is_ok_and(|flags| flags & 0x10000 != 0);
        if owned && accepts {
            found.insert(format!("unix:{}", fields.get(7).unwrap_or(&"(unnamed)")));
        }
    }
    found
}

/// A `/proc/net/{tcp,udp}[6]` address (`HEXIP:HEXPORT`, the address as
/// native-endian 32-bit words) as `ip:port`.
fn proc_net_addr(local: &str) -> String {
    let parsed = local.split_once(':').and_then(|(ip, port)| {
        let port = u16::from_str_radix(port, 16).ok()?;
        let mut bytes = Vec::new();
        for word in 0..ip.len() / 8 {
            let word = u32::from_str_radix(ip.get(word * 8..word * 8 + 8)?, 16).ok()?;
            bytes.extend(word.to_ne_bytes());
        }
        let ip = match <[u8; 4]>::try_from(bytes.as_slice()) {
            Ok(v4) => IpAddr::from(v4),
            Err(_) => IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        };
        Some(SocketAddr::new(ip, port).to_string())
    });
    parsed.unwrap_or_else(|| format!("unparsed {local}"))
}

/// The processes `pid`'s threads have started and that still run.
fn child_processes(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An HTTP client for the parties on loopback: no proxy, 30 s per request.
pub(crate) fn loopback_http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The tables of a test host's configuration that save work between hosts
/// (development only, as simulated attestation is): each plugin compiled
/// once per build into `target/wasmtime-cache`, and the simulated platform
/// derived once per machine.
pub(crate) fn shared_host_tables() -> String {
    format!(
        "[runtime]\ncompile-cache = {:?}\n\n[attestation.simulated]\ncache-dir = {:?}\n",
        crate::host_common::compile_cache(),
        crate::development::simulated_cache_dir(),
    )
}

/// The built plugins: `CLOISTER_PLUGIN_DIR`, else `target/plugins`.
pub(crate) fn plugin_dir() -> PathBuf {
    std::env::var_os("CLOISTER_PLUGIN_DIR")
        .map_or_else(|| repo_root().join("target/plugins"), PathBuf::from)
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every party started from its binary, each with the routes its
/// documentation lists: `issuer/README.md`, `ledger/README.md`,
/// `witness/README.md`, the relay's
/// and the gateway's crate documentation and example configurations, the
/// host's `[serve]` section of `cloister-host.example.toml`.
fn start_parties(dir: &Path) -> Vec<Party> {
    let [issuer, ledger, witness, gateway, gateway_keys, relay, host] =
        std::array::from_fn(|_| free_addr());
    let zeros = "0".repeat(64);
    let reviewers = repo_root().join("policies/ledger-reviewers.toml");
    let plugins = plugin_dir();
    let policies = repo_root().join("policies");
    let listener = |addr, routes| vec![Listener { addr, routes }];
    vec![
        Party::spawn(
            "cloister-issuer",
            dir,
            &[],
            &format!(
                "listen = \"{issuer}\"\nrequest_uri = \"http://{issuer}/token-request\"\n\
                 key_dir = \"issuer-keys\"\naccounts_file = \"issuer-accounts.toml\"\n"
            ),
            listener(
                issuer,
                observed(vec![
                    route("GET", "/.well-known/private-token-issuer-directory", 200),
                    // No content type: refused before any account check.
                    route("POST", "/token-request", 415),
                ]),
            ),
        ),
        Party::spawn(
            "cloister-ledger",
            dir,
            &["serve"],
            &format!(
                "listen = \"{ledger}\"\ndatabase = \"ledger.redb\"\nlog_key = \"ledger.key\"\n\
                 reviewers = {reviewers:?}\n"
            ),
            listener(
                ledger,
                observed(vec![
                    route("GET", "/v1/log-key", 200),
                    route("GET", "/v1/tree-head", 200),
                    route("GET", "/checkpoint", 200),
                    // The log is empty: no entry 0 and no leaf, but the
                    // empty tree is consistent with itself.
                    route("GET", "/v1/entries/0", 404),
                    route("GET", format!("/v1/entries/by-digest/{zeros}"), 200),
                    route("POST", "/v1/entries", 415),
                    route("GET", format!("/v1/proof/inclusion?leaf_hash={zeros}"), 404),
                    route("GET", "/v1/proof/consistency?first=0&second=0", 200),
                    // The empty tree has no tile yet.
                    route("GET", "/tile/0/000.p/1", 404),
                    route("GET", "/tile/entries/000.p/1", 404),
                    route("GET", "/v1/tile/entries/000.p/1", 404),
                ]),
            ),
        ),
        Party::spawn(
            "cloister-witness",
            dir,
            &["serve"],
            &format!(
                "listen = \"{witness}\"\ndatabase = \"witness.redb\"\nkey = \"witness.key\"\n"
            ),
            listener(
                witness,
                vec![
                    // No request: refused before any log is looked up.
                    route("POST", "/add-checkpoint", 400),
                    route("GET", "/healthz", 200),
                ],
            ),
        ),
        Party::spawn(
            "cloister-gateway",
            dir,
            &[],
            &format!(
                "listen = \"{gateway}\"\n\n[keys]\nfile = \"gateway-keys.json\"\n\
                 listen = \"{gateway_keys}\"\n\n[router]\nhosts = [\"http://{host}\"]\n"
            ),
            vec![
                Listener {
                    addr: gateway,
                    routes: observed(vec![
                        // Not message/ohttp-req: refused before decapsulation.
                        route("POST", "/gateway", 415),
                        route("GET", "/.well-known/ohttp-gateway", 200),
                    ]),
                },
                Listener {
                    addr: gateway_keys,
                    routes: vec![
                        route("GET", "/.well-known/ohttp-gateway", 200),
                        route("GET", "/healthz", 200),
                    ],
                },
            ],
        ),
        Party::spawn(
            "cloister-relay",
            dir,
            &[],
            &format!(
                "listen = \"{relay}\"\ngateway_url = \"http://{gateway}/gateway\"\n\
                 key_config_url = \"http://{gateway_keys}/.well-known/ohttp-gateway\"\n"
            ),
            listener(
                relay,
                observed(vec![
                    route("POST", "/relay", 415),
                    route("GET", "/.well-known/ohttp-gateway", 200),
                ]),
            ),
        ),
        Party::spawn(
            "cloister-host",
            dir,
            &["serve"],
            &format!(
                "plugin-dir = {plugins:?}\npolicy-dir = {policies:?}\n\n\
                 [inference]\nbackend = \"deterministic\"\n\n[serve]\nlisten = \"{host}\"\n\n{}",
                shared_host_tables(),
            ),
            listener(
                host,
                observed(vec![
                    // No session frame: refused by the session endpoint.
                    route("POST", "/session", 400),
                ]),
            ),
        ),
    ]
}

#[tokio::test]
async fn every_party_listens_only_where_documented() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let http = loopback_http();
    let mut parties = start_parties(dir.path());
    for party in &mut parties {
        party.ready(&http).await;
    }
    let mut excess = Vec::new();
    for party in &parties {
        excess.extend(party.excess(&http).await);
    }
    assert!(
        excess.is_empty(),
        "surface beyond the documentation:\n{}",
        excess.join("\n")
    );
}
