//! The host runner: a machine-code trampoline generated at run time in the guest code mapping
//! (which is host memory at the same address, made RWX on the host only).
//!
//! Layout of the code mapping (4 pages from `code`):
//!
//! | offset  | what |
//! |---------|------|
//! | 0x0000  | prologue: save host callee-saved registers, load the input state, jump to the test instruction |
//! | 0x0200  | epilogue: store the output state, restore the host, return |
//! | 0x03e0  | fault pad: where the signal handler sends a faulting test instruction |
//! | 0x0400..0x1000 | test region, 0xCC-filled: the instruction at `code + 0x800`, then landing pads |
//! | 0x1000  | harness data: input state, output state, host FXSAVE area, save slots |
//! | 0x2000..0x3000 | harness stack (PUSHFQ/POPFQ only) |
//!
//! Everything is addressed RIP-relative, so no register is needed to reach the save areas and
//! the test instruction sees exactly the input state. Each landing pad records its index with
//! `mov dword [rip+pad], imm32` (touches no register or flag) and jumps to the epilogue, so the
//! native RIP after the instruction is the address of the pad reached.

use super::State;
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

pub const PROLOGUE: u64 = 0x0;
pub const EPILOGUE: u64 = 0x200;
pub const FAULT_PAD: u64 = 0x3e0;
pub const REGION_START: u64 = 0x400;
pub const REGION_END: u64 = 0x1000;
pub const INSN: u64 = 0x800;
pub const H_IN: u64 = 0x1000;
pub const H_OUT: u64 = 0x1400;
pub const H_HOSTFX: u64 = 0x1800;
pub const H_SAVE: u64 = 0x1a00;
pub const H_PAD: u64 = 0x1a40;
pub const H_STACKPTR: u64 = 0x1a48;
pub const H_HOSTFS: u64 = 0x1a50;
pub const H_HOSTGS: u64 = 0x1a58;
pub const H_STACKTOP: u64 = 0x3000;
pub const CODE_LEN: u64 = 0x4000;
/// The pad index the fault pad records.
pub const FAULTED: u32 = u32::MAX;
/// Size of one landing pad.
pub const PAD_LEN: i64 = 15;

const GPR_OFF: u64 = 0;
const RFLAGS_OFF: u64 = 128;
const FX_OFF: u64 = 144;
const YMM_HI_OFF: u64 = FX_OFF + 512;
const FS_OFF: u64 = YMM_HI_OFF + 256;
const GS_OFF: u64 = FS_OFF + 8;

/// Whether the host lets user code read and write the FS and GS bases (RDFSBASE and friends:
/// CR4.FSGSBASE, which Linux 5.9 and later set and report as HWCAP2_FSGSBASE in AT_HWCAP2).
pub fn host_fsgsbase() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_HWCAP2) & 2 != 0 }
}

/// Emits code at a known address so RIP-relative displacements can be computed.
struct Asm {
    at: u64,
    buf: Vec<u8>,
}

impl Asm {
    fn new(at: u64) -> Asm {
        Asm {
            at,
            buf: Vec::new(),
        }
    }
    fn here(&self) -> u64 {
        self.at + self.buf.len() as u64
    }
    /// `[rex] op modrm(reg, rip+disp32) [imm]` addressing `target`.
    fn rip(&mut self, rex: Option<u8>, op: &[u8], reg: u8, target: u64, imm: &[u8]) {
        if let Some(r) = rex {
            self.buf.push(r);
        }
        self.buf.extend_from_slice(op);
        self.buf.push(((reg & 7) << 3) | 5);
        let end = self.here() + 4 + imm.len() as u64;
        let d = target.wrapping_sub(end) as i64;
        assert!(i32::try_from(d).is_ok());
        self.buf.extend((d as i32).to_le_bytes());
        self.buf.extend_from_slice(imm);
    }
    /// mov [target], r64
    fn store(&mut self, r: u8, target: u64) {
        self.rip(Some(0x48 | ((r >> 3) << 2)), &[0x89], r, target, &[]);
    }
    /// mov r64, [target]
    fn load(&mut self, r: u8, target: u64) {
        self.rip(Some(0x48 | ((r >> 3) << 2)), &[0x8b], r, target, &[]);
    }
    fn fxsave(&mut self, target: u64) {
        self.rip(Some(0x48), &[0x0f, 0xae], 0, target, &[]);
    }
    fn fxrstor(&mut self, target: u64) {
        self.rip(Some(0x48), &[0x0f, 0xae], 1, target, &[]);
    }
    /// The upper halves of YMM0-15 from (load) or to (store) `target`, 16 bytes each:
    /// VINSERTI128 ymm, ymm, [rip+d], 1 / VEXTRACTI128 [rip+d], ymm, 1. Nothing on a host
    /// without AVX2.
    fn ymm_hi(&mut self, target: u64, load: bool) {
        use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for n in 0..16usize {
            let y = Register::values().nth(Register::YMM0 as usize + n).unwrap();
            let x = Register::values().nth(Register::XMM0 as usize + n).unwrap();
            let m = MemoryOperand::with_base_displ(Register::RIP, (target + 16 * n as u64) as i64);
            let i = if load {
                Instruction::with4(Code::VEX_Vinserti128_ymm_ymm_xmmm128_imm8, y, y, m, 1u32)
            } else {
                Instruction::with3(Code::VEX_Vextracti128_xmmm128_ymm_imm8, m, y, 1u32)
            }
            .unwrap();
            let _ = x;
            let mut e = Encoder::new(64);
            let len = e.encode(&i, self.here()).unwrap();
            self.buf.extend_from_slice(&e.take_buffer()[..len]);
        }
    }
    /// RDFSBASE/RDGSBASE RAX (`gs`) and WRFSBASE/WRGSBASE RAX: F3 REX.W 0F AE /0../3.
    fn segbase(&mut self, gs: bool, write: bool) {
        let reg = (write as u8) * 2 + gs as u8;
        self.buf
            .extend_from_slice(&[0xf3, 0x48, 0x0f, 0xae, 0xc0 | (reg << 3)]);
    }
    fn jmp(&mut self, target: u64) {
        self.buf.push(0xe9);
        let d = target.wrapping_sub(self.here() + 4) as i64;
        assert!(i32::try_from(d).is_ok());
        self.buf.extend((d as i32).to_le_bytes());
    }
    /// mov dword [target], v
    fn store_imm32(&mut self, target: u64, v: u32) {
        self.rip(None, &[0xc7], 0, target, &v.to_le_bytes());
    }
}

const CALLEE_SAVED: [u8; 7] = [3, 5, 12, 13, 14, 15, 4];

/// Writes the fixed parts of the trampoline (prologue, epilogue, fault pad) at `code`.
pub fn build(code: u64) {
    let mut p = Asm::new(code + PROLOGUE);
    for (k, &r) in CALLEE_SAVED.iter().enumerate() {
        p.store(r, code + H_SAVE + 8 * k as u64);
    }
    p.fxsave(code + H_HOSTFX);
    p.fxrstor(code + H_IN + FX_OFF);
    p.ymm_hi(code + H_IN + YMM_HI_OFF, true);
    if host_fsgsbase() {
        // The host's FS and GS bases saved, the input's loaded (RAX is loaded last below).
        for (gs, save, input) in [(false, H_HOSTFS, FS_OFF), (true, H_HOSTGS, GS_OFF)] {
            p.segbase(gs, false);
            p.store(0, code + save);
            p.load(0, code + H_IN + input);
            p.segbase(gs, true);
        }
    }
    p.load(4, code + H_STACKPTR);
    // push qword [in.rflags]; popfq
    p.rip(None, &[0xff], 6, code + H_IN + RFLAGS_OFF, &[]);
    p.buf.push(0x9d);
    for r in 0..16u8 {
        p.load(r, code + H_IN + GPR_OFF + 8 * r as u64);
    }
    p.jmp(code + INSN);
    assert!(
        p.buf.len() as u64 <= EPILOGUE - PROLOGUE,
        "prologue {} bytes",
        p.buf.len()
    );

    let mut e = Asm::new(code + EPILOGUE);
    for r in 0..16u8 {
        e.store(r, code + H_OUT + GPR_OFF + 8 * r as u64);
    }
    if host_fsgsbase() {
        // The output's FS and GS bases stored, the host's restored (nothing between the test
        // instruction and here uses them; the fault handler touches only statics).
        for (gs, save, output) in [(false, H_HOSTFS, FS_OFF), (true, H_HOSTGS, GS_OFF)] {
            e.segbase(gs, false);
            e.store(0, code + H_OUT + output);
            e.load(0, code + save);
            e.segbase(gs, true);
        }
    }
    e.load(4, code + H_STACKPTR);
    e.buf.push(0x9c); // pushfq
    e.rip(None, &[0x8f], 0, code + H_OUT + RFLAGS_OFF, &[]); // pop qword [out.rflags]
    e.fxsave(code + H_OUT + FX_OFF);
    e.ymm_hi(code + H_OUT + YMM_HI_OFF, false);
    e.fxrstor(code + H_HOSTFX);
    e.buf.push(0xfc); // cld: the ABI wants DF clear on return
    for (k, &r) in CALLEE_SAVED.iter().enumerate() {
        e.load(r, code + H_SAVE + 8 * k as u64);
    }
    e.buf.push(0xc3);
    assert!(
        e.buf.len() as u64 <= FAULT_PAD - EPILOGUE,
        "epilogue {} bytes",
        e.buf.len()
    );

    let mut f = Asm::new(code + FAULT_PAD);
    f.store_imm32(code + H_PAD, FAULTED);
    f.jmp(code + EPILOGUE);

    // SAFETY: the code mapping is ours, host-writable, and no other thread runs it (the
    // harness lock is held by the caller).
    unsafe {
        write(code + PROLOGUE, &p.buf);
        write(code + EPILOGUE, &e.buf);
        write(code + FAULT_PAD, &f.buf);
        std::ptr::write_volatile((code + H_STACKPTR) as *mut u64, code + H_STACKTOP);
    }
}

/// Writes the test instruction and its landing pads into the test region. `pads[k]` is the
/// address of pad k (pad 0 is the fall-through address).
pub fn place(code: u64, insn: &[u8], pads: &[u64]) {
    // SAFETY: the test region is ours; the harness lock serializes writers and runners.
    unsafe {
        std::ptr::write_bytes(
            (code + REGION_START) as *mut u8,
            0xcc,
            (REGION_END - REGION_START) as usize,
        );
        write(code + INSN, insn);
        for (k, &a) in pads.iter().enumerate() {
            let mut p = Asm::new(a);
            p.store_imm32(code + H_PAD, k as u32);
            p.jmp(code + EPILOGUE);
            write(a, &p.buf);
        }
    }
}

/// # Safety
/// `addr..addr + data.len()` must be writable host memory nobody else is using.
pub unsafe fn write(addr: u64, data: &[u8]) {
    // SAFETY: the caller guarantees the range is writable and unused; `data` is a live slice
    // that cannot overlap host-owned test memory.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len());
    }
}

/// What the host did.
#[derive(Clone)]
pub struct Native {
    pub out: State,
    /// The signal the instruction raised, if any.
    pub signal: Option<i32>,
    /// What the kernel said about it (siginfo and the trap state of the signal frame).
    pub fault: Option<super::FaultInfo>,
    /// The index of the landing pad reached (when no signal).
    pub pad: u32,
}

/// Runs the trampoline with `input`. The caller holds the harness lock.
pub fn run(code: u64, input: &State) -> Native {
    install_handlers(code);
    ensure_altstack();
    FAULT_SIG.store(0, Ordering::SeqCst);
    // SAFETY: the harness data area is ours; the trampoline was built by `build` and `place`
    // at `code`, saves and restores every callee-saved register, RSP, MXCSR and the x87 control
    // word, clears DF, and returns with a plain RET, so it behaves as an `extern "C" fn()`.
    unsafe {
        std::ptr::write_volatile((code + H_IN) as *mut State, *input);
        std::ptr::write_volatile((code + H_PAD) as *mut u32, 0xdead);
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        let f: extern "C" fn() = std::mem::transmute(code as usize);
        f();
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        let out = std::ptr::read_volatile((code + H_OUT) as *const State);
        let pad = std::ptr::read_volatile((code + H_PAD) as *const u32);
        let sig = FAULT_SIG.load(Ordering::SeqCst);
        let mut out = out;
        out.rip = 0;
        let fault = (pad == FAULTED).then(|| super::FaultInfo {
            trapno: FAULT_TRAPNO.load(Ordering::SeqCst),
            err: FAULT_ERR.load(Ordering::SeqCst),
            code: FAULT_CODE.load(Ordering::SeqCst),
            addr: FAULT_ADDR.load(Ordering::SeqCst),
        });
        Native {
            out,
            signal: if pad == FAULTED { Some(sig) } else { None },
            fault,
            pad,
        }
    }
}

/// The RIP where the last fault happened.
pub fn fault_rip() -> u64 {
    FAULT_RIP.load(Ordering::SeqCst)
}

static FAULT_SIG: AtomicI32 = AtomicI32::new(0);
static FAULT_RIP: AtomicU64 = AtomicU64::new(0);
static FAULT_CODE: AtomicI32 = AtomicI32::new(0);
static FAULT_ADDR: AtomicU64 = AtomicU64::new(0);
static FAULT_TRAPNO: AtomicU64 = AtomicU64::new(0);
static FAULT_ERR: AtomicU64 = AtomicU64::new(0);
static CODE_BASE: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// A fault inside the test region is recovered by resuming at the fault pad (no longjmp: the
/// kernel restores the modified context). A fault anywhere else is not ours: the default action
/// is restored and the instruction re-executed, so the process dies as it would have.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let code = CODE_BASE.load(Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo_t and ucontext_t to an SA_SIGINFO handler.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
        if code != 0 && rip >= code + REGION_START && rip < code + REGION_END {
            FAULT_SIG.store(sig, Ordering::SeqCst);
            FAULT_RIP.store(rip, Ordering::SeqCst);
            // si_code and si_addr; the trap number and hardware error code Linux stores in
            // the frame's sigcontext (arch/x86/kernel/signal_64.c, setup_sigcontext).
            FAULT_CODE.store((*info).si_code, Ordering::SeqCst);
            FAULT_ADDR.store((*info).si_addr() as u64, Ordering::SeqCst);
            let g = &(*uc).uc_mcontext.gregs;
            FAULT_TRAPNO.store(g[libc::REG_TRAPNO as usize] as u64, Ordering::SeqCst);
            FAULT_ERR.store(g[libc::REG_ERR as usize] as u64, Ordering::SeqCst);
            (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] = (code + FAULT_PAD) as i64;
            return;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

fn install_handlers(code: u64) {
    CODE_BASE.store(code, Ordering::SeqCst);
    INSTALL.call_once(|| {
        for sig in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
        ] {
            // SAFETY: installing a handler that only touches atomics and the context it is given.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_fault as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

thread_local! {
    static ALTSTACK: Cell<bool> = const { Cell::new(false) };
}

/// The test instruction runs with RSP inside the data page, so signals must be delivered on an
/// alternate stack or the kernel's frame would overwrite the buffer being compared.
fn ensure_altstack() {
    ALTSTACK.with(|done| {
        if done.get() {
            return;
        }
        const SIZE: usize = 256 * 1024;
        let mem: &'static mut [u8] = Box::leak(vec![0u8; SIZE].into_boxed_slice());
        // SAFETY: the stack memory is leaked, so it outlives the thread.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: mem.as_mut_ptr().cast::<libc::c_void>(),
                ss_flags: 0,
                ss_size: SIZE,
            };
            libc::sigaltstack(&ss, std::ptr::null_mut());
        }
        done.set(true);
    });
}
