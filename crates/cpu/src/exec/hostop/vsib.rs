//! AVX2 gathers (VPGATHERDD/DQ/QD/QQ, VGATHERDPS/DPD/QPS/QPD; SDM Vol. 2B): each element whose
//! mask element has its top bit set is loaded from base + index[j] * scale + disp, in element
//! order, and its mask element cleared. A fault stops the gather with the elements done so far
//! committed (destination updated, their mask elements cleared), as the SDM specifies, so that
//! re-executing the instruction after the fault is handled continues where it stopped. On
//! completion the whole mask register is zeroed and the destination's bits beyond the vector
//! length are zeroed.

use super::{check_level, set_ymm_bytes, vec_index, ymm_bytes};
use crate::exception::Result;
use crate::exec::Handler;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction, Mnemonic, Register};

pub fn lookup(code: Code) -> Option<Handler> {
    use Mnemonic::*;
    matches!(
        code.mnemonic(),
        Vpgatherdd
            | Vpgatherdq
            | Vpgatherqd
            | Vpgatherqq
            | Vgatherdps
            | Vgatherdpd
            | Vgatherqps
            | Vgatherqpd
    )
    .then_some(gather as Handler)
}

fn gather(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    use Mnemonic::*;
    check_level(cpu, i)?;
    let (idx_q, data_q) = match i.mnemonic() {
        Vpgatherdd | Vgatherdps => (false, false),
        Vpgatherdq | Vgatherdpd => (false, true),
        Vpgatherqd | Vgatherqps => (true, false),
        _ => (true, true),
    };
    let dst = i.op0_register();
    let index = i.memory_index();
    let mask_r = i.op2_register();
    let (d, x, k) = (vec_index(dst), vec_index(index), vec_index(mask_r));
    // #UD if any two of destination, index and mask are the same register.
    if d == x || d == k || x == k {
        return Err(Exception::InvalidOpcode(UdReason::Architectural));
    }
    let vl256 = dst.is_ymm() || index.is_ymm();
    let n = match (vl256, idx_q || data_q) {
        (true, false) => 8,
        (false, false) => 4,
        (true, true) => 4,
        (false, true) => 2,
    };
    let es = if data_q { 8 } else { 4 };
    let mut out = ymm_bytes(cpu, d);
    let mut mask = ymm_bytes(cpu, k);
    let idx = ymm_bytes(cpu, x);
    let base = match i.memory_base() {
        Register::None => 0,
        r => cpu.get_reg(r),
    };
    let mut base = base.wrapping_add(i.memory_displacement64());
    base = match i.memory_segment() {
        Register::FS => base.wrapping_add(cpu.fs_base),
        Register::GS => base.wrapping_add(cpu.gs_base),
        _ => base,
    };
    let scale = i.memory_index_scale() as u64;
    for j in 0..n {
        if mask[j * es + es - 1] & 0x80 == 0 {
            continue;
        }
        let ix = if idx_q {
            i64::from_le_bytes(idx[j * 8..j * 8 + 8].try_into().unwrap()) as u64
        } else {
            i32::from_le_bytes(idx[j * 4..j * 4 + 4].try_into().unwrap()) as i64 as u64
        };
        let a = base.wrapping_add(ix.wrapping_mul(scale));
        let mut e = [0u8; 8];
        if let Err(f) = cpu.mem.read_bytes(a, &mut e[..es]) {
            set_ymm_bytes(cpu, d, &out);
            set_ymm_bytes(cpu, k, &mask);
            return Err(f.into());
        }
        out[j * es..(j + 1) * es].copy_from_slice(&e[..es]);
        mask[j * es..(j + 1) * es].fill(0);
    }
    // The destination keeps its n elements; everything above them is zeroed (for the
    // qword-index, dword-data forms that is half the vector length).
    out[n * es..].fill(0);
    set_ymm_bytes(cpu, d, &out);
    set_ymm_bytes(cpu, k, &[0u8; 32]);
    Ok(())
}
