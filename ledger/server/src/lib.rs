//! The Cloister transparency ledger's server side, as a library.
//!
//! The `cloister-ledger` binary is a thin shell over this: [`router`] is the
//! whole HTTP API over an opened [`cloister_ledger::Ledger`], so tests and
//! tools can run a real ledger in-process on a loopback port. Everything that
//! calls the API (the binary's `submit` and `verify` commands, the release
//! tool, users' clients) uses the one client,
//! `cloister_ledger_verify::remote::LedgerClient`.

mod http;
mod metrics;

pub use http::router;

/// Serves `ledger` on a free loopback port, as a task of the current tokio
/// runtime, and returns its base URL: a real ledger in-process, for tests
/// and tools.
///
/// # Errors
/// No loopback port can be bound.
pub async fn spawn_on_loopback(ledger: cloister_ledger::Ledger) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router(ledger)).await });
    Ok(url)
}
