//! System V shared memory. Segments and their ids are the host's (shmget and shmctl pass
//! through); an attach is made by the host kernel at an address cetbox chooses in the guest's
//! address space and recorded as a guest mapping, and a detach is an unmap of that range
//! (unmapping an attach detaches it on the host too). The attaches are `Process::shm_attaches`.

use super::fs::{buf, host};
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg, HostPtr};
use crate::process::Thread;
use cetbox_mem::{page_ceil, Access, AdoptAt, MapError, PAGE_SIZE};

const IPC_64: i32 = 0x100;
/// x86's SHMLBA is the page size.
const SHMLBA: u64 = PAGE_SIZE;

pub(crate) fn sys_shmget(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(
        libc::SYS_shmget,
        a[0] as u32 as u64,
        a[1],
        a[2] as u32 as u64
    )
}

pub(crate) fn sys_shmctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let cmd = a[1] as u32 as i32 & !IPC_64;
    // IPC_STAT, SHM_STAT, SHM_STAT_ANY write a shmid_ds; IPC_INFO a shminfo, SHM_INFO a
    // shm_info (both smaller than shmid_ds); IPC_SET reads a shmid_ds.
    let size = std::mem::size_of::<libc::shmid_ds>() as u64;
    let arg: Arg = match cmd {
        libc::IPC_STAT | 13 | 15 | 3 | 14 => buf(t, a[2], size, Access::Write)?.into(),
        libc::IPC_SET => buf(t, a[2], size, Access::Read)?.into(),
        // IPC_RMID, SHM_LOCK, SHM_UNLOCK: no buffer (the host ignores the argument).
        _ => a[2].into(),
    };
    host!(
        libc::SYS_shmctl,
        a[0] as u32 as u64,
        a[1] as u32 as u64,
        arg
    )
}

pub(crate) fn sys_shmat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (id, want, flags) = (a[0] as u32 as i32, a[1], a[2] as u32 as i32);
    // The segment's size, from the host (EINVAL for a bad id, EACCES without permission).
    // SAFETY: shmid_ds is plain data.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    host!(
        libc::SYS_shmctl,
        id as u64,
        libc::IPC_STAT as u64,
        HostPtr::of_mut(&mut ds)
    )?;
    let len = page_ceil(ds.shm_segsz as u64);
    let mut prot = libc::PROT_READ as u32;
    if flags & libc::SHM_RDONLY == 0 {
        prot |= libc::PROT_WRITE as u32;
    }
    if flags & libc::SHM_EXEC != 0 {
        prot |= libc::PROT_EXEC as u32;
    }
    let mem = t.mem();
    let at = if want == 0 {
        AdoptAt::Search
    } else {
        let a = if flags & libc::SHM_RND != 0 {
            want & !(SHMLBA - 1)
        } else {
            want
        };
        if a & (SHMLBA - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & libc::SHM_REMAP != 0 {
            AdoptAt::Replace(a)
        } else {
            AdoptAt::Exactly(a)
        }
    };
    let host_flags = flags & (libc::SHM_RDONLY | libc::SHM_EXEC);
    // The address is chosen (or what SHM_REMAP replaces unmapped) under the same hold of the
    // mapping lock as the attach (ipc/shm.c do_shmat: one mmap_lock).
    let r = mem.adopt_shared(at, len, prot, |addr, replace| {
        let f = host_flags | if replace { libc::SHM_REMAP } else { 0 };
        // SAFETY: `addr` is free guest space cetbox owns (or, without `replace`, space the
        // host has nothing in: the kernel refuses to overlap then).
        let p = unsafe { libc::shmat(id, addr as *const libc::c_void, f) };
        if p as isize == -1 {
            return Err(std::io::Error::last_os_error());
        }
        if p as u64 != addr {
            // SAFETY: detaching the attach just made.
            unsafe { libc::shmdt(p) };
            return Err(std::io::Error::from_raw_os_error(libc::ENOMEM));
        }
        Ok(())
    });
    let addr = match r {
        Ok(addr) => addr,
        Err(MapError::Host(e)) => return Err(Errno(e)),
        // A range not free without SHM_REMAP (do_shmat's find_vma_intersection).
        Err(MapError::Exists) => return Err(Errno::EINVAL),
        Err(MapError::NoMemory) => return Err(Errno::ENOMEM),
    };
    t.proc.shm_attaches().insert(addr, len);
    Ok(addr)
}

pub(crate) fn sys_shmdt(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let addr = a[0];
    let len = t.proc.shm_attaches().remove(&addr).ok_or(Errno::EINVAL)?;
    // Still the attach (the guest may have unmapped or replaced it since)?
    match t.mem().find_vma(addr) {
        Some(v) if v.shared && v.start <= addr => {
            t.mem().unmap(addr, len).map_err(|_| Errno::EINVAL)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
