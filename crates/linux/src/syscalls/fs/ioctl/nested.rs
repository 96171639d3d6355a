//! ioctl requests whose argument structure holds pointers the kernel follows, or descriptors it
//! opens: the host gets cetbox's own copy of the structure, whose pointers lead to checked
//! guest buffers (for host writes, bounce buffers or windows that reach guest memory only
//! through the checked copy-out of `usermem`) and whose descriptors are never cetbox's own (a
//! private descriptor becomes -1, which the host treats as a descriptor that is not open, as
//! Linux would treat a number the guest has not opened). After the call the guest's own
//! pointers and descriptors are put back and the bytes the kernel writes back are copied to
//! the guest with a fresh check.

use super::{bad_pointer, refuse};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use crate::syscalls::fs::{buf, host, is_private, valid_prefix};
use cetbox_mem::Access;
use libc::SYS_ioctl;

const SIOCGIFCONF: u32 = 0x8912;
/// SG_IO (include/scsi/sg.h; drivers/scsi/sg.c `sg_ioctl`, drivers/scsi/scsi_ioctl.c
/// `scsi_ioctl_sg_io`, block/bsg.c `bsg_ioctl`).
const SG_IO: u32 = 0x2285;
/// FIDEDUPERANGE and FICLONERANGE (include/uapi/linux/fs.h; fs/ioctl.c `do_vfs_ioctl`).
const FIDEDUPERANGE: u32 = 0xc018_9436;
const FICLONERANGE: u32 = 0x4020_940d;
/// FS_IOC_FIEMAP (include/uapi/linux/fs.h, linux/fiemap.h; fs/ioctl.c `ioctl_fiemap`).
const FS_IOC_FIEMAP: u32 = 0xc020_660b;
/// LOOP_CONFIGURE (include/uapi/linux/loop.h; drivers/block/loop.c `lo_ioctl`).
const LOOP_CONFIGURE: u32 = 0x4c0a;

/// Handles `req` if its argument holds pointers or descriptors cetbox knows; None otherwise.
pub(super) fn ioctl(t: &Thread, fd: i32, req: u32, arg: u64) -> Option<SysResult> {
    Some(match req {
        SIOCGIFCONF => ifconf(t, fd, req, arg),
        r if carries_ifr_data(r) => ifr_data_ioctl(t, fd, req, arg),
        SG_IO => sg_io(t, fd, req, arg),
        FIDEDUPERANGE => dedupe(t, fd, req, arg),
        FS_IOC_FIEMAP => fiemap(t, fd, req, arg),
        // struct file_clone_range { __s64 src_fd; ... } (32 bytes)
        FICLONERANGE => fd_inside::<32>(t, fd, req, arg, &[0]),
        // struct loop_config { __u32 fd; ... } (304 bytes)
        LOOP_CONFIGURE => fd_inside::<304>(t, fd, req, arg, &[0]),
        _ => return None,
    })
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(v)
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Replaces a private descriptor at `off` (an int, or the low half of an __s64 as the kernel's
/// `fdget` takes it) by -1.
fn hide_private_fd(b: &mut [u8], off: usize) {
    if is_private(u32_at(b, off) as i32) {
        b[off..off + 4].copy_from_slice(&(-1i32).to_le_bytes());
    }
}

/// SIOCGIFCONF: struct ifconf { int ifc_len; char *ifc_buf; }: the kernel writes one struct
/// ifreq per IPv4 address while a whole one fits in what is left of ifc_len, stops with EFAULT
/// at the first it cannot write (after writing the ones before), and stores the bytes written
/// in ifc_len; a NULL ifc_buf only counts (net/core/dev_ioctl.c `dev_ifconf`,
/// net/ipv4/devinet.c `inet_gifconf`). The host gets its own ifconf whose buffer is never
/// the guest's pointer: a checked buffer when all of ifc_len is writable, else a guarded
/// window onto the writable prefix (a write past it fails as Linux's does; a prefix longer
/// than a page is cut to one), and for an ifc_len too short for one ifreq (zero or negative
/// included) an inaccessible address the kernel never writes.
fn ifconf(t: &Thread, fd: i32, req: u32, arg: u64) -> SysResult {
    buf(t, arg, 16, Access::Write)?;
    let len = t.mem().read_u32(arg)? as i32;
    let ubuf = t.mem().read_u64(arg + 8)?;
    let hbuf = if ubuf == 0 {
        // NULL: the host only counts.
        0
    } else if len < IFREQ as i32 {
        crate::usermem::inaccessible()?.addr()
    } else {
        let n = valid_prefix(t, ubuf, len as u64, Access::Write);
        if n == len as u64 {
            buf(t, ubuf, n, Access::Write)?.addr()
        } else {
            crate::usermem::window_out(ubuf, n)?.addr()
        }
    };
    let mut ifc = [len as u32 as u64, hbuf];
    let r = host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of_mut(&mut ifc))?;
    t.mem().write_bytes(arg, &(ifc[0] as u32).to_le_bytes())?;
    Ok(r)
}

/// Socket requests whose `struct ifreq` carries a pointer, `ifr_data` at offset 16, to a
/// request-specific structure the kernel reads and writes (net/core/dev_ioctl.c `dev_ioctl`:
/// SIOCETHTOOL, SIOCGHWTSTAMP/SIOCSHWTSTAMP, SIOCBONDSLAVEINFOQUERY/SIOCBONDINFOQUERY,
/// SIOCDEVPRIVATE..+15). Any guest can make them on any socket.
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
    let data = u64_at(&ifr, IFR_DATA);
    if data != 0 {
        // Unreadable: an address the host cannot access, so it answers in Linux's order
        // (ENODEV for an unknown interface, EPERM, EOPNOTSUPP before the copy that fails).
        let n = valid_prefix(t, data, 4096, Access::Read);
        let window = if n == 0 {
            crate::usermem::inaccessible()?
        } else {
            crate::usermem::window_out(data, n)?
        };
        put_u64(&mut ifr, IFR_DATA, window.addr());
    }
    let r = host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of_mut(&mut ifr));
    ifr[IFR_DATA..IFR_DATA + 8].copy_from_slice(&before[IFR_DATA..IFR_DATA + 8]);
    if ifr != before {
        t.mem().write_bytes(arg, &ifr)?;
    }
    r
}

/// sizeof(struct sg_io_hdr) and its fields' offsets (include/scsi/sg.h).
const SG_HDR: usize = 88;
const SG_DXFERP: usize = 16;
const SG_CMDP: usize = 24;
const SG_SBP: usize = 32;
/// dxfer_direction values: SG_DXFER_TO_DEV, FROM_DEV, TO_FROM_DEV, UNKNOWN.
const SG_DXFER_TO_DEV: i32 = -2;
const SG_DXFER_FROM_DEV: i32 = -3;
const SG_DXFER_TO_FROM_DEV: i32 = -4;
const SG_DXFER_UNKNOWN: i32 = -5;

/// SG_IO with a version-3 header (interface_id 'S'): the command (cmdp, cmd_len bytes the
/// kernel reads), the data (dxferp, dxfer_len bytes, or an array of iovec_count `sg_iovec`s,
/// read or written as dxfer_direction says) and the sense buffer (sbp, up to mx_sb_len bytes
/// the kernel writes) are checked guest buffers; a pointer the kernel does not use for this
/// header (data with SG_DXFER_NONE, sense with mx_sb_len 0) becomes NULL. A bad nested
/// pointer is a bad argument (see `bad_pointer`: ENOTTY where the descriptor has no SG_IO,
/// EFAULT where it has). The header the host writes back (status, sb_len_wr, resid, duration,
/// ...) reaches the guest with its own pointers. A version-4 header (interface_id 'Q', bsg's
/// struct sg_io_v4) has other pointers: refused.
fn sg_io(t: &Thread, fd: i32, req: u32, arg: u64) -> SysResult {
    // Zeroed room after the 88-byte header: a driver reading a longer header reads zeros.
    let mut h = [0u8; 256];
    if t.mem().read_bytes(arg, &mut h[..SG_HDR]).is_err() {
        return bad_pointer(fd, req);
    }
    if u32_at(&h, 0) == u32::from(b'Q') {
        return refuse(fd, req, "an sg_io_v4 header");
    }
    let before = h;
    let dir = u32_at(&h, 4) as i32;
    let cmd_len = u64::from(h[8]);
    let mx_sb_len = u64::from(h[9]);
    let iovec_count = u64::from(u16_at(&h, 10));
    let dxfer_len = u64::from(u32_at(&h, 12));
    let (dxferp, cmdp, sbp) = (
        u64_at(&h, SG_DXFERP),
        u64_at(&h, SG_CMDP),
        u64_at(&h, SG_SBP),
    );
    let data_access = match dir {
        SG_DXFER_TO_DEV => Some(Access::Read),
        SG_DXFER_FROM_DEV | SG_DXFER_TO_FROM_DEV | SG_DXFER_UNKNOWN => Some(Access::Write),
        _ => None,
    };
    // A NULL pointer stays NULL (the host faults on it as Linux does).
    let nested = |p: u64, len: u64, access: Access| -> Result<u64, Errno> {
        if p == 0 || len == 0 {
            return Ok(0);
        }
        Ok(buf(t, p, len, access)?.addr())
    };
    let mut iov: Vec<u64> = Vec::new();
    let host_data = match data_access {
        None => Ok(0),
        Some(_) if dxferp == 0 => Ok(0),
        Some(access) if iovec_count == 0 => nested(dxferp, dxfer_len, access),
        Some(access) => (|| {
            // struct sg_iovec { void *iov_base; size_t iov_len; }
            let mut raw = vec![0u8; iovec_count as usize * 16];
            t.mem().read_bytes(dxferp, &mut raw)?;
            for e in raw.chunks_exact(16) {
                iov.push(nested(u64_at(e, 0), u64_at(e, 8), access)?);
                iov.push(u64_at(e, 8));
            }
            Ok(iov.as_ptr() as u64)
        })(),
    };
    let host_cmd = nested(cmdp, cmd_len, Access::Read);
    let host_sense = nested(sbp, mx_sb_len, Access::Write);
    let (Ok(d), Ok(c), Ok(s)) = (host_data, host_cmd, host_sense) else {
        return bad_pointer(fd, req);
    };
    put_u64(&mut h, SG_DXFERP, d);
    put_u64(&mut h, SG_CMDP, c);
    put_u64(&mut h, SG_SBP, s);
    let r = host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of_mut(&mut h));
    drop(iov);
    h[SG_DXFERP..SG_SBP + 8].copy_from_slice(&before[SG_DXFERP..SG_SBP + 8]);
    if r.is_ok() || h[..SG_HDR] != before[..SG_HDR] {
        t.mem().write_bytes(arg, &h[..SG_HDR])?;
    }
    r
}

/// FIDEDUPERANGE: struct file_dedupe_range { __u64 src_offset, src_length; __u16 dest_count;
/// __u16 reserved1; __u32 reserved2; struct file_dedupe_range_info info[]; }, each info
/// 32 bytes { __s64 dest_fd; __u64 dest_offset, bytes_deduped; __s32 status; __u32 reserved; }.
/// As fs/ioctl.c `ioctl_file_dedupe_range`: the count first (EFAULT), more than a page
/// ENOMEM, the whole structure (EFAULT), and on success the whole structure written back.
/// The length is the count's, not the _IOC size's (24).
fn dedupe(t: &Thread, fd: i32, req: u32, arg: u64) -> SysResult {
    const HEAD: usize = 24;
    const INFO: usize = 32;
    let Some(count_at) = arg.checked_add(16) else {
        return Err(Errno::EFAULT);
    };
    let count = match t.mem().read_u16(count_at) {
        Ok(c) => c as usize,
        Err(_) => return Err(Errno::EFAULT),
    };
    let size = HEAD + INFO * count;
    if size > 4096 {
        return Err(Errno::ENOMEM);
    }
    let mut v = vec![0u8; size];
    t.mem().read_bytes(arg, &mut v).map_err(|_| Errno::EFAULT)?;
    let before = v.clone();
    for i in 0..count {
        hide_private_fd(&mut v, HEAD + INFO * i);
    }
    let r = host!(
        SYS_ioctl,
        fd as u64,
        req as u64,
        HostPtr::of_mut(&mut v[..])
    )?;
    for i in 0..count {
        let off = HEAD + INFO * i;
        v[off..off + 8].copy_from_slice(&before[off..off + 8]);
    }
    t.mem().write_bytes(arg, &v)?;
    Ok(r)
}

/// A pointer-free structure of N bytes the kernel reads, with descriptors at `fds`.
fn fd_inside<const N: usize>(t: &Thread, fd: i32, req: u32, arg: u64, fds: &[usize]) -> SysResult {
    let mut v = [0u8; N];
    if t.mem().read_bytes(arg, &mut v).is_err() {
        return bad_pointer(fd, req);
    }
    for &off in fds {
        hide_private_fd(&mut v, off);
    }
    host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of(&v))
}

/// FS_IOC_FIEMAP: struct fiemap (32 bytes) followed by fm_extent_count struct fiemap_extent
/// (56 bytes each) the kernel fills (fs/ioctl.c `ioctl_fiemap`, `fiemap_fill_next_extent`):
/// the argument is the header and the whole array, checked writable as one buffer. Linux
/// writes extents one by one and fails at the first that cannot be written; cetbox fails such
/// an array as a whole (EFAULT, nothing written) once the file system has FIEMAP.
fn fiemap(t: &Thread, fd: i32, req: u32, arg: u64) -> SysResult {
    const HEAD: u64 = 32;
    const EXTENT: u64 = 56;
    /// FIEMAP_MAX_EXTENTS (include/linux/fiemap.h): UINT_MAX / sizeof(struct fiemap_extent).
    const MAX_EXTENTS: u64 = u32::MAX as u64 / EXTENT;
    let mut head = [0u8; HEAD as usize];
    if t.mem().read_bytes(arg, &mut head).is_err() {
        return bad_pointer(fd, req);
    }
    let count = u64::from(u32_at(&head, 24));
    if count > MAX_EXTENTS {
        // The host answers EOPNOTSUPP or EINVAL from the header alone.
        return host!(SYS_ioctl, fd as u64, req as u64, HostPtr::of_mut(&mut head));
    }
    match buf(t, arg, HEAD + count * EXTENT, Access::Write) {
        Ok(p) => host!(SYS_ioctl, fd as u64, req as u64, p),
        Err(Errno::ENOMEM) => Err(Errno::ENOMEM),
        Err(_) => bad_pointer(fd, req),
    }
}
