//! The new mount API (fsopen, fsconfig, fsmount, move_mount, open_tree, fspick,
//! mount_setattr), passed to the host as mount is (`mount.rs`): the host applies Linux's
//! rules and its order of checks. cetbox copies what the guest points at into buffers of its
//! own, each as the kernel copies it (fs/fsopen.c, fs/namespace.c), so that the host reads
//! nothing the guest could not: a string the guest cannot supply whole (it runs into an
//! unreadable page) reaches the host as a pointer to an inaccessible page, and one longer than
//! the kernel's limit as that many bytes with no NUL among them, so the host answers EFAULT or
//! EINVAL at the point where Linux would. Paths go through the guest's path resolution
//! (`--sysroot`), and so do fsconfig's string options that name paths (`mount_options.rs`;
//! a mapped value longer than fsconfig's 256-byte limit is refused by the host, EINVAL),
//! and descriptors through cetbox's private-descriptor check (EBADF; a dirfd only where
//! Linux consults it, `fs::dirfd_arg`).

use super::fs::{access_ok, dirfd_arg, fd_arg, host, sysroot_path};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use std::ffi::CString;
use std::sync::Mutex;

/// What a guest string becomes for the host (see the module documentation).
enum HostStr {
    Null,
    Str(Vec<u8>),
    Fault,
}

impl HostStr {
    fn ptr(&self) -> Result<HostPtr<'_>, Errno> {
        Ok(match self {
            HostStr::Null => HostPtr::NULL,
            HostStr::Str(v) => HostPtr::of(&v[..]),
            HostStr::Fault => crate::usermem::inaccessible()?,
        })
    }
}

/// The guest string at `addr` as `strndup_user(addr, max)` (or getname, with `max` PATH_MAX)
/// would see it: up to `max + 1` bytes decide between a NUL within the limit, a fault before
/// it, and a string the kernel finds too long, which the host is given as `max + 1` bytes
/// with no NUL among them (it refuses it before it uses a byte of it).
fn guest_str(t: &Thread, addr: u64, max: usize) -> HostStr {
    if addr == 0 {
        return HostStr::Null;
    }
    if !access_ok(addr, 1) {
        return HostStr::Fault;
    }
    match t.mem().read_cstr(addr, max + 1) {
        Ok(Some(mut v)) => {
            v.push(0);
            HostStr::Str(v)
        }
        Ok(None) => {
            let mut v = vec![b'x'; max + 1];
            v.push(0);
            HostStr::Str(v)
        }
        Err(_) => HostStr::Fault,
    }
}

/// A path argument: the guest's resolution applies to a complete absolute path.
fn guest_path(t: &Thread, addr: u64) -> HostStr {
    match guest_str(t, addr, libc::PATH_MAX as usize) {
        HostStr::Str(v) if v.first() == Some(&b'/') && v.len() <= libc::PATH_MAX as usize => {
            let c = CString::from_vec_with_nul(v).expect("ends at its first NUL");
            HostStr::Str(sysroot_path(t, c, true).into_bytes_with_nul())
        }
        s => s,
    }
}

impl HostStr {
    /// The dirfd argument `raw` that goes with this path (`fs::dirfd_arg`: a cetbox
    /// descriptor is EBADF only where Linux would consult it, a relative or empty path; a path
    /// the host cannot read fails there first, EFAULT, as getname comes before the lookup).
    fn dirfd(&self, raw: u64) -> Result<u64, Errno> {
        let path: &[u8] = match self {
            HostStr::Str(v) => v,
            HostStr::Null => b"",
            HostStr::Fault => return Ok(raw as u32 as u64),
        };
        Ok(dirfd_arg(raw, path)? as u32 as u64)
    }
}

/// The file system type of each descriptor fsopen returned in this process, for fsconfig's
/// options that name paths (`mount_options`). A number fspick returns forgets its entry
/// (reconfiguration takes no path options), and the next fsopen that returns it replaces it.
static FS_TYPES: Mutex<Vec<(u64, Vec<u8>)>> = Mutex::new(Vec::new());

fn remember_type(fd: u64, ty: Option<Vec<u8>>) {
    let mut types = FS_TYPES.lock().unwrap_or_else(|e| e.into_inner());
    types.retain(|(f, _)| *f != fd);
    if let Some(ty) = ty {
        types.push((fd, ty));
    }
}

fn type_of(fd: u64) -> Option<Vec<u8>> {
    let types = FS_TYPES.lock().unwrap_or_else(|e| e.into_inner());
    types
        .iter()
        .find(|(f, _)| *f == fd)
        .map(|(_, ty)| ty.clone())
}

/// fsopen(fs_name, flags): strndup_user(fs_name, PAGE_SIZE).
pub(crate) fn sys_fsopen(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let name = guest_str(t, a[0], 4096);
    let fd = host!(libc::SYS_fsopen, name.ptr()?, a[1] as u32 as u64)?;
    if let HostStr::Str(v) = &name {
        remember_type(fd, Some(v[..v.len() - 1].to_vec()));
    }
    Ok(fd)
}

const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_BINARY: u32 = 2;
const FSCONFIG_SET_PATH: u32 = 3;
const FSCONFIG_SET_PATH_EMPTY: u32 = 4;
/// fsconfig's limits on keys and string values (fs/fsopen.c: strndup_user(_key, 256)) and on
/// binary values (1 MiB).
const KEY_MAX: usize = 256;
const BINARY_MAX: u64 = 1 << 20;

/// fsconfig(fd, cmd, key, value, aux): the value is a string, a blob of `aux` bytes or a path
/// (relative to descriptor `aux`) by `cmd`; other commands take no pointer in `value`, which
/// the host then refuses unless it is null.
pub(crate) fn sys_fsconfig(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])? as u32 as u64;
    let cmd = a[1] as u32;
    let aux = a[4] as u32 as i32;
    let key = guest_str(t, a[2], KEY_MAX);
    let value = match cmd {
        FSCONFIG_SET_STRING => match (guest_str(t, a[3], KEY_MAX), &key, type_of(fd)) {
            // An option that names a path, under --sysroot (`mount_options`).
            (HostStr::Str(v), HostStr::Str(k), Some(ty)) => {
                let (k, val) = (&k[..k.len() - 1], &v[..v.len() - 1]);
                match super::mount_options::map_value(t, &ty, k, val) {
                    Some(mut m) => {
                        m.push(0);
                        HostStr::Str(m)
                    }
                    None => HostStr::Str(v),
                }
            }
            (v, _, _) => v,
        },
        FSCONFIG_SET_PATH | FSCONFIG_SET_PATH_EMPTY => guest_path(t, a[3]),
        FSCONFIG_SET_BINARY if a[3] != 0 && aux > 0 && aux as u64 <= BINARY_MAX => {
            let mut v = vec![0u8; aux as usize];
            if !access_ok(a[3], aux as u64) || t.mem().read_bytes(a[3], &mut v).is_err() {
                HostStr::Fault
            } else {
                HostStr::Str(v)
            }
        }
        // Not a pointer the host may follow: null stays null, anything else is refused by the
        // host's argument checks (EINVAL) before it would read it.
        _ if a[3] == 0 => HostStr::Null,
        _ => HostStr::Fault,
    };
    let aux = match cmd {
        // `aux` is a dirfd for the path forms and a descriptor for FSCONFIG_SET_FD (5).
        FSCONFIG_SET_PATH | FSCONFIG_SET_PATH_EMPTY => value.dirfd(a[4])?,
        5 => fd_arg(a[4])? as u32 as u64,
        _ => aux as u32 as u64,
    };
    host!(
        libc::SYS_fsconfig,
        fd,
        cmd as u64,
        key.ptr()?,
        value.ptr()?,
        aux
    )
}

/// fsmount(fs_fd, flags, attr_flags): integers only.
pub(crate) fn sys_fsmount(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])? as u32 as u64;
    host!(
        libc::SYS_fsmount,
        fd,
        a[1] as u32 as u64,
        a[2] as u32 as u64
    )
}

/// move_mount(from_dfd, from_path, to_dfd, to_path, flags).
pub(crate) fn sys_move_mount(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let from = guest_path(t, a[1]);
    let to = guest_path(t, a[3]);
    host!(
        libc::SYS_move_mount,
        from.dirfd(a[0])?,
        from.ptr()?,
        to.dirfd(a[2])?,
        to.ptr()?,
        a[4] as u32 as u64
    )
}

/// open_tree(dfd, path, flags).
pub(crate) fn sys_open_tree(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = guest_path(t, a[1]);
    host!(
        libc::SYS_open_tree,
        path.dirfd(a[0])?,
        path.ptr()?,
        a[2] as u32 as u64
    )
}

/// fspick(dfd, path, flags).
pub(crate) fn sys_fspick(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = guest_path(t, a[1]);
    let fd = host!(
        libc::SYS_fspick,
        path.dirfd(a[0])?,
        path.ptr()?,
        a[2] as u32 as u64
    )?;
    remember_type(fd, None);
    Ok(fd)
}

/// include/uapi/linux/mount.h.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// mount_setattr(dfd, path, flags, attr, size): struct mount_attr { u64 attr_set, attr_clr,
/// propagation, userns_fd } holds no pointer; `size` bytes of it (at most a page, which the
/// host checks before it reads: E2BIG, EINVAL below MOUNT_ATTR_SIZE_VER0) are copied.
pub(crate) fn sys_mount_setattr(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = guest_path(t, a[1]);
    let size = a[4];
    let attr = if a[3] == 0 {
        HostStr::Null
    } else if size == 0 || size > 4096 {
        HostStr::Fault
    } else {
        let mut v = vec![0u8; size as usize];
        if !access_ok(a[3], size) || t.mem().read_bytes(a[3], &mut v).is_err() {
            HostStr::Fault
        } else {
            // MOUNT_ATTR_IDMAP names a user namespace by descriptor (userns_fd, bytes 24..32).
            let set = u64::from_le_bytes(v.get(..8).map_or([0; 8], |b| b.try_into().unwrap()));
            if set & MOUNT_ATTR_IDMAP != 0 && v.len() >= 32 {
                let ufd = u64::from_le_bytes(v[24..32].try_into().unwrap());
                fd_arg(ufd)?;
            }
            HostStr::Str(v)
        }
    };
    host!(
        libc::SYS_mount_setattr,
        path.dirfd(a[0])?,
        path.ptr()?,
        a[2] as u32 as u64,
        attr.ptr()?,
        size
    )
}
