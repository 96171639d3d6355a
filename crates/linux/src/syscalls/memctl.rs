//! Memory calls beyond mmap's family: protection keys, NUMA policy (mbind), and cross-process
//! memory transfer (process_vm_readv/writev).

use super::fs::{access_ok, buf, host};
use crate::errno::{Errno, SysResult};
use crate::hostcall::Arg;
use crate::process::Thread;
use cetbox_mem::{page_ceil, page_floor, Access, PAGE_SIZE};

/// Linux's UIO_MAXIOV.
const UIO_MAXIOV: u64 = 1024;

/// pkey_mprotect: key -1 is plain mprotect. The CPU cetbox models has no protection keys
/// (CPUID reports no PKU), so no key is ever allocated and any other key is EINVAL, after
/// the range checks do_mprotect_pkey makes first (mm/mprotect.c).
pub(crate) fn sys_pkey_mprotect(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[3] as u32 as i32 == -1 {
        return super::mem::sys_mprotect(t, [a[0], a[1], a[2], 0, 0, 0]);
    }
    if a[0] & (PAGE_SIZE - 1) != 0 {
        return Err(Errno::EINVAL);
    }
    if a[1] == 0 {
        return Ok(0);
    }
    Err(Errno::EINVAL)
}

/// pkey_alloc: flags and access rights are checked, then there is no key to give (Linux on a
/// CPU without protection keys: mm_pkey_alloc fails, ENOSPC).
pub(crate) fn sys_pkey_alloc(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    const PKEY_ACCESS_MASK: u64 = 3;
    if a[0] as u32 != 0 || a[1] as u32 as u64 & !PKEY_ACCESS_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    Err(Errno::ENOSPC)
}

pub(crate) fn sys_pkey_free(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    Err(Errno::EINVAL)
}

/// mbind: guest memory is host memory at the same addresses, so the host applies the policy
/// to it; cetbox checks the node mask is readable and that the range is guest memory (an
/// unmapped hole is EFAULT, as mbind_range finds).
pub(crate) fn sys_mbind(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (start, len, mode, nmask, maxnode, flags) = (a[0], a[1], a[2], a[3], a[4], a[5]);
    let nbytes = maxnode.saturating_sub(1).div_ceil(64) * 8;
    let nmask: Arg = if nmask != 0 && nbytes != 0 {
        buf(t, nmask, nbytes.min(PAGE_SIZE), Access::Read)?.into()
    } else {
        // NULL, or a mask of no bytes the host never reads.
        nmask.into()
    };
    if start & (PAGE_SIZE - 1) != 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.checked_add(page_ceil(len)).ok_or(Errno::EINVAL)?;
    let mut c = start;
    while c < end {
        match t.mem().find_vma(c) {
            Some(v) => c = v.end,
            None => return Err(Errno::EFAULT),
        }
    }
    host!(
        libc::SYS_mbind,
        start,
        len,
        mode as u32 as u64,
        nmask,
        maxnode,
        flags as u32 as u64
    )
}

/// Reads a guest iovec array as (base, len) pairs.
fn iov_list(t: &Thread, addr: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; cnt as usize * 16];
    if cnt > 0 {
        if !access_ok(addr, raw.len() as u64) {
            return Err(Errno::EFAULT);
        }
        t.mem().read_bytes(addr, &mut raw)?;
    }
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let v: Vec<(u64, u64)> = raw
        .chunks_exact(16)
        .map(|c| (word(&c[..8]), word(&c[8..])))
        .collect();
    if v.iter().any(|&(_, l)| (l as i64) < 0) {
        return Err(Errno::EINVAL);
    }
    Ok(v)
}

/// process_vm_readv/writev on this process copies between its own guest buffers with the
/// page table's checks, stopping at the first bad page of either side (a partial count, or
/// EFAULT if nothing was copied: mm/process_vm_access.c). Another process is another
/// cetbox: `remote_mem` checks each page against that process's page table as it copies.
fn process_vm(t: &mut Thread, a: [u64; 6], write: bool) -> SysResult {
    let (pid, liov, lcnt, riov, rcnt, flags) = (a[0] as u32 as i32, a[1], a[2], a[3], a[4], a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let local = iov_list(t, liov, lcnt)?;
    let remote = iov_list(t, riov, rcnt)?;
    if pid != t.proc.pid {
        let access = if write { Access::Read } else { Access::Write };
        let lv = super::fs::io::iovecs(t, liov, lcnt, access)?;
        return crate::remote_mem::process_vm(pid, &lv, &remote, write);
    }
    // Our own guest memory: from the remote side to the local one (readv) or back (writev).
    let (from, to) = if write {
        (&local, &remote)
    } else {
        (&remote, &local)
    };
    let mem = t.mem();
    let (mut fi, mut fo, mut ti, mut to_off) = (0usize, 0u64, 0usize, 0u64);
    let mut done = 0u64;
    let mut chunk = vec![0u8; PAGE_SIZE as usize];
    loop {
        while fi < from.len() && fo >= from[fi].1 {
            fi += 1;
            fo = 0;
        }
        while ti < to.len() && to_off >= to[ti].1 {
            ti += 1;
            to_off = 0;
        }
        if fi >= from.len() || ti >= to.len() {
            break;
        }
        let (src, dst) = (from[fi].0.wrapping_add(fo), to[ti].0.wrapping_add(to_off));
        // At most to the end of the current page on either side.
        let n = (from[fi].1 - fo)
            .min(to[ti].1 - to_off)
            .min(page_floor(src).wrapping_add(PAGE_SIZE).wrapping_sub(src))
            .min(page_floor(dst).wrapping_add(PAGE_SIZE).wrapping_sub(dst));
        let part = &mut chunk[..n as usize];
        if mem.read_bytes(src, part).is_err() || mem.write_bytes(dst, part).is_err() {
            break;
        }
        done += n;
        fo += n;
        to_off += n;
    }
    let wanted = from
        .iter()
        .map(|v| v.1)
        .sum::<u64>()
        .min(to.iter().map(|v| v.1).sum());
    if done == 0 && wanted != 0 {
        return Err(Errno::EFAULT);
    }
    Ok(done)
}

pub(crate) fn sys_process_vm_readv(t: &mut Thread, a: [u64; 6]) -> SysResult {
    process_vm(t, a, false)
}

pub(crate) fn sys_process_vm_writev(t: &mut Thread, a: [u64; 6]) -> SysResult {
    process_vm(t, a, true)
}
