//! Linux x86-64 signal frames (struct rt_sigframe: the return address, ucontext with the
//! sigcontext in kernel register order, the XSAVE-layout FPU state, siginfo) and the register
//! restore of rt_sigreturn.
//!
//! Layout (all offsets from the frame start, which is the handler's RSP):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | pretcode (sa_restorer) |
//! | 8 | 304 | struct ucontext: uc_flags 0, uc_link 8, uc_stack 16 (ss_sp, ss_flags, ss_size), uc_mcontext 40 (struct sigcontext, 256 bytes), uc_sigmask 296 |
//! | 312 | 128 | siginfo |
//!
//! The FPU state lies above the frame, 64-byte aligned: 512 bytes of FXSAVE image whose
//! software-reserved bytes 464..512 describe the extended area, the 64-byte XSAVE header, on
//! the x86-64-v3 CPU the AVX component (YMM0-15 bits 255:128, 256 bytes at 576), and
//! FP_XSTATE_MAGIC2 right after it (580 bytes in all, 836 with AVX): the user XSAVE layout of
//! arch/x86/include/uapi/asm/sigcontext.h as copy_fpstate_to_sigframe() writes it.

use super::{AltStack, SigAction, SigInfo, SA_ONSTACK, SA_SIGINFO};
use crate::process::Thread;
use cetbox_cpu::flags::{AC, AF, CF, DF, OF, PF, SF, TF, ZF};
use cetbox_cpu::fpstate::{fxrstor, fxsave, Sse, X87};
use cetbox_mem::Access;

/// sizeof(struct rt_sigframe).
pub const FRAME_SIZE: u64 = 440;
/// Offsets in the frame.
pub const PRETCODE: u64 = 0;
pub const UC: u64 = 8;
pub const UC_FLAGS: u64 = UC;
pub const UC_LINK: u64 = UC + 8;
pub const UC_STACK: u64 = UC + 16;
pub const UC_MCONTEXT: u64 = UC + 40;
pub const UC_SIGMASK: u64 = UC + 296;
pub const INFO: u64 = 312;

/// Offsets in struct sigcontext.
pub const SC_RSP: u64 = 15 * 8;
pub const SC_RIP: u64 = 16 * 8;
pub const SC_EFLAGS: u64 = 17 * 8;
pub const SC_CS: u64 = 144;
pub const SC_GS: u64 = 146;
pub const SC_FS: u64 = 148;
pub const SC_SS: u64 = 150;
pub const SC_ERR: u64 = 152;
pub const SC_TRAPNO: u64 = 160;
pub const SC_OLDMASK: u64 = 168;
pub const SC_CR2: u64 = 176;
pub const SC_FPSTATE: u64 = 184;
pub const SC_RESERVED: u64 = 192;
pub const SC_SIZE: u64 = 256;

/// The general registers in sigcontext order (r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx,
/// rsp), as indices into `Cpu::gpr`.
pub const SC_GPRS: [usize; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 7, 6, 5, 3, 2, 0, 1, 4];

pub const UC_FP_XSTATE: u64 = 1;
pub const UC_SIGCONTEXT_SS: u64 = 2;
pub const UC_STRICT_RESTORE_SS: u64 = 4;

pub const USER_CS: u16 = 0x33;
pub const USER_DS: u16 = 0x2b;

pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// The user XSAVE image without AVX: legacy area and header (x87 and SSE).
pub const XSTATE_SIZE: u64 = 576;
/// What the frame reserves for the FPU without AVX: the image plus MAGIC2.
pub const FPSTATE_SIZE: u64 = XSTATE_SIZE + 4;
/// The user xfeatures without AVX: x87 | SSE.
pub const XFEATURES: u64 = 3;
/// With AVX (x86-64-v3): the AVX component at 576, 256 bytes.
pub const AVX_OFFSET: u64 = 576;
pub const XSTATE_SIZE_AVX: u64 = AVX_OFFSET + 256;
/// The largest FPU area any CPU model writes (the image plus MAGIC2).
pub const FPSTATE_MAX: u64 = XSTATE_SIZE_AVX + 4;

/// The XSAVE layout of a CPU model's signal frames: (user xstate size, xfeatures).
pub fn xstate_layout(cfg: &cetbox_cpu::CpuConfig) -> (u64, u64) {
    if cfg.xcr0() & cetbox_cpu::state::XCR0_AVX != 0 {
        (XSTATE_SIZE_AVX, cfg.xcr0())
    } else {
        (XSTATE_SIZE, XFEATURES)
    }
}
/// RFLAGS bits rt_sigreturn takes from the frame (the kernel's FIX_EFLAGS; RF is not modelled).
pub const FIX_EFLAGS: u64 = AC | OF | DF | TF | SF | ZF | AF | PF | CF | (1 << 16);

pub const REDZONE: u64 = 128;

/// Where a signal frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The frame start: the handler's RSP ((frame + 8) is 16-byte aligned).
    pub frame: u64,
    /// The FPU state (64-byte aligned).
    pub fpstate: u64,
}

/// Chooses the frame location as the kernel's get_sigframe does, for a thread whose stack
/// pointer is `rsp`. None when the frame would overflow the alternate stack (the kernel then
/// fails the delivery with SIGSEGV).
pub fn place(rsp: u64, act_flags: u64, alt: &AltStack, fpstate_size: u64) -> Option<Placement> {
    let nested = alt.on_stack(rsp);
    let mut entering = false;
    let mut sp = rsp.wrapping_sub(REDZONE);
    if act_flags & SA_ONSTACK != 0 && alt.state(sp) == 0 {
        sp = alt.sp.wrapping_add(alt.size);
        entering = true;
    }
    let fpstate = sp.wrapping_sub(fpstate_size) & !63;
    let frame = (fpstate.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);
    if (nested || entering) && !alt.contains(frame) {
        return None;
    }
    Some(Placement { frame, fpstate })
}

/// The bytes the kernel writes at `Placement::fpstate` (580 without AVX, 836 with).
pub fn fpstate_image(x87: &X87, sse: &Sse, layout: (u64, u64)) -> Vec<u8> {
    let (xsize, xfeatures) = layout;
    let mut img = vec![0u8; xsize as usize + 4];
    let mut legacy = [0u8; 512];
    fxsave(x87, sse, &mut legacy);
    img[..512].copy_from_slice(&legacy);
    // struct _fpx_sw_bytes in the FXSAVE software-reserved area.
    img[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    img[468..472].copy_from_slice(&(xsize as u32 + 4).to_le_bytes());
    img[472..480].copy_from_slice(&xfeatures.to_le_bytes());
    img[480..484].copy_from_slice(&(xsize as u32).to_le_bytes());
    // XSAVE header: XSTATE_BV is what XSAVE writes (XINUSE), with x87 and SSE always marked
    // present (save_xstate_epilog) so a legacy program that edits the FXSAVE area sees its
    // edits restored.
    let mut bv = XFEATURES;
    if xfeatures & 4 != 0 {
        bv |= cetbox_cpu::exec::xsave::xinuse(x87, sse) & 4;
        for (n, v) in sse.ymm_hi.iter().enumerate() {
            let o = AVX_OFFSET as usize + 16 * n;
            img[o..o + 16].copy_from_slice(&v.to_le_bytes());
        }
    }
    img[512..520].copy_from_slice(&bv.to_le_bytes());
    let m2 = xsize as usize;
    img[m2..m2 + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    img
}

/// The bytes of struct ucontext (304) for the current registers.
pub fn ucontext_image(t: &Thread, fpstate: u64, saved_mask: u64) -> [u8; 304] {
    let mut uc = [0u8; 304];
    let put = |b: &mut [u8; 304], o: u64, v: &[u8]| {
        b[o as usize..o as usize + v.len()].copy_from_slice(v)
    };
    let flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
    put(&mut uc, 0, &flags.to_le_bytes());
    // uc_link stays 0.
    let alt = t.signals.altstack;
    put(&mut uc, 16, &alt.sp.to_le_bytes());
    put(&mut uc, 24, &alt.flags.to_le_bytes());
    put(&mut uc, 32, &alt.size.to_le_bytes());
    let sc = UC_MCONTEXT - UC;
    let c = &t.cpu;
    for (i, &r) in SC_GPRS.iter().enumerate() {
        put(&mut uc, sc + 8 * i as u64, &c.gpr[r].to_le_bytes());
    }
    put(&mut uc, sc + SC_RIP, &c.rip.to_le_bytes());
    put(&mut uc, sc + SC_EFLAGS, &c.rflags().to_le_bytes());
    put(&mut uc, sc + SC_CS, &USER_CS.to_le_bytes());
    put(&mut uc, sc + SC_GS, &0u16.to_le_bytes());
    put(&mut uc, sc + SC_FS, &0u16.to_le_bytes());
    put(&mut uc, sc + SC_SS, &USER_DS.to_le_bytes());
    put(&mut uc, sc + SC_ERR, &t.signals.err.to_le_bytes());
    put(&mut uc, sc + SC_TRAPNO, &t.signals.trapno.to_le_bytes());
    put(&mut uc, sc + SC_OLDMASK, &saved_mask.to_le_bytes());
    put(&mut uc, sc + SC_CR2, &t.signals.cr2.to_le_bytes());
    put(&mut uc, sc + SC_FPSTATE, &fpstate.to_le_bytes());
    put(&mut uc, UC_SIGMASK - UC, &saved_mask.to_le_bytes());
    uc
}

/// Writes the signal frame for `sig` below the thread's stack (x64_setup_rt_frame). The
/// registers are not changed. Err when the frame cannot be placed or written.
pub fn write(
    t: &Thread,
    info: &SigInfo,
    act: &SigAction,
    saved_mask: u64,
) -> Result<Placement, BadFrame> {
    // x86-64 handlers must return through a user-space restorer.
    if act.flags & super::SA_RESTORER == 0 {
        return Err(BadFrame);
    }
    let layout = xstate_layout(&t.cpu.config);
    let fpsize = layout.0 + 4;
    let p = place(t.cpu.gpr[4], act.flags, &t.signals.altstack, fpsize).ok_or(BadFrame)?;
    let mem = t.mem();
    // The ranges must be ordinary user memory below the top of the address space.
    let top = p.fpstate.checked_add(fpsize).ok_or(BadFrame)?;
    if p.frame >= top || top > crate::abi::TASK_SIZE {
        return Err(BadFrame);
    }
    let fp = fpstate_image(&t.cpu.x87, &t.cpu.sse, layout);
    mem.write_bytes(p.fpstate, &fp).map_err(|_| BadFrame)?;
    let uc = ucontext_image(t, p.fpstate, saved_mask);
    let mut head = [0u8; (UC + 304) as usize];
    head[..8].copy_from_slice(&act.restorer.to_le_bytes());
    head[8..].copy_from_slice(&uc);
    mem.write_bytes(p.frame, &head).map_err(|_| BadFrame)?;
    // Like the kernel, siginfo is only written for SA_SIGINFO handlers (RSI points at the
    // area either way).
    if act.flags & SA_SIGINFO != 0 {
        mem.write_bytes(p.frame + INFO, &info.to_bytes())
            .map_err(|_| BadFrame)?;
    }
    Ok(p)
}

/// Points the registers at the handler once the frame is written.
pub fn enter_handler(t: &mut Thread, sig: i32, p: &Placement, handler: u64) {
    let c = &mut t.cpu;
    c.gpr[7] = sig as u64;
    c.gpr[6] = p.frame + INFO;
    c.gpr[2] = p.frame + UC;
    // For handlers declared without a prototype (varargs convention: no vector registers).
    c.gpr[0] = 0;
    c.gpr[4] = p.frame;
    c.rip = handler;
    // The ABI's function-entry state: DF clear; TF cleared so a SIGTRAP handler does not trap
    // recursively.
    c.flags.set_bits(DF | TF, false);
    // The handler starts with a freshly initialized FPU (fpu__clear_user_states).
    c.x87 = X87::default();
    c.sse = Sse::default();
}

/// A signal frame (or its shadow-stack part) could not be placed, written or read back: Linux
/// then forces SIGSEGV (arch/x86/kernel/signal.c: `handle_signal` -> `signal_setup_done` ->
/// `force_sigsegv` on delivery; `sys_rt_sigreturn` -> `signal_fault` on return).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFrame;

/// The frame rt_sigreturn finds: the handler's RET popped pretcode, so it starts 8 bytes below
/// RSP.
pub fn sigreturn_frame(rsp: u64) -> u64 {
    rsp.wrapping_sub(8)
}

/// Reads the saved signal mask and uc_flags (the first things rt_sigreturn reads).
pub fn read_mask(t: &Thread, frame: u64) -> Result<(u64, u64), BadFrame> {
    if frame
        .checked_add(FRAME_SIZE)
        .is_none_or(|e| e > crate::abi::TASK_SIZE)
    {
        return Err(BadFrame);
    }
    let mem = t.mem();
    let mask = mem.read_u64(frame + UC_SIGMASK).map_err(|_| BadFrame)?;
    let flags = mem.read_u64(frame + UC_FLAGS).map_err(|_| BadFrame)?;
    Ok((mask, flags))
}

/// restore_sigcontext: general registers, RIP, the user-changeable RFLAGS bits and the FPU
/// state from the frame at `frame`. Registers already restored stay restored when the FPU part
/// fails, as in the kernel.
pub fn restore_sigcontext(t: &mut Thread, frame: u64) -> Result<(), BadFrame> {
    let mut sc = [0u8; SC_RESERVED as usize];
    t.mem()
        .read_bytes(frame + UC_MCONTEXT, &mut sc)
        .map_err(|_| BadFrame)?;
    let q = |o: u64| u64::from_le_bytes(sc[o as usize..o as usize + 8].try_into().unwrap());
    for (i, &r) in SC_GPRS.iter().enumerate() {
        t.cpu.gpr[r] = q(8 * i as u64);
    }
    t.cpu.rip = q(SC_RIP);
    let old = t.cpu.rflags();
    let new = (old & !FIX_EFLAGS) | (q(SC_EFLAGS) & FIX_EFLAGS);
    t.cpu.set_rflags(new);
    // CS and SS: cetbox runs 64-bit code only, so the selectors are not used.
    restore_fpstate(t, q(SC_FPSTATE))
}

/// fpu__restore_sig for a 64-bit frame: NULL resets the FPU; an image with valid XSAVE magic is
/// restored as XRSTOR would (with its alignment and header checks), anything else as a plain
/// FXSAVE image. A reserved MXCSR bit makes the frame bad.
pub fn restore_fpstate(t: &mut Thread, buf: u64) -> Result<(), BadFrame> {
    if buf == 0 {
        t.cpu.x87 = X87::default();
        t.cpu.sse = Sse::default();
        return Ok(());
    }
    let mem = t.mem();
    let mut legacy = [0u8; 512];
    mem.read_bytes(buf, &mut legacy).map_err(|_| BadFrame)?;
    let le32 = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let magic1 = le32(&legacy, 464);
    let extended = le32(&legacy, 468) as u64;
    let sw_xfeatures = u64::from_le_bytes(legacy[472..480].try_into().unwrap());
    let xsize = le32(&legacy, 480) as u64;
    let (user_size, user_features) = xstate_layout(&t.cpu.config);
    let mut xsave = magic1 == FP_XSTATE_MAGIC1
        && xsize >= XSTATE_SIZE
        && xsize <= user_size
        && xsize <= extended;
    if xsave {
        let m2 = mem.read_u32(buf + xsize).map_err(|_| BadFrame)?;
        xsave = m2 == FP_XSTATE_MAGIC2;
    }
    let mut nx = X87::default();
    let mut ns = Sse::default();
    if !xsave {
        if buf & 15 != 0 || !fxrstor(&mut nx, &mut ns, &legacy) {
            return Err(BadFrame);
        }
    } else {
        let mut hdr = [0u8; 64];
        mem.read_bytes(buf + 512, &mut hdr).map_err(|_| BadFrame)?;
        let xstate_bv = u64::from_le_bytes(hdr[0..8].try_into().unwrap());
        let rfbm = sw_xfeatures & user_features;
        // XRSTOR (standard form) faults on a misaligned image, on XSTATE_BV bits the CPU does
        // not support, and on nonzero header bytes 8..24.
        if buf & 63 != 0 || xstate_bv & !user_features != 0 || hdr[8..24].iter().any(|&b| b != 0) {
            return Err(BadFrame);
        }
        // The AVX component: loaded when requested and present, initialized when requested
        // and absent (XRSTOR), kept otherwise. The area must lie within the image.
        if rfbm & 4 != 0 {
            if xstate_bv & 4 != 0 && xsize >= XSTATE_SIZE_AVX {
                let mut b = [0u8; 256];
                mem.read_bytes(buf + AVX_OFFSET, &mut b)
                    .map_err(|_| BadFrame)?;
                for (n, v) in ns.ymm_hi.iter_mut().enumerate() {
                    *v = u128::from_le_bytes(b[16 * n..16 * n + 16].try_into().unwrap());
                }
            } else {
                ns.ymm_hi = [0; 16];
            }
        }
        let mut lx = X87::default();
        let mut ls = Sse::default();
        if !fxrstor(&mut lx, &mut ls, &legacy) {
            return Err(BadFrame);
        }
        if rfbm & xstate_bv & 1 != 0 {
            nx = lx;
        }
        if rfbm & 2 != 0 {
            ns.mxcsr = ls.mxcsr;
            if xstate_bv & 2 != 0 {
                ns.xmm = ls.xmm;
            }
        }
    }
    t.cpu.x87 = nx;
    t.cpu.sse = ns;
    Ok(())
}

/// Reads uc_stack for restore_altstack.
pub fn read_altstack(t: &Thread, frame: u64) -> Result<(u64, i32, u64), BadFrame> {
    let mut b = [0u8; 24];
    t.mem()
        .read_bytes(frame + UC_STACK, &mut b)
        .map_err(|_| BadFrame)?;
    Ok((
        u64::from_le_bytes(b[0..8].try_into().unwrap()),
        i32::from_le_bytes(b[8..12].try_into().unwrap()),
        u64::from_le_bytes(b[16..24].try_into().unwrap()),
    ))
}

/// Whether the guest range can be read (used by callers that want the kernel's access_ok-like
/// checks before touching anything).
pub fn readable(t: &Thread, addr: u64, len: u64) -> bool {
    t.mem().check(addr, len, Access::Read).is_ok()
}
