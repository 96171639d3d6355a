//! `cetbox check`: which objects of a program carry the SHSTK property, i.e. whether glibc
//! would turn shadow stacks on for it (glibc sysdeps/x86/dl-cet.c; the property note is that of
//! the Linux Extensions to gABI, https://gitlab.com/x86-psABIs/Linux-ABI).

use cetbox_linux::objects::{Resolved, Resolver};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Serialize)]
struct ObjectReport {
    name: String,
    path: Option<String>,
    shstk: bool,
    ibt: bool,
    isa_level: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    /// True when every object carries SHSTK, so glibc would enable shadow stacks.
    shstk: bool,
    objects: Vec<ObjectReport>,
}

fn object_report(r: &Resolved) -> ObjectReport {
    let props = r.props.as_ref();
    ObjectReport {
        name: r.name.clone(),
        path: r.path.as_ref().map(|p| p.display().to_string()),
        shstk: props.is_some_and(|p| p.shstk()),
        ibt: props.is_some_and(|p| p.ibt()),
        isa_level: props.and_then(|p| p.isa_level()),
        error: r.error.clone().or_else(|| {
            props
                .filter(|p| !p.is_x86_64)
                .map(|_| "not an x86-64 object".to_string())
        }),
    }
}

/// Runs the check; returns the process exit status (0: every object has SHSTK; 1: some object
/// lacks it; 2: a file could not be read as ELF).
pub fn run(files: &[PathBuf], json: bool, sysroot: Option<&Path>) -> i32 {
    let mut reports = Vec::new();
    let mut resolver = Resolver::new(sysroot);
    let mut status = 0;
    for f in files {
        let objects: Vec<ObjectReport> = resolver.closure(f).iter().map(object_report).collect();
        let unreadable = objects.first().is_some_and(|o| o.error.is_some());
        let shstk = !objects.is_empty() && objects.iter().all(|o| o.shstk && o.error.is_none());
        if unreadable {
            status = 2;
        } else if !shstk && status == 0 {
            status = 1;
        }
        reports.push(FileReport {
            file: f.display().to_string(),
            shstk,
            objects,
        });
    }
    let mut out = std::io::stdout().lock();
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "files": reports }));
        let _ = writeln!(out);
        return status;
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(out, "{:<5} {:<3} {:<9} OBJECT", "SHSTK", "IBT", "ISA");
    for r in &reports {
        for (i, o) in r.objects.iter().enumerate() {
            let name = match (&o.path, i) {
                (_, 0) => o.name.clone(),
                (Some(p), _) if *p != o.name => format!("  {} => {}", o.name, p),
                _ => format!("  {}", o.name),
            };
            let note = o
                .error
                .as_ref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<5} {:<3} {:<9} {}{}",
                yn(o.shstk),
                yn(o.ibt),
                o.isa_level.as_deref().unwrap_or("-"),
                name,
                note
            );
        }
        let lacking: Vec<&str> = r
            .objects
            .iter()
            .filter(|o| !o.shstk)
            .map(|o| o.name.as_str())
            .collect();
        let verdict = if r.shstk {
            "shadow stacks can be enabled (every object is marked SHSTK)".to_string()
        } else if r.objects.first().is_some_and(|o| o.error.is_some()) {
            "not a readable x86-64 ELF file".to_string()
        } else {
            format!(
                "shadow stacks stay off: {} of {} objects lack SHSTK ({})",
                lacking.len(),
                r.objects.len(),
                lacking.join(", ")
            )
        };
        let _ = writeln!(out, "=> {}: {}", r.file, verdict);
    }
    status
}
