//! AVX2 gathers (VPGATHERDD/DQ/QD/QQ, VGATHERDPS/DPD/QPS/QPD; SDM Vol. 2B): each element whose
//! mask element has its top bit set is loaded from base + index[j] * scale + disp, in element
//! order, and its mask element cleared. A fault stops the gather with the elements done so far
//! committed (destination updated, their mask elements cleared), as the SDM specifies, so that
//! re-executing the instruction after the fault is handled continues where it stopped; later
//! elements are not gathered (measured on the host). On completion the whole mask register is
//! zeroed and the destination's bits beyond its elements are zeroed. The page-edge cases of
//! crates/cpu/tests/diff/gather_edge.rs compare all of it with the host.

use super::{check_level, set_ymm_bytes, vec_index, ymm_bytes};
use crate::exception::Result;
use crate::exec::Handler;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction, Mnemonic, Register};

/// Whether a gather's (index, data) elements are qwords, or None for any other mnemonic.
fn qwords(m: Mnemonic) -> Option<(bool, bool)> {
    use Mnemonic::*;
    Some(match m {
        Vpgatherdd | Vgatherdps => (false, false),
        Vpgatherdq | Vgatherdpd => (false, true),
        Vpgatherqd | Vgatherqps => (true, false),
        Vpgatherqq | Vgatherqpd => (true, true),
        _ => return None,
    })
}

/// A gather's elements: how many, the size of an index and of a data element in bytes, and
/// whether it is a VEX.256 form (destination or index a YMM register).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherLayout {
    pub elements: usize,
    pub index_size: usize,
    pub data_size: usize,
    pub vex256: bool,
}

/// The layout of gather `i`, or None if `i` is no gather.
pub fn gather_layout(i: &Instruction) -> Option<GatherLayout> {
    let (idx_q, data_q) = qwords(i.mnemonic())?;
    let vex256 = i.op0_register().is_ymm() || i.memory_index().is_ymm();
    let elements = match (vex256, idx_q || data_q) {
        (true, false) => 8,
        (false, false) | (true, true) => 4,
        (false, true) => 2,
    };
    let size = |q: bool| if q { 8 } else { 4 };
    Some(GatherLayout {
        elements,
        index_size: size(idx_q),
        data_size: size(data_q),
        vex256,
    })
}

pub fn lookup(code: Code) -> Option<Handler> {
    qwords(code.mnemonic()).map(|_| gather as Handler)
}

fn gather(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    // (`lookup` dispatches only gathers here.)
    let Some(layout) = gather_layout(i) else {
        return Err(Exception::InvalidOpcode(UdReason::Architectural));
    };
    let (n, es, vl256) = (layout.elements, layout.data_size, layout.vex256);
    let idx_q = layout.index_size == 8;
    let dst = i.op0_register();
    let index = i.memory_index();
    let mask_r = i.op2_register();
    let (d, x, k) = (vec_index(dst), vec_index(index), vec_index(mask_r));
    // #UD if any two of destination, index and mask are the same register.
    if d == x || d == k || x == k {
        return Err(Exception::InvalidOpcode(UdReason::Architectural));
    }
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
    let mut gathered = false;
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
            // The registers the fault leaves (the SDM leaves the parts that are no element to
            // the implementation; measured on the host, an AVX2 Intel CPU): every mask element
            // of the vector length, of the data element's size, all ones if its top bit is
            // still set and zero otherwise, and a VEX.128 form's mask zeroed above bit 127;
            // the destination untouched if no element was gathered, else as the completed
            // elements made it, a VEX.128 form's zeroed above bit 127.
            let vl = if vl256 { 32 } else { 16 };
            for m in mask[..vl].chunks_mut(es) {
                let fill = if m[es - 1] & 0x80 != 0 { 0xff } else { 0 };
                m.fill(fill);
            }
            mask[vl..].fill(0);
            set_ymm_bytes(cpu, k, &mask);
            if gathered {
                out[vl..].fill(0);
                set_ymm_bytes(cpu, d, &out);
            }
            return Err(f.into());
        }
        out[j * es..(j + 1) * es].copy_from_slice(&e[..es]);
        mask[j * es..(j + 1) * es].fill(0);
        gathered = true;
    }
    // The destination keeps its n elements; everything above them is zeroed (for the
    // qword-index, dword-data forms that is half the vector length).
    out[n * es..].fill(0);
    set_ymm_bytes(cpu, d, &out);
    set_ymm_bytes(cpu, k, &[0u8; 32]);
    Ok(())
}
