//! Shadow-stack violation reports: text on stderr in the style of Valgrind and
//! AddressSanitizer, or JSON Lines following docs/report-schema.json; repeated violations at
//! one site are counted, and a per-site summary is printed at exit when any were repeated or the
//! run continued past them (audit mode).

mod symbols;
pub mod tally;

use cetbox_linux::events::{Observer, Outcome, Violation, ViolationKind};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
pub use symbols::{Location, Symbolizer};
pub use tally::Tally;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Site {
    kind: ViolationKind,
    location: Location,
    count: u64,
}

struct State {
    out: Box<dyn Write + Send>,
    /// Whether `out` is stderr (no report file).
    to_stderr: bool,
    sites: BTreeMap<(u64, &'static str), Site>,
    /// A write to the report file failed and stderr said so (once).
    failed: bool,
}

impl State {
    /// Writes one report; a report that cannot be written is said on stderr (once), never
    /// lost without a word (`--report-file=/dev/full`, a full disk).
    fn emit(&mut self, text: &str, file: Option<&std::path::Path>) {
        let r = self
            .out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush());
        if let (Err(e), false) = (r, self.failed) {
            self.failed = true;
            let to = file.map_or("stderr".to_string(), |p| p.display().to_string());
            let _ = writeln!(
                std::io::stderr(),
                "cetbox: cannot write the shadow-stack report to {to}: {e}"
            );
        }
    }
}

pub struct Reporter {
    format: Format,
    /// Audit mode (--on-violation=continue): always end with the per-site summary.
    audit: bool,
    /// The report file (None: stderr).
    file: Option<std::path::PathBuf>,
    state: Mutex<State>,
    /// `--error-exitcode`: the process-tree tally, and the status to exit with when it
    /// counted any violation.
    tree: Option<(Tally, i32)>,
    /// Whether this is the top-level cetbox of the run (forked children are not).
    root: AtomicBool,
    /// The report file's descriptor (None: stderr), handed over when cetbox re-executes.
    report_fd: Option<i32>,
}

fn title(k: ViolationKind) -> &'static str {
    match k {
        ViolationKind::RetMismatch => {
            "return address does not match the shadow stack (#CP near-ret)"
        }
        ViolationKind::BadRestoreToken => "RSTORSSP found no valid restore token (#CP rstorssp)",
        ViolationKind::FarReturn => {
            "far return or IRET frame does not match the shadow stack (#CP far/iret)"
        }
        ViolationKind::ShadowAccess => {
            "shadow-stack access to memory that is not a writable shadow stack"
        }
        ViolationKind::WriteToShadowStack => "ordinary write to shadow-stack memory",
        ViolationKind::BadSigreturn => "rt_sigreturn found no valid shadow-stack signal token",
        ViolationKind::SignalDeliveryFailed => {
            "signal delivery could not push the shadow-stack signal frame"
        }
    }
}

fn outcome_text(o: Outcome, k: ViolationKind) -> String {
    let code = match k {
        ViolationKind::RetMismatch | ViolationKind::BadRestoreToken | ViolationKind::FarReturn => {
            "SEGV_CPERR"
        }
        ViolationKind::ShadowAccess | ViolationKind::WriteToShadowStack => {
            "SEGV_ACCERR or SEGV_MAPERR"
        }
        _ => "SI_KERNEL",
    };
    match o {
        Outcome::DeliveredToHandler => format!("SIGSEGV ({code}) delivered to the guest's handler"),
        Outcome::Killed => {
            format!("no SIGSEGV handler: the process is killed by SIGSEGV ({code}), as on Linux")
        }
        Outcome::Resynchronized => {
            "audit mode: shadow stack resynchronized, execution continues".to_string()
        }
    }
}

/// Moves the report file out of the guest's way (see `crate::private_fd`).
fn private_file(f: File) -> File {
    File::from(crate::private_fd::private(f.into()))
}

/// Clears (keep) or sets FD_CLOEXEC on one of the reporter's own descriptors.
fn keep_across_exec(fd: i32, keep: bool) {
    let flags = if keep { 0 } else { libc::FD_CLOEXEC };
    // SAFETY: F_SETFD on a descriptor the reporter owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags) };
}

impl Reporter {
    pub fn new(
        format: Format,
        path: Option<&std::path::Path>,
        audit: bool,
    ) -> std::io::Result<Reporter> {
        use std::os::unix::io::AsRawFd;
        let mut report_fd = None;
        let out: Box<dyn Write + Send> = match path {
            Some(p) => {
                let f = private_file(File::create(p)?);
                report_fd = Some(f.as_raw_fd());
                Box::new(f)
            }
            None => Box::new(std::io::stderr()),
        };
        Ok(Reporter {
            format,
            audit,
            file: path.map(|p| p.to_path_buf()),
            state: Mutex::new(State {
                out,
                to_stderr: path.is_none(),
                sites: BTreeMap::new(),
                failed: false,
            }),
            tree: None,
            root: AtomicBool::new(true),
            report_fd,
        })
    }

    /// Rebuilds the reporter of a cetbox that re-executed itself for a guest's execve, from
    /// what `before_reexec` handed over.
    pub fn resume(state: &str) -> Reporter {
        use std::os::unix::io::FromRawFd;
        let mut format = Format::Text;
        let (mut audit, mut root) = (false, false);
        let (mut report_fd, mut tally_fd, mut code) = (None, None, 0);
        for kv in state.split(';') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match (k, v.parse::<i32>().ok()) {
                ("format", _) if v == "json" => format = Format::Json,
                ("audit", _) => audit = v == "1",
                ("root", _) => root = v == "1",
                ("report_fd", Some(fd)) => report_fd = Some(fd),
                ("tally_fd", Some(fd)) => tally_fd = Some(fd),
                ("code", Some(c)) => code = c,
                _ => {}
            }
        }
        let out: Box<dyn Write + Send> = match report_fd {
            Some(fd) => {
                keep_across_exec(fd, false);
                cetbox_linux::private_fds::register_private_fd(fd);
                // SAFETY: the descriptor was handed over to this image for the reporter alone.
                Box::new(unsafe { File::from_raw_fd(fd) })
            }
            None => Box::new(std::io::stderr()),
        };
        let tree = tally_fd.and_then(|fd| {
            keep_across_exec(fd, false);
            Tally::map(fd).ok().map(|t| (t, code))
        });
        Reporter {
            format,
            audit,
            // The path is not handed over: a failed write is reported without it.
            file: None,
            state: Mutex::new(State {
                out,
                to_stderr: report_fd.is_none(),
                sites: BTreeMap::new(),
                failed: false,
            }),
            tree,
            root: AtomicBool::new(root),
            report_fd,
        }
    }

    /// Makes this reporter count into the process-tree `tally` and end a run in which any
    /// process reported a violation with exit status `code` (`--error-exitcode`).
    pub fn with_error_exitcode(mut self, tally: Tally, code: i32) -> Reporter {
        self.tree = Some((tally, code));
        self
    }

    /// Marks this reporter as a descendant's (a cetbox re-executed by a guest's execve in a
    /// process that is not the top-level one).
    pub fn set_root(&self, root: bool) {
        self.root.store(root, Ordering::SeqCst);
    }

    /// Whether this reporter belongs to the top-level cetbox of the run.
    pub fn is_root(&self) -> bool {
        self.root.load(Ordering::SeqCst)
    }

    /// Counts a violation in the process-tree tally; `v` is given for a new site.
    fn tally(&self, v: Option<&Violation>) {
        let Some((t, _)) = &self.tree else { return };
        let site = v.map(|v| {
            match v
                .mappings
                .iter()
                .find(|m| v.rip >= m.start && v.rip < m.end)
            {
                Some(m) => tally::site_hash(
                    v.kind.id(),
                    &m.path,
                    (v.rip - m.start).wrapping_add(m.offset),
                ),
                None => tally::site_hash(v.kind.id(), "", v.rip),
            }
        });
        t.add(site);
    }

    /// The one-line process-tree summary printed by the top-level cetbox at exit.
    fn tree_summary(&self, st: &mut State) {
        let Some((t, code)) = &self.tree else { return };
        if !self.is_root() {
            return;
        }
        let (n, m) = t.totals();
        let plural = |k: u64, w: &str| format!("{k} {w}{}", if k == 1 { "" } else { "s" });
        let line = format!(
            "cetbox: {} at {} in the whole process tree",
            plural(n, "violation"),
            plural(m, "site")
        );
        let text = if n > 0 && *code != 0 {
            format!("{line} (--error-exitcode: exit status {code})\n")
        } else {
            format!("{line}\n")
        };
        match self.format {
            Format::Text => {
                let _ = st.out.write_all(text.as_bytes());
            }
            Format::Json => {
                let o = json!({"type": "tree-summary", "violations": n, "sites": m, "error_exitcode": code});
                let _ = st.out.write_all(format!("{o}\n").as_bytes());
                if !st.to_stderr {
                    let _ = std::io::stderr().write_all(text.as_bytes());
                }
            }
        }
        let _ = st.out.flush();
    }

    pub(crate) fn text(v: &Violation, sym: &mut Symbolizer) -> String {
        let p = format!("=={}==", v.pid);
        let mut s = format!("{p} cetbox: shadow-stack violation: {}\n", title(v.kind));
        s += &format!(
            "{p}    at {} (thread {})\n",
            sym.locate(v.rip).text(),
            v.tid
        );
        if let (Some(r), Some(e)) = (v.ret_addr, v.shadow_addr) {
            s += &format!(
                "{p}  return address on the stack:        {}\n",
                sym.locate(r).text()
            );
            s += &format!(
                "{p}  return address on the shadow stack: {}\n",
                sym.locate(e).text()
            );
        }
        if let Some(a) = v.addr {
            match v.token {
                Some(tok) => {
                    s += &format!(
                        "{p}  restore token at {a:#x} holds {tok:#x}: {}\n",
                        token_problem(a, tok)
                    )
                }
                None => s += &format!("{p}  faulting address: {a:#x}\n"),
            }
        }
        s += &format!("{p}  registers: rsp={:#x} ssp={:#x}\n", v.rsp, v.ssp);
        if !v.shadow_stack.is_empty() {
            s += &format!("{p}  call stack from the shadow stack (innermost first):\n");
            for (i, e) in v.shadow_stack.iter().enumerate() {
                if e >> 63 == 1 {
                    s += &format!(
                        "{p}    #{i:<2} <signal frame: token for SSP {:#x}>\n",
                        e & !(1 << 63)
                    );
                } else {
                    s += &format!("{p}    #{i:<2} {}\n", sym.locate(*e).text());
                }
            }
        }
        if let Some(w) = &v.last_switch {
            s += &format!(
                "{p}  last shadow-stack switch: {} at {} (SSP {:#x} -> {:#x})\n",
                w.what,
                sym.locate(w.rip).text(),
                w.from_ssp,
                w.to_ssp
            );
        }
        let by = if v.enabled_by.is_empty() {
            "unknown"
        } else {
            v.enabled_by
        };
        s += &format!(
            "{p}  shadow stacks enabled by {by}, {}, WRSS {}\n",
            if v.locked { "locked" } else { "not locked" },
            if v.wrss { "on" } else { "off" }
        );
        s += &format!("{p}  {}\n", outcome_text(v.outcome, v.kind));
        s
    }

    fn json(v: &Violation, sym: &mut Symbolizer) -> serde_json::Value {
        let loc = |sym: &mut Symbolizer, a: Option<u64>| {
            a.map(|a| serde_json::to_value(sym.locate(a)).unwrap_or_default())
        };
        let stack: Vec<serde_json::Value> = v
            .shadow_stack
            .iter()
            .map(|e| {
                if e >> 63 == 1 {
                    json!({"signal_token": e & !(1u64 << 63)})
                } else {
                    serde_json::to_value(sym.locate(*e)).unwrap_or_default()
                }
            })
            .collect();
        json!({
            "type": "violation",
            "kind": v.kind.id(),
            "description": title(v.kind),
            "pid": v.pid,
            "tid": v.tid,
            "instruction": loc(sym, Some(v.rip)),
            "rsp": v.rsp,
            "ssp": v.ssp,
            "return_address": loc(sym, v.ret_addr),
            "shadow_return_address": loc(sym, v.shadow_addr),
            "fault_address": v.addr,
            "token": v.token,
            "shadow_stack": stack,
            "last_switch": v.last_switch.as_ref().map(|w| json!({"what": w.what, "at": loc(sym, Some(w.rip)), "from_ssp": w.from_ssp, "to_ssp": w.to_ssp})),
            "enabled_by": v.enabled_by,
            "locked": v.locked,
            "wrss": v.wrss,
            "outcome": match v.outcome { Outcome::DeliveredToHandler => "delivered-to-handler", Outcome::Killed => "killed", Outcome::Resynchronized => "resynchronized" },
        })
    }
}

fn token_problem(addr: u64, tok: u64) -> String {
    if tok & 1 == 0 {
        "bit 0 (64-bit mode) is clear".into()
    } else if tok & 2 != 0 {
        "bit 1 is set (a previous-SSP or busy token, not a restore token)".into()
    } else if (tok & !7).wrapping_sub(8) != addr {
        format!(
            "it restores SSP {:#x}, which does not sit just above the token",
            tok & !7
        )
    } else {
        "invalid".into()
    }
}

impl Observer for Reporter {
    fn repeat(&self, rip: u64, kind: ViolationKind) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.sites.get_mut(&(rip, kind.id())) {
            Some(site) => {
                site.count += 1;
                self.tally(None);
                true
            }
            None => false,
        }
    }

    fn violation(&self, v: &Violation) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (v.rip, v.kind.id());
        if let Some(site) = st.sites.get_mut(&key) {
            site.count += 1;
            self.tally(None);
            return;
        }
        self.tally(Some(v));
        // Only a site's first violation is symbolized and written out.
        let mut sym = Symbolizer::new(v.mappings.clone());
        let location = sym.locate(v.rip);
        st.sites.insert(
            key,
            Site {
                kind: v.kind,
                location,
                count: 1,
            },
        );
        let out = match self.format {
            Format::Text => Self::text(v, &mut sym),
            Format::Json => format!("{}\n", Self::json(v, &mut sym)),
        };
        st.emit(&out, self.file.as_deref());
    }

    fn before_reexec(&self) -> String {
        let mut s = format!(
            "format={};audit={};root={}",
            if self.format == Format::Json {
                "json"
            } else {
                "text"
            },
            u8::from(self.audit),
            u8::from(self.is_root())
        );
        if let Some(fd) = self.report_fd {
            keep_across_exec(fd, true);
            s += &format!(";report_fd={fd}");
        }
        if let Some((t, code)) = &self.tree {
            keep_across_exec(t.fd, true);
            s += &format!(";tally_fd={};code={code}", t.fd);
        }
        s
    }

    fn reexec_failed(&self) {
        for fd in self
            .report_fd
            .into_iter()
            .chain(self.tree.as_ref().map(|t| t.0.fd))
        {
            keep_across_exec(fd, false);
        }
    }

    fn forked(&self) {
        self.set_root(false);
        // try_lock: in a fork child, a lock held by another parent thread is never released.
        if let Ok(mut st) = self.state.try_lock() {
            st.sites.clear();
        }
    }

    fn finish(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.process_summary(&mut st);
        self.tree_summary(&mut st);
    }

    fn exit_status(&self, status: i32) -> i32 {
        match &self.tree {
            Some((t, code)) if *code != 0 && self.is_root() && t.totals().0 > 0 => *code,
            _ => status,
        }
    }
}

impl Reporter {
    /// This process's per-site summary.
    fn process_summary(&self, st: &mut State) {
        // A lone violation that killed the process needs no summary; audit mode and repeated
        // violations do.
        if st.sites.is_empty() || (!self.audit && st.sites.values().all(|s| s.count == 1)) {
            return;
        }
        let total: u64 = st.sites.values().map(|s| s.count).sum();
        let out = match self.format {
            Format::Json => {
                let sites: Vec<_> = st.sites.values().map(|s| json!({"kind": s.kind.id(), "instruction": s.location, "count": s.count})).collect();
                format!(
                    "{}\n",
                    json!({"type": "summary", "violations": total, "sites": sites})
                )
            }
            Format::Text => {
                let mut s = format!(
                    "cetbox: shadow-stack violation summary: {total} violation(s) at {} site(s)\n",
                    st.sites.len()
                );
                for site in st.sites.values() {
                    s += &format!(
                        "cetbox:   {:>6}x  {}  {}\n",
                        site.count,
                        site.kind.id(),
                        site.location.text()
                    );
                }
                s
            }
        };
        st.emit(&out, self.file.as_deref());
    }
}
