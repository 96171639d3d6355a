//! Signal frames and rt_sigreturn checked byte by byte against the x86-64 kernel layout.
//!
//! The expected offsets below are written from the kernel's struct definitions
//! (arch/x86/include/uapi/asm/sigcontext.h, include/uapi/asm-generic/ucontext.h,
//! arch/x86/include/asm/sigframe.h) and get_sigframe's placement rules, not from cetbox.

use cetbox_linux::process::ExitRequest;
use cetbox_linux::signals::{self, deliver, fault, SigAction, SigInfo};
use cetbox_linux::syscalls;
use cetbox_linux::{Options, Process, Thread};
use cetbox_mem::{Access, Fault, FaultKind, MapRequest, VmaKind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

const HANDLER: u64 = 0x40_1000;
const RESTORER: u64 = 0x40_2000;
const SA_SIGINFO: u64 = 4;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const DF: u64 = 1 << 10;

struct Env {
    proc: Arc<Process>,
    /// A 64 KiB read-write area for stacks.
    stack: u64,
}

fn env() -> (MutexGuard<'static, ()>, &'static Env) {
    static LOCK: Mutex<()> = Mutex::new(());
    static ENV: OnceLock<Env> = OnceLock::new();
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let e = ENV.get_or_init(|| {
        // The baseline CPU (FXSR, no XSAVE): the frame layout these tests spell out. The
        // x86-64-v3 frame (AVX component) is tested in crates/cli/tests/cpu_levels.rs.
        let opts = Options {
            cpu_level: cetbox_cpu::CpuLevel::X86_64,
            ..Options::default()
        };
        let proc = Process::new(Arc::new(opts), None).unwrap();
        let req = MapRequest::anonymous(
            0,
            0x10000,
            (libc::PROT_READ | libc::PROT_WRITE) as u32,
            VmaKind::Normal,
        );
        let stack = proc.mem.map(&req).unwrap();
        Env { proc, stack }
    });
    // Fresh dispositions for every test.
    for sig in 1..=64 {
        e.proc.signals.set_action(sig, SigAction::default());
    }
    e.proc.signals.pending().clear();
    (g, e)
}

fn thread(e: &Env) -> Thread {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    let mut t = Thread::new(e.proc.clone(), tid);
    for (i, r) in t.cpu.gpr.iter_mut().enumerate() {
        *r = 0x1111_0000_0000_0000 + i as u64;
    }
    t.cpu.rip = 0x40_0123;
    t
}

fn rd(t: &Thread, a: u64) -> u64 {
    t.mem().read_u64(a).unwrap()
}
fn rd32(t: &Thread, a: u64) -> u32 {
    t.mem().read_u32(a).unwrap()
}
fn rd16(t: &Thread, a: u64) -> u16 {
    t.mem().read_u16(a).unwrap()
}

fn handler_action(flags: u64, mask: u64) -> SigAction {
    SigAction {
        handler: HANDLER,
        flags: flags | SA_RESTORER,
        restorer: RESTORER,
        mask,
    }
}

/// get_sigframe for a frame on the current stack: red zone, 580-byte FPU area 64-aligned,
/// 440-byte rt_sigframe with (frame + 8) 16-aligned.
fn expected_frame(rsp: u64) -> (u64, u64) {
    let sp = rsp - 128;
    let fp = (sp - 580) & !63;
    let frame = ((fp - 440) & !15) - 8;
    (frame, fp)
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

fn sent(sig: i32) -> SigInfo {
    SigInfo::sent(sig, -6, 4242, 1000)
}

#[test]
fn frame_layout_and_handler_registers() {
    let (_g, e) = env();
    let mut t = thread(e);
    let rsp = e.stack + 0x8000 - 0x13;
    t.cpu.gpr[4] = rsp;
    t.cpu.set_rflags(0x202 | DF | 1 | (1 << 6));
    t.cpu.x87.fcw = 0x027f;
    t.cpu.sse.mxcsr = 0x1fa0;
    t.cpu.sse.xmm[0] = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;
    t.cpu.sse.xmm[15] = 0xdead_beef;
    t.signals.trapno = 14;
    t.signals.err = 6;
    t.signals.cr2 = 0xdead_0000;
    let old_mask = bit(2) | bit(40);
    t.signals.mask = old_mask;
    e.proc
        .signals
        .set_action(10, handler_action(SA_SIGINFO, bit(12)));
    let before = t.cpu.gpr;
    let flags_before = t.cpu.rflags();
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    assert_eq!(t.exit, None);

    let (frame, fp) = expected_frame(rsp);
    assert_eq!((frame + 8) % 16, 0);
    assert_eq!(fp % 64, 0);
    // Registers for the handler.
    assert_eq!(t.cpu.gpr[4], frame, "rsp");
    assert_eq!(t.cpu.rip, HANDLER);
    assert_eq!(t.cpu.gpr[7], 10, "rdi");
    assert_eq!(t.cpu.gpr[6], frame + 8 + 304, "rsi = &siginfo");
    assert_eq!(t.cpu.gpr[2], frame + 8, "rdx = &ucontext");
    assert_eq!(t.cpu.gpr[0], 0, "rax");
    assert_eq!(t.cpu.rflags() & DF, 0, "DF cleared");
    assert_eq!(t.cpu.x87.fcw, 0x037f);
    assert_eq!(t.cpu.sse.mxcsr, 0x1f80);
    assert_eq!(t.cpu.sse.xmm[0], 0);
    assert_eq!(t.signals.mask, old_mask | bit(10) | bit(12));

    // pretcode and ucontext.
    assert_eq!(rd(&t, frame), RESTORER);
    let uc = frame + 8;
    assert_eq!(rd(&t, uc), 7, "uc_flags");
    assert_eq!(rd(&t, uc + 8), 0, "uc_link");
    assert_eq!(rd(&t, uc + 16), 0, "ss_sp");
    assert_eq!(rd32(&t, uc + 24), 2, "ss_flags = SS_DISABLE");
    assert_eq!(rd(&t, uc + 32), 0, "ss_size");
    let sc = uc + 40;
    // r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp in x86 encoding numbers.
    let order = [8, 9, 10, 11, 12, 13, 14, 15, 7, 6, 5, 3, 2, 0, 1];
    for (i, r) in order.iter().enumerate() {
        assert_eq!(rd(&t, sc + 8 * i as u64), before[*r], "sigcontext slot {i}");
    }
    assert_eq!(rd(&t, sc + 120), rsp, "sc.rsp");
    assert_eq!(rd(&t, sc + 128), 0x40_0123, "sc.rip");
    assert_eq!(rd(&t, sc + 136), flags_before, "sc.eflags");
    assert_eq!(rd16(&t, sc + 144), 0x33, "cs");
    assert_eq!(rd16(&t, sc + 146), 0, "gs");
    assert_eq!(rd16(&t, sc + 148), 0, "fs");
    assert_eq!(rd16(&t, sc + 150), 0x2b, "ss");
    assert_eq!(rd(&t, sc + 152), 6, "err");
    assert_eq!(rd(&t, sc + 160), 14, "trapno");
    assert_eq!(rd(&t, sc + 168), old_mask, "oldmask");
    assert_eq!(rd(&t, sc + 176), 0xdead_0000, "cr2");
    assert_eq!(rd(&t, sc + 184), fp, "fpstate");
    assert_eq!(rd(&t, uc + 296), old_mask, "uc_sigmask");
    // siginfo.
    let si = frame + 312;
    assert_eq!(rd32(&t, si), 10);
    assert_eq!(rd32(&t, si + 4), 0);
    assert_eq!(rd32(&t, si + 8) as i32, -6);
    assert_eq!(rd32(&t, si + 16), 4242, "si_pid");
    assert_eq!(rd32(&t, si + 20), 1000, "si_uid");
    // FXSAVE image and the XSAVE software bytes.
    assert_eq!(rd16(&t, fp), 0x027f, "fcw");
    assert_eq!(rd32(&t, fp + 24), 0x1fa0, "mxcsr");
    assert_eq!(
        t.mem().read_u128(fp + 160).unwrap(),
        0x0123_4567_89ab_cdef_0011_2233_4455_6677
    );
    assert_eq!(t.mem().read_u128(fp + 160 + 15 * 16).unwrap(), 0xdead_beef);
    assert_eq!(rd32(&t, fp + 464), 0x4650_5853, "magic1");
    assert_eq!(rd32(&t, fp + 468), 580, "extended_size");
    assert_eq!(rd(&t, fp + 472), 3, "xfeatures");
    assert_eq!(rd32(&t, fp + 480), 576, "xstate_size");
    assert_eq!(rd(&t, fp + 512), 3, "xstate_bv");
    assert_eq!(rd(&t, fp + 520), 0, "xcomp_bv");
    assert_eq!(rd32(&t, fp + 576), 0x4650_5845, "magic2");

    // A handler edits the saved RIP and RAX, then returns: RET pops pretcode.
    t.mem().write_u64(sc + 128, 0x40_0777).unwrap();
    t.mem().write_u64(sc + 13 * 8, 0x5555).unwrap();
    t.cpu.gpr[4] = frame + 8;
    t.cpu.gpr[0] = 15;
    t.cpu.sse.xmm[0] = 0;
    let f = syscalls::table::get(15).and_then(|s| s.run).unwrap();
    f(&mut t, [0; 6]).unwrap();
    assert!(t.keep_rax);
    assert_eq!(t.exit, None);
    assert_eq!(t.cpu.rip, 0x40_0777);
    assert_eq!(t.cpu.gpr[0], 0x5555);
    assert_eq!(t.cpu.gpr[4], rsp);
    for r in [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
        assert_eq!(t.cpu.gpr[r], before[r], "gpr {r}");
    }
    assert_eq!(t.cpu.rflags(), flags_before);
    assert_eq!(t.signals.mask, old_mask);
    assert_eq!(t.cpu.x87.fcw, 0x027f);
    assert_eq!(t.cpu.sse.mxcsr, 0x1fa0);
    assert_eq!(t.cpu.sse.xmm[0], 0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    deliver::set_mask(&mut t, 0);
}

#[test]
fn siginfo_not_written_without_sa_siginfo_and_nodefer_resethand() {
    let (_g, e) = env();
    let mut t = thread(e);
    let rsp = e.stack + 0x9000;
    t.cpu.gpr[4] = rsp;
    let (frame, _) = expected_frame(rsp);
    t.mem().write_u64(frame + 312, 0x7777).unwrap();
    e.proc
        .signals
        .set_action(12, handler_action(SA_NODEFER | SA_RESETHAND, 0));
    deliver::queue_thread(&mut t, sent(12));
    deliver::deliver_pending(&mut t);
    assert_eq!(t.cpu.gpr[4], frame);
    assert_eq!(rd(&t, frame + 312), 0x7777, "siginfo untouched");
    assert_eq!(t.signals.mask, 0, "SA_NODEFER: signal not blocked");
    assert_eq!(e.proc.signals.action(12).handler, 0, "SA_RESETHAND");
    deliver::set_mask(&mut t, 0);
}

#[test]
fn altstack_placement_and_autodisarm() {
    let (_g, e) = env();
    let mut t = thread(e);
    let alt = e.stack + 0x1000;
    let size = 0x3000;
    t.cpu.gpr[4] = e.stack + 0xf000;
    let ss_autodisarm = 1i32 << 31;
    // sigaltstack(2) through the syscall.
    let ss = e.stack + 0xe000;
    t.mem().write_u64(ss, alt).unwrap();
    t.mem().write_u32(ss + 8, ss_autodisarm as u32).unwrap();
    t.mem().write_u64(ss + 16, size).unwrap();
    let f = syscalls::table::get(131).and_then(|s| s.run).unwrap();
    assert_eq!(f(&mut t, [ss, 0, 0, 0, 0, 0]), Ok(0));
    e.proc
        .signals
        .set_action(10, handler_action(SA_ONSTACK | SA_SIGINFO, 0));
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    let top = alt + size;
    let fp = (top - 580) & !63;
    let frame = ((fp - 440) & !15) - 8;
    assert_eq!(t.cpu.gpr[4], frame);
    assert_eq!(rd(&t, frame + 8 + 16), alt, "uc_stack.ss_sp");
    assert_eq!(
        rd32(&t, frame + 8 + 24),
        ss_autodisarm as u32,
        "raw ss_flags"
    );
    assert_eq!(rd(&t, frame + 8 + 32), size);
    // SS_AUTODISARM: disabled after delivery.
    let out = e.stack + 0xd000;
    assert_eq!(f(&mut t, [0, out, 0, 0, 0, 0]), Ok(0));
    assert_eq!(rd32(&t, out + 8), 2, "SS_DISABLE");
    assert_eq!(rd(&t, out + 16), 0);
    // rt_sigreturn restores the alternate stack from uc_stack.
    t.cpu.gpr[4] = frame + 8;
    syscalls::table::get(15).and_then(|s| s.run).unwrap()(&mut t, [0; 6]).unwrap();
    assert_eq!(f(&mut t, [0, out, 0, 0, 0, 0]), Ok(0));
    assert_eq!(rd(&t, out), alt);
    assert_eq!(rd32(&t, out + 8), ss_autodisarm as u32);
    assert_eq!(rd(&t, out + 16), size);
    deliver::set_mask(&mut t, 0);
}

#[test]
fn sigaltstack_errors() {
    let (_g, e) = env();
    let mut t = thread(e);
    let f = syscalls::table::get(131).and_then(|s| s.run).unwrap();
    let ss = e.stack + 0xe000;
    let alt = e.stack + 0x1000;
    t.cpu.gpr[4] = e.stack + 0xf000;
    t.mem().write_u64(ss, alt).unwrap();
    t.mem().write_u32(ss + 8, 0).unwrap();
    t.mem().write_u64(ss + 16, 2047).unwrap();
    assert_eq!(
        f(&mut t, [ss, 0, 0, 0, 0, 0]),
        Err(cetbox_linux::Errno::ENOMEM)
    );
    t.mem().write_u64(ss + 16, 2048).unwrap();
    t.mem().write_u32(ss + 8, 4).unwrap();
    assert_eq!(
        f(&mut t, [ss, 0, 0, 0, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    t.mem().write_u32(ss + 8, 0).unwrap();
    assert_eq!(f(&mut t, [ss, 0, 0, 0, 0, 0]), Ok(0));
    // On the stack now: EPERM, and oss reports SS_ONSTACK.
    t.cpu.gpr[4] = alt + 0x100;
    assert_eq!(
        f(&mut t, [ss, 0, 0, 0, 0, 0]),
        Err(cetbox_linux::Errno::EPERM)
    );
    let out = e.stack + 0xd000;
    assert_eq!(f(&mut t, [0, out, 0, 0, 0, 0]), Ok(0));
    assert_eq!(rd32(&t, out + 8), 1);
    assert_eq!(
        f(&mut t, [0, 8, 0, 0, 0, 0]),
        Err(cetbox_linux::Errno::EFAULT)
    );
}

#[test]
fn rt_sigaction_rules() {
    let (_g, e) = env();
    let mut t = thread(e);
    let f = syscalls::table::get(13).and_then(|s| s.run).unwrap();
    let act = e.stack + 0xc000;
    let oact = e.stack + 0xc100;
    t.mem().write_u64(act, HANDLER).unwrap();
    // SA_UNSUPPORTED (0x400) and unknown high bits are dropped.
    t.mem()
        .write_u64(act + 8, SA_SIGINFO | SA_RESTORER | 0x400 | (1 << 40))
        .unwrap();
    t.mem().write_u64(act + 16, RESTORER).unwrap();
    t.mem()
        .write_u64(act + 24, bit(9) | bit(19) | bit(3))
        .unwrap();
    assert_eq!(
        f(&mut t, [9, act, 0, 8, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    assert_eq!(
        f(&mut t, [19, act, 0, 8, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    assert_eq!(
        f(&mut t, [9, 0, oact, 8, 0, 0]),
        Ok(0),
        "query of SIGKILL is fine"
    );
    assert_eq!(
        f(&mut t, [65, 0, oact, 8, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    assert_eq!(
        f(&mut t, [10, act, 0, 16, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    assert_eq!(
        f(&mut t, [10, 8, 0, 8, 0, 0]),
        Err(cetbox_linux::Errno::EFAULT)
    );
    assert_eq!(f(&mut t, [10, act, 0, 8, 0, 0]), Ok(0));
    assert_eq!(f(&mut t, [10, 0, oact, 8, 0, 0]), Ok(0));
    assert_eq!(rd(&t, oact), HANDLER);
    assert_eq!(rd(&t, oact + 8), SA_SIGINFO | SA_RESTORER);
    assert_eq!(rd(&t, oact + 16), RESTORER);
    assert_eq!(rd(&t, oact + 24), bit(3), "KILL/STOP removed from sa_mask");
    // Back to SIG_DFL (this also restores the host disposition).
    t.mem().write_u64(act, 0).unwrap();
    assert_eq!(f(&mut t, [10, act, 0, 8, 0, 0]), Ok(0));
}

#[test]
fn rt_sigprocmask_rules() {
    let (_g, e) = env();
    let mut t = thread(e);
    let f = syscalls::table::get(14).and_then(|s| s.run).unwrap();
    let set = e.stack + 0xc000;
    let old = e.stack + 0xc100;
    t.mem().write_u64(set, bit(9) | bit(19) | bit(10)).unwrap();
    assert_eq!(f(&mut t, [0, set, old, 8, 0, 0]), Ok(0));
    assert_eq!(rd(&t, old), 0);
    assert_eq!(t.signals.mask, bit(10));
    assert_eq!(
        f(&mut t, [3, set, 0, 8, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    assert_eq!(
        f(&mut t, [0, set, 0, 4, 0, 0]),
        Err(cetbox_linux::Errno::EINVAL)
    );
    t.mem().write_u64(set, bit(10)).unwrap();
    assert_eq!(f(&mut t, [1, set, old, 8, 0, 0]), Ok(0));
    assert_eq!(rd(&t, old), bit(10));
    assert_eq!(t.signals.mask, 0);
}

#[test]
fn blocked_signal_stays_pending_until_unblocked() {
    let (_g, e) = env();
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    e.proc.signals.set_action(10, handler_action(0, 0));
    deliver::set_mask(&mut t, bit(10));
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    assert_eq!(t.cpu.rip, 0x40_0123, "blocked: not delivered");
    let out = e.stack + 0xc000;
    let f = syscalls::table::get(127).and_then(|s| s.run).unwrap();
    assert_eq!(f(&mut t, [out, 8, 0, 0, 0, 0]), Ok(0));
    assert_eq!(rd(&t, out) & bit(10), bit(10));
    deliver::set_mask(&mut t, 0);
    deliver::deliver_pending(&mut t);
    assert_eq!(t.cpu.rip, HANDLER);
    deliver::set_mask(&mut t, 0);
}

#[test]
fn syscall_restart_rules() {
    let (_g, e) = env();
    for (code, flags, want_rax, rewind) in [
        (512u64, SA_RESTART, 0u64, true), // ERESTARTSYS + SA_RESTART: restart
        (512, 0, (-4i64) as u64, false),  // ERESTARTSYS: EINTR
        (514, SA_RESTART, (-4i64) as u64, false), // ERESTARTNOHAND: EINTR
        (513, 0, 0, true),                // ERESTARTNOINTR: always restart
    ] {
        let mut t = thread(e);
        t.cpu.gpr[4] = e.stack + 0x9000;
        t.cpu.rip = 0x40_1002;
        t.cpu.gpr[0] = (-(code as i64)) as u64;
        t.signals.in_syscall = Some(0);
        e.proc.signals.set_action(10, handler_action(flags, 0));
        deliver::queue_thread(&mut t, sent(10));
        deliver::deliver_pending(&mut t);
        let (frame, _) = expected_frame(e.stack + 0x9000);
        let sc = frame + 8 + 40;
        assert_eq!(rd(&t, sc + 13 * 8), want_rax, "code {code}");
        let rip = if rewind { 0x40_1000 } else { 0x40_1002 };
        assert_eq!(rd(&t, sc + 128), rip, "code {code}");
        deliver::set_mask(&mut t, 0);
    }
    // No handler: ERESTARTNOHAND restarts.
    let mut t = thread(e);
    t.cpu.rip = 0x40_1002;
    t.cpu.gpr[0] = (-514i64) as u64;
    t.signals.in_syscall = Some(34);
    deliver::deliver_pending(&mut t);
    assert_eq!(t.cpu.rip, 0x40_1000);
    assert_eq!(t.cpu.gpr[0], 34);
}

#[test]
fn page_fault_signal_frame() {
    let (_g, e) = env();
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    e.proc.signals.set_action(11, handler_action(SA_SIGINFO, 0));
    let f = Fault {
        addr: 0x1234,
        access: Access::Write,
        kind: FaultKind::NotMapped,
        present: true,
    };
    let fs = fault::from_exception(&cetbox_cpu::Exception::PageFault(f), t.cpu.rip);
    deliver::force(&mut t, fs);
    let (frame, _) = expected_frame(e.stack + 0x9000);
    assert_eq!(t.cpu.rip, HANDLER);
    let sc = frame + 8 + 40;
    assert_eq!(rd(&t, sc + 152), 6, "err: user | write");
    assert_eq!(rd(&t, sc + 160), 14, "trapno");
    assert_eq!(rd(&t, sc + 176), 0x1234, "cr2");
    assert_eq!(rd32(&t, frame + 312), 11);
    assert_eq!(rd32(&t, frame + 312 + 8), 1, "SEGV_MAPERR");
    assert_eq!(rd(&t, frame + 312 + 16), 0x1234, "si_addr");
    deliver::set_mask(&mut t, 0);
}

#[test]
fn blocked_or_ignored_fault_signal_kills() {
    let (_g, e) = env();
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    e.proc.signals.set_action(11, handler_action(SA_SIGINFO, 0));
    deliver::set_mask(&mut t, bit(11));
    let fs = fault::from_exception(&cetbox_cpu::Exception::GeneralProtection, t.cpu.rip);
    deliver::force(&mut t, fs);
    assert_eq!(t.exit, Some(ExitRequest::Signal(11)));
    assert_eq!(t.signals.mask & bit(11), 0);
    deliver::set_mask(&mut t, 0);
}

#[test]
fn unwritable_stack_forces_sigsegv() {
    let (_g, e) = env();
    // Handler for SIGUSR1 and SIGSEGV, but the stack is unmapped: SIGUSR1 fails, the forced
    // SIGSEGV fails too, and its handler is reset so the process dies.
    let mut t = thread(e);
    t.cpu.gpr[4] = 0x1000;
    e.proc.signals.set_action(10, handler_action(0, 0));
    e.proc.signals.set_action(11, handler_action(0, 0));
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    assert_eq!(t.exit, Some(ExitRequest::Signal(11)));
    assert_eq!(e.proc.signals.action(11).handler, 0);
    // Without SA_RESTORER the x86-64 kernel refuses to build the frame.
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    let mut a = handler_action(0, 0);
    a.flags &= !SA_RESTORER;
    e.proc.signals.set_action(10, a);
    e.proc.signals.set_action(11, SigAction::default());
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    assert_eq!(t.exit, Some(ExitRequest::Signal(11)));
}

#[test]
fn bad_sigreturn_frame() {
    let (_g, e) = env();
    // Unreadable frame.
    let mut t = thread(e);
    t.cpu.gpr[4] = 0x2000;
    deliver::sigreturn(&mut t);
    assert_eq!(t.exit, Some(ExitRequest::Signal(11)));
    // Reserved MXCSR bits in the saved FPU state.
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    e.proc.signals.set_action(10, handler_action(0, 0));
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    let (frame, fp) = expected_frame(e.stack + 0x9000);
    t.mem().write_u32(fp + 24, 0x1_0000).unwrap();
    t.cpu.gpr[4] = frame + 8;
    deliver::sigreturn(&mut t);
    assert_eq!(t.exit, Some(ExitRequest::Signal(11)));
    assert_eq!(t.cpu.gpr[0], 0);
    deliver::set_mask(&mut t, 0);
}

#[test]
fn legacy_fxsave_frame_is_accepted() {
    let (_g, e) = env();
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    e.proc.signals.set_action(10, handler_action(0, 0));
    deliver::queue_thread(&mut t, sent(10));
    deliver::deliver_pending(&mut t);
    let (frame, fp) = expected_frame(e.stack + 0x9000);
    // Wipe magic1: the image is then taken as plain FXSAVE.
    t.mem().write_u32(fp + 464, 0).unwrap();
    t.mem().write_u32(fp + 24, 0x1f80 | 0x6000).unwrap();
    t.cpu.gpr[4] = frame + 8;
    deliver::sigreturn(&mut t);
    assert_eq!(t.exit, None);
    assert_eq!(t.cpu.sse.mxcsr, 0x7f80);
    deliver::set_mask(&mut t, 0);
}

#[test]
fn fpe_codes() {
    use signals::info::*;
    assert_eq!(fault::fpe_code(0x01 | 0x04), FPE_FLTINV);
    assert_eq!(fault::fpe_code(0x04 | 0x20), FPE_FLTDIV);
    assert_eq!(fault::fpe_code(0x08), FPE_FLTOVF);
    assert_eq!(fault::fpe_code(0x10), FPE_FLTUND);
    assert_eq!(fault::fpe_code(0x02), FPE_FLTUND);
    assert_eq!(fault::fpe_code(0x20), FPE_FLTRES);
    let (_g, e) = env();
    let mut t = thread(e);
    // SIMD divide-by-zero unmasked (ZM clear), flag ZE set.
    t.cpu.sse.mxcsr = 0x1f80 & !(1 << 9);
    let mut fs = fault::from_exception(&cetbox_cpu::Exception::SimdFault(0x4), 0x40_0000);
    fault::refine_fpe(&mut fs, &t.cpu);
    assert_eq!(fs.info.code, FPE_FLTDIV);
    assert_eq!(fs.trapno, 19);
    // x87 invalid operation unmasked.
    t.cpu.x87.fcw = 0x037e;
    t.cpu.x87.fsw = 0x0081;
    let mut fs = fault::from_exception(&cetbox_cpu::Exception::X87Fault, 0x40_0000);
    fault::refine_fpe(&mut fs, &t.cpu);
    assert_eq!(fs.info.code, FPE_FLTINV);
    // int3: SI_KERNEL, no address, trapno 3.
    let fs = fault::from_exception(&cetbox_cpu::Exception::Breakpoint, 0x40_0001);
    assert_eq!(
        (fs.info.signo, fs.info.code, fs.info.addr(), fs.trapno),
        (5, 0x80, 0, 3)
    );
}

#[test]
fn host_signal_reaches_guest() {
    let (_g, e) = env();
    let mut t = thread(e);
    t.cpu.gpr[4] = e.stack + 0x9000;
    signals::host::register_thread(&mut t);
    e.proc.signals.set_action(12, handler_action(SA_SIGINFO, 0));
    signals::host::sync_action(&e.proc, 12);
    // tgkill to ourselves through the guest syscall: the host handler records it.
    let tid = t.tid as u64;
    let tgkill = syscalls::table::get(234).and_then(|s| s.run).unwrap();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    assert_eq!(tgkill(&mut t, [pid, tid, 12, 0, 0, 0]), Ok(0));
    assert!(t.stop.load(std::sync::atomic::Ordering::SeqCst));
    deliver::deliver_pending(&mut t);
    assert_eq!(t.cpu.rip, HANDLER);
    let (frame, _) = expected_frame(e.stack + 0x9000);
    assert_eq!(rd32(&t, frame + 312), 12);
    assert_eq!(rd32(&t, frame + 312 + 8) as i32, -6, "SI_TKILL");
    assert_eq!(rd32(&t, frame + 312 + 16) as u64, pid, "si_pid");
    // Blocked on the guest = blocked on the host: stays pending there.
    deliver::set_mask(&mut t, bit(12));
    assert_eq!(tgkill(&mut t, [pid, tid, 12, 0, 0, 0]), Ok(0));
    let out = e.stack + 0xc000;
    syscalls::table::get(127).and_then(|s| s.run).unwrap()(&mut t, [out, 8, 0, 0, 0, 0]).unwrap();
    assert_eq!(rd(&t, out) & bit(12), bit(12));
    // rt_sigtimedwait takes it.
    let set = e.stack + 0xc100;
    t.mem().write_u64(set, bit(12)).unwrap();
    let info = e.stack + 0xc200;
    let r = syscalls::table::get(128).and_then(|s| s.run).unwrap()(&mut t, [set, info, 0, 8, 0, 0]);
    assert_eq!(r, Ok(12));
    assert_eq!(rd32(&t, info), 12);
    e.proc.signals.set_action(12, SigAction::default());
    signals::host::sync_action(&e.proc, 12);
    deliver::set_mask(&mut t, 0);
}
