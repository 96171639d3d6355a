//! XGETBV, XSAVE, XSAVEOPT, XSAVEC and XRSTOR for the x86-64-v3 CPU, whose XCR0 is
//! x87 | SSE | AVX (SDM Vol. 1 ch. 13, Vol. 2C XSAVE/XRSTOR). The XSAVE area: the 512-byte
//! legacy region (the FXSAVE layout: x87 in bytes 0..160 except MXCSR, MXCSR and MXCSR_MASK at
//! 24..32, XMM0-15 at 160..416), the 64-byte header at 512 (XSTATE_BV, XCOMP_BV), and the AVX
//! component (YMM0-15 bits 255:128) at 576 in both the standard and the compacted format.
//!
//! XINUSE (which components are not in their initial configuration) is computed from the
//! state: the SDM lets a processor report a component in use even when it is in its initial
//! configuration, so where real CPUs differ from this, both are architectural.

use super::hostop::check_level;
use super::Handler;
use crate::exception::Result;
use crate::fpstate::{fxrstor, fxsave, Sse, MXCSR_MASK, X87};
use crate::{Cpu, Exception};
use cetbox_mem::Access;
use iced_x86::{Code, Instruction, Mnemonic};

const AVX_OFF: usize = 576;
pub const AREA_SIZE: usize = 832;

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code.mnemonic() {
        Mnemonic::Xgetbv => xgetbv,
        Mnemonic::Xsave | Mnemonic::Xsave64 => xsave,
        Mnemonic::Xsaveopt | Mnemonic::Xsaveopt64 => xsaveopt,
        Mnemonic::Xsavec | Mnemonic::Xsavec64 => xsavec,
        Mnemonic::Xrstor | Mnemonic::Xrstor64 => xrstor,
        _ => return None,
    })
}

/// XGETBV: ECX 0 reads XCR0; anything else is #GP(0) (no XGETBV with ECX=1 on this CPU).
fn xgetbv(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    if cpu.gpr[1] as u32 != 0 {
        return Err(Exception::GeneralProtection);
    }
    let x = cpu.config.xcr0();
    cpu.gpr[0] = x & 0xffff_ffff;
    cpu.gpr[2] = x >> 32;
    Ok(())
}

/// XINUSE for x87 (bit 0), SSE (bit 1) and AVX (bit 2).
pub fn xinuse(x87: &X87, sse: &Sse) -> u64 {
    let x87_init = x87.fcw == 0x037f
        && x87.status_word() == 0
        && x87.ftw == 0xffff
        && x87.fop == 0
        && x87.fip == 0
        && x87.fdp == 0
        && x87.st.iter().all(|&v| v & ((1u128 << 80) - 1) == 0);
    // MXCSR counts with SSE state, so a component saved as initial restores MXCSR's value.
    let sse_init = sse.xmm.iter().all(|&v| v == 0) && sse.mxcsr == 0x1f80;
    let avx_init = sse.ymm_hi.iter().all(|&v| v == 0);
    (!x87_init as u64) | ((!sse_init as u64) << 1) | ((!avx_init as u64) << 2)
}

fn rfbm(cpu: &Cpu) -> u64 {
    ((cpu.gpr[2] << 32) | (cpu.gpr[0] & 0xffff_ffff)) & cpu.config.xcr0()
}

/// The 64-byte-aligned area address, or #GP(0).
fn area(cpu: &Cpu, i: &Instruction) -> Result<u64> {
    let a = cpu.ea(i);
    if a & 63 != 0 {
        return Err(Exception::GeneralProtection);
    }
    Ok(a)
}

/// Builds the image XSAVE/XSAVEOPT (standard format) or XSAVEC (compacted) writes: the
/// byte ranges written, in order, with their contents.
fn save(cpu: &mut Cpu, i: &Instruction, compacted: bool, init_opt: bool) -> Result<()> {
    check_level(cpu, i)?;
    let a = area(cpu, i)?;
    let rfbm = rfbm(cpu);
    let inuse = xinuse(&cpu.x87, &cpu.sse);
    let mut fx = [0u8; 512];
    fxsave(&cpu.x87, &cpu.sse, &mut fx);
    // (offset, bytes) pieces to write.
    let mut w: Vec<(usize, Vec<u8>)> = Vec::new();
    let save_i = |bit: u64| rfbm & bit != 0 && (!init_opt || inuse & bit != 0);
    if save_i(1) {
        w.push((0, fx[0..24].to_vec()));
        w.push((32, fx[32..160].to_vec()));
    }
    if rfbm & 6 != 0 {
        w.push((24, fx[24..32].to_vec()));
    }
    if save_i(2) {
        w.push((160, fx[160..416].to_vec()));
    }
    if save_i(4) {
        let mut b = Vec::with_capacity(256);
        for v in cpu.sse.ymm_hi {
            b.extend_from_slice(&v.to_le_bytes());
        }
        w.push((AVX_OFF, b));
    }
    // The header: standard XSAVE updates XSTATE_BV[i] for i in RFBM and keeps the rest;
    // XSAVEC writes XSTATE_BV = RFBM & XINUSE and XCOMP_BV = bit 63 | RFBM.
    let mut hdr = [0u8; 16];
    if compacted {
        hdr[0..8].copy_from_slice(&(rfbm & inuse).to_le_bytes());
        hdr[8..16].copy_from_slice(&((1u64 << 63) | rfbm).to_le_bytes());
        w.push((512, hdr.to_vec()));
    } else {
        let old = cpu.mem.read_u64(a + 512)?;
        let bv = (old & !rfbm) | (rfbm & inuse);
        w.push((512, bv.to_le_bytes().to_vec()));
    }
    // Every byte is checked before any is written: nothing is committed on a fault.
    for (o, b) in &w {
        cpu.mem
            .check(a + *o as u64, b.len() as u64, Access::Write)?;
    }
    for (o, b) in &w {
        cpu.mem.write_bytes(a + *o as u64, b)?;
    }
    Ok(())
}

fn xsave(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    save(cpu, i, false, false)
}

fn xsaveopt(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    save(cpu, i, false, true)
}

fn xsavec(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    save(cpu, i, true, true)
}

/// XRSTOR, standard or compacted (XCOMP_BV bit 63), with the header checks that raise
/// #GP(0); components in RFBM are loaded when XSTATE_BV has them, else initialized.
fn xrstor(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    let a = area(cpu, i)?;
    let rfbm = rfbm(cpu);
    let xcr0 = cpu.config.xcr0();
    let mut hdr = [0u8; 64];
    cpu.mem.read_bytes(a + 512, &mut hdr)?;
    let bv = u64::from_le_bytes(hdr[0..8].try_into().unwrap());
    let comp = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
    let compacted = comp >> 63 != 0;
    if compacted {
        if comp & !(1 << 63) & !xcr0 != 0 || bv & !comp != 0 || hdr[16..].iter().any(|&b| b != 0) {
            return Err(Exception::GeneralProtection);
        }
    } else if bv & !xcr0 != 0 || hdr[8..].iter().any(|&b| b != 0) {
        return Err(Exception::GeneralProtection);
    }
    let mut legacy = [0u8; 512];
    cpu.mem.read_bytes(a, &mut legacy)?;
    let mut ymm = [0u8; 256];
    if rfbm & bv & 4 != 0 {
        cpu.mem.read_bytes(a + AVX_OFF as u64, &mut ymm)?;
    }
    let mxcsr = u32::from_le_bytes(legacy[24..28].try_into().unwrap());
    let load_mxcsr = if compacted {
        rfbm & bv & 2 != 0 || rfbm & bv & 4 != 0
    } else {
        rfbm & 6 != 0
    };
    if load_mxcsr && mxcsr & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection);
    }
    let mut lx = cpu.x87.clone();
    let mut ls = cpu.sse.clone();
    // `fxrstor` checks MXCSR, already done; it loads x87 and XMM from the legacy region.
    legacy[24..28].copy_from_slice(&cpu.sse.mxcsr.to_le_bytes());
    let _ = fxrstor(&mut lx, &mut ls, &legacy);
    let mut x87 = cpu.x87.clone();
    let mut sse = cpu.sse.clone();
    if rfbm & 1 != 0 {
        x87 = if bv & 1 != 0 { lx } else { X87::default() };
    }
    if rfbm & 2 != 0 {
        sse.xmm = if bv & 2 != 0 { ls.xmm } else { [0; 16] };
    }
    if rfbm & 4 != 0 {
        for (n, v) in sse.ymm_hi.iter_mut().enumerate() {
            *v = if bv & 4 != 0 {
                u128::from_le_bytes(ymm[16 * n..16 * n + 16].try_into().unwrap())
            } else {
                0
            };
        }
    }
    if load_mxcsr {
        sse.mxcsr = mxcsr;
    } else if compacted && rfbm & 2 != 0 {
        // Compacted form with SSE requested but not present: MXCSR is initialized.
        sse.mxcsr = 0x1f80;
    }
    cpu.x87 = x87;
    cpu.sse = sse;
    Ok(())
}
