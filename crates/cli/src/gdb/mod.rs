//! `cetbox run --gdb=[HOST:]PORT`: a gdb remote stub (the gdbstub crate speaks the protocol).
//!
//! The program is loaded, then cetbox listens, says where on stderr, and waits for gdb before
//! the first instruction. The stub runs on its own host thread; the guest's threads stop and
//! resume through the Linux personality's debug controller (`cetbox_linux::debug`). Only the
//! process `cetbox run` started is debugged: its forked children run under cetbox undebugged.

mod arch;
mod conn;
mod monitor;
mod signo;
mod target;

use cetbox_linux::debug::{Debugger, Ended, Stop, StopKind};
use cetbox_linux::events::{Observer, Violation, ViolationKind};
use cetbox_linux::Process;
use gdbstub::common::{Signal, Tid};
use gdbstub::conn::Connection;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use target::GuestTarget;

/// `PORT` means 127.0.0.1:PORT; `HOST:PORT` is used as given.
pub fn listen_address(arg: &str) -> String {
    if arg.chars().all(|c| c.is_ascii_digit()) {
        format!("127.0.0.1:{arg}")
    } else if let Some(port) = arg.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else {
        arg.to_string()
    }
}

/// Keeps the last violation for `monitor report` and passes everything to the reporter.
pub struct Recording {
    pub inner: Arc<dyn Observer>,
    pub last: Arc<Mutex<Option<Violation>>>,
}

impl Observer for Recording {
    fn repeat(&self, rip: u64, kind: ViolationKind) -> bool {
        self.inner.repeat(rip, kind)
    }
    fn violation(&self, v: &Violation) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.clone());
        self.inner.violation(v);
    }
    fn finish(&self) {
        self.inner.finish();
    }
    fn forked(&self) {
        self.inner.forked();
    }
}

/// Host signals go to the guest's threads, never to the stub's.
pub(crate) fn block_host_signals() {
    // SAFETY: changing the calling thread's own signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Listens on `addr`, waits for gdb and starts the stub for `proc`, whose thread `first` is
/// about to run its first instruction.
pub fn attach(
    addr: &str,
    proc: &Arc<Process>,
    first: i32,
    last: Arc<Mutex<Option<Violation>>>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    eprintln!("cetbox: waiting for gdb on {local} (in gdb: target remote {local})");
    let (stream, _) = listener.accept()?;
    drop(listener);
    stream.set_nodelay(true)?;
    let stream = TcpStream::from(crate::private_fd::private(stream.into()));
    let inbox = Arc::new(conn::Inbox::default());
    let notify = {
        let inbox = inbox.clone();
        Box::new(move || inbox.event())
    };
    let dbg = Arc::new(Debugger::new(proc.clone(), first, notify));
    let reader = TcpStream::from(crate::private_fd::private(stream.try_clone()?.into()));
    let shared = conn::start(reader, dbg.clone(), inbox)?;
    shared.last_stop.store(first, Ordering::SeqCst);
    cetbox_linux::debug::install(dbg.clone());
    std::thread::Builder::new()
        .name("cetbox-gdb".into())
        .spawn(move || serve(stream, dbg, shared, last))?;
    Ok(())
}

fn serve(
    stream: TcpStream,
    dbg: Arc<Debugger>,
    shared: Arc<conn::Shared>,
    last: Arc<Mutex<Option<Violation>>>,
) {
    block_host_signals();
    // The first thread stops before its first instruction.
    if dbg.wait_stopped().is_err() {
        return;
    }
    let target = GuestTarget::new(dbg.clone(), shared.clone(), last);
    let keep = shared.clone();
    let conn = conn::GdbConn::new(shared);
    let mut target = target;
    let stub = GdbStub::new(conn);
    let result = stub.run_blocking::<Loop>(&mut target);
    drop(stream);
    match result {
        Ok(DisconnectReason::TargetExited(_)) | Ok(DisconnectReason::TargetTerminated(_)) => {
            dbg.end_seen()
        }
        Ok(DisconnectReason::Kill) => {
            // gdb waits for vKill's OK, which the stub leaves to us outside extended mode.
            keep.send(b"$OK#9a");
            cetbox_linux::exit::die_by_signal(libc::SIGKILL)
        }
        // gdb detached, or the connection went away: the guest runs on undebugged.
        Ok(DisconnectReason::Disconnect) | Err(_) => {
            dbg.end_seen();
            dbg.detach()
        }
    }
}

fn stop_reason(t: &GuestTarget, s: Stop) -> MultiThreadStopReason<u64> {
    t.shared.last_stop.store(s.tid, Ordering::SeqCst);
    let tid = Tid::new(s.tid.max(1) as usize).unwrap_or(Tid::MIN);
    let sig = |n: i32| MultiThreadStopReason::SignalWithThread {
        tid,
        signal: Signal(signo::to_gdb(n)),
    };
    match s.kind {
        StopKind::Signal(si) => sig(si.signo),
        StopKind::SwBreak => MultiThreadStopReason::SwBreak(tid),
        StopKind::HwBreak => MultiThreadStopReason::HwBreak(tid),
        StopKind::Step | StopKind::Exec => sig(libc::SIGTRAP),
        StopKind::Interrupted => sig(libc::SIGINT),
        StopKind::Watch(h) => MultiThreadStopReason::Watch {
            tid,
            kind: match h.kind {
                cetbox_linux::debug::watch::WatchKind::Write => {
                    gdbstub::target::ext::breakpoints::WatchKind::Write
                }
                cetbox_linux::debug::watch::WatchKind::Read => {
                    gdbstub::target::ext::breakpoints::WatchKind::Read
                }
                cetbox_linux::debug::watch::WatchKind::Access => {
                    gdbstub::target::ext::breakpoints::WatchKind::ReadWrite
                }
            },
            addr: h.addr,
        },
    }
}

enum Loop {}

impl BlockingEventLoop for Loop {
    type Target = GuestTarget;
    type Connection = conn::GdbConn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut GuestTarget,
        conn: &mut conn::GdbConn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<&'static str, std::io::Error>> {
        conn.flush().map_err(WaitForStopReasonError::Connection)?;
        loop {
            match conn.shared.inbox.next(true) {
                conn::Next::Byte(b) => return Ok(Event::IncomingData(b)),
                conn::Next::Event => {
                    if !target.dbg.has_event() {
                        continue;
                    }
                    let r = match target.dbg.wait_stopped() {
                        Ok(stop) => stop_reason(target, stop),
                        Err(Ended::Exited(c)) => MultiThreadStopReason::Exited(c as u8),
                        Err(Ended::Killed(s)) => {
                            MultiThreadStopReason::Terminated(Signal(signo::to_gdb(s)))
                        }
                    };
                    return Ok(Event::TargetStopped(r));
                }
                conn::Next::Closed => {
                    return Err(WaitForStopReasonError::Connection(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "gdb closed the connection",
                    )))
                }
            }
        }
    }

    fn on_interrupt(target: &mut GuestTarget) -> Result<Option<Self::StopReason>, &'static str> {
        target.dbg.interrupt();
        Ok(None)
    }
}
