//! An empty WASI p2 context, for components built by toolchains that always
//! import WASI (most languages other than Rust without `std`).
//!
//! A manifest grants it with `wasi = true`. The context has no preopened
//! directories, no sockets, no environment variables, no arguments and
//! frozen clocks (a clock is a timing side channel). What the component
//! writes to stdout or stderr is free text, which the log allow-list never
//! admits: it is discarded, and only its size is reported as a host event.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::{Capability, InstanceContext, InstanceState};

/// Per-host state: nothing is shared between WASI instances.
#[derive(Debug, Default)]
pub struct WasiCapability;

impl Capability for WasiCapability {
    /// WASI is granted by the manifest's `wasi` flag, not by interface name.
    const INTERFACES: &'static [&'static str] = &[];
    type Instance = WasiInstance;

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_sync(linker)
    }

    fn instance(&self, _context: InstanceContext<'_>) -> WasiInstance {
        WasiInstance {
            context: None,
            discarded: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Per-instance state: the empty context, built on the first WASI call so
/// that components without WASI imports (all bundled ones) never pay for it.
pub struct WasiInstance {
    context: Option<(WasiCtx, ResourceTable)>,
    discarded: Arc<AtomicU64>,
}

impl WasiInstance {
    /// Bytes the component wrote to stdout and stderr, all discarded.
    pub fn discarded_output_bytes(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }

    fn view(&mut self) -> WasiCtxView<'_> {
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

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.view()
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
