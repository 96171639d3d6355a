//! Opening a FIFO, which sleeps until the other end is open (fs/pipe.c fifo_open,
//! wait_for_partner: a reader waits for a writer, a writer for a reader; O_RDWR and O_NONBLOCK
//! never wait), through `waitcall`, so a signal recorded just before the host call is not
//! slept through.
//!
//! Linux finds a pending signal only when the open is about to sleep (-ERESTARTSYS), so when
//! one was recorded before the call, the open is made with O_NONBLOCK, which answers at once:
//! a writer gets ENXIO without a reader (then EINTR, restarted per SA_RESTART); a reader
//! always succeeds, and is kept only if a writer is there (a `tee` of the empty FIFO that
//! would wait answers EAGAIN, one without writers 0: fs/splice.c ipipe_prep), else closed and
//! EINTR. The descriptor kept gets its O_NONBLOCK taken off again: it is a new open file
//! description, which no one else holds. A FIFO that holds data but has no writer counts as
//! having one (the tee returns the data's length; Linux's reader would wait).

use crate::errno::{Errno, SysResult};
use crate::hostcall::Arg;
use crate::process::Thread;
use crate::waitcall::Waiter;
use libc::*;
use std::ffi::CString;

/// The open `nr` (`args`) of `path` relative to `dfd` with open flags `flags`; `nonblocking`
/// makes the same open with O_NONBLOCK added.
pub(super) fn open(
    t: &Thread,
    dfd: i32,
    path: &CString,
    flags: u64,
    nr: i64,
    args: [Arg<'_>; 6],
    nonblocking: impl FnOnce() -> SysResult,
) -> SysResult {
    Waiter::of(t).call_or_skip(nr, args).unwrap_or_else(|| {
        let fl = flags as i32;
        let acc = fl & O_ACCMODE;
        if fl & (O_NONBLOCK | O_PATH) != 0 || acc == O_RDWR || !is_fifo(dfd, path, fl) {
            return crate::hostcall::call(nr, args);
        }
        let fd = match nonblocking() {
            Err(Errno::ENXIO) if acc == O_WRONLY => return Err(Errno::EINTR),
            r => r? as i32,
        };
        if acc == O_RDONLY && !has_writer(fd) {
            // SAFETY: `fd` was opened above and given to no one.
            unsafe { close(fd) };
            return Err(Errno::EINTR);
        }
        // SAFETY: F_GETFL/F_SETFL take integers; `fd` is ours.
        unsafe { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & !O_NONBLOCK) };
        Ok(fd as u64)
    })
}

/// Whether `path` (relative to `dfd`; its last link followed unless O_NOFOLLOW) is a FIFO.
fn is_fifo(dfd: i32, path: &CString, flags: i32) -> bool {
    let at = if flags & O_NOFOLLOW != 0 {
        AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a stat of ours.
    unsafe { fstatat(dfd, path.as_ptr(), &mut st, at) == 0 && st.st_mode & S_IFMT == S_IFIFO }
}

/// Whether the FIFO read end `fd` has a writer (see the module documentation).
fn has_writer(fd: i32) -> bool {
    let mut scratch = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into `scratch`.
    if unsafe { pipe2(scratch.as_mut_ptr(), O_CLOEXEC | O_NONBLOCK) } != 0 {
        return true;
    }
    // SAFETY: descriptors of ours; tee takes no pointers.
    let r = unsafe { tee(fd, scratch[1], 1, SPLICE_F_NONBLOCK) };
    // SAFETY: ours, opened above.
    unsafe {
        close(scratch[0]);
        close(scratch[1]);
    }
    // 0: empty, no writer; EAGAIN: empty, a writer; data: counted as a writer.
    r != 0
}
