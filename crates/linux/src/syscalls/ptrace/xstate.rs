//! NT_X86_XSTATE: the tracee's XSAVE area in the standard (non-compacted) format, as Linux's
//! xstateregs_get / xstateregs_set show and take it (arch/x86/kernel/fpu/regset.c;
//! arch/x86/kernel/fpu/xstate.c __copy_xstate_to_uabi_buf and copy_uabi_to_xstate; layout:
//! Intel SDM Vol. 1, 13.4 and 13.5). The components are those of the XCR0 cetbox reports
//! through CPUID (x87, SSE and, from x86-64-v3 on, AVX): the legacy area (the FXSAVE image,
//! kept at T_FXSAVE), the software-reserved bytes Linux fills (struct _fpx_sw_bytes), the
//! XSAVE header and the AVX state (the upper halves of ymm0-15) at offset 576.

use super::page::*;
use crate::errno::Errno;

/// The standard-format offsets and sizes (Intel SDM Vol. 1, 13.4; CPUID.(0DH, 2)).
const HEADER: usize = 512;
pub const AVX: usize = cetbox_cpu::cpuid::XSAVE_AVX_OFFSET as usize;
const AVX_LEN: usize = cetbox_cpu::cpuid::XSAVE_AVX_SIZE as usize;
/// The XSAVE area cetbox's CPU has (x87 | SSE | AVX).
pub const LEN: usize = AVX + AVX_LEN;
const XFEATURE_FP: u64 = 1;
const XFEATURE_SSE: u64 = 2;
const XFEATURE_YMM: u64 = 4;

/// The thread's XSAVE state as published at a stop: XCR0 (T_XCR0), then the header's
/// XSTATE_BV and the AVX state at their offsets from T_XSAVE.
pub fn publish(me: u64, xcr0: u64, ymm_hi: &[u128; 16]) {
    set(me + T_XCR0, xcr0);
    let mut avx = [0u8; AVX_LEN];
    for (i, v) in ymm_hi.iter().enumerate() {
        avx[i * 16..i * 16 + 16].copy_from_slice(&v.to_le_bytes());
    }
    // XINUSE: x87 and SSE are reported in use, AVX when an upper half is not zero (a
    // processor may report a component in its initial configuration either way).
    let inuse = XFEATURE_FP | XFEATURE_SSE | if avx != [0; AVX_LEN] { XFEATURE_YMM } else { 0 };
    set(me + T_XSAVE + HEADER as u64, inuse & xcr0);
    set_bytes(me + T_XSAVE + AVX as u64, &avx);
}

/// The AVX state as the tracer left it.
pub fn ymm_hi(me: u64) -> [u128; 16] {
    let mut avx = [0u8; AVX_LEN];
    get_bytes(me + T_XSAVE + AVX as u64, &mut avx);
    std::array::from_fn(|i| u128::from_le_bytes(avx[i * 16..i * 16 + 16].try_into().unwrap()))
}

/// The size of traced thread `pid`'s regset (ENODEV without XSAVE, as xstateregs_get).
pub fn size(pid: i32, th: u64) -> Result<usize, Errno> {
    let xcr0 = remote_get(pid, th + T_XCR0)?;
    if xcr0 & XFEATURE_YMM == 0 {
        // cetbox's CPU has XSAVE from x86-64-v3 on only.
        return Err(Errno::ENODEV);
    }
    Ok(LEN)
}

/// The whole regset of traced thread `pid` (page `th`).
pub fn get(pid: i32, th: u64) -> Result<Vec<u8>, Errno> {
    let xcr0 = remote_get(pid, th + T_XCR0)?;
    let mut fx = [0u8; 512];
    remote_read(pid, th + T_FXSAVE, &mut fx)?;
    let bv = remote_get(pid, th + T_XSAVE + HEADER as u64)? & xcr0;
    let mut avx = [0u8; AVX_LEN];
    remote_read(pid, th + T_XSAVE + AVX as u64, &mut avx)?;
    let mut b = vec![0u8; LEN];
    b[..464].copy_from_slice(&fx[..464]);
    // The padding after the xmm registers reads as zeros; the software-reserved bytes are
    // Linux's xstate_fx_sw_bytes: XCR0 in their first word (USER_XSTATE_XCR0_WORD,
    // arch/x86/include/asm/user.h), zeros after it.
    b[416..512].fill(0);
    b[464..472].copy_from_slice(&xcr0.to_le_bytes());
    b[HEADER..HEADER + 8].copy_from_slice(&bv.to_le_bytes());
    if bv & XFEATURE_YMM != 0 {
        b[AVX..].copy_from_slice(&avx);
    }
    Ok(b)
}

/// SETREGSET: a whole buffer (EFAULT otherwise), the header's features within XCR0 and its
/// reserved bytes zero, MXCSR's reserved bits clear (EINVAL); the components named in
/// XSTATE_BV are taken, the others return to their initial configuration.
pub fn put(pid: i32, th: u64, b: &[u8]) -> Result<(), Errno> {
    if b.len() != LEN {
        return Err(Errno::EFAULT);
    }
    let xcr0 = remote_get(pid, th + T_XCR0)?;
    let word = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let bv = word(HEADER);
    if bv & !xcr0 != 0 || b[HEADER + 8..HEADER + 64].iter().any(|&x| x != 0) {
        return Err(Errno::EINVAL);
    }
    let mut fx = [0u8; 512];
    remote_read(pid, th + T_FXSAVE, &mut fx)?;
    if bv & (XFEATURE_FP | XFEATURE_SSE | XFEATURE_YMM) != 0 {
        let mxcsr = u32::from_le_bytes(b[24..28].try_into().unwrap());
        if mxcsr & !cetbox_cpu::fpstate::MXCSR_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        fx[24..28].copy_from_slice(&b[24..28]);
    }
    // The x87 component: bytes 0-159 (MXCSR and its mask, at 24, are not part of it); its
    // initial configuration: FCW 0x37f, everything else zero (Intel SDM Vol. 1, 13.6).
    let mxcsr = fx[24..32].to_vec();
    if bv & XFEATURE_FP != 0 {
        fx[..160].copy_from_slice(&b[..160]);
    } else {
        fx[..160].fill(0);
        fx[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
    }
    fx[24..32].copy_from_slice(&mxcsr);
    // The SSE component: xmm0-15 at 160.
    if bv & XFEATURE_SSE != 0 {
        fx[160..416].copy_from_slice(&b[160..416]);
    } else {
        fx[160..416].fill(0);
    }
    let avx = if bv & XFEATURE_YMM != 0 {
        b[AVX..].to_vec()
    } else {
        vec![0u8; AVX_LEN]
    };
    remote_write(pid, th + T_FXSAVE, &fx)?;
    remote_write(pid, th + T_XSAVE + AVX as u64, &avx)?;
    remote_set(pid, th + T_XSAVE + HEADER as u64, bv)
}
