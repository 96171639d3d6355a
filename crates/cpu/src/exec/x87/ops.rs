//! Data movement, arithmetic, comparisons and the other computational x87 instructions.

use super::soft::{self, Out, C0, C1, C2, C3, DE, IE, INDEFINITE};
use super::*;

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    Some(match code {
        Fadd_m32fp | Fmul_m32fp | Fsub_m32fp | Fsubr_m32fp | Fdiv_m32fp | Fdivr_m32fp
        | Fadd_m64fp | Fmul_m64fp | Fsub_m64fp | Fsubr_m64fp | Fdiv_m64fp | Fdivr_m64fp
        | Fiadd_m32int | Fimul_m32int | Fisub_m32int | Fisubr_m32int | Fidiv_m32int
        | Fidivr_m32int | Fiadd_m16int | Fimul_m16int | Fisub_m16int | Fisubr_m16int
        | Fidiv_m16int | Fidivr_m16int | Fadd_st0_sti | Fmul_st0_sti | Fsub_st0_sti
        | Fsubr_st0_sti | Fdiv_st0_sti | Fdivr_st0_sti | Fadd_sti_st0 | Fmul_sti_st0
        | Fsub_sti_st0 | Fsubr_sti_st0 | Fdiv_sti_st0 | Fdivr_sti_st0 | Faddp_sti_st0
        | Fmulp_sti_st0 | Fsubp_sti_st0 | Fsubrp_sti_st0 | Fdivp_sti_st0 | Fdivrp_sti_st0 => arith,
        Fcom_m32fp | Fcomp_m32fp | Fcom_m64fp | Fcomp_m64fp | Fcom_st0_sti | Fcomp_st0_sti
        | Fcom_st0_sti_DCD0 | Fcomp_st0_sti_DCD8 | Fcomp_st0_sti_DED0 | Fcompp | Fucom_st0_sti
        | Fucomp_st0_sti | Fucompp | Ficom_m16int | Ficomp_m16int | Ficom_m32int
        | Ficomp_m32int | Ftst => fcom,
        Fcomi_st0_sti | Fcomip_st0_sti | Fucomi_st0_sti | Fucomip_st0_sti => fcomi,
        Fld_m32fp | Fld_m64fp | Fld_m80fp | Fld_sti | Fild_m16int | Fild_m32int | Fild_m64int
        | Fbld_m80bcd => fld,
        Fld1 | Fldz | Fldpi | Fldl2e | Fldl2t | Fldlg2 | Fldln2 => fldconst,
        Fst_m32fp | Fstp_m32fp | Fst_m64fp | Fstp_m64fp => fst_real,
        Fstp_m80fp => fstp80,
        Fst_sti | Fstp_sti | Fstp_sti_DFD0 | Fstp_sti_DFD8 | Fstpnce_sti => fst_sti,
        Fist_m16int | Fistp_m16int | Fist_m32int | Fistp_m32int | Fistp_m64int | Fisttp_m16int
        | Fisttp_m32int | Fisttp_m64int => fist,
        Fbstp_m80bcd => fbstp,
        Fxch_st0_sti | Fxch_st0_sti_DDC8 | Fxch_st0_sti_DFC8 => fxch,
        Fchs | Fabs => fsign,
        Fxam => fxam,
        Fsqrt | Frndint => unary,
        Fscale => fscale,
        Fxtract => fxtract,
        Fprem | Fprem1 => fprem,
        Fsin | Fcos | F2xm1 | Fptan | Fsincos | Fpatan | Fyl2x | Fyl2xp1 => transcendental,
        Ffree_sti | Ffreep_sti => ffree,
        Fincstp | Fdecstp => fincdec,
        Fcmovb_st0_sti | Fcmove_st0_sti | Fcmovbe_st0_sti | Fcmovu_st0_sti | Fcmovnb_st0_sti
        | Fcmovne_st0_sti | Fcmovnbe_st0_sti | Fcmovnu_st0_sti => fcmov,
        Fnop => fnop,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Mul,
    Sub,
    Subr,
    Div,
    Divr,
}

/// Computes dst op src.
fn compute(op: Op, dst: u128, src: u128, e: &Env) -> Out {
    match op {
        Op::Add => soft::add(dst, src, e),
        Op::Mul => soft::mul(dst, src, e),
        Op::Sub => soft::sub(dst, src, e),
        Op::Subr => soft::sub(src, dst, e),
        Op::Div => soft::div(dst, src, e),
        Op::Divr => soft::div(src, dst, e),
    }
}

/// Reads a memory source operand as an 80-bit value: (value, flags from the conversion).
fn read_mem_operand(cpu: &Cpu, i: &Instruction, code: Code) -> Result<(u128, u16)> {
    use Code::*;
    let a = cpu.ea(i);
    Ok(match code {
        Fadd_m32fp | Fmul_m32fp | Fsub_m32fp | Fsubr_m32fp | Fdiv_m32fp | Fdivr_m32fp
        | Fcom_m32fp | Fcomp_m32fp | Fld_m32fp => {
            let v = cpu.mem.read_u32(a)?;
            soft::from_ieee(v as u64, 23, 8)
        }
        Fadd_m64fp | Fmul_m64fp | Fsub_m64fp | Fsubr_m64fp | Fdiv_m64fp | Fdivr_m64fp
        | Fcom_m64fp | Fcomp_m64fp | Fld_m64fp => soft::from_ieee(cpu.mem.read_u64(a)?, 52, 11),
        Fiadd_m16int | Fimul_m16int | Fisub_m16int | Fisubr_m16int | Fidiv_m16int
        | Fidivr_m16int | Ficom_m16int | Ficomp_m16int | Fild_m16int => {
            (soft::from_int(cpu.mem.read_u16(a)? as i16 as i64), 0)
        }
        Fiadd_m32int | Fimul_m32int | Fisub_m32int | Fisubr_m32int | Fidiv_m32int
        | Fidivr_m32int | Ficom_m32int | Ficomp_m32int | Fild_m32int => {
            (soft::from_int(cpu.mem.read_u32(a)? as i32 as i64), 0)
        }
        Fild_m64int => (soft::from_int(cpu.mem.read_u64(a)? as i64), 0),
        Fld_m80fp => (read80(cpu, a)?, 0),
        Fbld_m80bcd => (bcd_to_ext(read80(cpu, a)?), 0),
        _ => (0, 0),
    })
}

/// Converts the flags of a converted memory operand into an operand for arithmetic: an
/// SNaN source was already quieted, so its IE must be merged by the caller.
fn arith(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    let code = i.code();
    let op = match code {
        Fadd_m32fp | Fadd_m64fp | Fiadd_m32int | Fiadd_m16int | Fadd_st0_sti | Fadd_sti_st0
        | Faddp_sti_st0 => Op::Add,
        Fmul_m32fp | Fmul_m64fp | Fimul_m32int | Fimul_m16int | Fmul_st0_sti | Fmul_sti_st0
        | Fmulp_sti_st0 => Op::Mul,
        Fsub_m32fp | Fsub_m64fp | Fisub_m32int | Fisub_m16int | Fsub_st0_sti | Fsub_sti_st0
        | Fsubp_sti_st0 => Op::Sub,
        Fsubr_m32fp | Fsubr_m64fp | Fisubr_m32int | Fisubr_m16int | Fsubr_st0_sti
        | Fsubr_sti_st0 | Fsubrp_sti_st0 => Op::Subr,
        Fdiv_m32fp | Fdiv_m64fp | Fidiv_m32int | Fidiv_m16int | Fdiv_st0_sti | Fdiv_sti_st0
        | Fdivp_sti_st0 => Op::Div,
        _ => Op::Divr,
    };
    let is_mem = i.op_count() == 1;
    let (dst_i, src_val, src_flags, pop_after) = if is_mem {
        let (v, f) = read_mem_operand(cpu, i, code)?;
        (0usize, Some(v), f, false)
    } else {
        let d = sti(i, 0);
        let s = sti(i, 1);
        let popit = matches!(
            code,
            Faddp_sti_st0
                | Fmulp_sti_st0
                | Fsubp_sti_st0
                | Fsubrp_sti_st0
                | Fdivp_sti_st0
                | Fdivrp_sti_st0
        );
        let sv = if is_empty(cpu, s) {
            None
        } else {
            Some(st(cpu, s))
        };
        (d, sv, 0, popit)
    };
    note(cpu, i, is_mem);
    let e = fenv(cpu);
    if is_empty(cpu, dst_i) || src_val.is_none() {
        if underflow(cpu) {
            set_st(cpu, dst_i, INDEFINITE);
            if pop_after {
                pop(cpu);
            }
        }
        return Ok(());
    }
    let src = src_val.unwrap_or(0);
    let dst = st(cpu, dst_i);
    let mut out = compute(op, dst, src, &e);
    // A denormal f32/f64 operand is normal once widened: its DE comes from the conversion,
    // unless an invalid operation or a NaN decided the result first.
    if src_flags & DE != 0
        && out.flags & (IE | soft::ZE) == 0
        && !soft::is_nan_kind(soft::unpack(dst).kind)
    {
        out.flags |= DE;
        if !masked(cpu, DE) {
            // The unmasked DE stops the operation before anything else is detected.
            out = Out {
                val: None,
                flags: DE,
            };
        }
    }
    if let Some(v) = out.val {
        set_st(cpu, dst_i, v);
        if pop_after {
            pop(cpu);
        }
    }
    report(cpu, out.flags, C1);
    Ok(())
}

fn fcom(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    let code = i.code();
    let quiet = matches!(code, Fucom_st0_sti | Fucomp_st0_sti | Fucompp);
    let pops = match code {
        Fcompp | Fucompp => 2,
        Fcomp_m32fp | Fcomp_m64fp | Fcomp_st0_sti | Fcomp_st0_sti_DCD8 | Fcomp_st0_sti_DED0
        | Fucomp_st0_sti | Ficomp_m16int | Ficomp_m32int => 1,
        _ => 0,
    };
    let is_mem = i.op_count() == 1 && i.op_kind(0) == iced_x86::OpKind::Memory;
    let src: Option<(u128, u16)> = if is_mem {
        Some(read_mem_operand(cpu, i, code)?)
    } else if code == Ftst {
        Some((0, 0))
    } else {
        let s = match code {
            Fcompp | Fucompp => 1,
            _ => sti(i, 1),
        };
        if is_empty(cpu, s) {
            None
        } else {
            Some((st(cpu, s), 0))
        }
    };
    note(cpu, i, is_mem);
    let cc_all = C0 | C1 | C2 | C3;
    let (cc, flags) = match src {
        Some((s, sflags)) if !is_empty(cpu, 0) => {
            let (cc, mut f) = soft::compare(st(cpu, 0), s, quiet);
            // A converted SNaN memory operand is a NaN, so `compare` already said IE.
            if cc != C3 | C2 | C0 {
                f |= sflags & DE;
            }
            (cc, f)
        }
        _ => {
            report(cpu, IE | SF, C1);
            (C3 | C2 | C0, IE)
        }
    };
    // Compares set the condition codes even when the exception is unmasked, but then do
    // not pop.
    report(cpu, cc | flags, cc_all);
    if flags & !cpu.x87.fcw & (IE | DE) != 0 {
        return Ok(());
    }
    for _ in 0..pops {
        pop(cpu);
    }
    Ok(())
}

fn fcomi(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    let code = i.code();
    let quiet = matches!(code, Fucomi_st0_sti | Fucomip_st0_sti);
    let popit = matches!(code, Fcomip_st0_sti | Fucomip_st0_sti);
    let s = sti(i, 1);
    note(cpu, i, false);
    let (cc, flags) = if is_empty(cpu, 0) || is_empty(cpu, s) {
        report(cpu, IE | SF, C1);
        (C3 | C2 | C0, IE)
    } else {
        soft::compare(st(cpu, 0), st(cpu, s), quiet)
    };
    // AMD leaves C1 alone here (Intel documents it cleared).
    report(cpu, flags, 0);
    cpu.flags.set_arith(
        cc & C0 != 0,
        cc & C2 != 0,
        false,
        cc & C3 != 0,
        false,
        false,
    );
    // As with FCOMP: the flags are set, but an unmasked exception prevents the pop.
    if popit && flags & !cpu.x87.fcw & (IE | DE) == 0 {
        pop(cpu);
    }
    Ok(())
}

fn fld(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    let code = i.code();
    if code == Code::Fld_sti {
        let s = sti(i, 0);
        note(cpu, i, false);
        if is_empty(cpu, s) {
            // Underflow takes precedence over a full stack.
            if underflow(cpu) {
                push(cpu, INDEFINITE);
            }
            return Ok(());
        }
        let v = st(cpu, s);
        push_checked(cpu, v, 0);
        return Ok(());
    }
    let (mut v, flags) = read_mem_operand(cpu, i, code)?;
    if flags & IE != 0 {
        v |= 1 << 62; // FLD m32/m64 quiets an SNaN
    }
    note(cpu, i, true);
    push_checked(cpu, v, flags);
    Ok(())
}

fn fldconst(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    let rc = fenv(cpu).rc;
    let v = match i.code() {
        Code::Fld1 => soft::pack(false, 0x3fff, 1 << 63),
        Code::Fldz => 0,
        Code::Fldpi => soft::constant(0x4000, 0xc90f_daa2_2168_c234, true, rc),
        Code::Fldl2e => soft::constant(0x3fff, 0xb8aa_3b29_5c17_f0bb, true, rc),
        Code::Fldl2t => soft::constant(0x4000, 0xd49a_784b_cd1b_8afe, false, rc),
        Code::Fldlg2 => soft::constant(0x3ffd, 0x9a20_9a84_fbcf_f798, true, rc),
        _ => soft::constant(0x3ffe, 0xb172_17f7_d1cf_79ab, true, rc),
    };
    push_checked(cpu, v, 0);
    Ok(())
}

fn fst_real(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    let code = i.code();
    let single = matches!(code, Fst_m32fp | Fstp_m32fp);
    let popit = matches!(code, Fstp_m32fp | Fstp_m64fp);
    let a = cpu.ea(i);
    let e = fenv(cpu);
    let out = if is_empty(cpu, 0) {
        let ind: u128 = if single {
            0xffc0_0000
        } else {
            0xfff8_0000_0000_0000
        };
        Out {
            val: masked(cpu, IE).then_some(ind),
            flags: IE | SF,
        }
    } else {
        soft::to_ieee(st(cpu, 0), if single { soft::F32 } else { soft::F64 }, &e)
    };
    if let Some(v) = out.val {
        if single {
            cpu.mem.write_u32(a, v as u32)?;
        } else {
            cpu.mem.write_u64(a, v as u64)?;
        }
    }
    note(cpu, i, true);
    report(cpu, out.flags, C1);
    if out.val.is_some() && popit {
        pop(cpu);
    }
    Ok(())
}

fn fstp80(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    let a = cpu.ea(i);
    if is_empty(cpu, 0) {
        if masked(cpu, IE) {
            write80(cpu, a, INDEFINITE)?;
            note(cpu, i, true);
            underflow(cpu);
            pop(cpu);
        } else {
            note(cpu, i, true);
            underflow(cpu);
        }
        return Ok(());
    }
    write80(cpu, a, st(cpu, 0))?;
    note(cpu, i, true);
    report(cpu, 0, C1);
    pop(cpu);
    Ok(())
}

fn fst_sti(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    let popit = i.code() != Code::Fst_sti;
    let d = sti(i, 0);
    note(cpu, i, false);
    if is_empty(cpu, 0) {
        if underflow(cpu) {
            set_st(cpu, d, INDEFINITE);
            if popit {
                pop(cpu);
            }
        }
        return Ok(());
    }
    let v = st(cpu, 0);
    set_st(cpu, d, v);
    report(cpu, 0, C1);
    if popit {
        pop(cpu);
    }
    Ok(())
}

fn fist(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    let code = i.code();
    let bits = match code {
        Fist_m16int | Fistp_m16int | Fisttp_m16int => 16,
        Fist_m32int | Fistp_m32int | Fisttp_m32int => 32,
        _ => 64,
    };
    let trunc = matches!(code, Fisttp_m16int | Fisttp_m32int | Fisttp_m64int);
    let popit = code != Fist_m16int && code != Fist_m32int;
    let a = cpu.ea(i);
    let e = fenv(cpu);
    let out = if is_empty(cpu, 0) {
        Out {
            val: masked(cpu, IE).then_some(1u128 << (bits - 1)),
            flags: IE | SF,
        }
    } else {
        soft::to_int(st(cpu, 0), bits, &e, trunc)
    };
    if let Some(v) = out.val {
        cpu.mem.write_sized(a, bits / 8, v as u64)?;
    }
    note(cpu, i, true);
    report(cpu, out.flags, C1);
    if out.val.is_some() && popit {
        pop(cpu);
    }
    Ok(())
}

/// Packed BCD (18 digits, sign in bit 79) to an 80-bit value; invalid digits are taken at
/// face value (the result is undefined on hardware).
fn bcd_to_ext(v: u128) -> u128 {
    let mut n: i64 = 0;
    for k in (0..18).rev() {
        let d = ((v >> (4 * k)) & 0xf) as i64;
        n = n.wrapping_mul(10).wrapping_add(d);
    }
    let neg = (v >> 79) & 1 != 0;
    if n == 0 {
        return soft::zero(neg);
    }
    let r = soft::from_int(n);
    if neg {
        r | (1u128 << 79)
    } else {
        r
    }
}

fn fbstp(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    let a = cpu.ea(i);
    let e = fenv(cpu);
    const BCD_INDEFINITE: u128 = 0xffff_c000_0000_0000_0000;
    let out = if is_empty(cpu, 0) {
        Out {
            val: masked(cpu, IE).then_some(BCD_INDEFINITE),
            flags: IE | SF,
        }
    } else {
        let v = st(cpu, 0);
        let o = soft::to_int(v, 64, &e, false);
        match o.val {
            Some(n)
                if o.flags & IE == 0 && (n as i64).unsigned_abs() < 1_000_000_000_000_000_000 =>
            {
                let mut m = (n as i64).unsigned_abs();
                let mut r: u128 = 0;
                for k in 0..18 {
                    r |= ((m % 10) as u128) << (4 * k);
                    m /= 10;
                }
                if soft::sign_of(v) {
                    r |= 1u128 << 79;
                }
                Out::val(r, o.flags)
            }
            Some(_) if o.flags & IE == 0 => Out {
                val: masked(cpu, IE).then_some(BCD_INDEFINITE),
                flags: IE,
            },
            _ => Out {
                val: masked(cpu, IE).then_some(BCD_INDEFINITE),
                flags: IE,
            },
        }
    };
    if let Some(v) = out.val {
        write80(cpu, a, v)?;
    }
    note(cpu, i, true);
    report(cpu, out.flags, C1);
    if out.val.is_some() {
        pop(cpu);
    }
    Ok(())
}

fn fxch(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    let s = sti(i, 1);
    note(cpu, i, false);
    if is_empty(cpu, 0) || is_empty(cpu, s) {
        if !underflow(cpu) {
            return Ok(());
        }
        let a = if is_empty(cpu, 0) {
            INDEFINITE
        } else {
            st(cpu, 0)
        };
        let b = if is_empty(cpu, s) {
            INDEFINITE
        } else {
            st(cpu, s)
        };
        set_st(cpu, 0, b);
        set_st(cpu, s, a);
        return Ok(());
    }
    let (a, b) = (st(cpu, 0), st(cpu, s));
    set_st(cpu, 0, b);
    set_st(cpu, s, a);
    report(cpu, 0, C1);
    Ok(())
}

fn fsign(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    if is_empty(cpu, 0) {
        underflow_st0(cpu);
        return Ok(());
    }
    let v = st(cpu, 0);
    let r = if i.code() == Code::Fchs {
        v ^ (1u128 << 79)
    } else {
        v & !(1u128 << 79)
    };
    set_st(cpu, 0, r);
    report(cpu, 0, C1);
    Ok(())
}

fn fxam(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    let cc = soft::examine(st(cpu, 0), is_empty(cpu, 0));
    report(cpu, cc, C0 | C1 | C2 | C3);
    Ok(())
}

/// An empty source register of an instruction that replaces ST(0): stack underflow (Intel SDM
/// Vol. 1 §8.5.1.1); with IE masked ST(0) becomes the indefinite QNaN.
fn underflow_st0(cpu: &mut Cpu) {
    if underflow(cpu) {
        set_st(cpu, 0, INDEFINITE);
    }
}

/// A stack fault of an instruction that replaces ST(0) and pushes a second result (FXTRACT,
/// FPTAN, FSINCOS): `fault` reports it (`underflow` or `overflow`); when it returns that IE is
/// masked, both results are the indefinite.
fn indefinite_pair(cpu: &mut Cpu, fault: fn(&mut Cpu) -> bool) {
    if fault(cpu) {
        set_st(cpu, 0, INDEFINITE);
        push(cpu, INDEFINITE);
    }
}

/// Applies a one-result outcome to ST(`d`).
fn store_out(cpu: &mut Cpu, d: usize, out: Out, cc_mask: u16) {
    if let Some(v) = out.val {
        set_st(cpu, d, v);
    }
    report(cpu, out.flags, cc_mask);
}

fn unary(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    if is_empty(cpu, 0) {
        underflow_st0(cpu);
        return Ok(());
    }
    let e = fenv(cpu);
    let v = st(cpu, 0);
    let out = if i.code() == Code::Fsqrt {
        soft::sqrt(v, &e)
    } else {
        soft::rndint(v, &e)
    };
    store_out(cpu, 0, out, C1);
    Ok(())
}

fn fscale(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    if is_empty(cpu, 0) || is_empty(cpu, 1) {
        underflow_st0(cpu);
        return Ok(());
    }
    let out = soft::scale(st(cpu, 0), st(cpu, 1), &fenv(cpu));
    store_out(cpu, 0, out, C1);
    Ok(())
}

fn fxtract(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    if is_empty(cpu, 0) {
        indefinite_pair(cpu, underflow);
        return Ok(());
    }
    if !is_empty(cpu, 7) {
        indefinite_pair(cpu, overflow);
        return Ok(());
    }
    let (r, flags) = soft::xtract(st(cpu, 0), &fenv(cpu));
    if let Some((sig, exp)) = r {
        set_st(cpu, 0, exp);
        push(cpu, sig);
    }
    report(cpu, flags, C1);
    Ok(())
}

fn fprem(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    if is_empty(cpu, 0) || is_empty(cpu, 1) {
        cpu.x87.fsw &= !C2;
        underflow_st0(cpu);
        return Ok(());
    }
    let out = soft::prem(st(cpu, 0), st(cpu, 1), i.code() == Code::Fprem1, &fenv(cpu));
    // A NaN result (or none) leaves C0 and C3 alone.
    let nan_out = out
        .val
        .is_none_or(|v| soft::is_nan_kind(soft::unpack(v).kind));
    let cc = if nan_out { C1 | C2 } else { C0 | C1 | C2 | C3 };
    store_out(cpu, 0, out, cc);
    Ok(())
}

fn transcendental(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    note(cpu, i, false);
    let code = i.code();
    let two_in = matches!(code, Fpatan | Fyl2x | Fyl2xp1);
    let two_out = matches!(code, Fptan | Fsincos);
    if matches!(code, Fsin | Fcos | Fptan | Fsincos)
        && (is_empty(cpu, 0) || (two_out && !is_empty(cpu, 7)))
    {
        cpu.x87.fsw &= !C2;
    }
    if is_empty(cpu, 0) || (two_in && is_empty(cpu, 1)) {
        if underflow(cpu) {
            if two_in {
                set_st(cpu, 1, INDEFINITE);
                pop(cpu);
            } else {
                set_st(cpu, 0, INDEFINITE);
                if two_out {
                    push(cpu, INDEFINITE);
                }
            }
        }
        return Ok(());
    }
    if two_out && !is_empty(cpu, 7) {
        indefinite_pair(cpu, overflow);
        return Ok(());
    }
    let a = st(cpu, 0);
    let b = if two_in { st(cpu, 1) } else { 0 };
    let r = host::run(code, cpu.x87.fcw, a, b);
    let flags = r.fsw & (0x3f | CC_MASK);
    let suppressed = flags & !cpu.x87.fcw & (IE | DE | soft::ZE) != 0;
    if !suppressed {
        if two_in {
            set_st(cpu, 1, r.results[0]);
            pop(cpu);
        } else if two_out && r.pushed {
            set_st(cpu, 0, r.results[1]);
            push(cpu, r.results[0]);
        } else {
            set_st(cpu, 0, r.results[0]);
        }
    }
    // Only the trigonometric instructions report C2 (argument out of range).
    let cc = if matches!(code, Fsin | Fcos | Fptan | Fsincos) {
        C1 | C2
    } else {
        C1
    };
    report(cpu, flags, cc);
    Ok(())
}

fn ffree(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    free(cpu, sti(i, 0));
    report(cpu, 0, C1);
    if i.code() == Code::Ffreep_sti {
        cpu.x87.top = cpu.x87.top.wrapping_add(1) & 7;
    }
    Ok(())
}

fn fincdec(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    cpu.x87.top = if i.code() == Code::Fincstp {
        cpu.x87.top.wrapping_add(1)
    } else {
        cpu.x87.top.wrapping_sub(1)
    } & 7;
    report(cpu, 0, C1);
    Ok(())
}

fn fcmov(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Code::*;
    wait_check(cpu)?;
    note(cpu, i, false);
    let f = &cpu.flags;
    let cond = match i.code() {
        Fcmovb_st0_sti => f.cf(),
        Fcmove_st0_sti => f.zf(),
        Fcmovbe_st0_sti => f.cf() || f.zf(),
        Fcmovu_st0_sti => f.pf(),
        Fcmovnb_st0_sti => !f.cf(),
        Fcmovne_st0_sti => !f.zf(),
        Fcmovnbe_st0_sti => !f.cf() && !f.zf(),
        _ => !f.pf(),
    };
    let s = sti(i, 1);
    if is_empty(cpu, 0) || is_empty(cpu, s) {
        underflow_st0(cpu);
        return Ok(());
    }
    if cond {
        let v = st(cpu, s);
        set_st(cpu, 0, v);
    }
    Ok(())
}

fn fnop(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    wait_check(cpu)?;
    note(cpu, i, false);
    Ok(())
}
