//! ioctl. The host kernel never receives a guest pointer it could follow unchecked: an ioctl's
//! argument means what the driver behind the descriptor says, including pointers *inside* the
//! structure it points at (SG_IO's data, command and sense buffers, DRM's and KVM's buffers,
//! perf's attributes), which the host would follow as the guest wrote them: reading or writing
//! where cetbox did not check, a shadow stack, a read-only page or cetbox's own memory. So an
//! ioctl reaches the host only in one of these forms:
//!
//! - a request whose argument layout cetbox knows (`layouts.rs`: no pointers or descriptors
//!   inside): the host sees a copy of the argument in a guarded window (`usermem::window_in`,
//!   `window_out`: at most a page, an inaccessible page after it), never guest memory; what
//!   the kernel writes reaches the guest through the checked copy-out (a read-only or
//!   shadow-stack page: EFAULT, unchanged);
//! - a request whose structure holds pointers or descriptors cetbox knows (`nested.rs`:
//!   SIOCGIFCONF, the `ifr_data` socket requests, SG_IO, FIDEDUPERANGE, FICLONERANGE,
//!   LOOP_CONFIGURE): the host gets cetbox's own copy, whose pointers lead to checked buffers;
//! - any other request with an argument below [`INTEGER_LIMIT`], which is an integer or a
//!   pointer the host cannot follow to anything mapped;
//! - any other request with a larger argument is refused: cetbox cannot prove what the driver
//!   does with it. The guest gets ENOTTY, what Linux answers for a request the descriptor's
//!   driver does not implement (fs/ioctl.c `vfs_ioctl`: -ENOIOCTLCMD becomes -ENOTTY), and
//!   cetbox says so on stderr once per request, naming it with its _IOC fields
//!   (include/uapi/asm-generic/ioctl.h: nr in bits 0..7, type in 8..15, size in 16..29, dir
//!   in 30..31). The _IOC size is not used to pass unknown requests: it is often the size of
//!   a pointer (perf's `_IOW('$', 6, char *)`), or of a header followed by an array the kernel
//!   also accesses (FS_IOC_FIEMAP, KVM_GET_MSR_INDEX_LIST), and says nothing of the pointers
//!   inside (every DRM and KVM structure).
//!
//! Request numbers are shared between drivers (Documentation/userspace-api/ioctl/
//! ioctl-number.rst): a driver that gave a number of `layouts.rs` a structure with pointers
//! inside would read pointers from the guest's copy; the table lists the generic families
//! (tty, socket, file system, block, loop, random, perf, nsfs, timerfd) whose numbers the kernel
//! dispatches before or instead of a driver's own.

mod layouts;
mod nested;

use super::{fd_arg, host, is_private};
use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use cetbox_mem::Access;
use layouts::Arg;
use libc::SYS_ioctl;
use std::sync::Mutex;

/// Arguments below this are passed through to requests cetbox does not know: the guest maps
/// nothing below MMAP_MIN_ADDR (0x10000), cetbox maps nothing there, and an _IOC structure is
/// smaller than 16 KiB (its 14-bit size field), so a kernel access starting below this limit
/// faults before it reaches any mapping (EFAULT, as natively for an unmapped pointer).
pub const INTEGER_LIMIT: u64 = cetbox_mem::MMAP_MIN_ADDR - 0x4000;

pub(crate) fn sys_ioctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let req = a[1] as u32;
    let arg = a[2];
    if let Some(r) = crate::syscalls::uffd::ioctl(t, fd, req, arg) {
        return r;
    }
    if let Some(r) = nested::ioctl(t, fd, req, arg) {
        return r;
    }
    let host_arg = match layouts::known(req) {
        Some(Arg::Int) => crate::hostcall::Arg::from(arg),
        Some(Arg::Fd) => {
            if is_private(arg as u32 as i32) {
                return Err(Errno::EBADF);
            }
            crate::hostcall::Arg::from(arg)
        }
        Some(Arg::In(n)) => {
            if !readable(t, arg, n) {
                return bad_pointer(fd, req);
            }
            crate::usermem::window_in(arg, n)?.into()
        }
        Some(Arg::Out(n)) | Some(Arg::InOut(n)) => {
            if !writable(t, arg, n) {
                return bad_pointer(fd, req);
            }
            crate::usermem::window_out(arg, n)?.into()
        }
        None if arg < INTEGER_LIMIT => crate::hostcall::Arg::from(arg),
        None => return refuse(fd, req, "its argument"),
    };
    if let Some(plain_eintr) = drains_output(req) {
        let r = drain_wait(t, fd, req, host_arg);
        if plain_eintr && r == Err(Errno::EINTR) {
            // TCSBRK and TCSBRKP answer a plain -EINTR, which is never restarted
            // (drivers/tty/tty_io.c tty_ioctl), unlike the -ERESTARTSYS of other ioctls.
            t.signals.in_syscall = None;
        }
        return r;
    }
    host!(SYS_ioctl, fd as u64, req as u64, host_arg)
}

/// The tty requests that sleep until the output queue has drained (tty_wait_until_sent):
/// `Some(true)` for TCSBRK and TCSBRKP (tcdrain), whose interrupted wait answers -EINTR,
/// `Some(false)` for the set-termios requests that drain first (TCSETSW, TCSETSF, TCSETAW,
/// TCSETAF and the termios2 forms: drivers/tty/tty_ioctl.c set_termios, -ERESTARTSYS).
fn drains_output(req: u32) -> Option<bool> {
    match req {
        0x5409 | 0x5425 => Some(true),
        0x5403 | 0x5404 | 0x5407 | 0x5408 | 0x402c_542c | 0x402c_542d => Some(false),
        _ => None,
    }
}

/// A draining request through `waitcall`: when a signal was recorded before it began, Linux
/// would find it only if the wait sleeps, that is if output is still queued (TIOCOUTQ, the
/// count tty_wait_until_sent waits on): then EINTR, else the request is made (its break, for
/// TCSBRK 0 on a line with one, sleeps for a bounded time).
fn drain_wait(t: &Thread, fd: i32, req: u32, arg: crate::hostcall::Arg<'_>) -> SysResult {
    let args = crate::hostcall::args([(fd as u64).into(), (req as u64).into(), arg]);
    crate::waitcall::Waiter::of(t)
        .call_or_skip(SYS_ioctl, args)
        .unwrap_or_else(|| {
            let mut queued: libc::c_int = 0;
            // SAFETY: TIOCOUTQ writes one int.
            let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
            if r == 0 && queued > 0 {
                Err(Errno::EINTR)
            } else {
                // Output may be queued meanwhile: poked (waitcall/poke.rs).
                crate::waitcall::poke::call(SYS_ioctl, args)
            }
        })
}

fn readable(t: &Thread, addr: u64, n: u64) -> bool {
    crate::usermem::access_ok(addr, n) && t.mem().check(addr, n, Access::Read).is_ok()
}

/// Writable, and faulted in as the kernel's write would (a userfaultfd-registered page waits
/// for its handler here).
fn writable(t: &Thread, addr: u64, n: u64) -> bool {
    crate::usermem::access_ok(addr, n)
        && t.mem().check(addr, n, Access::Write).is_ok()
        && t.mem().fault_in_for_write(addr, n as usize) >= n as usize
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

/// A request cetbox cannot prove safe to hand the host (see the module documentation): EBADF
/// for a descriptor that is not open, as Linux checks it first; else ENOTTY, with one line on
/// stderr the first time the process makes this request.
fn refuse(fd: i32, req: u32, what: &str) -> SysResult {
    host!(libc::SYS_fcntl, fd as u64, libc::F_GETFD as u64)?;
    // Per host process, as the guest's stderr is: one line per request, not one per call.
    static SAID: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&req) {
        said.push(req);
        let (dir, ty, nr, size) = (
            req >> 30,
            (req >> 8) & 0xff,
            req & 0xff,
            (req >> 16) & 0x3fff,
        );
        let dir = ["none", "write", "read", "read/write"][dir as usize];
        crate::diag::diag(&format!(
            "ioctl request {req:#x} (_IOC dir {dir}, type {ty:#04x}, nr {nr:#04x}, size {size}) \
             refused with ENOTTY: cetbox does not know what the driver does with {what}, and \
             the host kernel would follow any pointer in it unchecked"
        ));
    }
    Err(Errno::ENOTTY)
}
