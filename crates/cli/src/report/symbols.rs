//! Turning guest addresses into `symbol+offset (file:line)` using the guest's mapped ELF files:
//! symbol tables through `object`, source lines through `addr2line` when DWARF is present.

use cetbox_linux::events::Mapping;
use object::{Object, ObjectSegment, ObjectSymbol};
use std::collections::HashMap;

/// A resolved address.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Location {
    pub address: u64,
    pub object: Option<String>,
    pub symbol: Option<String>,
    pub offset: Option<u64>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl Location {
    /// `0x401d35 vulnerable+0x45 (vuln.c:18)`.
    pub fn text(&self) -> String {
        let mut s = format!("{:#x}", self.address);
        match (&self.symbol, self.offset) {
            (Some(n), Some(0)) => s.push_str(&format!(" {n}")),
            (Some(n), Some(o)) => s.push_str(&format!(" {n}+{o:#x}")),
            _ => {
                if let Some(o) = &self.object {
                    s.push_str(&format!(" in {}", o.rsplit('/').next().unwrap_or(o)));
                }
            }
        }
        if let (Some(f), Some(l)) = (&self.file, self.line) {
            s.push_str(&format!(" ({}:{l})", f.rsplit('/').next().unwrap_or(f)));
        }
        s
    }
}

struct Loaded {
    /// (file offset, vaddr, filesz) of each PT_LOAD.
    segments: Vec<(u64, u64, u64)>,
    /// (vaddr, name) sorted by address, functions only.
    symbols: Vec<(u64, u64, String)>,
    lines: Option<addr2line::Loader>,
}

/// Symbolizes addresses for one snapshot of the guest's mappings; files are read lazily and once.
pub struct Symbolizer {
    mappings: Vec<Mapping>,
    files: HashMap<String, Option<Loaded>>,
}

impl Symbolizer {
    pub fn new(mappings: Vec<Mapping>) -> Symbolizer {
        Symbolizer {
            mappings,
            files: HashMap::new(),
        }
    }

    fn load(path: &str) -> Option<Loaded> {
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, s.address(), size)
            })
            .collect();
        let mut symbols: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        symbols.sort_by_key(|s| s.0);
        symbols.dedup_by_key(|s| s.0);
        Some(Loaded {
            segments,
            symbols,
            lines: addr2line::Loader::new(path).ok(),
        })
    }

    pub fn locate(&mut self, addr: u64) -> Location {
        let mut loc = Location {
            address: addr,
            ..Default::default()
        };
        let Some(m) = self
            .mappings
            .iter()
            .find(|m| addr >= m.start && addr < m.end)
            .cloned()
        else {
            return loc;
        };
        loc.object = Some(m.path.clone());
        let loaded = self
            .files
            .entry(m.path.clone())
            .or_insert_with(|| Self::load(&m.path));
        let Some(l) = loaded else { return loc };
        let file_off = (addr - m.start).wrapping_add(m.offset);
        let Some(vaddr) = l
            .segments
            .iter()
            .find(|(o, _, fs)| file_off >= *o && file_off - *o < *fs)
            .map(|(o, va, _)| va.wrapping_add(file_off - o))
        else {
            return loc;
        };
        let i = l.symbols.partition_point(|s| s.0 <= vaddr);
        if i > 0 {
            let (start, size, name) = &l.symbols[i - 1];
            // Sizes come from the guest's ELF file: no arithmetic on them may overflow.
            if *size == 0 || vaddr < start.saturating_add(*size) {
                loc.symbol = Some(name.clone());
                loc.offset = Some(vaddr - start);
            }
        }
        if let Some(lines) = &l.lines {
            if let Ok(Some(place)) = lines.find_location(vaddr) {
                loc.file = place.file.map(str::to_string);
                loc.line = place.line;
            }
        }
        loc
    }
}
