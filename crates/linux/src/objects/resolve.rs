//! Resolving DT_NEEDED names as glibc's ld.so does: DT_RPATH (when there is no DT_RUNPATH),
//! LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache, then the default directories; breadth-first
//! over the dependency graph, each soname loaded once.

use super::properties::{read_file_properties, Properties};
use std::collections::HashMap;
use std::collections::{HashSet, VecDeque};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One object of a program's load set.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The name it was asked for (DT_NEEDED entry, or the program path).
    pub name: String,
    /// Where it was found, or None if ld.so would fail to find it.
    pub path: Option<PathBuf>,
    pub props: Option<Properties>,
    /// Why it could not be read, when it could not.
    pub error: Option<String>,
}

const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

fn expand_origin(dir: &str, origin: &Path) -> String {
    let o = origin.to_string_lossy();
    dir.replace("${ORIGIN}", &o).replace("$ORIGIN", &o)
}

fn search_list(list: &Option<String>, origin: &Path, sysroot: Option<&Path>) -> Vec<PathBuf> {
    list.iter()
        .flat_map(|l| l.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| rooted(&expand_origin(d, origin), sysroot))
        .collect()
}

/// Where ld.so running under `cetbox run --sysroot` finds the path `p`: under the sysroot when
/// it is there, else on the host (crate::sysroot's rules).
fn rooted(p: &str, sysroot: Option<&Path>) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(crate::sysroot::host_path(
        sysroot,
        p.as_bytes(),
        true,
    )))
}

/// Parses /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format) into (soname, path) pairs for
/// x86-64 libraries.
pub fn read_ld_cache(path: &Path) -> Vec<(String, String)> {
    let Ok(d) = std::fs::read(path) else {
        return Vec::new();
    };
    const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
    // The new format may follow an old-format header; find it.
    let Some(start) = d.windows(MAGIC.len()).position(|w| w == MAGIC) else {
        return Vec::new();
    };
    let u32_at = |o: usize| {
        d.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(n) = u32_at(start + 20) else {
        return Vec::new();
    };
    // Header: magic(20) nlibs(4) len_strings(4) flags(1) pad(3) extension_offset(4) unused(12)
    // = 48 bytes; entries of 24 bytes: flags(4) key(4) value(4) osversion(4) hwcap(8).
    let entries = start + 48;
    let cstr = |o: u32| -> Option<String> {
        // String offsets are relative to the start of the new-format header.
        let o = start + o as usize;
        let tail = d.get(o..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&tail[..end]).into_owned())
    };
    let mut out = Vec::new();
    for i in 0..n as usize {
        let e = entries + i * 24;
        let (Some(flags), Some(key), Some(value)) = (u32_at(e), u32_at(e + 4), u32_at(e + 8))
        else {
            break;
        };
        // FLAG_ELF_LIBC6 (3) with FLAG_X8664_LIB64 (0x0300).
        if flags & 0xff00 != 0x0300 && flags != 3 {
            continue;
        }
        if let (Some(k), Some(v)) = (cstr(key), cstr(value)) {
            out.push((k, v));
        }
    }
    out
}

/// Finds `name` for an object with properties `from` located in `origin`.
fn find(
    name: &str,
    from: &Properties,
    origin: &Path,
    cache: &[(String, String)],
    sysroot: Option<&Path>,
) -> Option<PathBuf> {
    if name.contains('/') {
        let p = rooted(name, sysroot);
        return p.exists().then_some(p);
    }
    let mut dirs = Vec::new();
    if from.runpath.is_none() {
        dirs.extend(search_list(&from.rpath, origin, sysroot));
    }
    if sysroot.is_none() {
        if let Ok(l) = std::env::var("LD_LIBRARY_PATH") {
            dirs.extend(search_list(&Some(l), origin, None));
        }
    }
    dirs.extend(search_list(&from.runpath, origin, sysroot));
    for d in &dirs {
        let p = d.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    if let Some((_, v)) = cache.iter().find(|(k, _)| k == name) {
        let p = rooted(v, sysroot);
        if p.is_file() {
            return Some(p);
        }
    }
    DEFAULT_DIRS
        .iter()
        .map(|d| rooted(d, sysroot).join(name))
        .find(|p| p.is_file())
}

/// Resolves many programs' load sets, reading each shared object once.
pub struct Resolver {
    sysroot: Option<PathBuf>,
    cache: Vec<(String, String)>,
    props: HashMap<PathBuf, Result<Properties, String>>,
}

impl Resolver {
    pub fn new(sysroot: Option<&Path>) -> Resolver {
        // The sysroot rules want the directory without symbolic links.
        let sysroot = sysroot.map(|s| crate::sysroot::canonical_root(s).unwrap_or(s.to_path_buf()));
        Resolver {
            cache: read_ld_cache(&rooted("/etc/ld.so.cache", sysroot.as_deref())),
            props: HashMap::new(),
            sysroot,
        }
    }

    fn read(&mut self, path: &Path) -> Result<Properties, String> {
        self.props
            .entry(path.to_path_buf())
            .or_insert_with(|| read_file_properties(path))
            .clone()
    }

    /// The objects a program loads: itself, its interpreter, and the DT_NEEDED closure.
    pub fn closure(&mut self, program: &Path) -> Vec<Resolved> {
        let sysroot = self.sysroot.clone();
        closure(self, program, sysroot.as_deref())
    }
}

/// The objects a program loads: itself, its interpreter, and the DT_NEEDED closure.
pub fn resolve_closure(program: &Path, sysroot: Option<&Path>) -> Vec<Resolved> {
    Resolver::new(sysroot).closure(program)
}

fn closure(r: &mut Resolver, program: &Path, sysroot: Option<&Path>) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = Vec::new();
    let program_props = read_file_properties(program);
    let root = match program_props {
        Ok(p) => p,
        Err(e) => {
            out.push(Resolved {
                name: program.display().to_string(),
                path: Some(program.to_path_buf()),
                props: None,
                error: Some(e),
            });
            return out;
        }
    };
    out.push(Resolved {
        name: program.display().to_string(),
        path: Some(program.to_path_buf()),
        props: Some(root.clone()),
        error: None,
    });
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(String, Properties, PathBuf)> = VecDeque::new();
    let origin_of = |p: &Path| {
        p.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    if let Some(interp) = &root.interp {
        let p = rooted(interp, sysroot);
        let props = r.read(&p);
        let name = interp.clone();
        seen.insert(
            Path::new(interp)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        match props {
            Ok(pr) => out.push(Resolved {
                name,
                path: Some(p),
                props: Some(pr),
                error: None,
            }),
            Err(e) => out.push(Resolved {
                name,
                path: p.exists().then_some(p),
                props: None,
                error: Some(e),
            }),
        }
    }
    for n in &root.needed {
        queue.push_back((n.clone(), root.clone(), origin_of(program)));
    }
    while let Some((name, from, origin)) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        match find(&name, &from, &origin, &r.cache, sysroot) {
            None => out.push(Resolved {
                name,
                path: None,
                props: None,
                error: Some("not found".into()),
            }),
            Some(path) => match r.read(&path) {
                Ok(pr) => {
                    for n in &pr.needed {
                        queue.push_back((n.clone(), pr.clone(), origin_of(&path)));
                    }
                    out.push(Resolved {
                        name,
                        path: Some(path),
                        props: Some(pr),
                        error: None,
                    });
                }
                Err(e) => out.push(Resolved {
                    name,
                    path: Some(path),
                    props: None,
                    error: Some(e),
                }),
            },
        }
    }
    out
}
