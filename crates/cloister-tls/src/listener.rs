//! An axum listener that serves HTTPS, or plain HTTP on loopback only.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::TlsError;

/// Time a connection has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the
/// kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// A connection accepted by a [`Listener`].
#[derive(Debug)]
pub enum Stream {
    /// Plain HTTP (loopback only).
    Plain(TcpStream),
    /// HTTPS, after a completed handshake.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The address of the peer.
    ///
    /// # Errors
    /// The socket has no peer address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Plain(tcp) => tcp.peer_addr(),
            Self::Tls(tls) => tls.get_ref().0.peer_addr(),
        }
    }
}

/// Where a party accepts connections: TLS when its `[tls]` names a
/// certificate and key, else plain HTTP, which is allowed on a loopback
/// address only. Pass it to `axum::serve` like a `TcpListener`.
///
/// TLS handshakes run in their own tasks (each with a timeout), so a slow
/// or silent peer never holds up the accept loop.
#[derive(Debug)]
pub struct Listener {
    local: SocketAddr,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Plain(TcpListener),
    Tls {
        accepted: mpsc::Receiver<(Stream, SocketAddr)>,
        acceptor: JoinHandle<()>,
    },
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Inner::Tls { acceptor, .. } = &self.inner {
            acceptor.abort();
        }
    }
}

impl Listener {
    /// Serve `party` on `listener`: over TLS with `tls`, else plain HTTP,
    /// which is refused unless `listener` is bound to a loopback address and
    /// is logged as a warning. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`TlsError::PlainBeyondLoopback`], or the listener has no address.
    pub fn new(
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        party: &str,
    ) -> Result<Self, ListenError> {
        let local = listener.local_addr()?;
        let Some(tls) = tls else {
            if !local.ip().is_loopback() {
                return Err(TlsError::PlainBeyondLoopback { addr: local }.into());
            }
            tracing::warn!(
                %local,
                "{party} serves PLAIN HTTP (no [tls] section): not encrypted or authenticated, for loopback tests only"
            );
            return Ok(Self {
                local,
                inner: Inner::Plain(listener),
            });
        };
        tracing::info!(%local, "{party} serves HTTPS");
        let (sender, accepted) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(tls), sender));
        Ok(Self {
            local,
            inner: Inner::Tls { accepted, acceptor },
        })
    }

    /// Binds `addr` and serves as [`Listener::new`].
    ///
    /// # Errors
    /// The address cannot be bound, or see [`Listener::new`].
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<Arc<ServerConfig>>,
        party: &str,
    ) -> Result<Self, ListenError> {
        if tls.is_none() && !addr.ip().is_loopback() {
            return Err(TlsError::PlainBeyondLoopback { addr }.into());
        }
        Self::new(TcpListener::bind(addr).await?, tls, party)
    }

    /// Whether connections are TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls { .. })
    }
}

/// Why a [`Listener`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Plain HTTP beyond loopback.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding or reading the socket address failed.
    #[error("listening: {0}")]
    Io(#[from] io::Error),
}

async fn accept_loop(
    mut listener: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(Stream, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = sender.closed() => return,
        };
        let (acceptor, sender) = (acceptor.clone(), sender.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    // The server is gone when the receiver is: nothing to do.
                    let _ = sender.send((Stream::Tls(Box::new(tls)), peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        match &mut self.inner {
            Inner::Plain(listener) => {
                let (tcp, peer) = axum::serve::Listener::accept(listener).await;
                (Stream::Plain(tcp), peer)
            }
            Inner::Tls { accepted, .. } => match accepted.recv().await {
                Some(connection) => connection,
                // The accept loop ended (its runtime is shutting down):
                // accept nothing more.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
