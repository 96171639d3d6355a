//! Shadow-stack violation reports: text on stderr in the style of Valgrind and
//! AddressSanitizer, or JSON Lines following docs/report-schema.json; repeated violations at
//! one site are counted, and a per-site summary is printed at exit when any were repeated or the
//! run continued past them (audit mode).

mod symbols;

use cetbox_linux::events::{Observer, Outcome, Violation, ViolationKind};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;
pub use symbols::{Location, Symbolizer};

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
    sites: BTreeMap<(u64, &'static str), Site>,
}

pub struct Reporter {
    format: Format,
    /// Audit mode (--on-violation=continue): always end with the per-site summary.
    audit: bool,
    state: Mutex<State>,
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

impl Reporter {
    pub fn new(
        format: Format,
        path: Option<&std::path::Path>,
        audit: bool,
    ) -> std::io::Result<Reporter> {
        let out: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(private_file(File::create(p)?)),
            None => Box::new(std::io::stderr()),
        };
        Ok(Reporter {
            format,
            audit,
            state: Mutex::new(State {
                out,
                sites: BTreeMap::new(),
            }),
        })
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
            return;
        }
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
        let _ = st.out.write_all(out.as_bytes());
        let _ = st.out.flush();
    }

    fn forked(&self) {
        // try_lock: in a fork child, a lock held by another parent thread is never released.
        if let Ok(mut st) = self.state.try_lock() {
            st.sites.clear();
        }
    }

    fn finish(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
        let _ = st.out.write_all(out.as_bytes());
        let _ = st.out.flush();
    }
}
