//! The initial process stack, laid out as Linux's create_elf_tables does (from the top):
//! an 8-byte zero slot, the execve file name (AT_EXECFN), the environment strings, the
//! argument strings, a random 0..8 KiB gap aligned to 16, the platform string "x86_64", 16
//! random bytes (AT_RANDOM), then — 16-byte aligned — argc, argv[], NULL, envp[], NULL and
//! the auxiliary vector.

use cetbox_mem::{page_floor, AddressSpace, MapRequest, VmaKind, PAGE_SIZE};

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_RSEQ_FEATURE_SIZE: u64 = 27;
pub const AT_RSEQ_ALIGN: u64 = 28;
pub const AT_EXECFN: u64 = 31;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// The stack top is lowered by up to this many pages at random.
pub const STACK_RANDOM_PAGES: u64 = 256;
/// Linux extends the initial stack VMA by 128 KiB below what the arguments use.
pub const STACK_EXPAND: u64 = 128 * 1024;
/// MAX_ARG_STRLEN: one argument or environment string, NUL included.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
const PLATFORM: &[u8] = b"x86_64\0";

/// Addresses of the strings the auxiliary vector points to.
pub struct Strings {
    pub execfn: u64,
    pub platform: u64,
    pub random: u64,
}

/// The finished stack.
pub struct Built {
    pub sp: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub vma_start: u64,
    pub auxv: Vec<(u64, u64)>,
}

/// Linux's limit on the size of argv + envp (E2BIG): strings and pointers must fit in a
/// quarter of RLIMIT_STACK (at most 6 MiB, at least 128 KiB); each string in 128 KiB.
pub fn check_arg_size(argv: &[Vec<u8>], envp: &[Vec<u8>], rlim: Option<u64>) -> Result<(), i32> {
    let pointers = (argv.len() + envp.len()) as u64;
    check_strings(
        argv.iter().chain(envp).map(|v| v.as_slice()),
        pointers,
        rlim,
    )
}

/// execve's accounting (fs/exec.c, bprm_stack_limits and the copies after it): the limit is
/// as for `check_arg_size`, less one pointer per argument (at least one for argv) and
/// environment string; the file name is copied onto the new stack first, so it counts with
/// the strings; each string, the file name included, must fit in MAX_ARG_STRLEN.
pub fn check_exec_size(
    filename: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    rlim: Option<u64>,
) -> Result<(), i32> {
    let pointers = (argv.len().max(1) + envp.len()) as u64;
    let strings = std::iter::once(filename).chain(argv.iter().chain(envp).map(|v| v.as_slice()));
    check_strings(strings, pointers, rlim)
}

/// The E2BIG rule both checks apply: `pointers` pointers and the NUL-terminated `strings`
/// must fit in a quarter of RLIMIT_STACK, capped at 6 MiB and at least 128 KiB, and each
/// string in MAX_ARG_STRLEN.
fn check_strings<'a>(
    strings: impl Iterator<Item = &'a [u8]>,
    pointers: u64,
    rlim: Option<u64>,
) -> Result<(), i32> {
    let mut limit: u64 = (8 << 20) / 4 * 3;
    if let Some(r) = rlim {
        limit = limit.min(r / 4);
    }
    limit = limit.max(32 * 4096);
    let ptrs = pointers * 8;
    if limit <= ptrs {
        return Err(libc::E2BIG);
    }
    let mut total = 0u64;
    for s in strings {
        if s.len() + 1 > MAX_ARG_STRLEN {
            return Err(libc::E2BIG);
        }
        total += s.len() as u64 + 1;
    }
    if total > limit - ptrs {
        return Err(libc::E2BIG);
    }
    Ok(())
}

/// C strings cannot hold NULs: a string is cut at its first NUL, as the kernel's
/// strnlen_user-based copy would see it.
fn cstr(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// Places `strings` (each cut at a NUL, then NUL-terminated) downwards from `*p`, the last
/// one lowest, as the kernel copies them (fs/exec.c, copy_strings); returns their addresses
/// in order and leaves `*p` at the lowest.
fn place_strings(strings: &[Vec<u8>], p: &mut u64) -> Vec<u64> {
    let mut at = vec![0u64; strings.len()];
    for (i, s) in strings.iter().enumerate().rev() {
        *p -= cstr(s).len() as u64 + 1;
        at[i] = *p;
    }
    at
}

/// Maps the stack VMA below `top` and writes the initial stack. `auxv_for` receives the
/// string addresses and returns the auxiliary vector (ending in AT_NULL).
#[allow(clippy::too_many_arguments)]
pub fn build(
    mem: &AddressSpace,
    top: u64,
    exec_stack: bool,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    rlim: Option<u64>,
    auxv_for: impl FnOnce(&Strings) -> Vec<(u64, u64)>,
) -> Result<Built, (i32, String)> {
    // Phase 1: positions.
    let mut p = top - 8;
    p -= cstr(execfn).len() as u64 + 1;
    let execfn_at = p;
    let env_end = p;
    let env_at = place_strings(envp, &mut p);
    let env_start = p;
    let arg_end = p;
    let arg_at = place_strings(argv, &mut p);
    let arg_start = p;
    // arch_align_stack: a random offset below the strings, then 16-byte alignment.
    let rnd = super::random_bytes(4);
    p -= u32::from_le_bytes(rnd.try_into().unwrap_or([0; 4])) as u64 % 8192;
    p &= !15;
    p -= PLATFORM.len() as u64;
    let platform = p;
    p -= 16;
    let random = p;
    let strings = Strings {
        execfn: execfn_at,
        platform,
        random,
    };
    let auxv = auxv_for(&strings);
    let items = (argv.len() + 1 + envp.len() + 1 + 1 + auxv.len() * 2) as u64;
    let sp = (p - items * 8) & !15;

    // Phase 2: the VMA: what the arguments use plus 128 KiB, within RLIMIT_STACK.
    let used = top - page_floor(sp);
    let mut vma_start = page_floor(sp) - STACK_EXPAND;
    if let Some(r) = rlim {
        let r = r & !(PAGE_SIZE - 1);
        if used + STACK_EXPAND > r {
            vma_start = top - r.max(used);
        }
    }
    let mut prot = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    if exec_stack {
        prot |= libc::PROT_EXEC as u32;
    }
    let mut req = MapRequest::anonymous(vma_start, top - vma_start, prot, VmaKind::Stack);
    req.fixed = true;
    req.growsdown = true;
    mem.map(&req)
        .map_err(|e| (libc::ENOMEM, format!("cannot map the stack: {e:?}")))?;

    // Phase 3: contents. The kernel writes them, so page permissions do not matter.
    let w = |addr: u64, data: &[u8]| {
        mem.force_write(addr, data)
            .map_err(|_| (libc::EFAULT, "cannot write the initial stack".to_string()))
    };
    w(top - 8, &[0u8; 8])?;
    let w_cstr = |addr: u64, s: &[u8]| {
        let mut s = cstr(s).to_vec();
        s.push(0);
        w(addr, &s)
    };
    w_cstr(execfn_at, execfn)?;
    for (s, &at) in envp.iter().zip(&env_at).chain(argv.iter().zip(&arg_at)) {
        w_cstr(at, s)?;
    }
    w(platform, PLATFORM)?;
    w(random, &super::random_bytes(16))?;
    let mut words: Vec<u64> = Vec::with_capacity(items as usize);
    words.push(argv.len() as u64);
    words.extend(&arg_at);
    words.push(0);
    words.extend(&env_at);
    words.push(0);
    for (k, v) in &auxv {
        words.push(*k);
        words.push(*v);
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    w(sp, &bytes)?;
    Ok(Built {
        sp,
        arg_start,
        arg_end,
        env_start,
        env_end,
        vma_start,
        auxv,
    })
}
