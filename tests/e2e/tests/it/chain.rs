//! The whole six-phase chain, every party its own process as a deployment
//! runs it: two witnesses and the ledger (throwaway demo reviewers made by
//! `cloister-release demo-reviewers`), the Privacy Pass issuer, the gateway
//! (tokens required, its OHTTP keys logged in the ledger), the relay, this
//! tree's release signed by 2 of 3 reviewers and logged, and the host
//! (SIMULATED attestation on the public development platform). The client is
//! the `cloister` binary, run as a process per command.
//!
//! Every party listens on a free loopback port in the parties' declared
//! plain-HTTP loopback mode (no `[tls]`), and every one but the witnesses is
//! reached through a [`Tap`]: a TCP proxy recording each byte both ways, so
//! a test sees what the relay, the gateway and the host's network receive
//! and send. Each party runs in its own directory under one run directory,
//! with `HOME` and `TMPDIR` inside it, its stdout and stderr in
//! `<party>.log` there.
//!
//! Like `surface.rs`, this needs the binaries beside the test binary
//! (`cargo build --bins`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::demo_ledger::DemoLedger;
use crate::surface::{
    Listener, Party, binary, free_addr, loopback_http, plugin_dir, repo_root, shared_host_tables,
};

/// The demo ledger's origin, pinned by the witnesses and the client.
const ORIGIN: &str = "e2e.cloister.localhost/ledger";

/// Longest any one `cloister` command may take (it derives the simulated
/// AMD chain at start, slowly in debug builds).
pub(crate) const COMMAND: Duration = Duration::from_secs(240);

/// Which engine the host runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// SmolLM2 from `target/models` (`inference/fetch-model.sh`).
    Model,
    /// The deterministic stand-in of `cloister-inference`.
    Deterministic,
}

/// How a test wants the chain set up; [`Options::new`] gives the
/// parties' defaults.
pub(crate) struct Options {
    pub(crate) engine: Engine,
    /// Tokens fetched into the wallet at the start.
    pub(crate) tokens: usize,
    /// Top-level keys added to the client's configuration.
    pub(crate) client: String,
    /// Keys added to the relay's configuration.
    pub(crate) relay: String,
    /// Tables added to the issuer's configuration.
    pub(crate) issuer: String,
    /// Keys added to the gateway's `[router]` table.
    pub(crate) router: String,
    /// The host reads copies of the plugins and policies in its own
    /// directory (`host/plugins`, `host/policies`), for a test to change.
    pub(crate) own_host_files: bool,
    /// The tree whose policies the host loads and the release logs.
    pub(crate) root: PathBuf,
    /// Where the host and the release find the built components.
    pub(crate) plugins: PathBuf,
}

impl Options {
    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            engine,
            tokens: 10,
            client: String::new(),
            relay: String::new(),
            issuer: String::new(),
            router: String::new(),
            own_host_files: false,
            root: repo_root(),
            plugins: plugin_dir(),
        }
    }
}

/// The bytes of one direction of one connection, as they pass.
type Recording = Arc<Mutex<Vec<u8>>>;

/// A recording TCP proxy on a free loopback port in front of `upstream`:
/// every connection is forwarded as is, each direction's bytes kept.
pub(crate) struct Tap {
    pub(crate) addr: SocketAddr,
    upstream: SocketAddr,
    streams: Arc<Mutex<Vec<Recording>>>,
    /// Extra delay before each answer chunk is passed back (a slow peer).
    delay: Arc<Mutex<Duration>>,
    accepting: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Tap {
    /// A tap in front of `upstream`, on a port of its own that stays its
    /// own while it is stopped (see [`free_addr`]).
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let addr = free_addr();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("tap on {addr}: {e}"));
        let tap = Self {
            addr,
            upstream,
            streams: Arc::new(Mutex::new(Vec::new())),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
            accepting: Mutex::new(None),
        };
        tap.accept(listener);
        tap
    }

    fn accept(&self, listener: tokio::net::TcpListener) {
        let (recorded, delayed) = (Arc::clone(&self.streams), Arc::clone(&self.delay));
        let upstream = self.upstream;
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (from_client, to_client) = inbound.into_split();
                let (from_server, to_server) = outbound.into_split();
                let no_delay = Arc::new(Mutex::new(Duration::ZERO));
                for (from, to, wait) in [
                    (from_client, to_server, no_delay),
                    (from_server, to_client, Arc::clone(&delayed)),
                ] {
                    let stream = Arc::new(Mutex::new(Vec::new()));
                    lock(&recorded).push(Arc::clone(&stream));
                    tokio::spawn(copy(from, to, stream, wait));
                }
            }
        });
        *lock(&self.accepting) = Some(task.abort_handle());
    }

    /// Stops listening: connections to the address are refused, as they
    /// are when the party behind it is down.
    pub(crate) fn stop(&self) {
        if let Some(task) = lock(&self.accepting).take() {
            task.abort();
        }
    }

    /// Listens on the same address again.
    pub(crate) async fn resume(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if std::time::Instant::now() > deadline => panic!("{}: {e}", self.addr),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        self.accept(listener);
    }

    /// Each connection's bytes, one direction per entry.
    pub(crate) fn recorded(&self) -> Vec<Vec<u8>> {
        lock(&self.streams)
            .iter()
            .map(|s| lock(s).clone())
            .collect()
    }

    /// Holds every later answer back by `delay` first.
    pub(crate) fn delay_answers(&self, delay: Duration) {
        *lock(&self.delay) = delay;
    }
}

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stream: Recording,
    delay: Arc<Mutex<Duration>>,
) {
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        lock(&stream).extend_from_slice(chunk);
        let wait = *lock(&delay);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn lock<X>(mutex: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running chain.
pub(crate) struct Chain {
    /// The run directory: every party's directory, the client's state and
    /// every `HOME` and `TMPDIR` given out are under it.
    pub(crate) dir: tempfile::TempDir,
    /// Every party, by name (`witness-1`, `ledger`, `issuer`, `gateway`,
    /// `relay`, `host`).
    pub(crate) parties: Vec<(&'static str, Party)>,
    /// The proxies in front of the relay, gateway, host, issuer and ledger.
    pub(crate) relay_tap: Tap,
    pub(crate) gateway_tap: Tap,
    pub(crate) host_tap: Tap,
    pub(crate) issuer_tap: Tap,
    pub(crate) ledger_tap: Tap,
    /// Where the gateway listens (behind its tap).
    pub(crate) gateway_addr: SocketAddr,
    /// The `cloister` configuration of the client's account.
    pub(crate) client_config: PathBuf,
    /// How to start each party again: binary, arguments before `--config`, address.
    started: Vec<(&'static str, &'static str, Vec<String>, SocketAddr)>,
    /// Every command run and party started, as its binary's name and arguments.
    pub(crate) ran: Mutex<Vec<Vec<String>>>,
}

impl Chain {
    /// Starts every party and the release, creates the client's account
    /// and fills its wallet with `options.tokens` tokens.
    pub(crate) async fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().to_path_buf();
        let [witness_1, witness_2, ledger, issuer, gateway, relay, host]: [SocketAddr; 7] =
            std::array::from_fn(|_| free_addr());
        let ledger_tap = Tap::start(ledger).await;
        let issuer_tap = Tap::start(issuer).await;
        let gateway_tap = Tap::start(gateway).await;
        let relay_tap = Tap::start(relay).await;
        let host_tap = Tap::start(host).await;
        let http = loopback_http();
        let mut chain = Self {
            parties: Vec::new(),
            relay_tap,
            gateway_tap,
            host_tap,
            issuer_tap,
            ledger_tap,
            gateway_addr: gateway,
            client_config: root.join("client/cloister.toml"),
            started: Vec::new(),
            ran: Mutex::new(Vec::new()),
            dir,
        };

        // Phase 0: ledger and witnesses.
        let made = chain.output(
            Command::new(binary("cloister-release"))
                .args(["demo-reviewers", "--json", "--dir"])
                .arg(root.join("ledger")),
        );
        let demo: DemoLedger =
            serde_json::from_slice(&made.stdout).unwrap_or_else(|e| panic!("{e}"));
        let log_vkey = demo
            .log_vkey(ORIGIN)
            .unwrap_or_else(|| panic!("the log's key is not an Ed25519 key"));
        let ledger_config = std::fs::read_to_string(&demo.config_path)
            .unwrap_or_else(|e| panic!("{e}"))
            .replace("127.0.0.1:7400", &ledger.to_string());
        let mut ledger_config = format!("{ledger_config}origin = {ORIGIN:?}\n");
        let mut pinned = String::new();
        for (party, addr) in [("witness-1", witness_1), ("witness-2", witness_2)] {
            let name = format!("{party}.cloister.localhost");
            let config = format!(
                "listen = \"{addr}\"\ndatabase = \"witness.redb\"\nkey = \"witness.key\"\n\
                 name = {name:?}\n\n[[log]]\norigin = {ORIGIN:?}\nvkey = \"{log_vkey}\"\n"
            );
            let witness_dir = chain.party_dir(party);
            let config_file = witness_dir.join("cloister-witness.toml");
            std::fs::write(&config_file, &config).unwrap_or_else(|e| panic!("{e}"));
            let printed = chain.output(
                Command::new(binary("cloister-witness"))
                    .current_dir(&witness_dir)
                    .args(["vkey", "--config"])
                    .arg(&config_file),
            );
            let vkey = String::from_utf8_lossy(&printed.stdout).trim().to_owned();
            ledger_config.push_str(&format!(
                "\n[[witness]]\nurl = \"http://{addr}\"\nname = {name:?}\nvkey = {vkey:?}\n"
            ));
            pinned.push_str(&format!(
                "\n[[trust.witness]]\nname = {name:?}\nvkey = {vkey:?}\n"
            ));
            chain
                .spawn(party, "cloister-witness", &["serve"], &config, addr, &http)
                .await;
        }
        chain
            .spawn(
                "ledger",
                "cloister-ledger",
                &["serve"],
                &ledger_config,
                ledger,
                &http,
            )
            .await;

        // The client's account, known to the issuer.
        let client_dir = root.join("client");
        std::fs::create_dir_all(&client_dir).unwrap_or_else(|e| panic!("{e}"));
        with_simulated_root(&client_dir.join("state"));
        let client_config = format!(
            "demo = true\nstate_dir = {state:?}\naccount_file = {account:?}\n{extra}\n\
             [network]\nrelay_url = \"http://{relay_tap}/relay\"\n\
             key_config_url = \"http://{relay_tap}/.well-known/ohttp-gateway\"\n\n\
             [tokens]\nissuer_url = \"http://{issuer_tap}\"\n\n\
             [attestation]\npolicy_file = {policy:?}\n\n\
             [trust]\nauthority = \"ledger\"\nledger_url = \"http://{ledger_tap}\"\n\
             ledger_log_key = \"{log_key}\"\nledger_origin = {ORIGIN:?}\n\
             reviewer_policy_file = {reviewers:?}\nwitness_threshold = 2\n{pinned}",
            state = client_dir.join("state").display().to_string(),
            account = client_dir.join("account.toml").display().to_string(),
            relay_tap = chain.relay_tap.addr,
            issuer_tap = chain.issuer_tap.addr,
            ledger_tap = chain.ledger_tap.addr,
            policy = repo_root()
                .join("policies/attestation-simulated.toml")
                .display()
                .to_string(),
            log_key = demo.log_public_key,
            reviewers = demo.policy_path.display().to_string(),
            extra = options.client,
        );
        std::fs::write(&chain.client_config, client_config).unwrap_or_else(|e| panic!("{e}"));
        let account = chain
            .cloister(&["--json", "account", "new", "--id", "e2e-user"])
            .await;
        let created: serde_json::Value =
            serde_json::from_slice(&account.stdout).unwrap_or_else(|e| panic!("{e}"));
        let issuer_dir = chain.party_dir("issuer");
        std::fs::write(
            issuer_dir.join("accounts.toml"),
            created["issuer_entry"].as_str().unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));

        // Phase 1's issuer, then the gateway (tokens required) and the relay.
        let ledger_tap = chain.ledger_tap.addr;
        chain
            .spawn(
                "issuer",
                "cloister-issuer",
                &[],
                &format!(
                    "listen = \"{issuer}\"\nkey_dir = \"keys\"\naccounts_file = \"accounts.toml\"\n\
                     request_uri = \"http://{}/token-request\"\n{}\n\
                     [state]\nbackend = \"redb\"\npath = \"state.redb\"\n{}",
                    chain.issuer_tap.addr,
                    demo.key_publishing(
                        &format!("http://{ledger_tap}"),
                        &demo.issuer_publisher_key,
                        "demo-issuer"
                    ),
                    options.issuer,
                ),
                issuer,
                &http,
            )
            .await;
        let gateway_config = chain.gateway_config(&demo, &options.router);
        chain
            .spawn(
                "gateway",
                "cloister-gateway",
                &[],
                &gateway_config,
                gateway,
                &http,
            )
            .await;
        let gateway_tap = chain.gateway_tap.addr;
        chain
            .spawn(
                "relay",
                "cloister-relay",
                &[],
                &format!(
                    "listen = \"{relay}\"\ngateway_url = \"http://{gateway_tap}/gateway\"\n\
                     key_config_url = \"http://{gateway_tap}/.well-known/ohttp-gateway\"\n{}",
                    options.relay
                ),
                relay,
                &http,
            )
            .await;

        // The host's launch, measured with its configuration, released.
        let host_dir = chain.party_dir("host");
        let (plugins, policies) = if options.own_host_files {
            let (plugins, policies) = (host_dir.join("plugins"), host_dir.join("policies"));
            copy_dir(&options.plugins, &plugins);
            copy_dir(&options.root.join("policies"), &policies);
            (plugins, policies)
        } else {
            (options.plugins.clone(), options.root.join("policies"))
        };
        let backend = match options.engine {
            Engine::Model => "candle",
            Engine::Deterministic => "deterministic",
        };
        let host_config = format!(
            "plugin-dir = {:?}\npolicy-dir = {:?}\n\n\
             [inference]\nbackend = \"{backend}\"\n\n[inference.candle]\nmodel_dir = {:?}\n\n\
             [serve]\nlisten = \"{host}\"\n\n{}",
            plugins,
            policies,
            repo_root().join("target/models"),
            shared_host_tables(),
        );
        let host_config_file = host_dir.join("cloister-host.toml");
        std::fs::write(&host_config_file, &host_config).unwrap_or_else(|e| panic!("{e}"));
        let measured = chain.output(
            Command::new(binary("cloister-host"))
                .current_dir(&host_dir)
                .arg("--config")
                .arg(&host_config_file)
                .arg("measure"),
        );
        let measure_json = host_dir.join("measure.json");
        std::fs::write(&measure_json, &measured.stdout).unwrap_or_else(|e| panic!("{e}"));
        let mut release = Command::new(binary("cloister-release"));
        release
            .current_dir(root.join("ledger"))
            .arg("submit")
            .arg("--root")
            .arg(&options.root)
            .arg("--plugin-dir")
            .arg(&options.plugins)
            .arg("--measure-json")
            .arg(&measure_json)
            .args(["--source-commit", "e2e", "--builder", "e2e"])
            .args(["--ledger", &format!("http://{ledger_tap}")])
            .args([
                "--ohttp-keys",
                &format!("http://{gateway_tap}/.well-known/ohttp-gateway"),
                "--issuer-directory",
                &format!(
                    "http://{}/.well-known/private-token-issuer-directory",
                    chain.issuer_tap.addr
                ),
                "--log-key",
                &demo.log_public_key,
            ]);
        for key in demo.reviewer_keys.iter().take(2) {
            release.arg("--reviewer-key").arg(key);
        }
        chain.output(&mut release);
        chain
            .spawn(
                "host",
                "cloister-host",
                &["serve"],
                &host_config,
                host,
                &http,
            )
            .await;

        // Phase 1: tokens into the wallet.
        chain
            .cloister(&["tokens", "fetch", "--count", &options.tokens.to_string()])
            .await;
        chain
    }

    /// The gateway's configuration: tokens required from the issuer, keys
    /// logged in the ledger, sessions forwarded to the host's tap.
    fn gateway_config(&self, demo: &DemoLedger, router: &str) -> String {
        format!(
            "listen = \"{}\"\n\n[keys]\nfile = \"keys.json\"\n{}\n\
             [tokens]\nrequire = true\n\n[tokens.issuer]\n\
             directory_url = \"http://{}/.well-known/private-token-issuer-directory\"\n\
             issuer_name = \"issuer.cloister.localhost\"\norigin = \"gateway.cloister.localhost\"\n\n\
             [router]\nhosts = [\"http://{}\"]\n{router}\n\
             [state]\nbackend = \"redb\"\npath = \"state.redb\"\n",
            self.gateway_addr,
            demo.key_publishing(
                &format!("http://{}", self.ledger_tap.addr),
                &demo.gateway_publisher_key,
                "demo-gateway"
            ),
            self.issuer_tap.addr,
            self.host_tap.addr,
        )
    }

    /// `<run>/<party>`, created.
    fn party_dir(&self, party: &str) -> PathBuf {
        let dir = self.dir.path().join(party);
        std::fs::create_dir_all(dir.join("home")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(dir.join("tmp")).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    /// Starts `binary` as `party` in its own directory and waits until it is healthy.
    async fn spawn(
        &mut self,
        party: &'static str,
        binary: &'static str,
        before: &[&str],
        config: &str,
        addr: SocketAddr,
        http: &reqwest::Client,
    ) {
        let dir = self.party_dir(party);
        let mut argv = vec![binary.to_owned()];
        argv.extend(before.iter().map(|arg| (*arg).to_owned()));
        argv.extend(["--config".to_owned(), format!("{binary}.toml")]);
        lock(&self.ran).push(argv);
        let mut started = Party::spawn_in(
            binary,
            &dir,
            before,
            config,
            vec![Listener {
                addr,
                routes: Vec::new(),
            }],
            &[("HOME", &dir.join("home")), ("TMPDIR", &dir.join("tmp"))],
        );
        started.ready(http).await;
        self.parties.push((party, started));
        let before = before.iter().map(|arg| (*arg).to_owned()).collect();
        self.started.retain(|(name, ..)| *name != party);
        self.started.push((party, binary, before, addr));
    }

    /// Starts `party` again (after [`Chain::kill`]) with its configuration
    /// file as it is now, in its directory as it is now.
    pub(crate) async fn restart(&mut self, party: &'static str) {
        let (_, binary, before, addr) = self
            .started
            .iter()
            .find(|(name, ..)| *name == party)
            .cloned()
            .unwrap_or_else(|| panic!("{party} never started"));
        let dir = self.party_dir(party);
        let config = std::fs::read_to_string(dir.join(format!("{binary}.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
        self.parties.retain(|(name, _)| *name != party);
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        self.spawn(party, binary, &before, &config, addr, &loopback_http())
            .await;
        if let Some(tap) = self.tap(party) {
            tap.resume().await;
        }
    }

    /// The running party `name`.
    pub(crate) fn party(&mut self, name: &str) -> &mut Party {
        self.parties
            .iter_mut()
            .find(|(party, _)| *party == name)
            .map(|(_, party)| party)
            .unwrap_or_else(|| panic!("no party {name}"))
    }

    /// The tap in front of `party`, if it has one.
    fn tap(&self, party: &str) -> Option<&Tap> {
        match party {
            "relay" => Some(&self.relay_tap),
            "gateway" => Some(&self.gateway_tap),
            "host" => Some(&self.host_tap),
            "issuer" => Some(&self.issuer_tap),
            "ledger" => Some(&self.ledger_tap),
            _ => None,
        }
    }

    /// Kills `name` and waits for it to end; its address (its tap's)
    /// refuses connections from then on.
    pub(crate) fn kill(&mut self, name: &str) {
        if let Some(tap) = self.tap(name) {
            tap.stop();
        }
        let party = self.party(name);
        party.child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
        party.child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
    }

    /// Every party's log (stdout and stderr), by name.
    pub(crate) fn logs(&self) -> Vec<(&'static str, String)> {
        self.parties
            .iter()
            .map(|(name, party)| (*name, party.log()))
            .collect()
    }

    /// `command` run to its end within [`COMMAND`], which must succeed.
    fn output(&self, command: &mut Command) -> Output {
        self.record(command);
        let output = output_within(command, COMMAND);
        assert!(
            output.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// `cloister ARGS` with the client's configuration over the declared
    /// plain-HTTP loopback mode, which must succeed.
    pub(crate) async fn cloister(&self, args: &[&str]) -> Output {
        let output = self.try_cloister(args).await;
        assert!(
            output.status.success(),
            "cloister {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// `cloister ARGS` as [`Chain::cloister`], whatever its outcome.
    pub(crate) async fn try_cloister(&self, args: &[&str]) -> Output {
        let client = self.party_dir("client");
        let mut command = Command::new(binary("cloister"));
        command
            .current_dir(&client)
            .env("HOME", client.join("home"))
            .env("TMPDIR", client.join("tmp"))
            .arg("--config")
            .arg(&self.client_config)
            .arg("--insecure-plain-http")
            .args(args);
        self.record(&command);
        tokio::task::spawn_blocking(move || output_within(&mut command, COMMAND))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Chain {
    /// Keeps `command` in [`Chain::ran`]: its binary's file name, then its arguments.
    fn record(&self, command: &Command) {
        let program = Path::new(command.get_program())
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut argv = vec![program];
        argv.extend(
            command
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned()),
        );
        lock(&self.ran).push(argv);
    }
}

/// `command`'s output; panics if it does not end within `limit` (killing it).
pub(crate) fn output_within(command: &mut Command, limit: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{command:?}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{command:?} did not end within {limit:?}")
        }
    }
}

/// Puts the simulated development root, derived once per machine (two
/// RSA-4096 key generations, seconds) in the folder the hosts' simulated
/// platforms share, into a fresh client `state_dir`, where the client
/// finds it as if it had derived it on an earlier run.
pub(crate) fn with_simulated_root(state_dir: &Path) {
    let shared = crate::development::simulated_cache_dir();
    crate::development::development_root();
    std::fs::create_dir_all(state_dir).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(&shared).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("simulated-root-") && name.ends_with(".der") {
            std::fs::copy(&path, state_dir.join(path.file_name().unwrap_or_default()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Copies the files of `from` into `to`, recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
