//! End-to-end tests of the `cloister-ledger` binary: the release flow through
//! its commands, and a crash (SIGKILL) in the middle of concurrent appends.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloister_ledger_verify::api::{
    ConsistencyProof, EntryResponse, InclusionProof, SubmitResponse,
};
use cloister_ledger_verify::checkpoint::{CheckpointError, SignedCheckpoint};
use cloister_ledger_verify::client::LogVerifier;
use cloister_ledger_verify::cosignature::{
    Cosigner, CosignerKey, WitnessPolicy, WitnessPolicyError,
};
use cloister_ledger_verify::entry::{
    EntryBody, KeyWindow, Provenance, ReviewerSignature, SignedEntry, Subject,
};
use cloister_ledger_verify::note::VerifierKey;
use cloister_ledger_verify::remote::{LedgerClient, RemoteError};
use cloister_ledger_verify::tiles;
use cloister_ledger_verify::tree_head::SignedTreeHead;
use cloister_ledger_verify::{Hash, HexBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;

const BINARY: &str = env!("CARGO_BIN_EXE_cloister-ledger");

/// Runs a command of the binary and returns its standard output, failing on a non-zero exit.
fn run(args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .output()
        .expect("run cloister-ledger");
    assert!(
        output.status.success(),
        "cloister-ledger {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Runs `future` on a runtime of its own: the tests drive the server from plain threads.
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// `GET url`: the status and body, or the transport error.
fn fetch(url: &str) -> Result<(u16, Vec<u8>), reqwest::Error> {
    block_on(async {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .get(url)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?.to_vec()))
    })
}

fn get<T: DeserializeOwned>(url: &str) -> T {
    let (status, body) = fetch(url).unwrap_or_else(|error| panic!("GET {url}: {error}"));
    assert!((200..300).contains(&status), "GET {url}: {status}");
    serde_json::from_slice(&body).expect("json")
}

/// Posts an entry through the ledger client; `None` when the server could
/// not answer (killed mid-request).
fn try_submit(base: &str, entry: &SignedEntry) -> Option<SubmitResponse> {
    let ledger = LedgerClient::new(base, Duration::from_secs(10)).expect("client");
    match block_on(ledger.submit(entry)) {
        Ok(placed) => Some(placed),
        Err(RemoteError::Refused { status, .. }) => panic!("submit refused: {status}"),
        Err(_) => None,
    }
}

/// A ledger server child process on a free loopback port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, reviewers: &Path, log_key: &Path) -> Self {
        Self::start_with(dir, reviewers, log_key, "")
    }

    /// [`Server::start`] with `extra` lines appended to the config file.
    fn start_with(dir: &Path, reviewers: &Path, log_key: &Path, extra: &str) -> Self {
        let port = free_port();
        let config = dir.join("ledger.toml");
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = {:?}\nlog_key = {:?}\nreviewers = {:?}\n{extra}",
            dir.join("ledger.redb"),
            log_key,
            reviewers
        );
        std::fs::write(&config, text).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log");
        let child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !fetch(&format!("{base}/healthz")).is_ok_and(|(status, _)| status == 200) {
            assert!(
                Instant::now() < deadline,
                "server did not become healthy; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, base }
    }

    /// SIGKILL: no shutdown handler runs, whatever was in flight is cut off.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reviewer_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A 2-of-3 policy of reviewers with seeds 1, 2 and 3.
fn write_policy(dir: &Path) -> PathBuf {
    let mut text = String::from("threshold = 2\n");
    for seed in 1..=3 {
        let key = HexBytes(reviewer_key(seed).verifying_key().to_bytes());
        text.push_str(&format!(
            "[[reviewer]]\nname = \"r{seed}\"\npublic_key = \"{key}\"\n"
        ));
    }
    let path = dir.join("reviewers.toml");
    std::fs::write(&path, text).expect("write policy");
    path
}

/// Makes `dir/log.key` with the binary's `keygen`: its path and public key.
fn keygen_log_key(dir: &Path) -> (PathBuf, HexBytes<32>) {
    let path = dir.join("log.key");
    let public_key = run(&["keygen", "--out", path.to_str().expect("utf-8 path")])
        .trim()
        .parse()
        .expect("keygen prints the public key");
    (path, public_key)
}

fn entry(n: u64) -> SignedEntry {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    let body = EntryBody {
        subject: Subject::OhttpKeyConfig {
            key_id: 1,
            digest: HexBytes(digest),
            window: KeyWindow {
                not_before: 1_800_000_000,
                not_after: 1_800_086_400,
            },
        },
        provenance: Provenance {
            source_commit: "abc".into(),
            builder: "crash-test".into(),
        },
    };
    let signatures = [1, 3]
        .iter()
        .map(|&seed| ReviewerSignature::sign(&reviewer_key(seed), &body))
        .collect();
    SignedEntry { body, signatures }
}

#[test]
fn survives_sigkill_during_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reviewers = write_policy(dir.path());
    let (log_key_path, log_key) = keygen_log_key(dir.path());

    let server = Server::start(dir.path(), &reviewers, &log_key_path);
    for n in 0..10 {
        try_submit(&server.base, &entry(n)).expect("append before the crash");
    }
    let before: SignedTreeHead = get(&format!("{}/v1/tree-head", server.base));
    assert_eq!(before.head.tree_size, 10);

    // Four writers append as fast as they can; the server is killed under them.
    let acknowledged = Arc::new(Mutex::new(Vec::<Hash>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let (base, acknowledged, stop) = (
                server.base.clone(),
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                for n in (1000 * (writer + 1)..).take(10_000) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let entry = entry(n);
                    match try_submit(&base, &entry) {
                        Some(placed) => acknowledged.lock().expect("lock").push(placed.leaf_hash),
                        None => break,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().expect("lock").len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 40,
        "too few appends before the kill: {}",
        acknowledged.len()
    );

    let server = Server::start(dir.path(), &reviewers, &log_key_path);
    let after: SignedTreeHead = get(&format!("{}/v1/tree-head", server.base));
    assert!(after.head.tree_size >= before.head.tree_size + acknowledged.len() as u64);

    // The head after the crash extends the head before it, as a client checks.
    let mut verifier = LogVerifier::new(log_key.as_bytes(), Some(before)).expect("pinned key");
    let consistency: ConsistencyProof = get(&format!(
        "{}/v1/proof/consistency?first={}&second={}",
        server.base, before.head.tree_size, after.head.tree_size
    ));
    verifier
        .accept_tree_head(after, &consistency.proof)
        .expect("consistent across the crash");

    // Every stored entry is whole: it parses, is admitted, and hashes into the signed root.
    let mut stored = Vec::new();
    for index in 0..after.head.tree_size {
        let response: EntryResponse = get(&format!("{}/v1/entries/{index}", server.base));
        let leaf = response.entry.leaf_hash();
        let proof: InclusionProof = get(&format!(
            "{}/v1/proof/inclusion?leaf_hash={leaf}&tree_size={}",
            server.base, after.head.tree_size
        ));
        assert_eq!(proof.leaf_index, index);
        verifier
            .verify_inclusion(&response.entry, &proof)
            .expect("entry included under the head");
        stored.push(leaf);
    }
    // No acknowledged append was lost.
    for leaf in &acknowledged {
        assert!(
            stored.contains(leaf),
            "acknowledged entry {leaf} lost in the crash"
        );
    }
    // And the log takes appends again.
    let placed = try_submit(&server.base, &entry(99)).expect("append after restart");
    assert_eq!(placed.index, after.head.tree_size);
}

#[test]
fn release_flow_through_the_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| {
        dir.path()
            .join(name)
            .to_str()
            .expect("utf-8 path")
            .to_owned()
    };
    let mut policy = String::from("threshold = 2\n");
    for name in ["alice", "bob", "carol"] {
        let public_key = run(&["keygen", "--out", &path(&format!("{name}.key"))]);
        policy.push_str(&format!(
            "[[reviewer]]\nname = \"{name}\"\npublic_key = \"{}\"\n",
            public_key.trim()
        ));
    }
    std::fs::write(path("reviewers.toml"), policy).expect("policy");
    assert!(
        Command::new(BINARY)
            .args(["keygen", "--out", &path("alice.key")])
            .output()
            .expect("run")
            .status
            .code()
            != Some(0),
        "keygen must refuse to overwrite a key"
    );
    let log_key = run(&["keygen", "--out", &path("log.key")])
        .trim()
        .to_owned();
    assert_eq!(
        run(&["public-key", "--key", &path("log.key")]).trim(),
        log_key
    );

    let server = Server::start(
        dir.path(),
        Path::new(&path("reviewers.toml")),
        Path::new(&path("log.key")),
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugin-entry.json");
    std::fs::copy(&example, path("entry.json")).expect("copy example entry");

    // One signature is not enough: the server refuses and the command fails.
    run(&[
        "sign-entry",
        "--key",
        &path("alice.key"),
        "--entry",
        &path("entry.json"),
    ]);
    let refused = Command::new(BINARY)
        .args([
            "submit",
            "--url",
            &server.base,
            "--entry",
            &path("entry.json"),
        ])
        .output()
        .expect("run submit");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("1 reviewer signature(s), 2 required")
    );

    run(&[
        "sign-entry",
        "--key",
        &path("carol.key"),
        "--entry",
        &path("entry.json"),
    ]);
    let placed: SubmitResponse = serde_json::from_str(&run(&[
        "submit",
        "--url",
        &server.base,
        "--entry",
        &path("entry.json"),
        "--log-key",
        &log_key,
    ]))
    .expect("submit output");
    assert_eq!(placed.index, 0);

    // The client-side check, twice: the second run checks consistency with the remembered head.
    let verify = [
        "verify",
        "--url",
        &server.base,
        "--entry",
        &path("entry.json"),
        "--log-key",
        &log_key,
        "--state",
        &path("state.json"),
    ];
    run(&verify);
    let mut other = serde_json::from_str::<SignedEntry>(
        &std::fs::read_to_string(path("entry.json")).expect("read"),
    )
    .expect("entry");
    other.body.provenance.builder = "second-build".into();
    other.signatures.clear();
    let mut file = std::fs::File::create(path("other.json")).expect("create");
    file.write_all(serde_json::to_string(&other).expect("json").as_bytes())
        .expect("write");
    run(&[
        "sign-entry",
        "--key",
        &path("alice.key"),
        "--entry",
        &path("other.json"),
    ]);
    run(&[
        "sign-entry",
        "--key",
        &path("bob.key"),
        "--entry",
        &path("other.json"),
    ]);
    run(&[
        "submit",
        "--url",
        &server.base,
        "--entry",
        &path("other.json"),
    ]);
    let proof: InclusionProof = serde_json::from_str(&run(&verify)).expect("verify output");
    assert_eq!(proof.tree_size, 2);
    let remembered: SignedTreeHead =
        serde_json::from_str(&std::fs::read_to_string(path("state.json")).expect("state"))
            .expect("head");
    assert_eq!(remembered.head.tree_size, 2);

    // Both builds of the example plugin are found by its digest.
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let found: Vec<EntryResponse> = get(&format!("{}/v1/entries/by-digest/{digest}", server.base));
    assert_eq!(
        found
            .iter()
            .map(|response| response.index)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    let (bad, _) = fetch(&format!("{}/v1/entries/by-digest/abcd", server.base)).expect("answer");
    assert_eq!(bad, 400);

    // A verifier pinned to another key refuses the log.
    let wrong_key = HexBytes(reviewer_key(9).verifying_key().to_bytes()).to_string();
    let refused = Command::new(BINARY)
        .args([
            "verify",
            "--url",
            &server.base,
            "--entry",
            &path("entry.json"),
            "--log-key",
            &wrong_key,
            "--state",
            &path("fresh.json"),
        ])
        .output()
        .expect("run verify");
    assert!(!refused.status.success());

    let (_, metrics) = fetch(&format!("{}/metrics", server.base)).expect("metrics");
    let metrics = String::from_utf8(metrics).expect("utf-8 metrics");
    for line in [
        "cloister_ledger_entries_appended_total 2",
        "cloister_ledger_errors_total{kind=\"not_admitted\"} 1",
        "cloister_ledger_errors_total{kind=\"bad_request\"} 1",
        "cloister_ledger_errors_total{kind=\"internal\"} 0",
        "cloister_ledger_tree_size 2",
        "cloister_ledger_requests_total{route=\"/v1/entries/by-digest/{digest}\",status=\"2xx\"} 1",
        "cloister_ledger_requests_total{route=\"/v1/entries/by-digest/{digest}\",status=\"4xx\"} 1",
        "cloister_ledger_request_duration_seconds_count{route=\"/v1/entries/by-digest/{digest}\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
}

#[test]
fn checkpoint_is_served_and_verifies_under_the_log_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reviewers = write_policy(dir.path());
    let (log_key_path, public_key) = keygen_log_key(dir.path());
    let public_key = VerifyingKey::from_bytes(public_key.as_bytes()).expect("Ed25519 key");
    let origin = "ledger.example.test/cloister";
    let server = Server::start_with(
        dir.path(),
        &reviewers,
        &log_key_path,
        &format!("origin = {origin:?}\n"),
    );
    for n in 0..3 {
        try_submit(&server.base, &entry(n)).expect("append");
    }

    let url = format!("{}{}", server.base, cloister_wire::ledger::CHECKPOINT);
    let (content_type, body) = block_on(async {
        let response = reqwest::get(&url).await.expect("GET /checkpoint");
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        (content_type, response.bytes().await.expect("body"))
    });
    assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let head: SignedTreeHead = get(&format!("{}/v1/tree-head", server.base));
    let head = head.verify(&public_key).expect("signed tree head");

    let log_key = VerifierKey::ed25519(origin, public_key).expect("vkey");
    let served = SignedCheckpoint::parse(&body).expect("a C2SP checkpoint");
    let checkpoint = served.verify(&log_key).expect("signed by the log key");
    assert_eq!(checkpoint.origin, origin);
    assert_eq!(checkpoint.tree_size, 3);
    assert_eq!(checkpoint.tree_size, head.tree_size);
    assert_eq!(checkpoint.root_hash, head.root_hash);

    // The vkey the log publishes is the one that verifies it.
    let published: serde_json::Value = get(&format!("{}/v1/log-key", server.base));
    assert_eq!(published["vkey"], log_key.to_string());
    // The same key under another log's name does not vouch for this checkpoint.
    let other = VerifierKey::ed25519("other.example.test/log", public_key).expect("vkey");
    assert!(matches!(
        served.verify(&other),
        Err(CheckpointError::WrongOrigin { .. })
    ));
}

/// A witness of the log `log_key` (named `origin`), served in-process on `runtime`.
fn start_witness(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    seed: u8,
    log_key: &VerifierKey,
) -> (String, CosignerKey) {
    let cosigner = Cosigner::ed25519(
        &format!("witness-{seed}.example.test"),
        SigningKey::from_bytes(&[seed; 32]),
    )
    .expect("witness name");
    let vkey = cosigner.verifier_key().clone();
    let witness = cloister_witness::Witness::open(
        &dir.join(format!("witness-{seed}.redb")),
        cosigner,
        vec![log_key.clone()],
    )
    .expect("witness opens");
    let url = runtime
        .block_on(cloister_witness::spawn_on_loopback(witness))
        .expect("witness serves");
    (url, vkey)
}

#[test]
fn the_checkpoint_carries_the_cosignatures_of_the_witnesses_that_answered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reviewers = write_policy(dir.path());
    let (log_key_path, public_key) = keygen_log_key(dir.path());
    let public_key = VerifyingKey::from_bytes(public_key.as_bytes()).expect("Ed25519 key");
    let log_key = VerifierKey::ed25519(cloister_ledger::DEFAULT_ORIGIN, public_key).expect("vkey");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let witnesses: Vec<(String, CosignerKey)> = [11, 12]
        .iter()
        .map(|&seed| start_witness(&runtime, dir.path(), seed, &log_key))
        .collect();
    // A third witness that is down.
    let down = Cosigner::ed25519("down.example.test", SigningKey::from_bytes(&[13; 32]))
        .expect("name")
        .verifier_key()
        .clone();
    let mut config = String::from("cosign_interval_secs = 1\nwitness_timeout_secs = 2\n");
    for (url, vkey) in witnesses
        .iter()
        .cloned()
        .chain([(format!("http://127.0.0.1:{}", free_port()), down.clone())])
    {
        config.push_str(&format!(
            "[[witness]]\nurl = {url:?}\nname = {:?}\nvkey = \"{vkey}\"\n",
            vkey.name()
        ));
    }
    let server = Server::start_with(dir.path(), &reviewers, &log_key_path, &config);
    for n in 0..3 {
        try_submit(&server.base, &entry(n)).expect("a witness down does not stop appends");
    }

    let url = format!("{}{}", server.base, cloister_wire::ledger::CHECKPOINT);
    let (status, body) = fetch(&url).expect("GET /checkpoint");
    assert_eq!(status, 200);
    let served = SignedCheckpoint::parse(&body).expect("a C2SP checkpoint");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let policy = |threshold, keys: Vec<CosignerKey>| WitnessPolicy {
        witnesses: keys,
        threshold,
        max_age: Duration::from_secs(60),
    };
    let both = policy(2, witnesses.iter().map(|(_, key)| key.clone()).collect());
    let accepted = both
        .verify(&served, &log_key, now)
        .expect("both live witnesses cosigned exactly this checkpoint");
    assert_eq!(accepted.checkpoint.tree_size, 3);
    let mut all = both.witnesses.clone();
    all.push(down);
    assert!(matches!(
        policy(3, all).verify(&served, &log_key, now),
        Err(WitnessPolicyError::NotEnoughCosignatures {
            cosigned: 2,
            threshold: 3,
            ..
        })
    ));
}

#[test]
fn tiles_are_served_at_the_spec_paths_and_hash_to_the_checkpoint_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_key = SigningKey::from_bytes(&[9; 32]);
    let policy = cloister_ledger_verify::review::ReviewerPolicy {
        threshold: 2,
        reviewers: (1..=3)
            .map(|seed| cloister_ledger_verify::review::Reviewer {
                name: format!("r{seed}"),
                public_key: HexBytes(reviewer_key(seed).verifying_key().to_bytes()),
            })
            .collect(),
        publishers: Vec::new(),
    };
    let ledger =
        cloister_ledger::Ledger::open(&dir.path().join("ledger.redb"), log_key.clone(), policy)
            .expect("ledger");
    let entries: Vec<SignedEntry> = (0..300).map(entry).collect();
    ledger.submit_batch(&entries).expect("admitted");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let base = runtime
        .block_on(cloister_ledger_server::spawn_on_loopback(ledger))
        .expect("serves");
    let get_with_headers = |path: &str| {
        runtime.block_on(async {
            let response = reqwest::get(format!("{base}/{path}")).await.expect("GET");
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (content_type, cache) = (header("content-type"), header("cache-control"));
            let status = response.status().as_u16();
            (
                status,
                content_type,
                cache,
                response.bytes().await.expect("body").to_vec(),
            )
        })
    };

    let (_, _, _, note) = get_with_headers("checkpoint");
    let vkey = VerifierKey::ed25519(cloister_ledger::DEFAULT_ORIGIN, log_key.verifying_key())
        .expect("vkey");
    let checkpoint = SignedCheckpoint::parse(&note).expect("checkpoint");
    let checkpoint = checkpoint.verify(&vkey).expect("the log's").clone();
    assert_eq!(checkpoint.tree_size, 300);

    let needed = tiles::plan(300, None, 0..300);
    let paths: Vec<String> = needed.iter().map(tiles::TileId::path).collect();
    assert_eq!(paths, ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]);
    let mut set = tiles::TileSet::new(300);
    for id in &needed {
        let (status, content_type, cache, bytes) = get_with_headers(&id.path());
        assert_eq!(status, 200, "{}", id.path());
        assert_eq!(content_type, "application/octet-stream");
        let expected_cache = if id.is_full() {
            "immutable"
        } else {
            "max-age=10"
        };
        assert!(cache.contains(expected_cache), "{}: {cache}", id.path());
        set.insert(*id, &bytes).expect("a tile of the tree");
    }
    set.verify(&checkpoint.root_hash)
        .expect("the tiles hash to the checkpoint's RFC 6962 root");

    // Entry bundles: uint16-length-prefixed leaf data hashing to the level-0 tiles.
    for id in needed.iter().filter(|id| id.level == 0) {
        let (status, _, _, bundle) = get_with_headers(&id.entries_path());
        assert_eq!(status, 200);
        let mut rest = bundle.as_slice();
        let mut index = id.first_leaf();
        while let Some((length, tail)) = rest.split_first_chunk::<2>() {
            let (data, tail) = tail.split_at(usize::from(u16::from_be_bytes(*length)));
            assert_eq!(
                set.leaf_hash(index),
                Ok(cloister_ledger_verify::merkle::leaf_hash(data))
            );
            assert_eq!(
                data,
                entries[usize::try_from(index).expect("small")].leaf_data()
            );
            rest = tail;
            index += 1;
        }
        assert_eq!(index, id.first_leaf() + u64::from(id.width));
        let (status, _, _, json) = get_with_headers(&format!("v1/{}", id.entries_path()));
        assert_eq!(status, 200);
        let listed: Vec<SignedEntry> = serde_json::from_slice(&json).expect("JSON bundle");
        assert_eq!(listed.len(), usize::from(id.width));
    }
    // Tiles the tree does not have yet, and paths that are not the spec's spelling.
    for missing in [
        "tile/0/001",
        "tile/0/002.p/1",
        "tile/1/000",
        "tile/0/001.p/45",
        "tile/entries/001",
        "tile/0/1",
        "tile/0/x000/001",
        "tile/00/000",
    ] {
        assert_eq!(get_with_headers(missing).0, 404, "{missing}");
    }
}
