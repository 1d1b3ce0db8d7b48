//! The witness over HTTP, as a log talks to it: what it cosigns, what it
//! refuses with which status, and what it remembers across a restart.

use std::path::Path;

use cloister_ledger_verify::Hash;
use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
use cloister_ledger_verify::cosignature::{Cosigner, CosignerKey};
use cloister_ledger_verify::merkle::leaf_hash;
use cloister_ledger_verify::note::{NoteSignature, NoteSigner};
use cloister_ledger_verify::tree::SubtreeHashes as _;
use cloister_ledger_verify::witness::{AddCheckpoint, SIZE_CONTENT_TYPE};
use cloister_witness::Witness;
use ed25519_dalek::SigningKey;

const ORIGIN: &str = "example.com/log";

/// A log's leaves in memory, hashed the RFC 6962 way.
struct Tree(Vec<Hash>);

impl Tree {
    fn new(leaves: &[&str]) -> Self {
        Self(
            leaves
                .iter()
                .map(|leaf| leaf_hash(leaf.as_bytes()))
                .collect(),
        )
    }

    fn root(&self, size: u64) -> Hash {
        self.0.as_slice().root(size).expect("root")
    }

    fn consistency_path(&self, old: u64, size: u64) -> Vec<Hash> {
        self.0
            .as_slice()
            .consistency_path(old, size)
            .expect("proof")
    }
}

fn log_signer(seed: u8) -> NoteSigner {
    NoteSigner::ed25519(ORIGIN, SigningKey::from_bytes(&[seed; 32])).expect("name")
}

fn cosigner() -> Cosigner {
    Cosigner::ed25519("witness.example", SigningKey::from_bytes(&[2; 32])).expect("name")
}

fn open(path: &Path) -> Witness {
    Witness::open(path, cosigner(), vec![log_signer(1).verifier_key().clone()]).expect("opens")
}

/// The checkpoint of the first `size` leaves of `tree`, signed by `log`.
fn checkpoint(tree: &Tree, size: u64, origin: &str, log: &NoteSigner) -> SignedCheckpoint {
    let body = Checkpoint {
        origin: origin.into(),
        tree_size: size,
        root_hash: tree.root(size),
        extensions: vec![],
    };
    SignedCheckpoint::sign(body, log).expect("signs")
}

/// The request moving a witness from `old` to `size` leaves of `tree`, signed by the log.
fn request(tree: &Tree, old: u64, size: u64) -> String {
    AddCheckpoint {
        old_size: old,
        proof: tree.consistency_path(old, size),
        checkpoint: checkpoint(tree, size, ORIGIN, &log_signer(1)),
    }
    .to_string()
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn post(base: &str, body: String) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{base}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .expect("witness answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Answer {
        status,
        content_type,
        body: response.text().await.expect("body"),
    }
}

/// Checks that `answer` is a 200 with one valid cosignature of `signed`'s text.
fn assert_cosigned(answer: &Answer, signed_request: &str) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let lines = NoteSignature::parse_lines(&answer.body).expect("signature lines");
    let request = AddCheckpoint::parse(signed_request.as_bytes()).expect("own request");
    let pinned: CosignerKey = cosigner().verifier_key().to_string().parse().expect("vkey");
    let timestamp = pinned
        .verify(request.checkpoint.note().text(), &lines[0])
        .expect("valid cosignature")
        .expect("by this witness");
    assert!(
        timestamp > 1_700_000_000,
        "a current timestamp: {timestamp}"
    );
}

const HONEST: [&str; 8] = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"];
/// Agrees with [`HONEST`] on its first three leaves, then forks.
const FORK: [&str; 8] = ["a0", "a1", "a2", "x3", "b4", "b5", "b6", "b7"];

#[tokio::test]
async fn a_witness_refuses_an_inconsistent_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = cloister_witness::spawn_on_loopback(open(&dir.path().join("w.redb")))
        .await
        .expect("serves");
    let (honest, fork) = (Tree::new(&HONEST), Tree::new(&FORK));

    let first = request(&honest, 0, 4);
    assert_cosigned(&post(&base, first).await, &request(&honest, 0, 4));

    // The fork's own proof is a valid proof within the fork, but not from
    // the four leaves the witness cosigned.
    let forked = post(&base, request(&fork, 4, 8)).await;
    assert_eq!(forked.status, 422, "{}", forked.body);

    // Nothing was recorded: the honest extension still goes from size 4.
    let honest_next = request(&honest, 4, 8);
    assert_cosigned(&post(&base, honest_next.clone()).await, &honest_next);
    // And the fork's checkpoint of the same size is a conflict.
    let same_size_fork = AddCheckpoint {
        old_size: 8,
        proof: vec![],
        checkpoint: checkpoint(&fork, 8, ORIGIN, &log_signer(1)),
    };
    let conflict = post(&base, same_size_fork.to_string()).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body, "8\n");
}

#[tokio::test]
async fn the_witness_answers_with_the_statuses_of_the_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = cloister_witness::spawn_on_loopback(open(&dir.path().join("w.redb")))
        .await
        .expect("serves");
    let tree = Tree::new(&HONEST);
    let first = request(&tree, 0, 3);
    assert_cosigned(&post(&base, first.clone()).await, &first);
    // The same checkpoint again is cosigned again.
    let again = request(&tree, 3, 3);
    assert_cosigned(&post(&base, again.clone()).await, &again);

    // A stale old size: 409 with the witness's size.
    let stale = post(&base, request(&tree, 2, 5)).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.content_type, SIZE_CONTENT_TYPE);
    assert_eq!(stale.body, "3\n");

    // An unknown origin: 404. A checkpoint the log did not sign: 403.
    let other_origin = AddCheckpoint {
        old_size: 3,
        proof: tree.consistency_path(3, 5),
        checkpoint: checkpoint(
            &tree,
            5,
            "other.example/log",
            &NoteSigner::ed25519("other.example/log", SigningKey::from_bytes(&[1; 32]))
                .expect("name"),
        ),
    };
    assert_eq!(post(&base, other_origin.to_string()).await.status, 404);
    let forged = AddCheckpoint {
        old_size: 3,
        proof: tree.consistency_path(3, 5),
        checkpoint: checkpoint(&tree, 5, ORIGIN, &log_signer(9)),
    };
    assert_eq!(post(&base, forged.to_string()).await.status, 403);

    // An old size above the checkpoint's, and a body that is no request: 400.
    let backwards = AddCheckpoint {
        old_size: 6,
        proof: vec![],
        checkpoint: checkpoint(&tree, 5, ORIGIN, &log_signer(1)),
    };
    assert_eq!(post(&base, backwards.to_string()).await.status, 400);
    assert_eq!(post(&base, "hello".into()).await.status, 400);
    let honest_next = request(&tree, 3, 5);
    assert_cosigned(&post(&base, honest_next.clone()).await, &honest_next);
}

#[test]
fn the_latest_cosigned_checkpoint_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.redb");
    let tree = Tree::new(&HONEST);
    {
        let witness = open(&path);
        witness
            .add_checkpoint(request(&tree, 0, 6).as_bytes(), 1_800_000_000)
            .expect("cosigned");
        // A proof where none may be: the first checkpoint comes from size 0.
        let fresh = open(&dir.path().join("fresh.redb"));
        let mut with_proof = AddCheckpoint::parse(request(&tree, 0, 6).as_bytes()).expect("own");
        with_proof.proof = vec![leaf_hash(b"spurious")];
        assert!(matches!(
            fresh.add_checkpoint(with_proof.to_string().as_bytes(), 1_800_000_000),
            Err(cloister_witness::Refusal::BadProof { .. })
        ));
    }
    let reopened = open(&path);
    let latest = reopened.latest(ORIGIN).expect("reads").expect("stored");
    assert_eq!(latest.checkpoint().tree_size, 6);
    assert_eq!(
        reopened.add_checkpoint(request(&tree, 0, 7).as_bytes(), 1_800_000_000),
        Err(cloister_witness::Refusal::SizeMismatch { stored: 6 })
    );
}
