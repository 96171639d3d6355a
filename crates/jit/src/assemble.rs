//! A one-pass assembler for the instruction lists `translate` builds with iced's
//! `CodeAssembler`, many times cheaper than `CodeAssembler::assemble`.
//!
//! iced's `BlockEncoder` (what `assemble` runs) is general: it wraps every instruction in a
//! boxed relocatable object, encodes each one at least twice and can rewrite branches and
//! RIP-relative operands that do not reach. Translation cost is start-up cost (a process
//! translates thousands of blocks), and translated blocks need none of that generality: their
//! only IP-dependent instructions are direct branches (JMP, Jcc, JRCXZ, CALL) to a label of
//! the same list or to a host address in the code cache, which rel32 always reaches, and
//! RIP-relative operands addressing a label of the list (the link sites'
//! `lea rcx, [rip+site]`, `translate::link_exit`), which always have a disp32.
//!
//! Encodings are remembered (`Memo`): a translated block is about a hundred host
//! instructions, and 97% of those of a python3 start-up are instructions some earlier block
//! already had (the context spills, checks and exit stubs every block repeats; iced's
//! `Instruction` equality ignores the IP). Each distinct instruction is encoded once with
//! iced's `Encoder`; a branch or RIP-relative operand is remembered as a template with its
//! target field blanked, and iced's `ConstantOffsets` say where its rel8/rel32 field is.
//! Branches are laid out by the classic relaxation (start short, widen what does not reach,
//! repeat until nothing changes; widening only moves code forward, so it terminates); then
//! every template is copied to its final place and each rel field written with its target's
//! distance from the end of its instruction (Intel SDM Vol. 2A §2.2.1.6: RIP-relative
//! addressing and relative branches count from the next instruction). Anything outside that
//! shape (a RIP-relative operand to anything but a label, a label that is not defined, a
//! branch form it does not know, a target a rel32 does not reach) is refused with an error,
//! and the caller falls back to `CodeAssembler::assemble`.
//!
//! Labels: `CodeAssembler` gives each label a small integer id (1, 2, ...), sets it as the IP
//! of the instruction the label is attached to, and as the target of branches to it. Guest
//! instructions added unchanged keep their guest IP, which is never below
//! `cetbox_mem::MMAP_MIN_ADDR`, so an IP or target below it is a label id.
//!
//! The memo, the layout's working vectors and a spare `CodeAssembler` live per host thread
//! (`SCRATCH`, `assembler`), so assembling a block allocates nothing but its output once they
//! have grown.

use cetbox_mem::MMAP_MIN_ADDR;
use iced_x86::code_asm::CodeAssembler;
use iced_x86::{Code, Encoder, IcedError, Instruction, OpKind};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// How an instruction's bytes depend on where it is placed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Form {
    /// Not at all.
    Plain,
    /// A relative branch: its rel8 or rel32 field holds target − next IP.
    Branch,
    /// A RIP-relative memory operand: its disp32 holds target − next IP.
    RipRel,
}

/// A remembered encoding: its bytes at `Memo::bytes[at..at + len]`, and for a branch or
/// RIP-relative operand the offset and size of the field that holds the distance to the
/// target (blank in the bytes).
#[derive(Clone, Copy, Debug)]
struct Template {
    at: u32,
    len: u8,
    rel_at: u8,
    rel_size: u8,
}

/// Encodings already made, keyed by the instruction with its target blanked (`key`).
/// Encoding is a pure function of the instruction (the IP aside, which `Form` accounts for),
/// so entries never go stale; the memo is emptied when it holds `MEMO_MAX` of them, which
/// bounds its memory per thread (a python3 start-up has about 12,000 distinct ones).
struct Memo {
    map: HashMap<Instruction, Template, BuildFxHasher>,
    bytes: Vec<u8>,
}

/// Entries before the memo is emptied (about 60 bytes each).
const MEMO_MAX: usize = 1 << 15;

/// Where an IP-dependent instruction is encoded to make its template: any address from which
/// a rel8 reaches the same address does (the field is overwritten when the template is used).
const TEMPLATE_IP: u64 = 0x1000;

/// One entry of the layout.
struct Item {
    t: Template,
    form: Form,
    /// For a branch: the index of the target instruction (a label), or None for an absolute
    /// host target. For a RIP-relative operand: the index of the labelled instruction it
    /// addresses.
    label: Option<usize>,
}

/// Per-thread state of `assemble`.
struct Scratch {
    enc: Encoder,
    memo: Memo,
    items: Vec<Item>,
    offs: Vec<usize>,
    /// Label id -> index of the instruction carrying it.
    labels: Vec<(u64, usize)>,
    /// A `CodeAssembler` to reuse (its instruction vector keeps its capacity).
    spare: Option<CodeAssembler>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        enc: Encoder::new(64),
        memo: Memo::new(),
        items: Vec::new(),
        offs: Vec::new(),
        labels: Vec::new(),
        spare: None,
    });
}

/// Why `assemble` refused a list (the caller then uses `CodeAssembler::assemble`).
#[derive(Debug)]
pub struct Refused(pub &'static str);

/// Lists refused since the process started (CETBOX_JIT_STATS prints it; tests expect 0).
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// An empty 64-bit `CodeAssembler`, the one `assemble_or_iced` last used on this thread when
/// there is one (no allocation while the block fits what it held before).
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

/// Whether `code` is a branch form this assembler lays out, and whether it is a rel8 form.
fn branch_form(code: Code) -> Option<bool> {
    match code {
        Code::Jmp_rel8_64 | Code::Jrcxz_rel8_64 | Code::Jecxz_rel8_64 | Code::Loop_rel8_64_RCX => {
            Some(true)
        }
        Code::Jmp_rel32_64 | Code::Call_rel32_64 => Some(false),
        c if c.is_jcc_short() => Some(true),
        c if c.is_jcc_near() => Some(false),
        _ => None,
    }
}

/// Assembles `a`'s instructions for the host address `ip` (see the module comment).
pub fn assemble(a: &CodeAssembler, ip: u64) -> Result<Vec<u8>, Refused> {
    SCRATCH.with(|s| s.borrow_mut().assemble(a.instructions(), ip))
}

impl Memo {
    fn new() -> Memo {
        Memo {
            map: HashMap::default(),
            bytes: Vec::new(),
        }
    }

    /// Empties it (when it holds `MEMO_MAX` encodings).
    fn clear(&mut self) {
        self.map.clear();
        self.bytes.clear();
    }

    /// The template of `insn` in `form`, encoding it with `enc` the first time.
    fn template(
        &mut self,
        enc: &mut Encoder,
        insn: &Instruction,
        form: Form,
    ) -> Result<Template, Refused> {
        // The key: the instruction with its target blanked, so that every branch of a form
        // (every operand of a shape) shares one template.
        let mut key = *insn;
        match form {
            Form::Plain => {}
            Form::Branch => key.set_near_branch64(0),
            Form::RipRel => key.set_memory_displacement64(0),
        }
        if let Some(&t) = self.map.get(&key) {
            return Ok(t);
        }
        // Encoded at an address its target (the same address) is in reach of.
        let mut e = key;
        match form {
            Form::Plain => {}
            Form::Branch => e.set_near_branch64(TEMPLATE_IP),
            Form::RipRel => e.set_memory_displacement64(TEMPLATE_IP),
        }
        let len = enc.encode(&e, TEMPLATE_IP)?;
        let co = enc.get_constant_offsets();
        let (rel_at, rel_size) = match form {
            Form::Plain => (0, 0),
            // iced reports a branch's displacement as its immediate.
            Form::Branch => (co.immediate_offset(), co.immediate_size()),
            Form::RipRel => (co.displacement_offset(), co.displacement_size()),
        };
        let mut buf = enc.take_buffer();
        if form != Form::Plain && (!matches!(rel_size, 1 | 4) || rel_at + rel_size > len) {
            enc.set_buffer(buf);
            return Err(Refused("no rel8/rel32 field where one was expected"));
        }
        if self.bytes.len() + len > u32::MAX as usize || len > 15 {
            enc.set_buffer(buf);
            return Err(Refused("an encoding the memo cannot hold"));
        }
        let t = Template {
            at: self.bytes.len() as u32,
            len: len as u8,
            rel_at: rel_at as u8,
            rel_size: rel_size as u8,
        };
        // Blank the field, so a template's bytes do not depend on where it was made.
        buf[rel_at..rel_at + rel_size].fill(0);
        self.bytes.extend_from_slice(&buf[..len]);
        buf.clear();
        enc.set_buffer(buf);
        self.map.insert(key, t);
        Ok(t)
    }
}

impl Scratch {
    fn assemble(&mut self, insns: &[Instruction], ip: u64) -> Result<Vec<u8>, Refused> {
        let Scratch {
            enc,
            memo,
            items,
            offs,
            labels,
            ..
        } = self;
        if memo.map.len() >= MEMO_MAX {
            memo.clear();
        }
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
        items.clear();
        for insn in insns {
            let (form, label) = if is_branch(insn) {
                let t = insn.near_branch64();
                if branch_form(insn.code()).is_none() {
                    return Err(Refused("an unexpected branch form"));
                }
                let label = if t < MMAP_MIN_ADDR {
                    Some(label_of(t).ok_or(Refused("a branch to an undefined label"))?)
                } else {
                    None
                };
                (Form::Branch, label)
            } else if insn.is_ip_rel_memory_operand() {
                let t = insn.memory_displacement64();
                if t >= MMAP_MIN_ADDR {
                    return Err(Refused("a RIP-relative operand that is not a label"));
                }
                let label = label_of(t).ok_or(Refused("an operand at an undefined label"))?;
                (Form::RipRel, Some(label))
            } else {
                (Form::Plain, None)
            };
            let t = memo.template(enc, insn, form)?;
            items.push(Item { t, form, label });
        }
        // Relaxation: short branches whose target is out of rel8 range become near ones.
        offs.clear();
        offs.resize(items.len() + 1, 0);
        loop {
            let mut o = 0;
            for (k, it) in items.iter().enumerate() {
                offs[k] = o;
                o += it.t.len as usize;
            }
            offs[items.len()] = o;
            let mut grew = false;
            for (k, it) in items.iter_mut().enumerate() {
                if it.form != Form::Branch || it.t.rel_size != 1 {
                    continue;
                }
                let end = ip.wrapping_add(offs[k + 1] as u64) as i64;
                let target = match it.label {
                    Some(l) => ip.wrapping_add(offs[l] as u64) as i64,
                    None => insns[k].near_branch64() as i64,
                };
                if i8::try_from(target.wrapping_sub(end)).is_err() {
                    let code = insns[k].code();
                    if !(code == Code::Jmp_rel8_64 || code.is_jcc_short()) {
                        return Err(Refused("a rel8-only branch that does not reach"));
                    }
                    let mut near = insns[k];
                    near.as_near_branch();
                    it.t = memo.template(enc, &near, Form::Branch)?;
                    if it.t.rel_size != 4 {
                        return Err(Refused("a widened branch without a rel32"));
                    }
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        let mut out = Vec::with_capacity(offs[items.len()]);
        for (k, it) in items.iter().enumerate() {
            let t = it.t;
            let from = out.len();
            out.extend_from_slice(&memo.bytes[t.at as usize..t.at as usize + t.len as usize]);
            if it.form == Form::Plain {
                continue;
            }
            let target = match it.label {
                Some(l) => ip.wrapping_add(offs[l] as u64),
                None => insns[k].near_branch64(),
            };
            let next = ip.wrapping_add(offs[k + 1] as u64);
            let d = (target as i64).wrapping_sub(next as i64);
            let field = &mut out[from + t.rel_at as usize..from + (t.rel_at + t.rel_size) as usize];
            if t.rel_size == 1 {
                let d = i8::try_from(d).map_err(|_| Refused("a rel8 that does not reach"))?;
                field.copy_from_slice(&d.to_le_bytes());
            } else {
                let d = i32::try_from(d).map_err(|_| Refused("a rel32 that does not reach"))?;
                field.copy_from_slice(&d.to_le_bytes());
            }
        }
        Ok(out)
    }
}

/// Hashes `Instruction`s for the memo: FxHash's multiply-rotate step per word written (as in
/// rustc's `FxHasher`); std's SipHash would cost more than the encodings the memo saves. The
/// keys are host instructions built by the translator, not chosen by the guest beyond its
/// own constants, and a collision costs only a comparison.
#[derive(Default, Clone, Copy)]
struct BuildFxHasher;

impl std::hash::BuildHasher for BuildFxHasher {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits, which pick the bucket, depending only on the
        // inputs' low bits: fold the high half in.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.add(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
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

    /// Empties this thread's memo (every encoding is made afresh).
    fn forget_encodings() {
        SCRATCH.with(|s| s.borrow_mut().memo = Memo::new());
    }

    /// Encodings this thread's memo holds.
    fn remembered() -> usize {
        SCRATCH.with(|s| s.borrow().memo.map.len())
    }

    /// Lists of what translated blocks contain, each different in its constants, branch
    /// distances and directions, placements, and the operands' labels, drawn from few shapes:
    /// the memo serves most instructions from earlier lists, and every list comes out the same
    /// byte for byte as with an empty memo, and decodes to its own instructions. A memo keyed
    /// on less than the whole instruction (an immediate, a register, a displacement), or a
    /// template whose rel field is not rewritten, fails here.
    #[test]
    fn remembered_encodings_give_the_same_bytes_as_fresh_ones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0001);
        let regs = [rax, rcx, rdx, rbx, rsi, rdi, r8, r15];
        let build = |rng: &mut rand::rngs::StdRng| {
            let mut a = CodeAssembler::new(64).unwrap();
            let n = rng.gen_range(4..40);
            let mut labels: Vec<CodeLabel> = (0..n).map(|_| a.create_label()).collect();
            for i in 0..n {
                a.set_label(&mut labels[i]).unwrap();
                let r = regs[rng.gen_range(0..regs.len())];
                let target = labels[rng.gen_range(0..n)];
                match rng.gen_range(0..9) {
                    0 => a.mov(qword_ptr(8 * rng.gen_range(0..4)).gs(), r).unwrap(),
                    1 => a.mov(r, rng.gen_range(0..4u64) << 40).unwrap(),
                    2 => a.add(r, rng.gen_range(-2..3)).unwrap(),
                    3 => a.jne(target).unwrap(),
                    4 => a.jmp(target).unwrap(),
                    5 => a.jrcxz(labels[(i + 1).min(n - 1)]).unwrap(),
                    6 => a.lea(rcx, ptr(target)).unwrap(),
                    7 => {
                        for _ in 0..rng.gen_range(0..30) {
                            a.mov(qword_ptr(0x100).gs(), r).unwrap();
                        }
                        a.nop().unwrap();
                    }
                    _ => a
                        .jmp(0x7f00_1000_0000u64 + rng.gen_range(0..0x1000))
                        .unwrap(),
                }
            }
            a
        };
        forget_encodings();
        let mut hits = 0usize;
        let mut total = 0usize;
        for _ in 0..300 {
            let a = build(&mut rng);
            let ip = 0x7f00_1000_0000u64 + rng.gen_range(0..0x10000);
            let before = remembered();
            let warm = assemble(&a, ip).expect("assembled");
            total += a.instructions().len();
            hits += a.instructions().len() - (remembered() - before);
            same_instructions(&a, &warm, ip);
            // The same list with an empty memo, then the warm memo back for the next list.
            let warm_memo =
                SCRATCH.with(|s| std::mem::replace(&mut s.borrow_mut().memo, Memo::new()));
            let fresh = assemble(&a, ip).expect("assembled");
            SCRATCH.with(|s| s.borrow_mut().memo = warm_memo);
            assert_eq!(warm, fresh, "the memo changed the bytes");
        }
        assert!(
            hits * 2 > total,
            "the memo served {hits} of {total} instructions"
        );
    }
}
