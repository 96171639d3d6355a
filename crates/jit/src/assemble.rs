//! A one-pass assembler for the instruction lists `translate` builds with iced's
//! `CodeAssembler`, several times cheaper than `CodeAssembler::assemble`.
//!
//! iced's `BlockEncoder` (what `assemble` runs) is general: it wraps every instruction in a
//! boxed relocatable object, encodes each one at least twice and can rewrite branches and
//! RIP-relative operands that do not reach. Translation cost is start-up cost (a process
//! translates thousands of blocks), and translated blocks need none of that generality: their
//! only IP-dependent instructions are direct branches (JMP, Jcc, JRCXZ, CALL) to a label of
//! the same list or to a host address in the code cache, which rel32 always reaches. So every
//! other instruction is encoded exactly once, with iced's `Encoder`, and the branches are
//! laid out by the classic relaxation (start short, widen what does not reach, repeat until
//! nothing changes; widening only moves code forward, so it terminates) and encoded at their
//! final addresses. A RIP-relative operand addressing a label of the list (the link sites'
//! `lea rcx, [rip+site]`, `translate::link_exit`) has a fixed length (disp32) and is encoded
//! last, at its final address. Anything outside that shape (a RIP-relative operand to
//! anything but a label, a label that is not defined, a branch that does not reach) is refused
//! with an error, and the caller falls back to `CodeAssembler::assemble`.
//!
//! Labels: `CodeAssembler` gives each label a small integer id (1, 2, ...), sets it as the IP
//! of the instruction the label is attached to, and as the target of branches to it. Guest
//! instructions added unchanged keep their guest IP, which is never below
//! `cetbox_mem::MMAP_MIN_ADDR`, so an IP or target below it is a label id.
//!
//! Nothing is allocated per block once a thread's buffers have grown (`Scratch`): the
//! encoder, its output buffer, the layout's vectors and the `CodeAssembler` itself
//! (`assembler`) are reused, and branches are encoded straight into the output. Encodings
//! are remembered in a direct-mapped table of 2,048 instructions indexed by a hash of a few
//! of their fields and confirmed by iced's `PartialEq` (`encode_memo`): 97% of python3's
//! start-up instructions repeat an earlier block's, and a probe costs a fraction of iced's
//! encoder (a std hash map probed through iced's `Hash`, tried before, cost more than the
//! encoder).

use cetbox_mem::MMAP_MIN_ADDR;
use iced_x86::code_asm::CodeAssembler;
use iced_x86::{Code, Encoder, IcedError, Instruction, OpKind};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// One entry of the layout.
struct Item {
    /// Offset of this instruction's bytes in the body buffer (non-branches).
    at: usize,
    /// Its length in bytes (a branch: its current form's length).
    len: usize,
    /// For a branch: the index of the target instruction (a label), or None for an absolute
    /// host target. For a RIP-relative operand: the index of the labelled instruction it
    /// addresses.
    label: Option<usize>,
    branch: bool,
    /// A RIP-relative memory operand addressing a label (`lea rcx, [rip+label]`): its length
    /// does not depend on where it lands (the displacement is always 32 bits), so it is laid
    /// out like any instruction and encoded at its final address with the label's address.
    rip_rel: bool,
}

/// Entries of the encoding memo (a power of two).
const MEMO_SLOTS: usize = 2048;

/// One remembered encoding: an instruction and its bytes encoded at IP 0 (`len` 0: empty).
#[derive(Clone, Copy)]
struct Memo {
    insn: Instruction,
    len: u8,
    bytes: [u8; 15],
}

/// The memo slot of `insn`, from a few of its fields; equal instructions (iced's
/// `PartialEq`, every field that encoding reads) always share a slot, and a collision only
/// costs an encoding.
fn memo_slot(insn: &Instruction) -> usize {
    let mut h = insn.code() as u64;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ insn.memory_displacement64();
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ insn.immediate64();
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (insn.op0_register() as u64)
        ^ (insn.op1_register() as u64) << 8
        ^ (insn.memory_base() as u64) << 16
        ^ (insn.memory_index() as u64) << 24;
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 53) as usize & (MEMO_SLOTS - 1)
}

/// Per-thread buffers of `assemble`, kept between blocks.
struct Scratch {
    enc: Encoder,
    /// The non-branch instructions' bytes (encoded at IP 0).
    body: Vec<u8>,
    items: Vec<Item>,
    offs: Vec<usize>,
    /// Label id -> index of the instruction carrying it.
    labels: Vec<(u64, usize)>,
    /// A `CodeAssembler` to reuse (its instruction vector keeps its capacity).
    spare: Option<CodeAssembler>,
    /// Encodings of instructions without IP-dependent operands, direct-mapped
    /// (`encode_memo`); allocated at the first block.
    memo: Vec<Memo>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            enc: Encoder::new(64),
            body: Vec::new(),
            items: Vec::new(),
            offs: Vec::new(),
            labels: Vec::new(),
            spare: None,
            memo: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Why `assemble` refused a list (the caller then uses `CodeAssembler::assemble`).
#[derive(Debug)]
pub struct Refused(pub &'static str);

/// Lists refused since the process started (CETBOX_JIT_STATS prints it; tests expect 0).
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// An empty 64-bit `CodeAssembler`: the one `assemble_or_iced` last used on this thread when
/// there is one (no allocation while a block fits what it held before).
pub fn assembler() -> Result<CodeAssembler, IcedError> {
    match SCRATCH.with(|s| s.borrow_mut().spare.take()) {
        Some(a) => Ok(a),
        None => CodeAssembler::new(64),
    }
}

/// `assemble`, or iced's `CodeAssembler::assemble` when it refuses; `a` is kept for reuse
/// (`assembler`).
pub fn assemble_or_iced(mut a: CodeAssembler, ip: u64) -> Result<Vec<u8>, IcedError> {
    let r = match assemble(&a, ip) {
        Ok(bytes) => Ok(bytes),
        Err(why) => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            if std::env::var_os("CETBOX_JIT_STATS").is_some() {
                eprintln!("cetbox jit: assembled by iced: {}", why.0);
            }
            a.assemble(ip)
        }
    };
    a.reset();
    SCRATCH.with(|s| s.borrow_mut().spare = Some(a));
    r
}

impl From<IcedError> for Refused {
    fn from(_: IcedError) -> Refused {
        Refused("the encoder refused an instruction")
    }
}

/// Whether `insn` has a relative branch operand.
fn is_branch(insn: &Instruction) -> bool {
    insn.op_count() >= 1 && insn.op0_kind() == OpKind::NearBranch64
}

/// The length of a branch in its current form.
fn branch_len(code: Code) -> usize {
    match code {
        Code::Jmp_rel8_64 | Code::Jrcxz_rel8_64 | Code::Jecxz_rel8_64 | Code::Loop_rel8_64_RCX => 2,
        Code::Jmp_rel32_64 | Code::Call_rel32_64 => 5,
        c if c.is_jcc_short() => 2,
        c if c.is_jcc_near() => 6,
        _ => 0,
    }
}

/// Encodes `insn` at `ip` onto the end of `out` with `enc`, returning its length (the
/// encoder's buffer is swapped in and out, which moves no bytes).
fn encode_onto(
    enc: &mut Encoder,
    out: &mut Vec<u8>,
    insn: &Instruction,
    ip: u64,
) -> Result<usize, IcedError> {
    enc.set_buffer(std::mem::take(out));
    let r = enc.encode(insn, ip);
    *out = enc.take_buffer();
    r
}

/// Encodes `insn`, which has no IP-dependent operand, onto the end of `out` (as at IP 0, the
/// same bytes at every address) and returns its length: from `memo` when it holds an
/// instruction equal to it, else with `enc`, remembering the result. Most instructions of a
/// block repeat earlier blocks' (context slot loads and stores, flag saves, checks: 97% of
/// python3's start-up), and a probe of this direct-mapped table is several times cheaper
/// than iced's encoder (a hash map of all of them, probed through iced's `Hash`, was not).
fn encode_memo(
    enc: &mut Encoder,
    memo: &mut Vec<Memo>,
    out: &mut Vec<u8>,
    insn: &Instruction,
) -> Result<usize, IcedError> {
    if memo.is_empty() {
        let empty = Memo {
            insn: Instruction::default(),
            len: 0,
            bytes: [0; 15],
        };
        memo.resize(MEMO_SLOTS, empty);
    }
    let m = &mut memo[memo_slot(insn)];
    if m.len != 0 && m.insn == *insn {
        out.extend_from_slice(&m.bytes[..m.len as usize]);
        return Ok(m.len as usize);
    }
    let at = out.len();
    let len = encode_onto(enc, out, insn, 0)?;
    if (1..=15).contains(&len) {
        m.insn = *insn;
        m.len = len as u8;
        m.bytes[..len].copy_from_slice(&out[at..at + len]);
    }
    Ok(len)
}

/// Assembles `a`'s instructions for the host address `ip` (see the module comment).
pub fn assemble(a: &CodeAssembler, ip: u64) -> Result<Vec<u8>, Refused> {
    SCRATCH.with(|s| s.borrow_mut().assemble(a.instructions(), ip))
}

impl Scratch {
    fn assemble(&mut self, insns: &[Instruction], ip: u64) -> Result<Vec<u8>, Refused> {
        let Scratch {
            enc,
            body,
            items,
            offs,
            labels,
            memo,
            ..
        } = self;
        items.clear();
        body.clear();
        labels.clear();
        for (i, insn) in insns.iter().enumerate() {
            if insn.ip() != 0 && insn.ip() < MMAP_MIN_ADDR {
                labels.push((insn.ip(), i));
            }
        }
        labels.sort_unstable();
        if labels.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Refused("two instructions carry the same label id"));
        }
        let labels = &*labels;
        let label_of = |t: u64| -> Option<usize> {
            labels
                .binary_search_by_key(&t, |&(id, _)| id)
                .ok()
                .map(|k| labels[k].1)
        };
        for insn in insns {
            if is_branch(insn) {
                let t = insn.near_branch64();
                let label = if t < MMAP_MIN_ADDR {
                    Some(label_of(t).ok_or(Refused("a branch to an undefined label"))?)
                } else {
                    None
                };
                let len = branch_len(insn.code());
                if len == 0 {
                    return Err(Refused("an unexpected branch form"));
                }
                items.push(Item {
                    at: 0,
                    len,
                    label,
                    branch: true,
                    rip_rel: false,
                });
                continue;
            }
            if insn.is_ip_rel_memory_operand() {
                let t = insn.memory_displacement64();
                if t >= MMAP_MIN_ADDR {
                    return Err(Refused("a RIP-relative operand that is not a label"));
                }
                let label = Some(label_of(t).ok_or(Refused("an operand at an undefined label"))?);
                // Its length, measured with the target at the instruction's own address (the
                // encoder needs a reachable one); the displacement is disp32 at any address.
                let mut m = *insn;
                m.set_memory_displacement64(0);
                let at = body.len();
                let len = encode_onto(enc, body, &m, 0)?;
                body.truncate(at);
                items.push(Item {
                    at: 0,
                    len,
                    label,
                    branch: false,
                    rip_rel: true,
                });
                continue;
            }
            let at = body.len();
            let len = encode_memo(enc, memo, body, insn)?;
            items.push(Item {
                at,
                len,
                label: None,
                branch: false,
                rip_rel: false,
            });
        }
        // Relaxation: short branches whose target is out of rel8 range become near ones.
        offs.clear();
        offs.resize(items.len() + 1, 0);
        loop {
            let mut o = 0;
            for (k, it) in items.iter().enumerate() {
                offs[k] = o;
                o += it.len;
            }
            offs[items.len()] = o;
            let mut grew = false;
            for (k, it) in items.iter_mut().enumerate() {
                if !it.branch || it.len != 2 {
                    continue;
                }
                let end = (ip + offs[k + 1] as u64) as i64;
                let target = match it.label {
                    Some(l) => (ip + offs[l] as u64) as i64,
                    None => insns[k].near_branch64() as i64,
                };
                let d = target.wrapping_sub(end);
                if i8::try_from(d).is_err() {
                    let code = insns[k].code();
                    if !(code == Code::Jmp_rel8_64 || code.is_jcc_short()) {
                        return Err(Refused("a rel8-only branch that does not reach"));
                    }
                    it.len = if code == Code::Jmp_rel8_64 { 5 } else { 6 };
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        let mut out = Vec::with_capacity(offs[items.len()]);
        for (k, it) in items.iter().enumerate() {
            let here = ip + offs[k] as u64;
            if it.rip_rel {
                let mut m = insns[k];
                let l = it
                    .label
                    .ok_or(Refused("a RIP-relative operand without a label"))?;
                m.set_memory_displacement64(ip + offs[l] as u64);
                if encode_onto(enc, &mut out, &m, here)? != it.len {
                    return Err(Refused("a RIP-relative operand changed length"));
                }
                continue;
            }
            if !it.branch {
                out.extend_from_slice(&body[it.at..it.at + it.len]);
                continue;
            }
            let mut b = insns[k];
            if it.len != 2 {
                b.as_near_branch();
            } else {
                b.as_short_branch();
            }
            let target = match it.label {
                Some(l) => ip + offs[l] as u64,
                None => b.near_branch64(),
            };
            b.set_near_branch64(target);
            if encode_onto(enc, &mut out, &b, here)? != it.len {
                return Err(Refused("a branch changed length"));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::code_asm::*;
    use iced_x86::{Decoder, DecoderOptions, FlowControl};

    /// Decodes `bytes` assembled at `ip`.
    fn decode(bytes: &[u8], ip: u64) -> Vec<Instruction> {
        Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE)
            .into_iter()
            .collect()
    }

    /// Decodes `bytes` (`a` assembled at `ip`) and checks that they are `a`'s instructions:
    /// each branch lands on its label's instruction (or its host target), each RIP-relative
    /// operand addresses its label's instruction, every other instruction is unchanged.
    fn same_instructions(a: &CodeAssembler, bytes: &[u8], ip: u64) -> Vec<Instruction> {
        let out = decode(bytes, ip);
        let list = a.instructions();
        assert_eq!(out.len(), list.len());
        let label_index = |id: u64| list.iter().position(|i| i.ip() == id).unwrap();
        for (k, (got, want)) in out.iter().zip(list).enumerate() {
            if want.op_count() > 0 && want.op0_kind() == OpKind::NearBranch64 {
                assert_eq!(got.mnemonic(), want.mnemonic(), "instruction {k}");
                assert_ne!(got.flow_control(), FlowControl::Next);
                let t = want.near_branch64();
                let expect = if t < MMAP_MIN_ADDR {
                    out[label_index(t)].ip()
                } else {
                    t
                };
                assert_eq!(got.near_branch64(), expect, "branch {k}: {got}");
            } else if want.is_ip_rel_memory_operand() {
                assert_eq!(got.mnemonic(), want.mnemonic(), "instruction {k}");
                let t = want.memory_displacement64();
                assert_eq!(
                    got.memory_displacement64(),
                    out[label_index(t)].ip(),
                    "operand {k}: {got}"
                );
            } else {
                let mut w = *want;
                w.set_ip(got.ip());
                w.set_len(got.len());
                w.set_next_ip(got.next_ip());
                assert_eq!(format!("{got}"), format!("{w}"), "instruction {k}");
            }
        }
        out
    }

    /// A list with what translated blocks contain: a backward branch to the first instruction,
    /// a forward Jcc over more than 127 bytes (must be widened), short forward branches, JRCXZ,
    /// a JMP to a host address and GS-relative operands. The output must decode to the same
    /// instructions with every branch landing on its label's instruction.
    #[test]
    fn branches_reach_their_labels_and_other_instructions_are_unchanged() {
        let ip = 0x7f00_1234_5000u64;
        let host = ip + 0x10_0000;
        let mut a = CodeAssembler::new(64).unwrap();
        let mut top = a.create_label();
        let mut far = a.create_label();
        let mut near = a.create_label();
        let mut go = a.create_label();
        let mut mid = a.create_label();
        a.set_label(&mut top).unwrap();
        a.nop().unwrap();
        a.mov(rax, qword_ptr(0x40).gs()).unwrap();
        a.jne(far).unwrap();
        a.jrcxz(go).unwrap();
        a.set_label(&mut go).unwrap();
        a.add(rbx, 1).unwrap();
        a.jb(mid).unwrap();
        a.inc(rdx).unwrap();
        a.set_label(&mut mid).unwrap();
        a.je(near).unwrap();
        for i in 0..40 {
            a.mov(qword_ptr(0x100 + 8 * i).gs(), rcx).unwrap();
        }
        a.set_label(&mut near).unwrap();
        a.mov(rcx, 0x1122_3344_5566_7788u64).unwrap();
        a.jmp(top).unwrap();
        a.set_label(&mut far).unwrap();
        a.lea(rcx, qword_ptr(rcx + 5)).unwrap();
        a.jmp(host).unwrap();
        let bytes = assemble(&a, ip).expect("assembled without iced's BlockEncoder");
        let out = same_instructions(&a, &bytes, ip);
        // The forward JNE and JE span the 40 stores (over 127 bytes): widened to rel32; the
        // JRCXZ and the JB over one instruction stay short.
        assert_eq!(out[2].len(), 6);
        assert_eq!(out[3].len(), 2);
        assert_eq!(out[5].len(), 2);
        assert_eq!(out[7].len(), 6);
    }

    /// A RIP-relative operand addressing a label (the link sites' `lea rcx, [rip+site]`) is
    /// laid out without iced's BlockEncoder and addresses the label's instruction, forwards
    /// and backwards, also when a branch between them is widened.
    #[test]
    fn rip_relative_operands_address_their_labels() {
        let ip = 0x7f00_1234_5000u64;
        let mut a = CodeAssembler::new(64).unwrap();
        let mut back = a.create_label();
        let mut fwd = a.create_label();
        let mut far = a.create_label();
        a.set_label(&mut back).unwrap();
        a.db(&[0xe9, 0, 0, 0, 0]).unwrap();
        a.jne(far).unwrap();
        a.lea(rcx, ptr(back)).unwrap();
        a.mov(rdx, qword_ptr(fwd)).unwrap();
        for i in 0..40 {
            a.mov(qword_ptr(0x100 + 8 * i).gs(), rcx).unwrap();
        }
        a.set_label(&mut far).unwrap();
        a.nop().unwrap();
        a.set_label(&mut fwd).unwrap();
        a.int3().unwrap();
        let bytes = assemble(&a, ip).expect("assembled without iced's BlockEncoder");
        let out = decode(&bytes, ip);
        assert_eq!(out.len(), a.instructions().len());
        // The JNE over the 40 stores is widened; the operands still reach their labels.
        assert_eq!(out[1].len(), 6);
        assert_eq!(out[2].mnemonic(), iced_x86::Mnemonic::Lea);
        assert!(out[2].is_ip_rel_memory_operand() && out[3].is_ip_rel_memory_operand());
        assert_eq!(out[2].memory_displacement64(), out[0].ip());
        assert_eq!(out[3].memory_displacement64(), out[out.len() - 1].ip());
        assert_eq!(out[3].mnemonic(), iced_x86::Mnemonic::Mov);
    }

    /// A RIP-relative operand to anything but a label depends on its address in a way this
    /// assembler does not track: refused (the caller falls back to iced's BlockEncoder); so
    /// are a label that is never defined and a JRCXZ out of reach.
    #[test]
    fn refuses_what_it_does_not_lay_out() {
        let mut a = CodeAssembler::new(64).unwrap();
        let abs = iced_x86::MemoryOperand::with_base_displ(iced_x86::Register::RIP, 0x7f00_1000);
        a.add_instruction(
            Instruction::with2(Code::Mov_r64_rm64, iced_x86::Register::RAX, abs).unwrap(),
        )
        .unwrap();
        assert!(assemble(&a, 0x7f00_0000_0000).is_err());

        let mut a = CodeAssembler::new(64).unwrap();
        let l = a.create_label();
        a.lea(rcx, ptr(l)).unwrap();
        a.nop().unwrap();
        assert!(assemble(&a, 0x7f00_0000_0000).is_err());

        let mut a = CodeAssembler::new(64).unwrap();
        let mut l = a.create_label();
        a.jrcxz(l).unwrap();
        for _ in 0..40 {
            a.mov(qword_ptr(0x100).gs(), rcx).unwrap();
        }
        a.set_label(&mut l).unwrap();
        a.nop().unwrap();
        assert!(assemble(&a, 0x7f00_0000_0000).is_err());
    }

    /// The encoding memo gives exactly the encoder's bytes: 20,000 instructions decoded from
    /// random bytes (every legacy, VEX and EVEX form iced decodes; those with IP-dependent
    /// operands left out, as `assemble` never memoizes them), many of them equal but for one
    /// field (the same few opcodes with varied operands), each encoded through the memo three
    /// times in a row and in a shuffled order, against a fresh encoder each time.
    #[test]
    fn the_memo_gives_the_encoders_bytes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0002);
        let mut insns = Vec::new();
        while insns.len() < 20_000 {
            let mut bytes = [0u8; 16];
            rng.fill(&mut bytes[..]);
            // Bias towards repeats: a few common opcodes with random operands.
            if rng.gen_bool(0.5) {
                bytes[0] = [0x48, 0x65, 0x0f, 0x89, 0x8b, 0xc5][rng.gen_range(0..6)];
            }
            let insn = Decoder::with_ip(64, &bytes, 0, DecoderOptions::NONE).decode();
            if insn.is_invalid() || is_branch(&insn) || insn.is_ip_rel_memory_operand() {
                continue;
            }
            let mut fresh = Encoder::new(64);
            let Ok(_) = fresh.encode(&insn, 0) else {
                continue;
            };
            insns.push((insn, fresh.take_buffer()));
        }
        let mut enc = Encoder::new(64);
        let mut memo = Vec::new();
        let mut order: Vec<usize> = (0..insns.len()).collect();
        for round in 0..4 {
            if round == 3 {
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.gen_range(0..=i));
                }
            }
            for &k in &order {
                let (insn, want) = &insns[k];
                for _ in 0..if round == 3 { 1 } else { 3 } {
                    let mut out = vec![0xaa];
                    let len = encode_memo(&mut enc, &mut memo, &mut out, insn).unwrap();
                    assert_eq!(len, want.len());
                    assert_eq!(&out[1..], &want[..], "{insn}");
                }
            }
        }
    }

    /// One random list of what translated blocks contain, as operations on a `CodeAssembler`
    /// (so the same list can be built twice): stores and loads of context slots, immediates,
    /// forward and backward branches (some over more than 127 bytes), JRCXZ, jumps to host
    /// addresses and `lea rcx, [rip+label]`.
    fn random_list(rng: &mut rand::rngs::StdRng) -> Vec<(u8, usize, i64)> {
        use rand::Rng;
        let n = rng.gen_range(4..40);
        (0..n)
            .map(|_| {
                (
                    rng.gen_range(0..9),
                    rng.gen_range(0..n),
                    rng.gen_range(0..0x1000),
                )
            })
            .collect()
    }

    fn fill(a: &mut CodeAssembler, list: &[(u8, usize, i64)]) {
        let regs = [rax, rcx, rdx, rbx, rsi, rdi, r8, r15];
        let n = list.len();
        let mut labels: Vec<CodeLabel> = (0..n).map(|_| a.create_label()).collect();
        for (i, &(op, to, v)) in list.iter().enumerate() {
            a.set_label(&mut labels[i]).unwrap();
            let r = regs[to % regs.len()];
            let target = labels[to];
            match op {
                0 => a.mov(qword_ptr(8 * (v % 4)).gs(), r).unwrap(),
                1 => a.mov(r, (v as u64) << 36).unwrap(),
                2 => a.add(r, (v % 5 - 2) as i32).unwrap(),
                3 => a.jne(target).unwrap(),
                4 => a.jmp(target).unwrap(),
                5 => a.jrcxz(labels[(i + 1).min(n - 1)]).unwrap(),
                6 => a.lea(rcx, ptr(target)).unwrap(),
                7 => {
                    for _ in 0..v % 30 {
                        a.mov(qword_ptr(0x100).gs(), r).unwrap();
                    }
                    a.nop().unwrap();
                }
                _ => a.jmp(0x7f00_1000_0000u64 + v as u64).unwrap(),
            }
        }
    }

    /// The per-thread buffers and the recycled `CodeAssembler` carry nothing from one block
    /// into the next: 300 random lists assembled one after another through `assembler` and
    /// `assemble_or_iced` give the same bytes as each list assembled with fresh buffers, and
    /// decode to their own instructions; none goes to iced's BlockEncoder.
    #[test]
    fn reused_buffers_give_the_same_bytes_as_fresh_ones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0001);
        let refused = REFUSED.load(Ordering::Relaxed);
        for _ in 0..300 {
            let list = random_list(&mut rng);
            let ip = 0x7f00_1000_0000u64 + rng.gen_range(0..0x10000);
            let mut a = assembler().unwrap();
            assert!(
                a.instructions().is_empty(),
                "a recycled assembler kept instructions"
            );
            fill(&mut a, &list);
            let reused = assemble_or_iced(a, ip).expect("assembled");
            let mut f = CodeAssembler::new(64).unwrap();
            fill(&mut f, &list);
            let fresh = Scratch::new()
                .assemble(f.instructions(), ip)
                .expect("assembled without iced's BlockEncoder");
            same_instructions(&f, &fresh, ip);
            assert_eq!(reused, fresh, "reused buffers changed the bytes");
        }
        assert_eq!(REFUSED.load(Ordering::Relaxed), refused);
    }
}
