//! gdb's `monitor` commands: the shadow stack as cetbox sees it.

use super::target::GuestTarget;
use crate::report::{Reporter, Symbolizer};
use cetbox_linux::events::Mapping;

const HELP: &str = "\
cetbox monitor commands:
  help           this list
  shadow-stack   the shadow call stack of the current thread, innermost first, symbolized
  shstk-status   shadow-stack state of the current thread: enabled, locked, WRSS, bounds
  report         the last shadow-stack violation report
  maps           the guest's memory mappings, as its /proc/self/maps shows them";

/// Most entries `shadow-stack` prints.
const MAX_ENTRIES: usize = 256;

fn symbolizer(t: &GuestTarget) -> Symbolizer {
    Symbolizer::new(Mapping::of_files(&t.dbg.proc.mem))
}

/// Runs one monitor command for thread `tid`; returns its output.
pub fn run(t: &GuestTarget, cmd: &str, tid: i32) -> String {
    match cmd {
        "" | "help" => HELP.to_string(),
        "shadow-stack" => shadow_stack(t, tid),
        "shstk-status" => status(t, tid),
        "report" => match &*t.last_violation.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(v) => Reporter::text(v, &mut symbolizer(t)),
            None => "no shadow-stack violation has been reported".to_string(),
        },
        "maps" => {
            let img = t.dbg.proc.image();
            let brk = (img.brk_start, img.brk);
            drop(img);
            t.dbg
                .proc
                .mem
                .vmas()
                .iter()
                .map(|v| cetbox_linux::procfs::maps_line(v, brk))
                .collect()
        }
        other => format!("unknown monitor command '{other}'; 'monitor help' lists them"),
    }
}

fn shadow_stack(t: &GuestTarget, tid: i32) -> String {
    let Some(r) = t.dbg.regs(tid) else {
        return format!("no thread {tid}");
    };
    if !r.shstk_enabled {
        return format!("thread {tid}: shadow stacks are not enabled");
    }
    let mem = &t.dbg.proc.mem;
    let end = mem.find_vma(r.ssp).map(|v| v.end).unwrap_or(r.ssp);
    let mut sym = symbolizer(t);
    let mut s = format!(
        "shadow stack of thread {tid} (SSP {:#x}), innermost first:\n",
        r.ssp
    );
    let mut p = r.ssp;
    let mut i = 0;
    while p + 8 <= end && i < MAX_ENTRIES {
        let Ok(e) = mem.read_u64(p) else { break };
        if e >> 63 == 1 {
            s += &format!(
                "  #{i:<2} {p:#x}: <signal frame: token for SSP {:#x}>\n",
                e & !(1 << 63)
            );
        } else {
            s += &format!("  #{i:<2} {p:#x}: {}\n", sym.locate(e).text());
        }
        p += 8;
        i += 1;
    }
    if i == 0 {
        s += "  (empty)\n";
    }
    s
}

fn status(t: &GuestTarget, tid: i32) -> String {
    let Some(r) = t.dbg.regs(tid) else {
        return format!("no thread {tid}");
    };
    let k = &r.shstk;
    let on = |b: bool| if b { "yes" } else { "no" };
    let mut s = format!("thread {tid}\n");
    s += &format!("  enabled: {}", on(r.shstk_enabled));
    if r.shstk_enabled && !k.enabled_by.is_empty() {
        s += &format!(" (by {})", k.enabled_by);
    }
    s += "\n";
    s += &format!("  locked: {}\n", on(k.locked & 1 != 0));
    s += &format!("  WRSS: {}\n", on(k.features & 2 != 0));
    s += &format!("  SSP: {:#x}\n", r.ssp);
    if let Some(v) = t.dbg.proc.mem.find_vma(r.ssp).filter(|_| r.shstk_enabled) {
        s += &format!("  shadow stack mapping: {:#x}-{:#x}\n", v.start, v.end);
    }
    if k.size != 0 {
        s += &format!(
            "  allocated by the kernel: {:#x}-{:#x} ({} KiB)\n",
            k.base,
            k.base + k.size,
            k.size / 1024
        );
    }
    s
}
