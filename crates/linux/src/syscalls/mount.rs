//! mount, umount2 and chroot: passed to the host kernel, which applies Linux's rules itself (a guest
//! process is a host process: EPERM without CAP_SYS_ADMIN in the mount namespace's user
//! namespace, so after `unshare(CLONE_NEWUSER | CLONE_NEWNS)` a guest may mount in its own
//! namespace, as glibc's test harness does, support/support_become_root.c and
//! support/test-container.c). What cetbox decides is what the host must not see raw:
//!
//! - every string is read from guest memory as Linux copies it (fs/namespace.c: the type and
//!   source by `copy_mount_string`, strndup_user with PATH_MAX: EFAULT, or EINVAL when longer;
//!   the target by `user_path_at`, getname: EFAULT, ENAMETOOLONG), in Linux's order: type,
//!   source, data, target;
//! - the data page is copied as `copy_mount_options` copies it (up to one page, as much of it
//!   as is readable; EFAULT only when not even its first byte is) into a buffer of cetbox's, so
//!   the host reads nothing the guest did not make readable. It is passed only for file
//!   systems whose mount data is a flat option string or structure with no pointers in it
//!   ([`FLAT_DATA`]) and for flag changes of an existing mount (MS_REMOUNT, MS_BIND, MS_MOVE,
//!   propagation), where the kernel ignores it or hands it to the mounted file system's
//!   option parser; a new mount of another type with data answers ENODEV, as for a file
//!   system type the kernel does not have (get_fs_type), since cetbox cannot vouch for
//!   what that file system would read;
//! - the target (and the source of MS_BIND and MS_MOVE, which Linux looks up as a path, and
//!   of the block-device file systems, which look up a device or image path) goes through the
//!   guest's path resolution (`sysroot_path`: `--sysroot`), and so do the options whose
//!   values are paths (overlay's lowerdir/upperdir/workdir, ext4's journal_path, ...:
//!   `mount_options.rs`); other sources ("none", "proc", "overlay") are names the file system
//!   interprets and go as they are.
//!
//! chroot and pivot_root are passed through the same way. Not done: cetbox's own view after
//! the guest mounts over /proc or the sysroot (it reads /proc/self and its binary through the
//! host's paths). The new mount API (fsopen, fsconfig, ...) is in `newmount.rs`.

use super::fs::{access_ok, guest_path_arg, host, sysroot_path};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use std::ffi::CString;

/// PATH_MAX: the longest string `copy_mount_string` takes (strndup_user's limit).
const PATH_MAX: usize = 4096;
/// One page of mount data (copy_mount_options).
const PAGE: u64 = 4096;

/// File system types whose mount data is a flat option string (or a fixed structure with no
/// pointers): what the host's parser reads is all in the copied page. Not fuse, autofs or 9p:
/// their options name descriptors (`fd=`, `rfdno=`/`wfdno=`) the host would open in cetbox's
/// table, where the guest's numbers may be cetbox's own descriptors.
const FLAT_DATA: &[&[u8]] = &[
    b"proc",
    b"sysfs",
    b"tmpfs",
    b"ramfs",
    b"devtmpfs",
    b"devpts",
    b"mqueue",
    b"hugetlbfs",
    b"cgroup",
    b"cgroup2",
    b"overlay",
    b"bpf",
    b"tracefs",
    b"debugfs",
    b"securityfs",
    b"configfs",
    b"fusectl",
    b"binfmt_misc",
    b"pstore",
    b"ext2",
    b"ext3",
    b"ext4",
    b"xfs",
    b"btrfs",
    b"vfat",
    b"msdos",
    b"exfat",
    b"iso9660",
    b"udf",
    b"squashfs",
    b"erofs",
    b"nfs",
    b"nfs4",
    b"virtiofs",
];

/// The file systems of FLAT_DATA whose source is the path of a block device (or image file).
const BLOCK_SOURCE: &[&[u8]] = &[
    b"ext2",
    b"ext3",
    b"ext4",
    b"xfs",
    b"btrfs",
    b"vfat",
    b"msdos",
    b"exfat",
    b"iso9660",
    b"udf",
    b"squashfs",
    b"erofs",
];

// MS_MGC_MSK/MS_MGC_VAL: the magic number old programs put in the top half of the mount
// flags, which Linux ignores (include/uapi/linux/mount.h).
use libc::{
    MS_BIND, MS_MGC_MSK, MS_MGC_VAL, MS_MOVE, MS_PRIVATE, MS_REMOUNT, MS_SHARED, MS_SLAVE,
    MS_UNBINDABLE,
};

/// The flags umount2 knows (ksys_umount's check).
const UMOUNT_FLAGS: u32 =
    (libc::MNT_FORCE | libc::MNT_DETACH | libc::MNT_EXPIRE) as u32 | libc::UMOUNT_NOFOLLOW as u32;
const UMOUNT_NOFOLLOW: u32 = libc::UMOUNT_NOFOLLOW as u32;

/// A guest string as `copy_mount_string` copies it: NULL stays NULL.
fn mount_string(t: &Thread, addr: u64) -> Result<Option<CString>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    if !access_ok(addr, 1) {
        return Err(Errno::EFAULT);
    }
    match t.mem().read_cstr(addr, PATH_MAX)? {
        Some(v) => Ok(Some(CString::new(v).map_err(|_| Errno::EINVAL)?)),
        None => Err(Errno::EINVAL),
    }
}

/// The mount data page as `copy_mount_options` copies it: the readable prefix of the page
/// from `addr` (the rest zero); EFAULT when no byte of it is readable.
fn mount_data(t: &Thread, addr: u64) -> Result<Option<Box<[u8; PAGE as usize]>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let mut page = Box::new([0u8; PAGE as usize]);
    if !access_ok(addr, 1) {
        return Err(Errno::EFAULT);
    }
    let n = super::fs::valid_prefix(t, addr, PAGE.min(u64::MAX - addr), cetbox_mem::Access::Read);
    if n == 0 {
        return Err(Errno::EFAULT);
    }
    t.mem().read_bytes(addr, &mut page[..n as usize])?;
    Ok(Some(page))
}

pub(crate) fn sys_mount(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let flags = if a[3] & MS_MGC_MSK == MS_MGC_VAL {
        a[3] & !MS_MGC_MSK
    } else {
        a[3]
    };
    let fstype = mount_string(t, a[2])?;
    let source = mount_string(t, a[0])?;
    let data = mount_data(t, a[4])?;
    let target = guest_path_arg(t, a[1])?;
    let target = sysroot_path(t, target, true);
    let changes_existing = flags
        & (MS_REMOUNT | MS_BIND | MS_MOVE | MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE)
        != 0;
    // MS_BIND and MS_MOVE look the source up as a path (do_loopback, do_move_mount_old), and
    // so do the file systems that mount a block device or an image file (fs/super.c
    // get_tree_bdev, lookup_bdev; erofs and squashfs also take a file).
    let source_is_path = if flags & MS_REMOUNT != 0 {
        false
    } else if flags & (MS_BIND | MS_MOVE) != 0 {
        true
    } else {
        !changes_existing
            && fstype
                .as_ref()
                .is_some_and(|ty| BLOCK_SOURCE.contains(&ty.as_bytes()))
    };
    let source = match source {
        Some(s) if source_is_path => Some(sysroot_path(t, s, true)),
        s => s,
    };
    let mut data = data;
    if let (Some(page), false) = (data.as_mut(), changes_existing) {
        let Some(ty) = fstype
            .as_ref()
            .filter(|ty| FLAT_DATA.contains(&ty.as_bytes()))
        else {
            return Err(Errno::ENODEV);
        };
        // Options that name paths, under --sysroot (`mount_options`). A page holds the whole
        // option string (copy_mount_options): one that no longer fits is refused.
        if let Some(v) = super::mount_options::map_data(t, ty.as_bytes(), &page[..]) {
            if v.len() >= PAGE as usize {
                return Err(Errno::EINVAL);
            }
            page.fill(0);
            page[..v.len()].copy_from_slice(&v);
        }
    }
    fn cp(s: &Option<CString>) -> HostPtr<'_> {
        s.as_ref()
            .map_or(HostPtr::NULL, |c| HostPtr::of(c.as_bytes_with_nul()))
    }
    let dp = data.as_ref().map_or(HostPtr::NULL, |d| HostPtr::of(&d[..]));
    host!(
        libc::SYS_mount,
        cp(&source),
        HostPtr::of(target.as_bytes_with_nul()),
        cp(&fstype),
        a[3],
        dp
    )
}

pub(crate) fn sys_umount2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let flags = a[1] as u32;
    // ksys_umount checks the flags before it looks at the path.
    if flags & !UMOUNT_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let target = guest_path_arg(t, a[0])?;
    let target = sysroot_path(t, target, flags & UMOUNT_NOFOLLOW == 0);
    host!(
        libc::SYS_umount2,
        HostPtr::of(target.as_bytes_with_nul()),
        flags as u64
    )
}

/// chroot(path): passed to the host after the guest's path resolution; the host applies
/// Linux's checks (fs/open.c ksys_chroot: the lookup's ENOENT/ENOTDIR/EACCES, then EPERM
/// without CAP_SYS_CHROOT). cetbox itself then sees the new root too: guest paths stay host
/// paths, and cetbox's /proc view needs a procfs at the new root's /proc, as the guest does.
pub(crate) fn sys_chroot(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = guest_path_arg(t, a[0])?;
    let path = sysroot_path(t, path, true);
    host!(libc::SYS_chroot, HostPtr::of(path.as_bytes_with_nul()))
}

/// pivot_root(new_root, put_old): passed to the host after the guest's path resolution of
/// both paths, which applies Linux's rules in Linux's order (fs/namespace.c pivot_root:
/// may_mount's EPERM without CAP_SYS_ADMIN in the mount namespace's user namespace before
/// either path is read, so a path cetbox cannot read reaches the host as an inaccessible page
/// or an over-long string, failing there as in getname: EFAULT, ENAMETOOLONG; then EINVAL
/// unless new_root is a mount point and put_old under it, EBUSY, ...). The host moves the
/// root and working directory of every process of the namespace that used the old root
/// (chroot_fs_refs), cetbox's own threads included: cetbox then sees the new root as the
/// guest does (as after chroot).
pub(crate) fn sys_pivot_root(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let new_root = pivot_path(t, a[0]);
    let put_old = pivot_path(t, a[1]);
    host!(libc::SYS_pivot_root, new_root.ptr()?, put_old.ptr()?)
}

/// A path of pivot_root as the host must see it (see `sys_pivot_root`).
enum PivotPath {
    Path(CString),
    Fault,
    TooLong(Vec<u8>),
}

impl PivotPath {
    fn ptr(&self) -> Result<HostPtr<'_>, Errno> {
        Ok(match self {
            PivotPath::Path(c) => HostPtr::of(c.as_bytes_with_nul()),
            PivotPath::TooLong(v) => HostPtr::of(&v[..]),
            PivotPath::Fault => crate::usermem::inaccessible()?,
        })
    }
}

fn pivot_path(t: &Thread, addr: u64) -> PivotPath {
    match guest_path_arg(t, addr) {
        Ok(p) => PivotPath::Path(sysroot_path(t, p, true)),
        Err(Errno::ENAMETOOLONG) => {
            let mut v = vec![b'x'; PATH_MAX + 1];
            v.push(0);
            PivotPath::TooLong(v)
        }
        // A NUL-free read that fails: the guest's bytes are not all readable.
        Err(_) => PivotPath::Fault,
    }
}
