//! An empty WASI p2 context, for components built by toolchains that always
//! import WASI (most languages other than Rust without `std`).
//!
//! A manifest grants it with its `wasi` list (this capability's section):
//! the WASI interfaces the component may import, each named exactly as the
//! component imports it, version included (`wasi:io/streams@0.2.9`), so a
//! reviewer sees every interface a toolchain pulls in, and a toolchain that
//! adds one or moves to another version needs a new review. Any other
//! `wasi:*` import is refused at load. The list may name only interfaces of
//! WASI 0.2 that this context defines ([`INTERFACES`]); wasmtime links any
//! 0.2.x version to its own. The context has no preopened
//! directories, no sockets, no environment variables, no arguments and
//! frozen clocks (a clock is a timing side channel). What the component
//! writes to stdout or stderr is free text, which the log allow-list never
//! admits: it is discarded, and only its size is reported as a host event.
//!
//! A blocking WASI call runs in host code, where the epoch deadline that
//! stops guest code cannot reach it. The only such call the empty context
//! leaves is a sleep (`monotonic-clock.subscribe-duration` or
//! `subscribe-instant`, then `poll`), so the clock's pollables are cut to
//! the request's deadline: a sleep ends when the request's time does, and
//! the guest is stopped as soon as it runs again.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, bindings};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView as _};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::{Capability, Get, GrantError, InstanceContext};

/// The WASI 0.2 interfaces the empty context defines (see
/// [`WasiCapability::add_to_linker`]), without their version.
pub const INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
    "wasi:sockets/instance-network",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
];

/// Whether `name` is one of [`INTERFACES`] at a WASI 0.2 version
/// (`wasi:io/streams@0.2.9`).
fn is_provided(name: &str) -> bool {
    name.split_once("@0.2.").is_some_and(|(interface, patch)| {
        INTERFACES.contains(&interface)
            && !patch.is_empty()
            && patch.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Per-host state: nothing is shared between WASI instances.
#[derive(Debug, Default)]
pub struct WasiCapability;

impl Capability for WasiCapability {
    /// WASI is granted by the manifest's `wasi` list, not by `imports`.
    const INTERFACES: &'static [&'static str] = &[];
    /// The WASI interfaces tolerated, as the component imports them.
    type Grant = BTreeSet<String>;
    type Instance = WasiInstance;

    fn check_grant(grant: &Self::Grant, _imports: &BTreeSet<String>) -> Result<(), GrantError> {
        match grant.iter().find(|name| !is_provided(name)) {
            Some(name) => Err(GrantError::UnknownWasiInterface(name.clone())),
            None => Ok(()),
        }
    }

    fn allows_import(grant: &Self::Grant, name: &str) -> bool {
        grant.contains(name)
    }

    /// What `wasmtime_wasi::p2::add_to_linker_sync` defines, each interface
    /// reaching its view of the state through `G` instead of a `WasiView`
    /// store.
    fn add_to_linker<T, G>(linker: &mut Linker<T>) -> wasmtime::Result<()>
    where
        T: Send + 'static,
        G: Get<T, Instance = WasiInstance>,
    {
        use bindings::{cli, clocks, filesystem, random, sockets, sync};
        let l = linker;
        let options = sync::LinkOptions::default();
        clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, |t| G::get(t).clocks())?;
        clocks::monotonic_clock::add_to_linker::<T, DeadlineClocks>(l, |t| {
            G::get(t).deadline_clock()
        })?;
        filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, |t| G::get(t).filesystem())?;
        random::random::add_to_linker::<T, WasiRandom>(l, |t| G::get(t).random())?;
        random::insecure::add_to_linker::<T, WasiRandom>(l, |t| G::get(t).random())?;
        random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| G::get(t).random())?;
        cli::exit::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::environment::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::stdin::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::stdout::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::stderr::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::terminal_input::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::terminal_output::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, |t| G::get(t).cli())?;
        sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, |t| G::get(t).sockets())?;
        sockets::instance_network::add_to_linker::<T, WasiSockets>(l, |t| G::get(t).sockets())?;
        sockets::network::add_to_linker::<T, WasiSockets>(l, &(&options).into(), |t| {
            G::get(t).sockets()
        })?;
        sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, |t| G::get(t).sockets())?;
        sync::io::error::add_to_linker::<T, Table>(l, |t| G::get(t).ctx().table)?;
        sync::io::poll::add_to_linker::<T, Table>(l, |t| G::get(t).ctx().table)?;
        sync::io::streams::add_to_linker::<T, Table>(l, |t| G::get(t).ctx().table)?;
        sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, |t| G::get(t).filesystem())?;
        sync::sockets::tcp::add_to_linker::<T, WasiSockets>(l, |t| G::get(t).sockets())?;
        sync::sockets::udp::add_to_linker::<T, WasiSockets>(l, |t| G::get(t).sockets())?;
        sync::sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, |t| {
            G::get(t).sockets()
        })?;
        Ok(())
    }

    fn instance(&self, context: InstanceContext<'_>) -> WasiInstance {
        WasiInstance {
            context: None,
            discarded: Arc::new(AtomicU64::new(0)),
            deadline: context.deadline,
        }
    }
}

/// The monotonic clock's view of the state: the frozen clock and the
/// request's deadline.
struct DeadlineClocks;

impl HasData for DeadlineClocks {
    type Data<'a> = DeadlineClock<'a>;
}

/// `wasi:clocks/monotonic-clock` whose pollables are ready by the request's
/// deadline at the latest.
pub struct DeadlineClock<'a> {
    clocks: WasiClocksCtxView<'a>,
    deadline: Instant,
}

impl monotonic_clock::Host for DeadlineClock<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.clocks)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.clocks)?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let left = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
        monotonic_clock::Host::subscribe_duration(&mut self.clocks, duration.min(left))
    }
}

/// The WASI I/O interfaces' view of the state: the resource table.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// Per-instance state: the empty context, built on the first WASI call so
/// that components without WASI imports (all bundled ones) never pay for it.
pub struct WasiInstance {
    context: Option<(WasiCtx, ResourceTable)>,
    discarded: Arc<AtomicU64>,
    /// When the request's time is up: no sleep lasts past it.
    deadline: Instant,
}

impl WasiInstance {
    fn deadline_clock(&mut self) -> DeadlineClock<'_> {
        let deadline = self.deadline;
        DeadlineClock {
            clocks: self.clocks(),
            deadline,
        }
    }

    /// Bytes the component wrote to stdout and stderr, all discarded.
    pub fn discarded_output_bytes(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }
}

impl WasiView for WasiInstance {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let discarded = &self.discarded;
        let (ctx, table) = self.context.get_or_insert_with(|| {
            let ctx = WasiCtxBuilder::new()
                .stdout(DiscardingOutput(discarded.clone()))
                .stderr(DiscardingOutput(discarded.clone()))
                .wall_clock(FrozenClock)
                .monotonic_clock(FrozenClock)
                .build();
            (ctx, ResourceTable::new())
        });
        WasiCtxView { ctx, table }
    }
}

/// A clock stuck at zero.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Standard output that counts bytes and keeps none.
#[derive(Clone)]
struct DiscardingOutput(Arc<AtomicU64>);

impl IsTerminal for DiscardingOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for DiscardingOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for DiscardingOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.fetch_add(
            u64::try_from(buf.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
