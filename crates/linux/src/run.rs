//! Running a guest thread: the loop that alternates guest code, syscalls and signal delivery.
//! Starting a program is `start.rs`, ending the process `exit.rs`.

use crate::process::{ExitRequest, Thread};
use crate::signals;
use crate::syscalls;
use cetbox_cpu::{Exception, Exit, UdReason};

/// Runs a thread until it exits or the process ends.
pub fn run_thread(t: &mut Thread) -> ExitRequest {
    crate::debug::thread_begin(t);
    let how = run_thread_inner(t);
    crate::rseq::leave(t);
    crate::debug::thread_end(t.tid);
    how
}

fn run_thread_inner(t: &mut Thread) -> ExitRequest {
    loop {
        if t.proc.threads.exiting() {
            // Another thread is ending the process (exit_group, a fatal signal); a core dump
            // wants this thread's registers.
            crate::thread_group::publish_regs(t, true);
            crate::rseq::leave(t);
            crate::thread_group::park_forever();
        }
        let stop = t.stop.clone();
        // PTRACE_SINGLESTEP: one instruction, then SIGTRAP (unless it raised its own).
        let mut stepped = false;
        // An rseq-registered thread runs guest code only while it holds a virtual CPU
        // (vcpu.rs); under a debugger it takes it after any all-stop park (debug::run).
        let debugged = crate::debug::active();
        let exit = if !debugged && !crate::rseq::enter(t) {
            Exit::Interrupted
        } else {
            crate::thread_group::guest_enter();
            let exit = if debugged {
                crate::debug::run(t)
            } else if syscalls::ptrace::stop::single_stepping(t) {
                stepped = true;
                t.engine.step(&mut t.cpu).unwrap_or(Exit::Interrupted)
            } else {
                t.engine.run(&mut t.cpu, &stop)
            };
            crate::thread_group::guest_leave();
            // A quick syscall keeps the virtual CPU, as a thread keeps its CPU natively
            // across a syscall that does not sleep; anything else gives it back.
            if !matches!(exit, Exit::Syscall) || !crate::rseq::keep_across(t, t.cpu.gpr[0]) {
                crate::rseq::leave(t);
            }
            exit
        };
        crate::rseq::deliver_fault(t);
        t.orig_rax = -1;
        // The single-step trap comes after an instruction that completed (a SYSCALL: once
        // the call returned).
        let step_trap = match exit {
            Exit::Syscall if stepped => Some(true),
            Exit::Interrupted if stepped => Some(false),
            _ => None,
        };
        match exit {
            Exit::Syscall => {
                t.orig_rax = t.cpu.gpr[0] as i64;
                // Blocking syscalls keep a thread away from the run loop: its registers at
                // entry are what a core dump shows for it.
                let published =
                    t.proc.threads.live() > 1 && crate::coredump::may_block(t.cpu.gpr[0]);
                if published {
                    crate::thread_group::publish_regs(t, false);
                }
                syscalls::handle(t);
                if published {
                    crate::thread_group::syscall_done();
                }
            }
            Exit::Exception(Exception::SystemCallGate) => syscalls::compat::handle(t),
            Exit::Exception(e) => {
                if let Exception::InvalidOpcode(UdReason::Unimplemented(what)) = &e {
                    crate::diag::diag(&format!(
                        "unsupported instruction at {:#x}: {what}; delivering SIGILL",
                        t.cpu.rip
                    ));
                }
                if let Exception::PageFault(f) = &e {
                    // A fault just below a growable stack extends it, invisibly to the guest.
                    if crate::stack_growth::try_grow_stack(t, f.addr) {
                        continue;
                    }
                }
                if crate::violation::on_exception(t, &e) {
                    continue;
                }
                let fs = signals::fault::from_exception(&e, t.cpu.rip);
                signals::deliver::force(t, fs);
            }
            Exit::Interrupted => {}
        }
        if let (Some(after_syscall), None) = (step_trap, t.exit) {
            syscalls::ptrace::stop::single_step_trap(t, after_syscall);
        }
        if let Some(x) = t.exit {
            return x;
        }
        signals::deliver::deliver_pending(t);
        if let Some(x) = t.exit {
            return x;
        }
    }
}
