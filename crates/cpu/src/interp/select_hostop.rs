//! Decode-time selection for the v2/v3 forms that run through a host thunk
//! (`exec::hostop`): the form's preparation is looked up once, when the block is decoded, and
//! kept in the op (`imm` points at it), so running the op skips the lookup.

use super::block::{Op, OpFn};
use crate::exception::Result;
use crate::exec::hostop::{kept_preparation, run_prepared, Prepared};
use crate::Cpu;

/// The op's specialized function, or None when the form does not run through a thunk.
pub(crate) fn select(op: &mut Op) -> Option<OpFn> {
    let p = kept_preparation(&op.insn)?;
    op.imm = p as *const Prepared as u64;
    Some(run_op)
}

fn run_op(cpu: &mut Cpu, op: &Op) -> Result<()> {
    // SAFETY: `select` stored a pointer to a leaked (never freed) `Prepared` in `imm`.
    let p = unsafe { &*(op.imm as *const Prepared) };
    run_prepared(cpu, &op.insn, p)
}
