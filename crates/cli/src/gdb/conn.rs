//! The connection to gdb. A reader thread takes the socket's bytes and queues them for the
//! stub (so the stub can wait for gdb's bytes and the guest's stops in one place); one packet
//! the gdbstub crate does not implement, `qXfer:siginfo:read` (gdb's `$_siginfo`, described in
//! the GDB manual, "General Query Packets"), is answered here, and `qXfer:siginfo:read+` is
//! added to the stub's `qSupported` reply so gdb uses it. Acknowledgement mode stays on (the
//! stub is told not to offer QStartNoAckMode), so the framing here is simple.

use cetbox_linux::debug::Debugger;
use gdbstub::conn::{Connection, ConnectionExt};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What the stub waits for: gdb's bytes, a guest event, or the end of the connection.
#[derive(Default)]
pub struct Inbox {
    st: Mutex<InboxState>,
    cv: Condvar,
}

#[derive(Default)]
struct InboxState {
    bytes: VecDeque<u8>,
    event: bool,
    closed: bool,
}

pub enum Next {
    Byte(u8),
    Event,
    Closed,
}

impl Inbox {
    pub fn push(&self, b: &[u8]) {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.bytes.extend(b);
        self.cv.notify_all();
    }

    /// A guest stop or the process's end is ready.
    pub fn event(&self) {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.event = true;
        self.cv.notify_all();
    }

    fn close(&self) {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.closed = true;
        self.cv.notify_all();
    }

    /// The next thing to handle; with `events` false, guest events are left for later.
    pub fn next(&self, events: bool) -> Next {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(b) = g.bytes.pop_front() {
                return Next::Byte(b);
            }
            if events && g.event {
                g.event = false;
                return Next::Event;
            }
            if g.closed {
                return Next::Closed;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn peek(&self) -> Option<u8> {
        let g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.bytes.front().copied()
    }
}

/// State shared by the reader thread and the stub's side of the connection.
pub struct Shared {
    pub inbox: Arc<Inbox>,
    writer: Mutex<TcpStream>,
    /// The next reply is qSupported's.
    qsupported: AtomicBool,
    /// The thread gdb selected with `Hg` (0: none), and the thread of the last stop.
    pub selected: AtomicI32,
    pub last_stop: AtomicI32,
}

impl Shared {
    pub fn send(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Write::write_all(&mut *w, bytes);
        let _ = Write::flush(&mut *w);
    }
}

/// Starts the reader thread for `stream`.
pub fn start(
    stream: TcpStream,
    dbg: Arc<Debugger>,
    inbox: Arc<Inbox>,
) -> std::io::Result<Arc<Shared>> {
    let shared = Arc::new(Shared {
        inbox,
        writer: Mutex::new(TcpStream::from(crate::private_fd::private(
            stream.try_clone()?.into(),
        ))),
        qsupported: AtomicBool::new(false),
        selected: AtomicI32::new(0),
        last_stop: AtomicI32::new(0),
    });
    let s = shared.clone();
    std::thread::Builder::new()
        .name("cetbox-gdb-reader".into())
        .spawn(move || reader(stream, s, dbg))?;
    Ok(shared)
}

fn reader(mut stream: TcpStream, s: Arc<Shared>, dbg: Arc<Debugger>) {
    crate::gdb::block_host_signals();
    let mut packet: Option<Vec<u8>> = None;
    // Checksum digits still to read after '#'.
    let mut tail = 0;
    let mut buf = [0u8; 4096];
    loop {
        let n = match Read::read(&mut stream, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut pass = Vec::with_capacity(n);
        for &b in &buf[..n] {
            match packet.as_mut() {
                None if b == b'$' => packet = Some(vec![b]),
                None => pass.push(b),
                Some(p) => {
                    p.push(b);
                    if tail > 0 {
                        tail -= 1;
                        if tail == 0 {
                            let p = packet.take().unwrap_or_default();
                            if !intercept(&s, &dbg, &p) {
                                pass.extend_from_slice(&p);
                            }
                        }
                    } else if b == b'#' {
                        tail = 2;
                    }
                }
            }
        }
        if !pass.is_empty() {
            s.inbox.push(&pass);
        }
    }
    s.inbox.close();
}

/// Looks at one whole packet (`$payload#cs`); answers it and returns true if it is ours.
fn intercept(s: &Shared, dbg: &Debugger, p: &[u8]) -> bool {
    let payload = &p[1..p.len().saturating_sub(3)];
    if payload.starts_with(b"qSupported") {
        s.qsupported.store(true, Ordering::SeqCst);
    } else if let Some(rest) = payload.strip_prefix(b"Hg") {
        s.selected.store(parse_thread(rest), Ordering::SeqCst);
    } else if let Some(rest) = payload.strip_prefix(b"qXfer:siginfo:read:") {
        let reply = siginfo_reply(s, dbg, rest);
        let mut out = b"+".to_vec();
        out.extend(frame(&reply));
        s.send(&out);
        return true;
    }
    false
}

/// A thread id as gdb writes it (`p<pid>.<tid>` or `<tid>`, hex; 0 and -1 mean none).
fn parse_thread(t: &[u8]) -> i32 {
    let t = std::str::from_utf8(t).unwrap_or("");
    let t = match t.strip_prefix('p') {
        Some(r) => r.split('.').nth(1).unwrap_or(""),
        None => t,
    };
    if t.starts_with('-') {
        return 0;
    }
    i32::from_str_radix(t, 16).unwrap_or(0)
}

/// The reply to `qXfer:siginfo:read:<annex>:<offset>,<length>`.
fn siginfo_reply(s: &Shared, dbg: &Debugger, args: &[u8]) -> Vec<u8> {
    let args = std::str::from_utf8(args).unwrap_or("");
    let Some((_annex, range)) = args.split_once(':') else {
        return b"E01".to_vec();
    };
    let Some((off, len)) = range.split_once(',') else {
        return b"E01".to_vec();
    };
    let (Ok(off), Ok(len)) = (
        usize::from_str_radix(off, 16),
        usize::from_str_radix(len, 16),
    ) else {
        return b"E01".to_vec();
    };
    let mut tid = s.selected.load(Ordering::SeqCst);
    if tid <= 0 {
        tid = s.last_stop.load(Ordering::SeqCst);
    }
    let Some(info) = dbg.siginfo(tid) else {
        return b"E01".to_vec();
    };
    let bytes = info.to_bytes();
    let start = off.min(bytes.len());
    let end = off.saturating_add(len).min(bytes.len());
    let mut out = vec![if end == bytes.len() { b'l' } else { b'm' }];
    out.extend_from_slice(&bytes[start..end]);
    out
}

/// `$<escaped payload>#<checksum>` (binary data escaped with `}` as the protocol says).
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 8);
    for &b in payload {
        if matches!(b, b'$' | b'#' | b'}' | b'*') {
            body.push(b'}');
            body.push(b ^ 0x20);
        } else {
            body.push(b);
        }
    }
    frame_raw(&body)
}

/// `$<payload>#<checksum>` of a payload already escaped.
fn frame_raw(body: &[u8]) -> Vec<u8> {
    let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    let mut out = vec![b'$'];
    out.extend_from_slice(body);
    out.extend(format!("#{sum:02x}").bytes());
    out
}

/// The stub's side: bytes come from the inbox, replies go to the socket (qSupported's with
/// the siginfo feature added).
pub struct GdbConn {
    pub shared: Arc<Shared>,
    out: Vec<u8>,
}

impl GdbConn {
    pub fn new(shared: Arc<Shared>) -> GdbConn {
        GdbConn {
            shared,
            out: Vec::new(),
        }
    }
}

impl Connection for GdbConn {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.out.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.out);
        if let Some(start) = out.iter().position(|&b| b == b'$') {
            if self.shared.qsupported.swap(false, Ordering::SeqCst) {
                if let Some(hash) = out[start..].iter().position(|&b| b == b'#') {
                    let mut payload = out[start + 1..start + hash].to_vec();
                    payload.extend_from_slice(b";qXfer:siginfo:read+");
                    let mut n = out[..start].to_vec();
                    n.extend(frame_raw(&payload));
                    out = n;
                }
            }
        }
        self.shared.send(&out);
        Ok(())
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl ConnectionExt for GdbConn {
    fn read(&mut self) -> Result<u8, Self::Error> {
        self.flush()?;
        match self.shared.inbox.next(false) {
            Next::Byte(b) => Ok(b),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "gdb closed the connection",
            )),
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        Ok(self.shared.inbox.peek())
    }
}
