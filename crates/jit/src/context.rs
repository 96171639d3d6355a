//! The per-thread context block translated code reaches through the host GS segment.
//!
//! Translated code keeps the guest's 16 GPRs in the same host registers and its arithmetic
//! flags in host RFLAGS, so it has no free register to point at cetbox's own state. As
//! DynamoRIO does, it steals a segment register instead: the host GS base of every host thread
//! that runs translated code points at that thread's `Context`, set once per thread with
//! arch_prctl(ARCH_SET_GS) (arch/x86/kernel/process_64.c, do_arch_prctl_64). Neither glibc nor
//! Rust uses GS on x86-64 (they keep thread-local storage behind FS), and guest GS-relative
//! operands are never executed natively (they fall back until they are rewritten to add
//! `Cpu::gs_base`), so the guest cannot name this block.
//!
//! While translated code runs, host RSP is the guest's RSP. A host signal arriving then must
//! not be delivered on the guest's stack (it would write cetbox's frame into guest memory, or
//! kill cetbox if the guest's RSP points nowhere): every thread that enters translated code
//! has an alternate signal stack (`ensure_altstack`), and cetbox's host handlers are installed
//! with SA_ONSTACK (crates/linux/src/signals/host.rs).

use std::cell::Cell;

/// Byte offsets of the `Context` fields, as generated code addresses them (`gs:[OFF]`).
pub mod off {
    /// Guest GPRs in encoding order (RAX, RCX, ..., R15), 8 bytes each.
    pub const GPR: i64 = 0;
    /// Guest RFLAGS: loaded on entry (arithmetic flags only), stored on exit.
    pub const RFLAGS: i64 = 128;
    /// Written by every exit: the guest RIP execution continues at.
    pub const NEXT_RIP: i64 = 136;
    /// Guest instructions retired since entry: zeroed by the caller, loaded into MM0 by the
    /// entry trampoline, which every block exit adds to (`translate::add_retired`), and stored
    /// back by the exit trampoline.
    pub const RETIRED: i64 = 144;
    /// The host RSP saved by the entry trampoline.
    pub const HOST_RSP: i64 = 152;
    /// The translated block the entry trampoline jumps to.
    pub const TARGET: i64 = 160;
    /// Spill slot for inserted code (never the guest's stack).
    pub const SCRATCH: i64 = 168;
    /// The address of the shadow-stack page the shadow-stack accesses of CALL and RET last
    /// checked in full during this entry (`memop::check_shadow`), or `NO_SS_PAGE`.
    pub const SS_PAGE: i64 = 176;
    /// The address of the address space's code epoch (`AddressSpace::code_epoch_cell`).
    pub const EPOCH_PTR: i64 = 184;
    /// The address of the run's stop flag (one byte, nonzero when set).
    pub const STOP_PTR: i64 = 192;
    /// Spill slot of the register a memory operand's address is computed in (`memop`).
    pub const ADDR_SAVE: i64 = 200;
    /// Spill slot of RAX while a memory check uses it.
    pub const RAX_SAVE: i64 = 208;
    /// The guest's arithmetic flags during a memory check, as LAHF/SETO leave them in AX.
    pub const FLAGS_SAVE: i64 = 216;
    /// The host address of the page table's entry for page 0 (`PageTable::base_addr`).
    pub const PT_BASE: i64 = 224;
    /// Pages the table describes: a page index at or above it is never guest memory.
    pub const PT_PAGES: i64 = 232;
    /// Why the last exit left translated code (`exit_reason`), zeroed on entry.
    pub const EXIT_REASON: i64 = 240;
    /// The guest's FS and GS bases, for FS/GS-relative operands.
    pub const FS_BASE: i64 = 248;
    pub const GS_BASE: i64 = 256;
    /// The guest's shadow-stack pointer: loaded into MM1 by the entry trampoline, where
    /// translated code keeps it (`translate::SSP_REG`), and stored back by the exit
    /// trampoline.
    pub const SSP: i64 = 264;
    /// The address of the code cache's front table (`cache::Slot` entries).
    pub const LOOKUP: i64 = 272;
    /// The host address an indirect dispatch jumps to (`jmp gs:[JUMP]`).
    pub const JUMP: i64 = 280;
    /// The address of the guest's XMM registers (`Sse::xmm`, 16 x 16 bytes), loaded into the
    /// host's by the entry trampoline and stored back by the exit trampoline.
    pub const XMM_PTR: i64 = 288;
    /// The address of the upper halves of the guest's YMM registers (`Sse::ymm_hi`), loaded
    /// and stored by the trampolines when the host has AVX.
    pub const YMM_HI_PTR: i64 = 296;
    /// Set by a direct exit whose target had no translation when it was emitted: the host
    /// address of its `jmp rel32`, which the run loop points at the target's translation once
    /// there is one (`CodeCache::link`); 0 otherwise.
    pub const LINK: i64 = 304;
    /// `COUNTS_LEN` constants, the n-th holding n: the operand of the `paddq mm0, gs:[..]`
    /// that adds a block's retired instructions to the running count in MM0
    /// (`translate::add_retired`); the 8 is also what CALL and RET subtract from and add to
    /// SSP in MM1 (`translate::SSP_REG`).
    pub const COUNTS: i64 = 312;
    /// `PAGE_SLOTS` remembered pages, one per read or write site of translated code (sites
    /// share them modulo `PAGE_SLOTS / 2`; reads the first half, writes the second):
    /// `memop::check_place`.
    pub const PAGE_SLOTS: i64 = 888;
    /// A bit per slot of `PAGE_SLOTS` filled since the slots were last emptied (an entry
    /// after a removal empties those: `Translator::enter`).
    pub const SLOTS_DIRTY: i64 = PAGE_SLOTS + 8 * super::PAGE_SLOTS as i64;
    /// Nonzero when sites may remember pages during this entry (no userfaultfd in use).
    pub const REMEMBER: i64 = SLOTS_DIRTY + 8 * (super::PAGE_SLOTS as i64 / 64);
    /// The return cache (`ReturnCache`): `RETURN_SLOTS` pairs of guest return address and
    /// host address of its translation, indexed by the shadow-stack slot a RET pops.
    pub const RETURNS: i64 = REMEMBER + 8;
    /// The shared full checks of remembered pages (`trampoline::check_stub`): where the stub
    /// returns to, its argument (the site's slot in bits 0-15, the access's size minus 1 in
    /// bits 16-31), the address checked, and RCX while the stub uses it.
    pub const CHECK_RET: i64 = RETURNS + 16 * super::RETURN_SLOTS as i64;
    pub const CHECK_ARG: i64 = CHECK_RET + 8;
    pub const CHECK_ADDR: i64 = CHECK_ARG + 8;
    pub const CHECK_RCX: i64 = CHECK_ADDR + 8;
}

/// Slots for remembered pages (`off::PAGE_SLOTS`): the first half for read sites, the second
/// for write sites; a multiple of 128, below 2^16 (`trampoline::check_stub`'s argument).
/// Sites share slots modulo half of it, and a site whose slot another site's page took
/// checks the table in full: python3's start-up (8,400 sites) made 2.25 million full checks
/// with 512 slots, 1.59 million with 2,048 and 1.27 million with 8,192 (the rest are sites
/// that meet a new page; 16 forgets emptied 16,000 slots in all).
pub const PAGE_SLOTS: usize = 8192;

/// The remembered pages of the read and write sites of translated code, each a page address
/// or `cetbox_mem::remembered::NO_PAGE`.
#[repr(C)]
pub struct PageSlots(pub [u64; PAGE_SLOTS]);

impl Default for PageSlots {
    fn default() -> PageSlots {
        PageSlots([cetbox_mem::remembered::NO_PAGE; PAGE_SLOTS])
    }
}

/// A bit per slot of `PageSlots` filled since the slots were last emptied.
#[repr(C)]
pub struct SlotsDirty(pub [u64; PAGE_SLOTS / 64]);

impl Default for SlotsDirty {
    fn default() -> SlotsDirty {
        SlotsDirty([0; PAGE_SLOTS / 64])
    }
}

/// Entries of `Context::counts`: every retired count a block exit adds (at most
/// `translate::MAX_BLOCK` + 1).
pub const COUNTS_LEN: usize = 72;

/// The constants 0, 1, ... `COUNTS_LEN` - 1 (`off::COUNTS`).
#[repr(C)]
pub struct Counts(pub [u64; COUNTS_LEN]);

impl Default for Counts {
    fn default() -> Counts {
        Counts(std::array::from_fn(|i| i as u64))
    }
}

/// Entries of the return cache (`off::RETURNS`), a power of two.
pub const RETURN_SLOTS: usize = 128;

/// What translated code ANDs the address of a shadow-stack slot (8-byte aligned) with to get
/// its return-cache entry's offset divided by 2 (entries are 16 bytes): `(ssp >> 3) mod
/// RETURN_SLOTS`, times 8.
pub const RETURN_MASK: u32 = ((RETURN_SLOTS - 1) * 8) as u32;

/// The return cache of a RET with the shadow stack on (`translate::ret`): entry
/// `(ssp >> 3) mod RETURN_SLOTS`, for the slot at SSP the RET pops, holds the last return
/// address popped from that slot whose translation the front table had, and that
/// translation's host address. A RET whose return address (already compared with the shadow
/// stack's) equals the entry's goes to the host address without probing the front table; an
/// empty entry has host address 0, which the RET takes as a miss whatever its address. Only
/// the translations of the current cache are ever in it: the run loop empties it before it
/// enters translated code after the cache was reset (`Translator::enter`).
#[repr(C)]
pub struct ReturnCache(pub [[u64; 2]; RETURN_SLOTS]);

impl Default for ReturnCache {
    fn default() -> ReturnCache {
        ReturnCache([[u64::MAX, 0]; RETURN_SLOTS])
    }
}

/// `Context::ss_page` when no page is known: bit 3 set, so no address with bits 3-11 cleared
/// (what `memop::check_shadow` compares) equals it.
pub const NO_SS_PAGE: u64 = 8;

/// Values of `Context::exit_reason`.
pub mod exit_reason {
    /// Translated code reached the next RIP normally.
    pub const NEXT: u64 = 0;
    /// A memory check did not pass on its fast path: the instruction at the next RIP must
    /// run in the interpreter (which takes the slow path, raises the precise fault, or
    /// invalidates code it writes).
    pub const STEP: u64 = 1;
}

/// The context block; its layout is `off`.
#[repr(C, align(64))]
#[derive(Default)]
pub struct Context {
    pub gpr: [u64; 16],
    pub rflags: u64,
    pub next_rip: u64,
    pub retired: u64,
    pub host_rsp: u64,
    pub target: u64,
    pub scratch: u64,
    pub ss_page: u64,
    pub epoch_ptr: u64,
    pub stop_ptr: u64,
    pub addr_save: u64,
    pub rax_save: u64,
    pub flags_save: u64,
    pub pt_base: u64,
    pub pt_pages: u64,
    pub exit_reason: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ssp: u64,
    pub lookup: u64,
    pub jump: u64,
    pub xmm_ptr: u64,
    pub ymm_hi_ptr: u64,
    pub link: u64,
    pub counts: Counts,
    pub page_slots: PageSlots,
    pub slots_dirty: SlotsDirty,
    pub remember: u64,
    pub returns: ReturnCache,
    pub check_ret: u64,
    pub check_arg: u64,
    pub check_addr: u64,
    pub check_rcx: u64,
}

impl Context {
    /// Forgets every remembered page (those of the slots filled since the last call), and
    /// allows remembering for the coming entry when `remember`.
    pub fn forget_pages(&mut self, remember: bool) {
        for (w, dirty) in self.slots_dirty.0.iter_mut().enumerate() {
            let mut bits = std::mem::take(dirty);
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                self.page_slots.0[w * 64 + i] = cetbox_mem::remembered::NO_PAGE;
                bits &= bits - 1;
            }
        }
        self.remember = u64::from(remember);
    }
}

const _: () = {
    assert!(std::mem::offset_of!(Context, rflags) == off::RFLAGS as usize);
    assert!(std::mem::offset_of!(Context, next_rip) == off::NEXT_RIP as usize);
    assert!(std::mem::offset_of!(Context, retired) == off::RETIRED as usize);
    assert!(std::mem::offset_of!(Context, host_rsp) == off::HOST_RSP as usize);
    assert!(std::mem::offset_of!(Context, target) == off::TARGET as usize);
    assert!(std::mem::offset_of!(Context, scratch) == off::SCRATCH as usize);
    assert!(std::mem::offset_of!(Context, ss_page) == off::SS_PAGE as usize);
    assert!(std::mem::offset_of!(Context, epoch_ptr) == off::EPOCH_PTR as usize);
    assert!(std::mem::offset_of!(Context, stop_ptr) == off::STOP_PTR as usize);
    assert!(std::mem::offset_of!(Context, addr_save) == off::ADDR_SAVE as usize);
    assert!(std::mem::offset_of!(Context, rax_save) == off::RAX_SAVE as usize);
    assert!(std::mem::offset_of!(Context, flags_save) == off::FLAGS_SAVE as usize);
    assert!(std::mem::offset_of!(Context, pt_base) == off::PT_BASE as usize);
    assert!(std::mem::offset_of!(Context, pt_pages) == off::PT_PAGES as usize);
    assert!(std::mem::offset_of!(Context, exit_reason) == off::EXIT_REASON as usize);
    assert!(std::mem::offset_of!(Context, fs_base) == off::FS_BASE as usize);
    assert!(std::mem::offset_of!(Context, gs_base) == off::GS_BASE as usize);
    assert!(std::mem::offset_of!(Context, ssp) == off::SSP as usize);
    assert!(std::mem::offset_of!(Context, lookup) == off::LOOKUP as usize);
    assert!(std::mem::offset_of!(Context, jump) == off::JUMP as usize);
    assert!(std::mem::offset_of!(Context, xmm_ptr) == off::XMM_PTR as usize);
    assert!(std::mem::offset_of!(Context, ymm_hi_ptr) == off::YMM_HI_PTR as usize);
    assert!(std::mem::offset_of!(Context, link) == off::LINK as usize);
    assert!(std::mem::offset_of!(Context, counts) == off::COUNTS as usize);
    assert!(std::mem::offset_of!(Context, page_slots) == off::PAGE_SLOTS as usize);
    assert!(std::mem::offset_of!(Context, slots_dirty) == off::SLOTS_DIRTY as usize);
    assert!(std::mem::offset_of!(Context, remember) == off::REMEMBER as usize);
    assert!(std::mem::offset_of!(Context, returns) == off::RETURNS as usize);
    assert!(std::mem::offset_of!(Context, check_ret) == off::CHECK_RET as usize);
    assert!(std::mem::offset_of!(Context, check_arg) == off::CHECK_ARG as usize);
    assert!(std::mem::offset_of!(Context, check_addr) == off::CHECK_ADDR as usize);
    assert!(std::mem::offset_of!(Context, check_rcx) == off::CHECK_RCX as usize);
};

thread_local! {
    /// The GS base this host thread was last given (0: never set).
    static GS_BASE: Cell<u64> = const { Cell::new(0) };
    /// Whether this host thread has been checked for an alternate signal stack.
    static ALTSTACK: Cell<bool> = const { Cell::new(false) };
}

/// Points this host thread's GS base at `ctx` (one syscall the first time per thread and
/// context; a thread-local comparison afterwards).
pub fn bind(ctx: *const Context) -> std::io::Result<()> {
    let want = ctx as u64;
    if GS_BASE.with(Cell::get) == want {
        return Ok(());
    }
    // ARCH_SET_GS = 0x1001 (arch/x86/include/uapi/asm/prctl.h).
    // SAFETY: setting the GS base changes nothing Rust or libc relies on (they use FS).
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, 0x1001, want) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    GS_BASE.with(|c| c.set(want));
    ensure_altstack()
}

/// Size of the alternate signal stack installed for threads that had none.
const ALTSTACK_SIZE: usize = 64 * 1024;

/// Makes sure this host thread has an alternate signal stack (Rust's runtime installs one on
/// the threads it creates; this covers any thread that has none). The stack is never freed:
/// one per host thread that ever ran translated code without one.
fn ensure_altstack() -> std::io::Result<()> {
    if ALTSTACK.with(Cell::get) {
        return Ok(());
    }
    // SAFETY: a zeroed stack_t is a valid out-parameter.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: querying the current alternate stack only writes `old`.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut old) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if old.ss_flags & libc::SS_DISABLE != 0 {
        // SAFETY: a fresh anonymous private mapping affects no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ALTSTACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let st = libc::stack_t {
            ss_sp: p,
            ss_flags: 0,
            ss_size: ALTSTACK_SIZE,
        };
        // SAFETY: `st` describes the mapping just made, which is never unmapped.
        if unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    ALTSTACK.with(|c| c.set(true));
    Ok(())
}
