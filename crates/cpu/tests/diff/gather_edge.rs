//! AVX2 gathers whose elements land at the ends of the readable pages (`Harness`: unmapped |
//! data | read-only | PROT_NONE), so that an element faults part-way through the gather.
//!
//! Intel SDM Vol. 2B "VPGATHERDD/VPGATHERQD" (and the other six gathers): elements are
//! gathered from the lowest; a fault on one stops the instruction with every element before
//! it completed (destination lane written, mask element cleared), and the signal frame holds
//! that partial destination and mask, so re-executing the instruction after the handler
//! continues where it stopped. The host's frame and si_addr are compared with the emulator's
//! in full (`super::compare`): the destination, the mask, the index, si_code (SEGV_MAPERR for
//! the unmapped page, SEGV_ACCERR for the PROT_NONE one), si_addr (the first inaccessible byte
//! of an element that straddles a page end) and the error code.

use super::forms::{Fix, Form};
use super::gen::{Ctx, Rng};
use super::{Case, DATA_LEN};
use cetbox_cpu::exec::hostop::gather_layout;
use iced_x86::{Decoder, DecoderOptions, Register};
use rand::Rng as _;

/// The register holding the memory operand's base (the forms are built on R14).
const BASE: usize = 14;

/// The gather forms (register sets 0 and 1) again, with `edge_case` placing their elements.
pub fn forms(v: &mut Vec<Form>) {
    let gathers: Vec<Form> = v
        .iter()
        .filter(|f| is_gather(&f.bytes) && !f.name.contains("misaligned"))
        .cloned()
        .collect();
    for f in gathers {
        v.push(f.fix(Fix::Custom(edge_case)).tag("page edge"));
    }
}

fn decode(bytes: &[u8]) -> iced_x86::Instruction {
    Decoder::new(64, bytes, DecoderOptions::NONE).decode()
}

fn is_gather(bytes: &[u8]) -> bool {
    gather_layout(&decode(bytes)).is_some()
}

/// Where an element goes, relative to the data page's start (the page edge layout above),
/// and whether its index is rounded up to the scale (else down) so that it stays faulting or
/// readable as chosen.
fn target(rng: &mut Rng, es: i64, faulting: bool) -> (i64, bool) {
    let page = DATA_LEN as i64;
    if faulting {
        match rng.gen_range(0..4) {
            // Straddling the unmapped page below into the data page, or just below it.
            0 => (-rng.gen_range(1..=es), false),
            // Straddling the read-only page's end into the PROT_NONE page, or just after it.
            1 => (2 * page - rng.gen_range(1..es), true),
            2 => (-rng.gen_range(es..page), false),
            _ => (2 * page + rng.gen_range(0..page - es), true),
        }
    } else if rng.gen_bool(0.5) {
        // The data page (rounding up may reach into the readable page above), its first and
        // last bytes favoured.
        let t = match rng.gen_range(0..4) {
            0 => 0,
            1 => page - es,
            _ => rng.gen_range(0..page - es),
        };
        (t, true)
    } else {
        // The read-only page (readable), its last element favoured.
        let t = match rng.gen_range(0..3) {
            0 => 2 * page - es,
            _ => page + rng.gen_range(0..page - es),
        };
        (t, false)
    }
}

/// Places the elements of the gather in `case.bytes`: the base register somewhere near the
/// data page's start; elements before a random position `p` in readable memory, element `p`
/// (its mask bit set) at or across a page end into the unmapped or PROT_NONE page, elements
/// after it anywhere; the other mask bits random (mostly set). One case in eight has no
/// faulting element at all.
fn edge_case(rng: &mut Rng, case: &mut Case, ctx: &Ctx) {
    let i = decode(&case.bytes);
    let layout = gather_layout(&i).expect("a gather");
    let (n, es) = (layout.elements, layout.data_size as i64);
    let idx_q = layout.index_size == 8;
    let scale = i.memory_index_scale() as i64;
    let disp = i.memory_displacement64() as i64;
    assert_eq!(
        i.memory_base(),
        Register::R14,
        "gather forms are built on R14"
    );
    let base_off = 0x100 + rng.gen_range(0..16);
    case.input.gpr[BASE] = ctx.data + base_off as u64;
    let reg = |r: Register| r.number() & 15;
    let (x, k) = (reg(i.memory_index()), reg(i.op2_register()));
    let mut index = ymm(case, x);
    let mut mask = ymm(case, k);
    let p = rng.gen_range(0..n + n / 2);
    for j in 0..n {
        let faulting = j == p || (j > p && rng.gen_bool(0.3));
        let (t, up) = target(rng, es, faulting);
        let from = t - base_off - disp;
        let ix = if up {
            from.div_euclid(scale) + (from.rem_euclid(scale) != 0) as i64
        } else {
            from.div_euclid(scale)
        };
        if idx_q {
            index[8 * j..8 * j + 8].copy_from_slice(&ix.to_le_bytes());
        } else {
            index[4 * j..4 * j + 4].copy_from_slice(&(ix as i32).to_le_bytes());
        }
        let top = (es as usize) * (j + 1) - 1;
        if j == p || rng.gen_bool(0.8) {
            mask[top] |= 0x80;
        } else {
            mask[top] &= 0x7f;
        }
    }
    set_ymm(case, x, &index);
    set_ymm(case, k, &mask);
}

fn ymm(case: &Case, r: usize) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&case.input.xmm(r).to_le_bytes());
    b[16..].copy_from_slice(&case.input.ymm_hi[r].to_le_bytes());
    b
}

fn set_ymm(case: &mut Case, r: usize, b: &[u8; 32]) {
    let lo = u128::from_le_bytes(b[..16].try_into().expect("16 bytes"));
    let hi = u128::from_le_bytes(b[16..].try_into().expect("16 bytes"));
    case.input.set_xmm(r, lo);
    case.input.ymm_hi[r] = hi;
}
