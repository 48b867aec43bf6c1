//! A TCP forwarder to put in front of a testbed server, so a test can make that server vanish
//! for Sluice (every connection closed, new ones refused) and come back, without touching the
//! server other tests share.

use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What a forwarder does to the server's bytes that contain `pattern`.
#[derive(Clone, Copy)]
struct Rewrite {
    pattern: &'static [u8],
    bytes: &'static [u8],
    replace: bool,
}

/// Where a forwarder's connection stops passing the server's bytes on, without closing
/// (a frozen server, or a network that silently drops everything).
#[derive(Clone, Copy)]
enum Freeze {
    /// Once the client sends bytes containing the pattern: nothing more of the answer.
    AfterRequest(&'static [u8]),
    /// Once the server's bytes contain the pattern: half of that read, then nothing.
    MidAnswer(&'static [u8]),
}

/// A forwarder to one backend port. Dropping it ends every connection.
pub struct Forwarder {
    pub addr: SocketAddr,
    target: u16,
    life: Mutex<Option<CancellationToken>>,
    /// Bytes that, sent towards the server, make it "die" before they reach it (once).
    tripwire: Mutex<Option<&'static [u8]>>,
    /// When the server's bytes contain the pattern: the bytes to send, and whether they
    /// follow the server's (bytes left over) or replace them (a forged answer).
    trailer: Option<Rewrite>,
    freeze: Option<Freeze>,
    /// While set, no connection passes the server's bytes on (they are held, not dropped).
    frozen_all: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Forwarder {
    /// Listens on a fresh loopback port, forwarding to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Forwarder {
        Self::start_inner(target, None).await
    }

    /// Like [`Forwarder::start`], but the first time a client sends `pattern` the server
    /// dies (as [`Forwarder::kill`]) without receiving it; [`Forwarder::revive`] brings it back
    /// with no tripwire.
    pub async fn with_tripwire(target: u16, pattern: &'static [u8]) -> Forwarder {
        Self::start_inner(target, Some(pattern)).await
    }

    /// Like [`Forwarder::start`], but whenever the server's bytes contain `pattern`, `extra`
    /// is sent right after them in the same write (bytes a broken server left over).
    pub async fn with_trailer(target: u16, pattern: &'static [u8], extra: &'static [u8]) -> Forwarder {
        Self::start_inner_with(target, None, Some(Rewrite { pattern, bytes: extra, replace: false })).await
    }

    /// Like [`Forwarder::start`], but whenever the server's bytes contain `pattern`, the client
    /// gets `answer` instead of them (what a broken or hostile server might send).
    pub async fn with_forged_answer(target: u16, pattern: &'static [u8], answer: &'static [u8]) -> Forwarder {
        Self::start_inner_with(target, None, Some(Rewrite { pattern, bytes: answer, replace: true })).await
    }

    /// Like [`Forwarder::start`], but a connection whose client sends `pattern` never gets
    /// another byte of the server's answer (the connection stays open).
    pub async fn freezing_after_request(target: u16, pattern: &'static [u8]) -> Forwarder {
        let mut f = Self::start_inner_with(target, None, None).await;
        f.freeze = Some(Freeze::AfterRequest(pattern));
        f.restart().await;
        f
    }

    /// Like [`Forwarder::start`], but a connection whose server sends bytes containing
    /// `pattern` passes on half of that read and then nothing more (the connection stays
    /// open): a server that stalls mid-answer, after announcing a frame it never completes.
    pub async fn freezing_mid_answer(target: u16, pattern: &'static [u8]) -> Forwarder {
        let mut f = Self::start_inner_with(target, None, None).await;
        f.freeze = Some(Freeze::MidAnswer(pattern));
        f.restart().await;
        f
    }

    /// Serves again on the same address with the current settings.
    async fn restart(&self) {
        self.kill();
        self.revive().await;
    }

    async fn start_inner(target: u16, tripwire: Option<&'static [u8]>) -> Forwarder {
        Self::start_inner_with(target, tripwire, None).await
    }

    async fn start_inner_with(target: u16, tripwire: Option<&'static [u8]>, trailer: Option<Rewrite>) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let f = Forwarder {
            addr: listener.local_addr().unwrap(),
            target,
            life: Mutex::new(None),
            tripwire: Mutex::new(tripwire),
            trailer,
            freeze: None,
            frozen_all: Default::default(),
        };
        f.serve(listener);
        f
    }

    fn serve(&self, listener: TcpListener) {
        let token = CancellationToken::new();
        *self.life.lock().unwrap() = Some(token.clone());
        let target = self.target;
        let tripwire = self.tripwire.lock().unwrap().take();
        let trailer = self.trailer;
        let freeze = self.freeze;
        let frozen_all = self.frozen_all.clone();
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => return },
                };
                let token = token.clone();
                let frozen_all = frozen_all.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let frozen = std::sync::atomic::AtomicBool::new(false);
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if tripwire.is_some_and(|p| buf[..n].windows(p.len()).any(|w| w == p)) {
                                token.cancel();
                                return;
                            }
                            if let Some(Freeze::AfterRequest(p)) = freeze {
                                if buf[..n].windows(p.len()).any(|w| w == p) {
                                    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
                                }
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if frozen.load(std::sync::atomic::Ordering::SeqCst) {
                                return std::future::pending().await;
                            }
                            while frozen_all.load(std::sync::atomic::Ordering::SeqCst) {
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            }
                            let mut out = buf[..n].to_vec();
                            if let Some(Freeze::MidAnswer(p)) = freeze {
                                if out.windows(p.len()).any(|w| w == p) {
                                    let _ = cw.write_all(&out[..n / 2]).await;
                                    return std::future::pending().await;
                                }
                            }
                            if let Some(r) = trailer.filter(|r| out.windows(r.pattern.len()).any(|w| w == r.pattern)) {
                                if r.replace {
                                    out.clear();
                                }
                                out.extend_from_slice(r.bytes);
                            }
                            if cw.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
    }

    /// Every connection, open or new, stops passing the server's bytes on (a frozen server
    /// process, or a network that silently drops everything) until [`Forwarder::thaw`].
    #[allow(dead_code)] // used by the fault suite (tests/faults), which shares this file
    pub fn freeze_all(&self) {
        self.frozen_all.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends [`Forwarder::freeze_all`]: held bytes flow again.
    #[allow(dead_code)] // used by the fault suite
    pub fn thaw(&self) {
        self.frozen_all.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The address as Sluice's config names it.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The server "dies": open connections close, new ones are refused.
    pub fn kill(&self) {
        if let Some(t) = self.life.lock().unwrap().take() {
            t.cancel();
        }
    }

    /// The server comes back on the same address.
    pub async fn revive(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebinding {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.kill();
    }
}
