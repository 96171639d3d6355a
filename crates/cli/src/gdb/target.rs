//! The guest process as a gdbstub target: registers, memory, threads, resume and step,
//! breakpoints and watchpoints, the program and its auxiliary vector, and the monitor
//! commands. Everything goes through the Linux personality's debug controller.

use super::arch::{self, RegNum, X86_64Linux, X86_64Regs};
use super::conn::Shared;
use cetbox_linux::debug::watch::{Watch, WatchKind as CbWatch};
use cetbox_linux::debug::{Action, Debugger};
use cetbox_linux::events::Violation;
use gdbstub::common::{Pid, Signal, Tid};
use gdbstub::target::ext::auxv::{Auxv, AuxvOps};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::exec_file::{ExecFile, ExecFileOps};
use gdbstub::target::ext::monitor_cmd::{outputln, ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub struct GuestTarget {
    pub dbg: Arc<Debugger>,
    pub shared: Arc<Shared>,
    /// The last violation reported, for `monitor report`.
    pub last_violation: Arc<Mutex<Option<Violation>>>,
    actions: BTreeMap<i32, (Action, Option<i32>)>,
    others_run: bool,
}

impl GuestTarget {
    pub fn new(
        dbg: Arc<Debugger>,
        shared: Arc<Shared>,
        last_violation: Arc<Mutex<Option<Violation>>>,
    ) -> GuestTarget {
        GuestTarget {
            dbg,
            shared,
            last_violation,
            actions: BTreeMap::new(),
            others_run: true,
        }
    }

    /// The thread whose state monitor commands show: gdb's selected one, else the last stop's.
    fn current_tid(&self) -> i32 {
        use std::sync::atomic::Ordering;
        let t = self.shared.selected.load(Ordering::SeqCst);
        if t > 0 && self.dbg.regs(t).is_some() {
            return t;
        }
        self.shared.last_stop.load(Ordering::SeqCst)
    }
}

/// The Linux signal for a signal gdb resumes with (one Linux lacks is dropped).
fn host_signal(s: Option<Signal>) -> Option<i32> {
    s.and_then(|s| super::signo::from_gdb(s.0))
}

fn tid_of(t: Tid) -> i32 {
    t.get() as i32
}

fn copy_out(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let start = (offset as usize).min(data.len());
    let n = length.min(buf.len()).min(data.len() - start);
    buf[..n].copy_from_slice(&data[start..start + n]);
    n
}

impl Target for GuestTarget {
    type Arch = X86_64Linux;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    // Breakpoints are kept in the controller's tables; gdb never writes INT3 bytes.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    // Acknowledgement mode stays on: see conn.rs.
    fn use_no_ack_mode(&self) -> bool {
        false
    }

    fn use_rle(&self) -> bool {
        false
    }

    fn use_fork_stop_reason(&self) -> bool {
        false
    }

    fn use_vfork_stop_reason(&self) -> bool {
        false
    }

    fn use_vforkdone_stop_reason(&self) -> bool {
        false
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_exec_file(&mut self) -> Option<ExecFileOps<'_, Self>> {
        Some(self)
    }

    fn support_auxv(&mut self) -> Option<AuxvOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for GuestTarget {
    fn read_registers(&mut self, regs: &mut X86_64Regs, tid: Tid) -> TargetResult<(), Self> {
        let r = self.dbg.regs(tid_of(tid)).ok_or(TargetError::Errno(3))?;
        *regs = X86_64Regs::from_regs(&r);
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64Regs, tid: Tid) -> TargetResult<(), Self> {
        let tid = tid_of(tid);
        let mut r = self.dbg.regs(tid).ok_or(TargetError::Errno(3))?;
        regs.apply_to(&mut r);
        self.dbg
            .set_regs(tid, &r)
            .map_err(|e| TargetError::Errno(e.0 as u8))
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], _tid: Tid) -> TargetResult<usize, Self> {
        self.dbg
            .read_memory(start, data)
            .map_err(|e| TargetError::Errno(e.0 as u8))
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], _tid: Tid) -> TargetResult<(), Self> {
        match self.dbg.write_memory(start, data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(TargetError::Errno(libc::EIO as u8)),
            Err(e) => Err(TargetError::Errno(e.0 as u8)),
        }
    }

    fn list_active_threads(&mut self, f: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for t in self.dbg.threads() {
            if let Some(t) = Tid::new(t as usize) {
                f(t);
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for GuestTarget {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: RegNum,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let r = self.dbg.regs(tid_of(tid)).ok_or(TargetError::Errno(3))?;
        match arch::get(&r, reg.0) {
            Some(b) => {
                let n = b.len().min(buf.len());
                buf[..n].copy_from_slice(&b[..n]);
                Ok(n)
            }
            // Unavailable (pl3_ssp without shadow stacks).
            None => Ok(0),
        }
    }

    fn write_register(&mut self, tid: Tid, reg: RegNum, val: &[u8]) -> TargetResult<(), Self> {
        let tid = tid_of(tid);
        let mut r = self.dbg.regs(tid).ok_or(TargetError::Errno(3))?;
        if reg.0 == arch::PL3_SSP {
            let v = u64::from_le_bytes(
                val.get(..8)
                    .ok_or(TargetError::Errno(22))?
                    .try_into()
                    .unwrap(),
            );
            r.set_ssp(v).map_err(|e| TargetError::Errno(e.0 as u8))?;
        } else {
            arch::set(&mut r, reg.0, val);
        }
        self.dbg
            .set_regs(tid, &r)
            .map_err(|e| TargetError::Errno(e.0 as u8))
    }
}

impl MultiThreadResume for GuestTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        self.dbg.resume(&self.actions, self.others_run);
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.clear();
        self.others_run = true;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.actions
            .insert(tid_of(tid), (Action::Continue, host_signal(signal)));
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for GuestTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.actions
            .insert(tid_of(tid), (Action::Step, host_signal(signal)));
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for GuestTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.others_run = false;
        Ok(())
    }
}

impl Breakpoints for GuestTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GuestTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.dbg.set_breakpoint(addr, false, true))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        // Removing one that is gone (execve dropped them all) is no error.
        self.dbg.set_breakpoint(addr, false, false);
        Ok(true)
    }
}

impl HwBreakpoint for GuestTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.dbg.set_breakpoint(addr, true, true))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.dbg.set_breakpoint(addr, true, false);
        Ok(true)
    }
}

fn watch(addr: u64, len: u64, kind: WatchKind) -> Watch {
    Watch {
        addr,
        len,
        kind: match kind {
            WatchKind::Write => CbWatch::Write,
            WatchKind::Read => CbWatch::Read,
            WatchKind::ReadWrite => CbWatch::Access,
        },
    }
}

impl HwWatchpoint for GuestTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self.dbg.set_watch(watch(addr, len, kind), true))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.dbg.set_watch(watch(addr, len, kind), false);
        Ok(true)
    }
}

impl ExecFile for GuestTarget {
    fn get_exec_file(
        &self,
        _pid: Option<Pid>,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let exe = self.dbg.proc.image().exe.clone();
        Ok(copy_out(exe.as_bytes(), offset, length, buf))
    }
}

impl Auxv for GuestTarget {
    fn get_auxv(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let data: Vec<u8> = self
            .dbg
            .proc
            .image()
            .auxv
            .iter()
            .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
            .collect();
        Ok(copy_out(&data, offset, length, buf))
    }
}

impl MonitorCmd for GuestTarget {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(cmd);
        let text = super::monitor::run(self, cmd.trim(), self.current_tid());
        for line in text.lines() {
            outputln!(out, "{line}");
        }
        Ok(())
    }
}
