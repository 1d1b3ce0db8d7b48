//! Cloister's end-to-end tests. This library is empty: the tests are the
//! crate's one test binary, `tests/it/main.rs`, run with
//! `cargo test -p cloister-e2e`.
//!
//! A request passes six parties: the **issuer** signs Privacy Pass tokens
//! into the client's wallet, the **client** checks the gateway's key
//! configuration against the **ledger** and sends its OHTTP requests
//! through the **relay** to the **gateway**, which redeems the token and
//! forwards the inner request to the **host**, whose attestation the
//! client verifies before the payload leaves. The `cloister` command
//! drives all of it.
//!
//! A test belongs here when it runs two or more of these parties
//! together, or checks a property that holds between them (one party's
//! default timeout against another's). Each party's own tests stay in its
//! crate and use fakes for its neighbours, so that a party's `cargo test`
//! builds that party only, and the other parties (the host with wasmtime
//! among them) are compiled and linked into one test binary here rather
//! than into each party's tests.
//!
//! | module | parties | what it shows |
//! |---|---|---|
//! | `ohttp` | client, relay, gateway (echo router) | round trips, key rotation, replay, stale dates, size limits, key consistency, tokens redeemed once |
//! | `tokens` | client wallet, issuer | issuance into the wallet, persistence, rate limits, bad issuers, withdrawn keys |
//! | `ledger` | client (`LedgerTrust`), ledger server | logged digests trusted, forks and foreign tree heads refused |
//! | `ratls` | client, relay, gateway, host session table | an RA-TLS session through the chain; nothing sent to an unreleased host; conversations in one size bucket look the same to relay and gateway |
//! | `host` | client, relay, gateway, the real host with its plugins | a summarise request to an attested host; its health and metrics |
//! | `cli` | the `cloister` command, issuer, relay, gateway, host | one token per OHTTP request, and a host asking for more stopped; the trust settings refuse untrusted hosts, trust files planted in the working directory are ignored; the client's address never reaches the gateway; the command outwaits the relay |
//! | `monitoring` | client, relay, gateway, issuer; `promtool` | the alert rules of `deploy/monitoring` flag token farming and double spends from the parties' aggregate metrics, and quiet traffic raises none |
//! | `timeouts` | client, relay | the client waits longer than the relay in front of it |
//! | `support` | relay, gateway | the `cloister-test-support` fixture itself |
//! | `six_phases` | witnesses, ledger, issuer, gateway, relay, release, host with the real model, each its own process; the `cloister` command | summarise and suggest answered and labelled through all six phases; a random marker of the conversation is in the client's answers and nowhere in what relay, gateway, host, issuer and ledger send and receive, in no party's log and in no file of the run, in raw, UTF-16, hex or base64 form |
//! | `faults` | the same chain, deterministic backend | relay down, gateway restarted with new keys, ledger unreachable, a tampered plugin, a slow host: each a clear error within bounded time, or recovery; the timeouts nest from host to client |
//! | `load` | the `faults` chain; `cloister-load` | 200 requests, 8 at a time, all answered and accounted for; each token sent once, the gateway's spent-token store holding exactly those; spent tokens sent again refused |
//! | `surface` | issuer, ledger, gateway, relay, host, each its own process | every listening socket and HTTP route of each party is one its documentation lists; admin, debug, exec and upload paths and undocumented methods get 404 or 405 |
//!
//! The fixtures: `cloister-test-support` starts the real gateway and relay
//! in process; `tests/it/common` starts the real issuer; the `ratls` module
//! shares the simulated host of `cloister-ratls`'s own tests. The `host`
//! module loads the plugin components from `target/plugins` (built by
//! `cargo xtask build-plugins`, or from `CLOISTER_PLUGIN_DIR`).
//! The `surface` module runs the parties' binaries from the target
//! directory (`target/<profile>/`), which `cargo test --workspace` builds;
//! `cargo test -p cloister-e2e` alone does not, so build them first there
//! (`cargo build --bins`); so do `fleet`, `six_phases`, `faults` and
//! `load`, which start the chain of `tests/it/chain.rs`.
