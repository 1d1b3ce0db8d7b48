//! `cargo xtask demo`: one real summarisation and one real rewrite through
//! the whole six-phase chain, every party its own process on loopback.
//!
//! 1. two witnesses and the ledger (throwaway demo reviewers) start, the
//!    ledger sending each checkpoint to both for their cosignatures; the
//!    Privacy Pass issuer starts;
//! 2. the gateway (tokens required, OHTTP keys) and the relay start; the
//!    relay serves its own copy of the gateway's key configuration, which is
//!    where the client fetches it;
//! 3. this tree's release (plugins, policies, simulated CVM measurement, the
//!    gateway's key configuration) is signed by 2 of 3 demo reviewers and logged;
//! 4. the host serves RA-TLS with the real model (SIMULATED attestation);
//! 5. the `cloister` CLI (told it is a demo: the attestation is simulated)
//!    fetches tokens, syncs the ledger under the pinned demo reviewer
//!    policy, accepting only checkpoints both pinned witnesses cosigned, checks the key configuration and the host's evidence against
//!    it, and only then sends the conversation.
//!
//! Every hop between parties is HTTPS: the demo makes a THROWAWAY CA
//! (`target/demo/tls/ca.pem`, its key only in memory) that issues each
//! party a certificate for the loopback names, and every party and the
//! client trust that CA only.
//!
//! Everything lives under `target/demo/`; logs of each party are in
//! `target/demo/logs/`. The processes are stopped when the demo ends.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use cloister_tls::{DemoCa, TlsSettings, Trust};

use crate::demo_ledger::DemoLedger;
use crate::{cargo, fetch_model, plugins, run, stdout_of};

/// The binaries the chain needs, by package.
const BINARIES: &[(&str, &str)] = &[
    ("cloister-ledger-server", "cloister-ledger"),
    ("cloister-witness", "cloister-witness"),
    ("cloister-issuer", "cloister-issuer"),
    ("cloister-gateway", "cloister-gateway"),
    ("cloister-relay", "cloister-relay"),
    ("cloister-host-cli", "cloister-host"),
    ("cloister-cli", "cloister"),
    ("cloister-release", "cloister-release"),
];

/// The demo ledger's address, in every party's and the client's configuration.
const LEDGER_URL: &str = "https://127.0.0.1:7400";

/// The demo ledger's origin, set in its configuration and pinned by the witnesses and the client.
const ORIGIN: &str = "demo.cloister.localhost/ledger";

/// The demo's witnesses: party, witness name and address (the host has port 7500).
const WITNESSES: &[(&str, &str, &str)] = &[
    (
        "witness-1",
        "witness-1.cloister.localhost",
        "127.0.0.1:7600",
    ),
    (
        "witness-2",
        "witness-2.cloister.localhost",
        "127.0.0.1:7601",
    ),
];

/// The demo's inputs, answered by the summarise and suggest plugins.
pub(crate) const REQUESTS: &[(&str, &str)] = &[
    ("summarise", "plugins/summarise/testdata/team-lunch.json"),
    ("suggest", "plugins/suggest/testdata/running-late.json"),
];

/// Running parties; every one is killed when this is dropped.
struct Parties {
    children: Vec<(&'static str, Child)>,
    /// How each party was started, to start it again.
    launches: Vec<(&'static str, Launch)>,
    logs: PathBuf,
    /// The demo CA: each party's certificate, and what health checks trust.
    tls: DemoTls,
}

/// A party's command line, its working directory and where its health is polled.
#[derive(Clone)]
pub(crate) struct Launch {
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    dir: Option<PathBuf>,
    health: &'static str,
    /// How long it may take to become healthy.
    patience: Duration,
}

impl Launch {
    pub(crate) fn new(program: PathBuf, health: &'static str) -> Self {
        Self {
            program,
            args: Vec::new(),
            dir: None,
            health,
            // The host loads the model first.
            patience: Duration::from_secs(120),
        }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub(crate) fn args<I: AsRef<std::ffi::OsStr>>(self, args: impl IntoIterator<Item = I>) -> Self {
        args.into_iter().fold(self, Self::arg)
    }

    fn current_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Waits up to `patience` for it to become healthy.
    pub(crate) fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }
}

/// The throwaway demo CA and where its certificates go.
struct DemoTls {
    ca: DemoCa,
    dir: PathBuf,
    client: Arc<rustls::ClientConfig>,
}

impl DemoTls {
    fn new(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir)?;
        let ca = DemoCa::new("Cloister DEMO CA (throwaway)")?;
        let trust = Trust::from_ca_file(&ca.write_ca(&dir)?)?;
        let client = trust
            .client_config()
            .context("the demo CA is not trusted")?;
        Ok(Self { ca, dir, client })
    }

    /// A certificate for `party`, as the `[tls]` table of its configuration.
    fn table(&self, party: &str) -> Result<String> {
        Ok(tls_table(&self.ca.write_loopback(&self.dir, party)?))
    }

    /// The CA bundle every party and the client trust.
    fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

/// `[tls]` naming `settings`' files.
fn tls_table(settings: &TlsSettings) -> String {
    let path = |p: &Option<PathBuf>| p.as_deref().map(|p| p.display().to_string());
    format!(
        "\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
        path(&settings.cert).unwrap_or_default(),
        path(&settings.key).unwrap_or_default(),
        path(&settings.ca).unwrap_or_default(),
    )
}

impl Parties {
    /// Starts `name` and waits until it is healthy; its log is appended to
    /// `logs/<name>.log`.
    fn start(&mut self, name: &'static str, launch: Launch) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))?;
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(dir) = &launch.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let healthy = wait_healthy(name, &launch, &mut child, &self.logs, &self.tls.client);
        self.children.push((name, child));
        healthy?;
        println!("   {name} is up ({})", launch.health);
        self.launches.retain(|(party, _)| *party != name);
        self.launches.push((name, launch));
        Ok(())
    }
}

impl Drop for Parties {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `https://{health}/healthz` of `launch` until it answers 200, for
/// up to its patience; fails at once if it exits.
fn wait_healthy(
    name: &str,
    launch: &Launch,
    child: &mut Child,
    logs: &Path,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<()> {
    let log = logs.join(format!("{name}.log"));
    let deadline = Instant::now() + launch.patience;
    while Instant::now() < deadline {
        if health_ok(launch.health, tls) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{name} exited ({status}) before it was healthy; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!(
        "{name} did not become healthy at {} within {} s; see {}",
        launch.health,
        launch.patience.as_secs(),
        log.display()
    )
}

fn health_ok(address: &str, tls: &Arc<rustls::ClientConfig>) -> bool {
    let Ok(tcp) = TcpStream::connect(address) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(connection) = rustls::ClientConnection::new(
        Arc::clone(tls),
        rustls::pki_types::ServerName::from(std::net::Ipv4Addr::LOCALHOST),
    ) else {
        return false;
    };
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // A peer closing without close_notify ends the read with an error;
    // what arrived before it still counts.
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Starts the demo's witnesses of the demo ledger's log and names them in
/// the ledger's configuration; returns each one's name and vkey.
fn start_witnesses(
    parties: &mut Parties,
    demo: &Path,
    bin: &dyn Fn(&str) -> PathBuf,
    ledger: &DemoLedger,
) -> Result<Vec<(String, String)>> {
    let log_vkey = ledger
        .log_vkey(ORIGIN)
        .context("the demo ledger's public key is not an Ed25519 key")?;
    let mut pinned = Vec::new();
    // `demo-reviewers` writes top-level keys only: the origin can follow them.
    let mut ledger_config = fs::read_to_string(&ledger.config_path)
        .with_context(|| format!("reading {}", ledger.config_path.display()))?;
    ledger_config.push_str(&format!("origin = {ORIGIN:?}\n"));
    for &(party, name, address) in WITNESSES {
        let config = demo.join(format!("{party}.toml"));
        write(
            &config,
            &format!(
                "listen = {address:?}\ndatabase = {:?}\nkey = {:?}\nname = {name:?}\n\n\
                 [[log]]\norigin = {:?}\nvkey = \"{log_vkey}\"\n{}",
                demo.join(format!("{party}.redb")).display().to_string(),
                demo.join(format!("{party}.key")).display().to_string(),
                ORIGIN,
                parties.tls.table(party)?,
            ),
        )?;
        let printed = Command::new(bin("cloister-witness"))
            .args(["vkey", "--config"])
            .arg(&config)
            .stderr(Stdio::inherit())
            .output()
            .context("running `cloister-witness vkey`")?;
        if !printed.status.success() {
            bail!("cloister-witness vkey failed with {}", printed.status);
        }
        let vkey = String::from_utf8(printed.stdout)?.trim().to_owned();
        ledger_config.push_str(&format!(
            "\n[[witness]]\nurl = \"https://{address}\"\nname = {name:?}\nvkey = {vkey:?}\n"
        ));
        parties.start(
            party,
            Launch::new(bin("cloister-witness"), address)
                .args(["serve", "--config"])
                .arg(&config),
        )?;
        pinned.push((name.to_owned(), vkey));
    }
    ledger_config.push_str(&parties.tls.table("ledger")?);
    write(&ledger.config_path, &ledger_config)?;
    Ok(pinned)
}

/// Which engine the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// SmolLM2 from `target/models`, on the batching candle engine.
    Model,
    /// The deterministic stand-in of `cloister-inference` (answers at once).
    Deterministic,
}

/// Which feature host the chain's gateway forwards to.
pub(crate) enum HostSetup {
    /// `cloister-host` of the chain's binaries on loopback, over HTTPS,
    /// with this engine; the release names what it measures itself as.
    Local(Engine),
    /// A host started by the launch `start` makes from its outer hop's
    /// certificate and key (the boot check's guest under QEMU), at
    /// [`HOST`]; the release names the launch digests in `measured`.
    Guest {
        start: Box<dyn FnOnce(&TlsSettings) -> Launch>,
        measured: PathBuf,
    },
}

/// How [`Chain::start`] sets the chain up.
pub(crate) struct ChainOptions {
    /// Where everything of the run lives; cleared first.
    pub(crate) dir: PathBuf,
    /// Where the parties' binaries are ([`build`]).
    pub(crate) bin: PathBuf,
    /// The feature host.
    pub(crate) host: HostSetup,
    /// Tables added to the issuer's configuration.
    pub(crate) issuer: String,
}

/// The whole chain, every party its own process on its demo port, with
/// the client's configuration; every party is stopped when it is dropped.
pub(crate) struct Chain {
    parties: Parties,
    /// The `cloister` configuration of the demo account.
    pub(crate) client_config: PathBuf,
    /// The run's directory.
    pub(crate) dir: PathBuf,
    bin: PathBuf,
}

/// Where the gateway listens.
pub(crate) const GATEWAY: &str = "127.0.0.1:7200";

/// Where the feature host's session endpoint is.
pub(crate) const HOST: &str = "127.0.0.1:7500";

/// Builds the model, the plugins and the chain's binaries (and `extra`
/// packages) in the dev profile, or the release profile with `release`;
/// returns the directory of the binaries.
pub(crate) fn build(root: &Path, release: bool, extra: &[&str]) -> Result<PathBuf> {
    fetch_model(root)?;
    plugins::build_all(root)?;
    let mut build = cargo();
    build.current_dir(root).arg("build").arg("--quiet");
    if release {
        build.arg("--release");
    }
    for package in BINARIES
        .iter()
        .map(|(package, _)| *package)
        .chain(extra.iter().copied())
    {
        build.args(["-p", package]);
    }
    run(&mut build)?;
    Ok(target_dir(root).join(if release { "release" } else { "debug" }))
}

/// Runs the demo.
pub(crate) fn run_demo(root: &Path) -> Result<()> {
    println!("== build: model (PyPI), plugins (wasm components), the six parties");
    let bin = build(root, false, &[])?;
    let chain = Chain::start(
        root,
        ChainOptions {
            dir: root.join("target/demo"),
            bin,
            host: HostSetup::Local(Engine::Model),
            issuer: String::new(),
        },
    )?;
    println!("== phase 1: Privacy Pass tokens for the demo account");
    run(&mut chain.cloister(root, &["tokens", "fetch", "--count", "10"]))?;
    for (feature, input) in REQUESTS {
        println!("== phases 2-6: `cloister {feature} {input}`");
        run(&mut chain.cloister(root, &[feature, input]))?;
    }
    println!(
        "== done; each party's log is in {}",
        chain.parties.logs.display()
    );
    Ok(())
}

impl Chain {
    /// Starts every party, logs the release and creates the demo account
    /// (known to the issuer, its wallet empty).
    pub(crate) fn start(root: &Path, options: ChainOptions) -> Result<Self> {
        let bin = |name: &str| options.bin.join(name);
        let demo = options.dir.clone();
        // State from an earlier run (ledger, wallet, keys) would make this run
        // depend on it; the demo always starts from nothing.
        if demo.exists() {
            fs::remove_dir_all(&demo).with_context(|| format!("clearing {}", demo.display()))?;
        }
        let logs = demo.join("logs");
        fs::create_dir_all(&logs)?;
        let tls_dir = demo.join("tls");
        println!(
            "== TLS: a THROWAWAY demo CA ({}) issues each party a loopback certificate; every hop is HTTPS, trusting only that CA",
            tls_dir.join("ca.pem").display()
        );
        let mut parties = Parties {
            children: Vec::new(),
            launches: Vec::new(),
            logs,
            tls: DemoTls::new(tls_dir)?,
        };
        let ca = parties.tls.ca_path();

        println!("== phase 0: ledger with DEMO-ONLY reviewers; issuer with one demo account");
        let made = stdout_of(
            Command::new(bin("cloister-release"))
                .args(["demo-reviewers", "--json", "--dir"])
                .arg(&demo),
        )?;
        let ledger: DemoLedger = serde_json::from_slice(&made)
            .context("parsing `cloister-release demo-reviewers --json`")?;
        let witnesses = start_witnesses(&mut parties, &demo, &bin, &ledger)?;
        parties.start(
            "ledger",
            Launch::new(bin("cloister-ledger"), "127.0.0.1:7400")
                .args(["serve", "--config"])
                .arg(&ledger.config_path),
        )?;

        let client_dir = demo.join("client");
        let client_config = demo.join("cloister.toml");
        write(
            &client_config,
            &format!(
                "# DEMO: the simulated attestation policy below is not a release's.\n\
             demo = true\nstate_dir = {state:?}\naccount_file = {account:?}\n\n\
             [attestation]\n# SIMULATED evidence: the demo has no SEV-SNP hardware.\npolicy_file = {policy:?}\n\n\
             [trust]\nauthority = \"ledger\"\nledger_url = {ledger_url:?}\nledger_log_key = \"{log_key}\"\n\
             ledger_origin = {origin:?}\n\
             # The demo's own (throwaway) reviewers, pinned as a release's would be.\n\
             reviewer_policy_file = {reviewers:?}\n\
             # Both demo witnesses must cosign every checkpoint.\n\
             witness_threshold = 2\n{witnesses}\n\
             # HTTPS to relay, issuer and ledger, trusting only the demo CA.\n\
             [tls]\nca = {ca:?}\n",
                state = client_dir.display().to_string(),
                account = client_dir.join("account.toml").display().to_string(),
                policy = root
                    .join("policies/attestation-simulated.toml")
                    .display()
                    .to_string(),
                log_key = ledger.log_public_key,
                ledger_url = LEDGER_URL,
                origin = ORIGIN,
                reviewers = ledger.policy_path.display().to_string(),
                witnesses = witnesses
                    .iter()
                    .map(|(name, vkey)| format!(
                        "[[trust.witness]]\nname = {name:?}\nvkey = {vkey:?}\n"
                    ))
                    .collect::<String>(),
                ca = ca.display().to_string(),
            ),
        )?;
        let account = Command::new(bin("cloister"))
            .args(["--config"])
            .arg(&client_config)
            .args(["--json", "account", "new", "--id", "demo-user"])
            .output()
            .context("creating the demo account")?;
        if !account.status.success() {
            bail!(
                "cloister account new failed: {}",
                String::from_utf8_lossy(&account.stderr)
            );
        }
        let accounts = demo.join("issuer-accounts.toml");
        let created: serde_json::Value =
            serde_json::from_slice(&account.stdout).context("parsing `cloister account new`")?;
        let entry = created["issuer_entry"]
            .as_str()
            .context("`cloister account new` printed no issuer entry")?;
        write(&accounts, entry)?;
        let issuer_config = demo.join("issuer.toml");
        write(
            &issuer_config,
            &format!(
                "key_dir = {:?}\naccounts_file = {:?}\n\
             request_uri = \"https://127.0.0.1:7300/token-request\"\n{}{}\n\
             [state]\nbackend = \"redb\"\npath = {:?}\n{}",
                demo.join("issuer-keys").display().to_string(),
                accounts.display().to_string(),
                ledger.key_publishing(LEDGER_URL, &ledger.issuer_publisher_key, "demo-issuer"),
                parties.tls.table("issuer")?,
                demo.join("issuer-state.redb").display().to_string(),
                options.issuer,
            ),
        )?;
        parties.start(
            "issuer",
            Launch::new(bin("cloister-issuer"), "127.0.0.1:7300")
                .arg("--config")
                .arg(&issuer_config),
        )?;

        // The feature host: how it starts and the launch the release names.
        let (measured, host_launch, host_says) = match options.host {
            HostSetup::Local(engine) => {
                // Only `[tls]` beside the engine: the outer hop's certificate is not
                // part of the attested settings. The host measures its own launch with
                // this configuration, and that launch is what the release names.
                let host_config = demo.join("host.toml");
                let engine = match engine {
                    Engine::Model => "",
                    Engine::Deterministic => "[inference]\nbackend = \"deterministic\"\n",
                };
                // Plugins compiled once, not at every demo (development only: the
                // host refuses a compile cache with real attestation).
                let runtime = "[runtime]\ncompile-cache = \"target/wasmtime-cache\"\n";
                write(
                    &host_config,
                    &format!("{runtime}{engine}{}", parties.tls.table("host")?),
                )?;
                let measure_json = demo.join("host-measure.json");
                let measured = stdout_of(
                    Command::new(bin("cloister-host"))
                        .current_dir(root)
                        .arg("--config")
                        .arg(&host_config)
                        .arg("measure"),
                )?;
                fs::write(&measure_json, measured)?;
                let launch = Launch::new(bin("cloister-host"), HOST)
                    .current_dir(root)
                    .arg("--config")
                    .arg(&host_config)
                    .arg("serve");
                (measure_json, launch, "on loopback")
            }
            HostSetup::Guest { start, measured } => (
                measured,
                start(&parties.tls.ca.write_loopback(&parties.tls.dir, "host")?),
                "in its guest image under QEMU (no SEV-SNP here)",
            ),
        };

        println!("== phases 2-3: gateway (tokens required) and relay");
        let gateway_config = demo.join("gateway.toml");
        write(
            &gateway_config,
            &format!(
                "[keys]\nfile = {:?}\n{}\n[tokens]\nrequire = true\n\n[tokens.issuer]\n\
             directory_url = \"https://127.0.0.1:7300/.well-known/private-token-issuer-directory\"\n\
             issuer_name = \"issuer.cloister.localhost\"\norigin = \"gateway.cloister.localhost\"\n\n\
             [router]\nhosts = [\"https://{HOST}\"]\n{}\n\
             [state]\nbackend = \"redb\"\npath = {:?}\n",
                demo.join("gateway-keys.json").display().to_string(),
                ledger.key_publishing(LEDGER_URL, &ledger.gateway_publisher_key, "demo-gateway"),
                parties.tls.table("gateway")?,
                demo.join("gateway-state.redb").display().to_string(),
            ),
        )?;
        parties.start(
            "gateway",
            Launch::new(bin("cloister-gateway"), GATEWAY)
                .arg("--config")
                .arg(&gateway_config),
        )?;
        // Every hop's default timeout outlasts the plugins' wall-time budgets
        // (pinned by the relay's, gateway's and client's tests): no overrides.
        let relay_config = demo.join("relay.toml");
        write(
            &relay_config,
            &format!(
                "gateway_url = \"https://127.0.0.1:7200/gateway\"\n\
             key_config_url = \"https://127.0.0.1:7200/.well-known/ohttp-gateway\"\n{}",
                parties.tls.table("relay")?,
            ),
        )?;
        parties.start(
            "relay",
            Launch::new(bin("cloister-relay"), "127.0.0.1:7100")
                .arg("--config")
                .arg(&relay_config),
        )?;

        println!(
            "== release: this tree's digests, signed by 2 of 3 demo reviewers, into the ledger"
        );
        let mut release = Command::new(bin("cloister-release"));
        release
            .current_dir(root)
            .arg("submit")
            .args([
                "--ledger",
                LEDGER_URL,
                "--ohttp-keys",
                "https://127.0.0.1:7200/.well-known/ohttp-gateway",
                "--issuer-directory",
                "https://127.0.0.1:7300/.well-known/private-token-issuer-directory",
            ])
            .arg("--measure-json")
            .arg(&measured)
            .arg("--ca")
            .arg(&ca)
            .arg("--log-key")
            .arg(&ledger.log_public_key);
        for key in ledger.reviewer_keys.iter().take(2) {
            release.arg("--reviewer-key").arg(key);
        }
        run(&mut release)?;

        println!("== phase 4 host: RA-TLS endpoint {host_says}, SIMULATED attestation");
        parties.start("host", host_launch)?;
        Ok(Self {
            parties,
            client_config,
            dir: demo,
            bin: options.bin,
        })
    }

    /// `cloister ARGS` with the demo account's configuration, run in `root`.
    pub(crate) fn cloister(&self, root: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin.join("cloister"));
        command
            .current_dir(root)
            .arg("--config")
            .arg(&self.client_config)
            .args(args);
        command
    }

    /// Each running party and its process id.
    pub(crate) fn pids(&self) -> Vec<(&'static str, u32)> {
        self.parties
            .children
            .iter()
            .map(|(name, child)| (*name, child.id()))
            .collect()
    }

    /// Stops `name` (killed) and waits for it to end.
    pub(crate) fn kill(&mut self, name: &str) -> Result<()> {
        let index = self
            .parties
            .children
            .iter()
            .position(|(party, _)| *party == name)
            .with_context(|| format!("{name} is not running"))?;
        let (_, mut child) = self.parties.children.remove(index);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Starts `name` again as it was started (after [`Chain::kill`]).
    pub(crate) fn restart(&mut self, name: &str) -> Result<()> {
        let (party, launch) = self
            .parties
            .launches
            .iter()
            .find(|(party, _)| *party == name)
            .cloned()
            .with_context(|| format!("{name} never started"))?;
        self.parties.start(party, launch)
    }

    /// Sends `signal` (`STOP`, `CONT`) to `name`.
    pub(crate) fn signal(&self, name: &str, signal: &str) -> Result<()> {
        let (_, child) = self
            .parties
            .children
            .iter()
            .find(|(party, _)| *party == name)
            .with_context(|| format!("{name} is not running"))?;
        run(Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string()))
    }

    /// `name`'s log.
    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.parties.logs.join(format!("{name}.log"))
    }
}
