//! Recognizing shadow-stack violations among CPU exceptions and signal failures, reporting them
//! to the front end, and, in audit mode, resynchronizing the shadow stack so the guest goes on.

use crate::events::{Mapping, Outcome, Violation, ViolationKind};
use crate::options::ViolationPolicy;
use crate::process::Thread;
use cetbox_cpu::{CpCode, Exception};
use cetbox_mem::{page, Access, FaultKind};

const MAX_BACKTRACE: usize = 64;
/// How far up the shadow stack audit mode looks for the real return address.
const MAX_RESYNC_SEARCH: u64 = 4096;

fn kind_of(t: &Thread, e: &Exception) -> Option<ViolationKind> {
    match e {
        Exception::ControlProtection(CpCode::NearRet) => Some(ViolationKind::RetMismatch),
        Exception::ControlProtection(CpCode::Rstorssp) => Some(ViolationKind::BadRestoreToken),
        Exception::ControlProtection(_) => Some(ViolationKind::FarReturn),
        Exception::PageFault(f) if f.access.is_shadow() => Some(ViolationKind::ShadowAccess),
        Exception::PageFault(f) if f.access == Access::Write && f.kind == FaultKind::Protection => {
            (t.mem().page_table().get(f.addr) & page::SHADOW != 0)
                .then_some(ViolationKind::WriteToShadowStack)
        }
        _ => None,
    }
}

/// The entries of the shadow stack from SSP up to the end of its mapping.
fn shadow_entries(t: &Thread) -> Vec<u64> {
    let ssp = t.cpu.cet.ssp;
    let mut out = Vec::new();
    let Some(vma) = t.mem().find_vma(ssp) else {
        return out;
    };
    let mut p = ssp;
    while p + 8 <= vma.end && out.len() < MAX_BACKTRACE {
        match t.mem().read_u64(p) {
            Ok(v) => out.push(v),
            Err(_) => break,
        }
        p += 8;
    }
    out
}

fn guest_handles_sigsegv(t: &Thread) -> bool {
    t.proc.signals.action(libc::SIGSEGV).handler > 1
}

/// Hands a violation to the observer; a repeat at a known site is only counted.
fn report(t: &Thread, kind: ViolationKind, e: Option<&Exception>, outcome: Outcome) {
    if !t.proc.observer.repeat(t.cpu.rip, kind) {
        t.proc.observer.violation(&describe(t, kind, e, outcome));
    }
}

/// Builds the report of a violation of `kind` at the current state.
pub fn describe(
    t: &Thread,
    kind: ViolationKind,
    e: Option<&Exception>,
    outcome: Outcome,
) -> Violation {
    let c = &t.cpu;
    let (mut ret_addr, mut shadow_addr, mut addr, mut token) = (None, None, None, None);
    match (kind, e) {
        (ViolationKind::RetMismatch, _) => {
            ret_addr = t.mem().read_u64(c.gpr[4]).ok();
            shadow_addr = t.mem().read_u64(c.cet.ssp).ok();
        }
        (_, Some(Exception::PageFault(f))) => addr = Some(f.addr),
        _ => {}
    }
    if kind == ViolationKind::BadRestoreToken {
        // Re-derive the operand address from the instruction for the report.
        if let Some(a) = rstorssp_operand(t) {
            addr = Some(a);
            token = t.mem().read_u64(a).ok();
        }
    }
    let mut last_switch = t.last_switch.clone();
    if let Some(r) = c.last_rstorssp {
        if last_switch.is_none() || r.at >= t.last_switch_at {
            last_switch = Some(crate::events::Switch {
                what: "RSTORSSP",
                rip: r.rip,
                from_ssp: r.from_ssp,
                to_ssp: r.to_ssp,
            });
        }
    }
    Violation {
        pid: t.proc.pid,
        tid: t.tid,
        kind,
        rip: c.rip,
        rsp: c.gpr[4],
        ssp: c.cet.ssp,
        ret_addr,
        shadow_addr,
        addr,
        token,
        shadow_stack: shadow_entries(t),
        last_switch,
        enabled_by: t.shstk.enabled_by,
        locked: t.shstk.locked & crate::shstk::SHSTK != 0,
        wrss: t.shstk.features & crate::shstk::WRSS != 0,
        outcome,
        mappings: Mapping::of_files(t.mem()),
    }
}

/// The memory operand of the RSTORSSP at RIP.
fn rstorssp_operand(t: &Thread) -> Option<u64> {
    let mut buf = [0u8; 16];
    let n = t.mem().fetch(t.cpu.rip, &mut buf).ok()?;
    let mut d =
        iced_x86::Decoder::with_ip(64, &buf[..n], t.cpu.rip, iced_x86::DecoderOptions::NONE);
    let i = d.decode();
    (i.code() == iced_x86::Code::Rstorssp_m64).then(|| t.cpu.ea(&i))
}

/// Called for every CPU exception before it becomes a signal. If it is a shadow-stack violation
/// it is reported; in audit mode a RET mismatch is resynchronized and true is returned (the
/// guest continues without a signal).
pub fn on_exception(t: &mut Thread, e: &Exception) -> bool {
    let Some(kind) = kind_of(t, e) else {
        return false;
    };
    let audit = t.proc.opts.on_violation == ViolationPolicy::Continue;
    if audit && kind == ViolationKind::RetMismatch {
        report(t, kind, Some(e), Outcome::Resynchronized);
        if crate::debug::active() {
            crate::debug::on_resynchronized_violation(t, e);
        }
        resync_ret(t);
        return true;
    }
    let outcome = if guest_handles_sigsegv(t) {
        Outcome::DeliveredToHandler
    } else {
        Outcome::Killed
    };
    report(t, kind, Some(e), outcome);
    false
}

/// Reports a violation found by the kernel side (sigreturn or signal delivery).
pub fn on_kernel_violation(t: &Thread, kind: ViolationKind) {
    let outcome = if kind == ViolationKind::BadSigreturn && guest_handles_sigsegv(t) {
        Outcome::DeliveredToHandler
    } else {
        Outcome::Killed
    };
    report(t, kind, None, outcome);
}

/// Audit mode for a RET whose shadow-stack entry does not match: unwind the shadow stack to the
/// entry holding the real return address, as a CET-aware longjmp would have; if there is none,
/// pop one entry. Then the RET completes.
fn resync_ret(t: &mut Thread) {
    let target = match t.mem().read_u64(t.cpu.gpr[4]) {
        Ok(v) => v,
        Err(_) => return,
    };
    let ssp = t.cpu.cet.ssp;
    let end = t.mem().find_vma(ssp).map(|v| v.end).unwrap_or(ssp);
    let mut p = ssp;
    while p + 8 <= end && p - ssp < MAX_RESYNC_SEARCH * 8 {
        if t.mem().read_u64(p) == Ok(target) {
            // The RET re-executes and now matches.
            t.cpu.cet.ssp = p;
            return;
        }
        p += 8;
    }
    // No matching entry: run the RET with the shadow stack unchecked, then pop one entry.
    let u_cet = t.cpu.cet.u_cet;
    t.cpu.cet.u_cet = 0;
    let r = t.engine.step(&mut t.cpu);
    t.cpu.cet.u_cet = u_cet;
    if r.is_none() {
        t.cpu.cet.ssp = ssp + 8;
    }
}
