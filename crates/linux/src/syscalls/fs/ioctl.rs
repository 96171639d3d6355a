//! ioctl. Known requests are passed through with their argument checked for the size the
//! kernel reads or writes. Requests built with the _IOC encoding carry their size and
//! direction, which is checked conservatively. Anything else is passed through only when the
//! argument cannot be a pointer into cetbox's own memory (a small integer below mmap_min_addr,
//! or an address inside guest memory); otherwise EFAULT. The host kernel answers ENOTTY for
//! requests the descriptor does not support, exactly as it would natively.
//!
//! Outputs never reach guest memory directly: known and encoded requests write a bounce
//! buffer (`usermem::struct_out`), requests of unknown size a one-page window followed by a
//! guard page (`usermem::window_out`), and only the bytes the host changed are copied back,
//! each page checked writable at that moment (a read-only or shadow-stack page: EFAULT,
//! unchanged). Linux hands a request it does not know to the driver, which copies as much as
//! its structure needs; a window of one page covers the legacy requests without a size
//! encoding that guests commonly make (tty 0x54xx, socket 0x89xx with a 40-byte struct ifreq,
//! and the loop, cdrom, floppy, block and SG_IO structures, all smaller than a page). A
//! request that reads or writes past the window gets EFAULT where Linux would succeed.
//!
//! Pointers *inside* an argument structure are the one thing cetbox cannot redirect in
//! general: the host would follow them as the guest wrote them. The socket requests whose
//! ifreq carries such a pointer (`ifr_data`: SIOCETHTOOL, the hardware-timestamping, bonding
//! and device-private requests), which any guest can make, get a window for it too
//! (`ifr_data_ioctl`). Device-specific requests that follow embedded pointers (SG_IO on
//! /dev/sg*, DRM on /dev/dri, KVM, perf events) are passed through unchanged: a guest that can
//! open such a device could make the host write where those pointers lead; cetbox assumes
//! guests cannot open them (docs/ARCHITECTURE.md, README "Known limits").

use super::{buf, fd_arg, host, is_private};
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg as HostArg, HostPtr};
use crate::process::Thread;
use cetbox_mem::Access;
use libc::SYS_ioctl;

/// How a request uses its argument.
#[derive(Clone, Copy)]
enum Arg {
    /// An integer (or ignored).
    Int,
    /// A pointer to `n` bytes the kernel reads.
    In(u64),
    /// A pointer to `n` bytes the kernel writes.
    Out(u64),
    /// A pointer to `n` bytes read and written.
    InOut(u64),
    /// A descriptor number.
    Fd,
}

const TERMIOS: u64 = 60;
const TERMIO: u64 = 18;

fn known(req: u32) -> Option<Arg> {
    use Arg::*;
    Some(match req {
        0x5401 => Out(TERMIOS),         // TCGETS
        0x5402..=0x5404 => In(TERMIOS), // TCSETS, TCSETSW, TCSETSF
        0x5405 => Out(TERMIO),          // TCGETA
        0x5406..=0x5408 => In(TERMIO),  // TCSETA, TCSETAW, TCSETAF
        0x5409..=0x540b => Int,         // TCSBRK, TCXONC, TCFLSH
        0x540c..=0x540e => Int,         // TIOCEXCL, TIOCNXCL, TIOCSCTTY
        0x540f => Out(4),               // TIOCGPGRP
        0x5410 => In(4),                // TIOCSPGRP
        0x5411 => Out(4),               // TIOCOUTQ
        0x5412 => In(1),                // TIOCSTI
        0x5413 => Out(8),               // TIOCGWINSZ
        0x5414 => In(8),                // TIOCSWINSZ
        0x5415 => Out(4),               // TIOCMGET
        0x5416..=0x5418 => In(4),       // TIOCMBIS, TIOCMBIC, TIOCMSET
        0x5419 => Out(4),               // TIOCGSOFTCAR
        0x541a => In(4),                // TIOCSSOFTCAR
        0x541b => Out(4),               // FIONREAD / TIOCINQ
        0x541d => Int,                  // TIOCCONS
        0x5420 => In(4),                // TIOCPKT
        0x5421 => In(4),                // FIONBIO
        0x5422 => Int,                  // TIOCNOTTY
        0x5423 => In(4),                // TIOCSETD
        0x5424 => Out(4),               // TIOCGETD
        0x5425 => Int,                  // TCSBRKP
        0x5427 | 0x5428 => Int,         // TIOCSBRK, TIOCCBRK
        0x5429 => Out(4),               // TIOCGSID
        0x5441 => Int,                  // TIOCGPTPEER (flags)
        0x5450 | 0x5451 => Int,         // FIONCLEX, FIOCLEX
        0x5452 => In(4),                // FIOASYNC
        0x5456 => Out(TERMIOS),         // TIOCGLCKTRMIOS
        0x5457 => In(TERMIOS),          // TIOCSLCKTRMIOS
        0x5460 => Out(8),               // FIOQSIZE
        0x8901 | 0x8902 => In(4),       // FIOSETOWN, SIOCSPGRP
        0x8903..=0x8905 => Out(4),      // FIOGETOWN, SIOCGPGRP, SIOCATMARK
        0x8906 => Out(16),              // SIOCGSTAMP
        0x8907 => Out(16),              // SIOCGSTAMPNS
        0x8912 => return None,          // SIOCGIFCONF: see sys_ioctl
        0x8910..=0x8938 => InOut(40),   // SIOCxIF* (struct ifreq)
        0x4004_9409 => Fd,              // FICLONE (argument is a descriptor)
        _ => return None,
    })
}

/// The _IOC encoding: dir in bits 30..31 (1 write = kernel reads, 2 read = kernel writes),
/// size in bits 16..29.
fn encoded(req: u32) -> Option<Arg> {
    let dir = req >> 30;
    let size = ((req >> 16) & 0x3fff) as u64;
    match (dir, size) {
        (0, _) | (_, 0) => None,
        (1, n) => Some(Arg::In(n)),
        (2, n) => Some(Arg::Out(n)),
        (_, n) => Some(Arg::InOut(n)),
    }
}

const SIOCGIFCONF: u32 = 0x8912;

/// How much of the guest memory behind an ioctl argument of unknown size the host sees: one
/// page (see the module documentation); a request reading or writing beyond it gets EFAULT
/// from the guard page after the window.
const UNKNOWN_WINDOW: u64 = 4096;

/// Linux never maps below this address (vm.mmap_min_addr), so such arguments are integers.
const MMAP_MIN_ADDR: u64 = 0x10000;

pub(crate) fn sys_ioctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let req = a[1] as u32;
    let arg = a[2];
    if let Some(r) = crate::syscalls::uffd::ioctl(t, fd, req, arg) {
        return r;
    }
    if carries_ifr_data(req) {
        return ifr_data_ioctl(t, fd, req, arg);
    }
    let kind = known(req).or_else(|| encoded(req));
    // What the host gets: the guest pointer for inputs, a bounce buffer for outputs.
    let mut host_arg = HostArg::from(arg);
    match kind {
        Some(Arg::Int) => {}
        Some(Arg::Fd) => {
            if is_private(arg as u32 as i32) {
                return Err(Errno::EBADF);
            }
        }
        Some(Arg::In(n)) => match buf(t, arg, n, Access::Read) {
            Ok(p) => host_arg = p.into(),
            Err(_) => return bad_pointer(fd, req),
        },
        Some(Arg::Out(n)) | Some(Arg::InOut(n)) => match buf(t, arg, n, Access::Write) {
            Ok(p) => host_arg = p.into(),
            Err(_) => return bad_pointer(fd, req),
        },
        None if req == SIOCGIFCONF => {
            // struct ifconf { int ifc_len; char *ifc_buf; }: the kernel writes ifc_len bytes
            // at ifc_buf (when not NULL) and updates ifc_len. The host gets its own ifconf
            // pointing at a bounce buffer.
            buf(t, arg, 16, Access::Write)?;
            let len = t.mem().read_u32(arg)? as i32;
            let ubuf = t.mem().read_u64(arg + 8)?;
            let hbuf = if ubuf != 0 && len > 0 {
                buf(t, ubuf, len as u64, Access::Write)?.addr()
            } else {
                // NULL (the host only counts), or a length that lets it write nothing.
                ubuf
            };
            let mut ifc = [len as u32 as u64, hbuf];
            let r = host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of_mut(&mut ifc))?;
            t.mem().write_bytes(arg, &(ifc[0] as u32).to_le_bytes())?;
            return Ok(r);
        }
        None => {
            if arg >= MMAP_MIN_ADDR {
                if t.mem().check(arg, 1, Access::Read).is_err() {
                    return Err(Errno::EFAULT);
                }
                // A request that does not encode its argument's size: the host gets a window
                // onto the readable guest bytes from `arg` (up to UNKNOWN_WINDOW), never the
                // guest pointer, so whatever it writes reaches guest memory only through the
                // checked copy-out (a shadow-stack or read-only page: EFAULT, unchanged).
                let n = super::valid_prefix(t, arg, UNKNOWN_WINDOW, Access::Read);
                host_arg = crate::usermem::window_out(arg, n)?.into();
            }
        }
    }
    host!(SYS_ioctl, fd as u64, req as u64, host_arg)
}

/// Socket requests whose `struct ifreq` carries a pointer, `ifr_data` at offset 16, to a
/// request-specific structure the kernel reads and writes (net/core/dev_ioctl.c `dev_ioctl`:
/// SIOCETHTOOL, SIOCGHWTSTAMP/SIOCSHWTSTAMP, SIOCBONDSLAVEINFOQUERY/SIOCBONDINFOQUERY,
/// SIOCDEVPRIVATE..+15). Any guest can make them on any socket, so the pointer must never
/// reach the host as the guest gave it (the host would write driver data wherever it points:
/// a shadow stack, a read-only page, cetbox's own memory).
fn carries_ifr_data(req: u32) -> bool {
    matches!(
        req,
        0x8946 | 0x8993 | 0x8994 | 0x89b0 | 0x89b1 | 0x89f0..=0x89ff
    )
}

/// sizeof(struct ifreq) and the offset of ifr_data in it.
const IFREQ: usize = 40;
const IFR_DATA: usize = 16;

/// A [`carries_ifr_data`] request: the host gets its own copy of the ifreq whose `ifr_data`
/// points at a window onto the guest's structure (`usermem::window_out`: at most one page,
/// a guard page after it, changed bytes copied back with a fresh check), and the bytes of the
/// ifreq the host changed, other than the pointer, are copied back. A structure longer than a
/// page (ETHTOOL_GSTRINGS with many strings, a large ETHTOOL_GEEPROM) fails with EFAULT where
/// Linux would transfer it.
fn ifr_data_ioctl(t: &Thread, fd: i32, req: u32, arg: u64) -> SysResult {
    let mut ifr = [0u8; IFREQ];
    if t.mem().read_bytes(arg, &mut ifr).is_err() {
        return bad_pointer(fd, req);
    }
    let before = ifr;
    let data = u64::from_le_bytes(ifr[IFR_DATA..IFR_DATA + 8].try_into().unwrap_or([0; 8]));
    if data != 0 {
        if t.mem().check(data, 1, Access::Read).is_err() {
            return Err(Errno::EFAULT);
        }
        let n = super::valid_prefix(t, data, 4096, Access::Read);
        let window = crate::usermem::window_out(data, n)?;
        ifr[IFR_DATA..IFR_DATA + 8].copy_from_slice(&window.addr().to_le_bytes());
    }
    let r = host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of_mut(&mut ifr));
    ifr[IFR_DATA..IFR_DATA + 8].copy_from_slice(&before[IFR_DATA..IFR_DATA + 8]);
    if ifr != before {
        t.mem().write_bytes(arg, &ifr)?;
    }
    r
}

/// An ioctl whose argument is a bad pointer: drivers check that the request applies to the
/// file before they copy (a tty ioctl on anything else is ENOTTY, an unknown request EINVAL
/// or ENOTTY), so the host is asked with a NULL argument, which it can never dereference, and
/// its answer is the guest's; EFAULT if it would have gone as far as the copy.
fn bad_pointer(fd: i32, req: u32) -> SysResult {
    match host!(SYS_ioctl, fd as u64, req as u64) {
        Err(e) => Err(e),
        Ok(_) => Err(Errno::EFAULT),
    }
}
