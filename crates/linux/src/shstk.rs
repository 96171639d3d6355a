//! The kernel side of user shadow stacks, as Linux 6.6+ implements it (Linux
//! arch/x86/kernel/shstk.c, whose functions the items below name, and
//! Documentation/arch/x86/shstk.rst):
//! the arch_prctl interface with its exact order of checks and quirks, allocation of shadow
//! stacks (map_shadow_stack, enable, threads), the signal-frame tokens, and the thread, fork and
//! exec rules. The CPU side (SSP, U_CET, the instructions) is in `cetbox_cpu`.

use crate::errno::{Errno, SysResult};
use crate::events::Switch;
use crate::options::ShstkPolicy;
use crate::process::Thread;
use crate::signals::frame::BadFrame;
use cetbox_cpu::state::{U_CET_SH_STK_EN, U_CET_WR_SHSTK_EN};
use cetbox_mem::{page_ceil, Access, MapRequest, VmaKind, PAGE_SIZE};

pub use crate::abi::{
    ARCH_SHSTK_DISABLE, ARCH_SHSTK_ENABLE, ARCH_SHSTK_LOCK, ARCH_SHSTK_SHSTK as SHSTK,
    ARCH_SHSTK_STATUS, ARCH_SHSTK_UNLOCK, ARCH_SHSTK_WRSS as WRSS, PR_GET_SHADOW_STACK_STATUS,
    PR_LOCK_SHADOW_STACK_STATUS, PR_SET_SHADOW_STACK_STATUS, SHADOW_STACK_SET_TOKEN,
    TASK_SIZE as TASK_SIZE_MAX,
};
const SZ_4G: u64 = 1 << 32;
/// Bit 63 marks a signal-frame token.
const SIGFRAME_TOKEN: u64 = 1 << 63;

fn supported(t: &Thread) -> bool {
    t.proc.cpu_config.cet
}

/// The default shadow-stack size: PAGE_ALIGN(min(RLIMIT_STACK soft limit, 4 GiB)).
/// The limit is the guest's (rlimit.rs), not cetbox's.
pub fn default_size() -> u64 {
    page_ceil(crate::rlimit::soft(libc::RLIMIT_STACK as i32).min(SZ_4G))
}

/// Creates a shadow-stack mapping as the kernel's alloc_shstk does: private anonymous,
/// VM_READ|VM_WRITE|VM_SHADOW_STACK, at `addr` exactly (MAP_FIXED_NOREPLACE) or top-down above
/// 4 GiB with a one-page gap below it. With `token_at`, writes a restore token for SSP
/// `token_at` in the slot below it (unmapping again if that is impossible).
pub fn alloc(t: &Thread, addr: u64, len: u64, token_at: Option<u64>) -> Result<u64, Errno> {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let mut req = MapRequest::anonymous(
        addr,
        len,
        (libc::PROT_READ | libc::PROT_WRITE) as u32,
        VmaKind::ShadowStack,
    );
    if addr != 0 {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if addr.checked_add(len).is_none_or(|e| e > TASK_SIZE_MAX) {
            return Err(Errno::ENOMEM);
        }
        req.noreplace = true;
    }
    let base = t.mem().map(&req).map_err(Errno::from)?;
    if let Some(top_off) = token_at {
        let top = base + top_off;
        if top % 8 != 0 || t.mem().shadow_write(top - 8, 8, top | 1).is_err() {
            let _ = t.mem().unmap(base, len);
            return Err(Errno::EINVAL);
        }
    }
    Ok(base)
}

/// The map_shadow_stack syscall, 453 (shstk.c: map_shadow_stack, alloc_shstk()).
pub fn map_shadow_stack(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (addr, size, flags) = (a[0], a[1], a[2] as u32);
    if !supported(t) {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & !SHADOW_STACK_SET_TOKEN != 0 {
        return Err(Errno::EINVAL);
    }
    let token = flags & SHADOW_STACK_SET_TOKEN != 0;
    if token && size < 8 {
        return Err(Errno::ENOSPC);
    }
    if addr != 0 && addr < SZ_4G {
        return Err(Errno::ERANGE);
    }
    let aligned = size
        .checked_add(PAGE_SIZE - 1)
        .map(|v| v & !(PAGE_SIZE - 1))
        .ok_or(Errno::EOVERFLOW)?;
    alloc(t, addr, aligned, token.then_some(size))
}

/// arch_prctl for the shadow-stack codes; None for codes that are not ours.
pub fn arch_prctl(t: &mut Thread, code: u64, arg: u64) -> Option<SysResult> {
    // `option` is an int: the upper half of the register is ignored.
    let code = code as u32;
    match code {
        // The never-merged pre-upstream interface: old CET glibcs must see EINVAL (Linux
        // arch/x86/include/uapi/asm/prctl.h).
        0x3001..=0x3005 => Some(Err(Errno::EINVAL)),
        ARCH_SHSTK_ENABLE..=ARCH_SHSTK_STATUS => Some(shstk_prctl(t, code, arg)),
        _ => None,
    }
}

/// The kernel's shstk_prctl() for the calling thread itself, in its order of checks.
fn shstk_prctl(t: &mut Thread, option: u32, f: u64) -> SysResult {
    if option == ARCH_SHSTK_STATUS {
        t.mem()
            .write_u64(f, t.shstk.features)
            .map_err(|_| Errno::EFAULT)?;
        return Ok(0);
    }
    if option == ARCH_SHSTK_LOCK {
        t.shstk.locked |= f;
        return Ok(0);
    }
    if f & t.shstk.locked != 0 {
        return Err(Errno::EPERM);
    }
    if f.count_ones() > 1 {
        return Err(Errno::EINVAL);
    }
    if option == ARCH_SHSTK_DISABLE {
        return match f {
            WRSS => set_wrss(t, false),
            SHSTK => disable(t),
            _ => Err(Errno::EINVAL),
        };
    }
    // ENABLE, and a self-UNLOCK, which the kernel lets fall through to here
    // (docs/acceptance.md, Linux behaviour 14.2).
    match f {
        SHSTK => enable(t, "arch_prctl(ARCH_SHSTK_ENABLE)"),
        WRSS => set_wrss(t, true),
        _ => Err(Errno::EINVAL),
    }
}

/// Enables shadow stacks for the thread with a new, empty shadow stack (shstk_setup()).
pub fn enable(t: &mut Thread, by: &'static str) -> SysResult {
    if t.shstk.features & SHSTK != 0 {
        return Ok(0);
    }
    if !supported(t) {
        return Err(Errno::EOPNOTSUPP);
    }
    let size = default_size();
    let base = alloc(t, 0, size, None)?;
    let from = t.cpu.cet.ssp;
    t.cpu.cet.ssp = base + size;
    t.cpu.cet.u_cet = U_CET_SH_STK_EN;
    t.shstk.base = base;
    t.shstk.size = size;
    t.shstk.features |= SHSTK;
    t.shstk.enabled_by = by;
    record_switch(t, "enable", from, base + size);
    Ok(0)
}

fn set_wrss(t: &mut Thread, on: bool) -> SysResult {
    if !supported(t) {
        return Err(Errno::EOPNOTSUPP);
    }
    if t.shstk.features & SHSTK == 0 {
        return Err(Errno::EPERM);
    }
    if on == (t.shstk.features & WRSS != 0) {
        return Ok(0);
    }
    if on {
        t.cpu.cet.u_cet |= U_CET_WR_SHSTK_EN;
        t.shstk.features |= WRSS;
    } else {
        t.cpu.cet.u_cet &= !U_CET_WR_SHSTK_EN;
        t.shstk.features &= !WRSS;
    }
    Ok(0)
}

/// Disables shadow stacks and frees the thread's own shadow stack (shstk_disable()).
fn disable(t: &mut Thread) -> SysResult {
    if !supported(t) {
        return Err(Errno::EOPNOTSUPP);
    }
    if t.shstk.features & SHSTK == 0 {
        return Ok(0);
    }
    t.cpu.cet.u_cet = 0;
    t.cpu.cet.ssp = 0;
    free_owned(t);
    t.shstk.features &= !(SHSTK | WRSS);
    Ok(0)
}

/// Unmaps the shadow stack the kernel allocated for this thread, if it owns one (shstk_free()).
pub fn free_owned(t: &mut Thread) {
    if t.shstk.features & SHSTK == 0 || t.shstk.base == 0 || t.shstk.size == 0 {
        return;
    }
    let _ = t.mem().unmap(t.shstk.base, t.shstk.size);
    t.shstk.size = 0;
}

/// The shadow-stack state of a new thread or process created by clone
/// (shstk_alloc_thread_stack()). `child` already holds a copy of the parent's state.
/// `stack_size` is clone3's (0 for clone).
pub fn on_clone(child: &mut Thread, flags: u64, stack_size: u64) -> Result<(), Errno> {
    if child.shstk.features & SHSTK == 0 {
        return Ok(());
    }
    if flags & libc::CLONE_VFORK as u64 != 0 {
        child.shstk.base = 0;
        child.shstk.size = 0;
        return Ok(());
    }
    if flags & libc::CLONE_VM as u64 == 0 {
        return Ok(());
    }
    let size = if stack_size != 0 {
        page_ceil(stack_size)
    } else {
        default_size()
    };
    let base = alloc(child, 0, size, None)?;
    child.shstk.base = base;
    child.shstk.size = size;
    child.cpu.cet.ssp = base + size;
    Ok(())
}

/// execve: the old image's shadow stack goes with the old address space; the new program
/// starts with shadow stacks disabled and unlocked (reset_thread_features()).
pub fn on_exec(t: &mut Thread) {
    t.shstk = Default::default();
    t.cpu.cet = Default::default();
}

/// Pushes the shadow-stack part of a signal frame (setup_signal_shadow_stack()): the sigframe
/// token and the restorer.
/// Err means delivery fails and the caller forces SIGSEGV.
pub fn signal_push(t: &mut Thread, restorer: u64) -> Result<(), BadFrame> {
    if t.shstk.features & SHSTK == 0 {
        return Ok(());
    }
    let s = t.cpu.cet.ssp;
    if restorer == 0 || s == 0 || !s.is_multiple_of(8) {
        return Err(BadFrame);
    }
    // A tracer can set any aligned SSP below TASK_SIZE_MAX, 8 included.
    let frame = s.checked_sub(16).ok_or(BadFrame)?;
    let mem = t.mem();
    mem.check(frame, 16, Access::ShadowWrite)
        .map_err(|_| BadFrame)?;
    mem.shadow_write(frame + 8, 8, s | SIGFRAME_TOKEN)
        .map_err(|_| BadFrame)?;
    mem.shadow_write(frame, 8, restorer).map_err(|_| BadFrame)?;
    t.cpu.cet.ssp = frame;
    record_switch(t, "signal delivery", s, frame);
    Ok(())
}

/// The shadow-stack part of rt_sigreturn (restore_signal_shadow_stack(), with the VMA checked
/// always, as since the 2026 fix "x86/shstk: Prevent deadlock during shstk sigreturn").
pub fn signal_restore(t: &mut Thread) -> Result<(), Errno> {
    if t.shstk.features & SHSTK == 0 {
        return Ok(());
    }
    let p = t.cpu.cet.ssp;
    if p == 0 || !p.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    match t.mem().find_vma(p) {
        Some(v) if v.kind == VmaKind::ShadowStack => {}
        _ => return Err(Errno::EINVAL),
    }
    let tok = t.mem().read_u64(p).map_err(|_| Errno::EFAULT)?;
    if tok & SIGFRAME_TOKEN == 0 {
        return Err(Errno::EINVAL);
    }
    let target = tok & !SIGFRAME_TOKEN;
    if !target.is_multiple_of(8) || target >= TASK_SIZE_MAX {
        return Err(Errno::EINVAL);
    }
    t.cpu.cet.ssp = target;
    record_switch(t, "rt_sigreturn", p, target);
    Ok(())
}

fn record_switch(t: &mut Thread, what: &'static str, from: u64, to: u64) {
    t.last_switch = Some(Switch {
        what,
        rip: t.cpu.rip,
        from_ssp: from,
        to_ssp: to,
    });
    t.last_switch_at = t.cpu.icount;
}

/// Applies the start-up policy (--shstk=on/auto) to a freshly loaded program. Never locks:
/// the program may still disable them, as with a loader that enabled but did not lock.
pub fn enable_at_start(t: &mut Thread) {
    let policy = t.proc.opts.shstk;
    match policy {
        ShstkPolicy::Off => {}
        ShstkPolicy::On => {
            if let Err(e) = enable(t, "--shstk=on") {
                crate::diag::diag(&format!(
                    "cannot enable shadow stacks: {}",
                    std::io::Error::from_raw_os_error(e.0)
                ));
            }
        }
        ShstkPolicy::Auto => {
            // glibc's rule: the program, its interpreter and every library it needs must be
            // marked SHSTK (glibc sysdeps/x86/dl-cet.c); resolve them as ld.so will.
            let exe = t.proc.image().exe.clone();
            let objects = crate::objects::resolve_closure(
                std::path::Path::new(&exe),
                t.proc.opts.sysroot.as_deref(),
            );
            let missing: Vec<String> = objects
                .iter()
                .filter(|o| !o.props.as_ref().is_some_and(|p| p.shstk()))
                .map(|o| o.name.clone())
                .collect();
            if let Some(first) = missing.first() {
                crate::diag::diag(&format!(
                    "--shstk=auto: shadow stacks stay off: {first} lacks the SHSTK property"
                ));
            } else if let Err(e) = enable(t, "--shstk=auto") {
                crate::diag::diag(&format!(
                    "cannot enable shadow stacks: {}",
                    std::io::Error::from_raw_os_error(e.0)
                ));
            }
        }
    }
}

/// The generic prctl shadow-stack options: x86 has no implementation and answers EINVAL
/// (Linux kernel/sys.c, the default arch_*_shadow_stack_status()); None for other options.
pub fn prctl(t: &mut Thread, option: u64, args: [u64; 6]) -> Option<SysResult> {
    let _ = (t, args);
    match option as u32 as u64 {
        PR_GET_SHADOW_STACK_STATUS | PR_SET_SHADOW_STACK_STATUS | PR_LOCK_SHADOW_STACK_STATUS => {
            Some(Err(Errno::EINVAL))
        }
        _ => None,
    }
}

/// The text of a feature mask in /proc/<pid>/status: each word followed by one space (Linux
/// arch/x86/kernel/cpu/proc.c, arch_proc_pid_thread_features()).
pub fn status_words(bits: u64) -> String {
    let mut s = String::new();
    if bits & SHSTK != 0 {
        s.push_str("shstk ");
    }
    if bits & WRSS != 0 {
        s.push_str("wrss ");
    }
    s
}

/// The last two lines of /proc/<pid>/status (Linux arch_proc_pid_thread_features()).
pub fn status_lines(t: &Thread) -> String {
    format!(
        "x86_Thread_features:\t{}\nx86_Thread_features_locked:\t{}\n",
        status_words(t.shstk.features),
        status_words(t.shstk.locked)
    )
}
