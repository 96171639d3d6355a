//! Host system calls made on the guest's behalf.
//!
//! A raw host syscall can make the host kernel write wherever its pointer arguments lead, so
//! the raw call ([`raw`]) is `unsafe`. Syscall handlers instead use the safe [`host!`] macro,
//! whose arguments are [`Arg`]s: a plain integer (`u64`), which the host kernel validates, or
//! a [`HostPtr`], which only these can produce:
//!
//! - the guest-buffer checks of `syscalls::fs` (`buf`, `opt_buf`, `io_prefix`,
//!   `io_prefix_from`, `guest_range`): guest memory checked against the page table for the
//!   access the call makes (guest memory is host memory at the same address), or a `usermem`
//!   bounce buffer or guarded window (`window_out`) standing for it;
//! - a borrow of a host buffer the handler owns ([`HostPtr::of_mut`] for anything the host may
//!   write, [`HostPtr::of`] for input the call only reads), valid for as long as the borrow.
//!
//! What stays the caller's duty is the one thing types cannot say: that an integer argument
//! is not an address the host dereferences (a guest address must go through a check first).

use crate::errno::{Errno, SysResult};
use std::marker::PhantomData;

/// Issues the host syscall `nr` with raw arguments.
///
/// # Safety
///
/// Every argument the host kernel dereferences for `nr` must point to memory valid for the
/// access it makes there, for the whole call: guest memory checked against the page table for
/// that access (the host's writes into it must be ones the guest may see), or host memory no
/// live Rust reference covers except one the caller holds exclusively (for writes) or shared
/// (for reads). Non-pointer arguments are unrestricted: the host kernel validates them.
pub unsafe fn raw(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the caller guarantees the pointer arguments (see above).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    Errno::check(r)
}

/// A pointer a host syscall may use: checked guest memory, a bounce buffer, or a borrowed
/// host buffer, valid for `'a` (guest buffers: until the syscall returns to the guest).
#[derive(Clone, Copy, Debug)]
pub struct HostPtr<'a> {
    ptr: *mut u8,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl HostPtr<'static> {
    /// The null pointer (an absent optional argument).
    pub const NULL: HostPtr<'static> = HostPtr {
        ptr: std::ptr::null_mut(),
        _borrow: PhantomData,
    };

    /// A guest buffer the page table allows for the access the host call makes, or a bounce
    /// buffer standing for one: only the checks in `syscalls::fs` and `usermem` make these.
    pub(crate) fn checked(ptr: *mut u8) -> HostPtr<'static> {
        HostPtr {
            ptr,
            _borrow: PhantomData,
        }
    }
}

impl<'a> HostPtr<'a> {
    /// A host buffer the call may read and write.
    pub fn of_mut<T: ?Sized>(v: &'a mut T) -> HostPtr<'a> {
        HostPtr {
            ptr: (v as *mut T).cast::<u8>(),
            _borrow: PhantomData,
        }
    }

    /// A host buffer the call only reads (a path, a struct passed in): never pass one where
    /// the host writes.
    pub fn of<T: ?Sized>(v: &'a T) -> HostPtr<'a> {
        HostPtr {
            ptr: (v as *const T).cast::<u8>().cast_mut(),
            _borrow: PhantomData,
        }
    }

    /// The pointer itself (for building host structs that carry it, and for reading checked
    /// guest input).
    pub fn as_ptr(self) -> *mut u8 {
        self.ptr
    }

    /// The address, as a syscall argument or struct field carries it.
    pub fn addr(self) -> u64 {
        self.ptr as u64
    }

    pub fn is_null(self) -> bool {
        self.ptr.is_null()
    }
}

/// One argument of a host syscall made through [`host!`]: an integer or a [`HostPtr`].
#[derive(Clone, Copy, Debug)]
pub struct Arg<'a> {
    value: u64,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl Arg<'_> {
    /// The register value the host call receives.
    pub(crate) fn value(self) -> u64 {
        self.value
    }
}

impl From<u64> for Arg<'static> {
    fn from(value: u64) -> Self {
        Arg {
            value,
            _borrow: PhantomData,
        }
    }
}

impl<'a> From<HostPtr<'a>> for Arg<'a> {
    fn from(p: HostPtr<'a>) -> Self {
        Arg {
            value: p.addr(),
            _borrow: PhantomData,
        }
    }
}

/// Pads up to six arguments with zeros.
#[doc(hidden)]
pub fn args<'a, const N: usize>(a: [Arg<'a>; N]) -> [Arg<'a>; 6] {
    const { assert!(N <= 6, "a syscall takes at most six arguments") };
    let mut out = [Arg::from(0u64); 6];
    out[..N].copy_from_slice(&a);
    out
}

/// Issues the host syscall `nr` with arguments that are integers or [`HostPtr`]s: what
/// [`host!`] expands to, and the form for an argument list built as an array (futex).
pub fn call(nr: i64, a: [Arg<'_>; 6]) -> SysResult {
    // SAFETY: every pointer argument is a HostPtr: checked guest memory or a bounce buffer
    // (valid until the syscall returns), or a host buffer borrowed for at least this call,
    // mutably wherever the host may write (see the module documentation). Integers are
    // validated by the host kernel.
    unsafe { raw(nr, a.map(|x| x.value)) }
}

/// `host!(nr, args...)`: the host syscall `nr` with up to six arguments, each a `u64` or a
/// [`HostPtr`] (missing ones are 0).
macro_rules! host {
    ($nr:expr $(, $a:expr)* $(,)?) => {
        $crate::hostcall::call($nr, $crate::hostcall::args([$($crate::hostcall::Arg::from($a)),*]))
    };
}
pub(crate) use host;
