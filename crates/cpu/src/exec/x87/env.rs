//! Control instructions: status/control word access, initialization, and the environment
//! and state images (FNSTENV/FLDENV, FNSAVE/FRSTOR, FXSAVE/FXRSTOR).

use super::*;
use crate::fpstate::{fxrstor, fxsave, X87};

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    Some(match code {
        Fnstsw_AX | Fstsw_AX => fnstsw_ax,
        Fnstsw_m2byte | Fstsw_m2byte => fnstsw_m,
        Fnstcw_m2byte | Fstcw_m2byte => fnstcw,
        Fldcw_m2byte => fldcw,
        Fninit | Finit => fninit,
        Fnclex | Fclex => fnclex,
        Fnstenv_m14byte | Fstenv_m14byte | Fnstenv_m28byte | Fstenv_m28byte => fnstenv,
        Fldenv_m14byte | Fldenv_m28byte => fldenv,
        Fnsave_m94byte | Fsave_m94byte | Fnsave_m108byte | Fsave_m108byte => fnsave,
        Frstor_m94byte | Frstor_m108byte => frstor,
        Fxsave_m512byte | Fxsave64_m512byte => fxsave_h,
        Fxrstor_m512byte | Fxrstor64_m512byte => fxrstor_h,
        Wait => fwait,
        // The 8087's interrupt-mask and the 287's protected-mode switch: no-ops since the 387.
        Fneni | Fndisi | Fnsetpm => nop,
        Feni | Fdisi | Fsetpm => fwait,
        _ => return None,
    })
}

/// The waiting forms (FSTSW, FINIT, ...) check for pending exceptions first; iced only
/// decodes them as one instruction with a decoder option cetbox does not use, but accept them.
fn waits(code: Code) -> bool {
    use Code::*;
    matches!(
        code,
        Fstsw_AX
            | Fstsw_m2byte
            | Fstcw_m2byte
            | Finit
            | Fclex
            | Fstenv_m14byte
            | Fstenv_m28byte
            | Fsave_m94byte
            | Fsave_m108byte
    )
}

fn nop(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Ok(())
}

fn fwait(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    wait_check(cpu)
}

fn fnstsw_ax(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    let sw = cpu.x87.status_word() as u64;
    cpu.gpr[0] = (cpu.gpr[0] & !0xffff) | sw;
    Ok(())
}

fn fnstsw_m(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    cpu.mem.write_u16(cpu.ea(i), cpu.x87.status_word())?;
    Ok(())
}

fn fnstcw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    cpu.mem.write_u16(cpu.ea(i), cpu.x87.fcw)?;
    Ok(())
}

/// FCW bit 6 reads as 1 and bits 13-15 as 0 on every x87 since the 387.
fn fix_fcw(v: u16) -> u16 {
    (v & 0x1f7f) | 0x40
}

fn fldcw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    let v = cpu.mem.read_u16(cpu.ea(i))?;
    cpu.x87.fcw = fix_fcw(v);
    update_es(cpu);
    Ok(())
}

fn init(x: &mut X87) {
    x.fcw = 0x037f;
    x.fsw = 0;
    x.top = 0;
    x.ftw = 0xffff;
    x.fop = 0;
    x.fip = 0;
    x.fdp = 0;
}

fn fninit(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    init(&mut cpu.x87);
    Ok(())
}

fn fnclex(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    cpu.x87.fsw &= !(0x80ff);
    Ok(())
}

/// The tag word as FNSTENV stores it: each non-empty register classified by its contents.
fn full_tags(x: &X87) -> u16 {
    let mut t = 0u16;
    for p in 0..8 {
        let tag = if (x.ftw >> (2 * p)) & 3 == 3 {
            3
        } else {
            classify(x.st[p]) as u16
        };
        t |= tag << (2 * p);
    }
    t
}

/// FLDENV/FRSTOR: only empty versus non-empty survives from a loaded tag word.
fn load_tags(x: &mut X87, t: u16) {
    let mut ab = 0u8;
    for p in 0..8 {
        if (t >> (2 * p)) & 3 != 3 {
            ab |= 1 << p;
        }
    }
    x.set_abridged_tags(ab);
}

/// The protected-mode environment image: 28 bytes (32-bit operand size) or 14 (16-bit).
fn env_image(x: &X87, big: bool) -> Vec<u8> {
    let sw = x.status_word();
    let tw = full_tags(x);
    let mut v = Vec::with_capacity(28);
    if big {
        for w in [x.fcw, sw, tw] {
            v.extend_from_slice(&(0xffff_0000 | w as u32).to_le_bytes());
        }
        v.extend_from_slice(&(x.fip as u32).to_le_bytes());
        v.extend_from_slice(&((x.fop as u32 & 0x7ff) << 16).to_le_bytes());
        v.extend_from_slice(&(x.fdp as u32).to_le_bytes());
        v.extend_from_slice(&0xffff_0000u32.to_le_bytes());
    } else {
        for w in [x.fcw, sw, tw, x.fip as u16, 0, x.fdp as u16, 0] {
            v.extend_from_slice(&w.to_le_bytes());
        }
    }
    v
}

fn load_env(x: &mut X87, img: &[u8], big: bool) {
    let w = |k: usize| -> u16 {
        if big {
            u16::from_le_bytes([img[4 * k], img[4 * k + 1]])
        } else {
            u16::from_le_bytes([img[2 * k], img[2 * k + 1]])
        }
    };
    let d = |k: usize| -> u32 {
        if big {
            u32::from_le_bytes([img[4 * k], img[4 * k + 1], img[4 * k + 2], img[4 * k + 3]])
        } else {
            w(k) as u32
        }
    };
    x.fcw = fix_fcw(w(0));
    let sw = w(1);
    x.top = ((sw >> 11) & 7) as u8;
    x.fsw = sw & !0x3800;
    let tw = w(2);
    x.fip = d(3) as u64;
    x.fop = if big { (d(4) >> 16) as u16 & 0x7ff } else { 0 };
    x.fdp = d(5) as u64;
    load_tags(x, tw);
}

fn is_big(code: Code) -> bool {
    use Code::*;
    matches!(
        code,
        Fnstenv_m28byte
            | Fstenv_m28byte
            | Fldenv_m28byte
            | Fnsave_m108byte
            | Fsave_m108byte
            | Frstor_m108byte
    )
}

fn fnstenv(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    let img = env_image(&cpu.x87, is_big(i.code()));
    cpu.mem.write_bytes(cpu.ea(i), &img)?;
    // Storing the environment masks every exception, as a handler would want.
    cpu.x87.fcw |= 0x3f;
    update_es(cpu);
    Ok(())
}

fn fldenv(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let big = is_big(i.code());
    let mut img = [0u8; 28];
    let n = if big { 28 } else { 14 };
    cpu.mem.read_bytes(cpu.ea(i), &mut img[..n])?;
    load_env(&mut cpu.x87, &img[..n], big);
    update_es(cpu);
    Ok(())
}

fn fnsave(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if waits(i.code()) {
        wait_check(cpu)?;
    }
    let big = is_big(i.code());
    let mut img = env_image(&cpu.x87, big);
    for k in 0..8 {
        let v = cpu.x87.st[(cpu.x87.top as usize + k) & 7];
        img.extend_from_slice(&v.to_le_bytes()[..10]);
    }
    cpu.mem.write_bytes(cpu.ea(i), &img)?;
    init(&mut cpu.x87);
    Ok(())
}

fn frstor(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let big = is_big(i.code());
    let n = if big { 28 } else { 14 };
    let mut img = [0u8; 108];
    cpu.mem.read_bytes(cpu.ea(i), &mut img[..n + 80])?;
    let x = &mut cpu.x87;
    // Registers first (by stack position relative to the new TOP), then the tags classify.
    let sw = if big {
        u16::from_le_bytes([img[4], img[5]])
    } else {
        u16::from_le_bytes([img[2], img[3]])
    };
    let top = ((sw >> 11) & 7) as usize;
    for k in 0..8 {
        let mut b = [0u8; 16];
        b[..10].copy_from_slice(&img[n + 10 * k..n + 10 * k + 10]);
        x.st[(top + k) & 7] = u128::from_le_bytes(b);
    }
    load_env(x, &img[..n], big);
    update_es(cpu);
    Ok(())
}

fn fxsave_h(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let a = cpu.ea(i);
    if a & 15 != 0 {
        return Err(Exception::Alignment);
    }
    let mut img = [0u8; 512];
    fxsave(&cpu.x87, &cpu.sse, &mut img);
    if i.code() == Code::Fxsave_m512byte {
        // The 32-bit format: 32-bit FIP/FDP followed by the (zero) selectors.
        img[12..16].fill(0);
        img[20..24].fill(0);
    }
    // Bytes 464..511 are available to software: FXSAVE leaves them alone.
    cpu.mem.write_bytes(a, &img[..464])?;
    Ok(())
}

fn fxrstor_h(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let a = cpu.ea(i);
    if a & 15 != 0 {
        return Err(Exception::Alignment);
    }
    let mut img = [0u8; 512];
    cpu.mem.read_bytes(a, &mut img)?;
    if i.code() == Code::Fxrstor_m512byte {
        img[12..16].fill(0);
        img[20..24].fill(0);
    }
    let mut x = cpu.x87.clone();
    let mut s = cpu.sse.clone();
    if !fxrstor(&mut x, &mut s, &img) {
        return Err(Exception::GeneralProtection);
    }
    x.fcw = fix_fcw(x.fcw);
    cpu.x87 = x;
    cpu.sse = s;
    update_es(cpu);
    Ok(())
}
