//! Mount options whose values are paths, looked up under `--sysroot` like every other absolute
//! path the guest names (`crate::sysroot`): overlay's lowerdir (a ':'-separated list, "::"
//! before data-only layers), upperdir, workdir, lowerdir+ and datadir+
//! (Documentation/filesystems/overlayfs.rst), ext2/3/4's journal_path
//! (Documentation/admin-guide/ext4.rst), xfs's logdev and rtdev, btrfs's device. The file
//! system looks them up itself, in the mounter's namespace, so without this a sysroot's
//! directory named in an option would be the host's. Used for mount(2)'s data page
//! (`mount.rs`) and fsconfig's FSCONFIG_SET_STRING values (`newmount.rs`).
//!
//! Overlay splits its options at commas not escaped with a backslash and its lowerdir at
//! unescaped colons (fs/overlayfs/params.c ovl_next_opt, ovl_parse_param_split_lowerdirs);
//! the others split at every comma (fs/fs_context.c vfs_parse_comma_sep). A value that maps
//! to a sysroot path is written with ',', ':' and '\' escaped for overlay; values that stay
//! as they are (relative, absent from the sysroot) are kept byte for byte.

use crate::process::Thread;
use std::ffi::CString;

/// The options of `fstype` whose value is a path, and whether it is overlay's colon list.
fn path_keys(fstype: &[u8]) -> &'static [(&'static [u8], bool)] {
    match fstype {
        b"overlay" => &[
            (b"lowerdir", true),
            (b"upperdir", false),
            (b"workdir", false),
            (b"lowerdir+", false),
            (b"datadir+", false),
        ],
        b"ext2" | b"ext3" | b"ext4" => &[(b"journal_path", false)],
        b"xfs" => &[(b"logdev", false), (b"rtdev", false)],
        b"btrfs" => &[(b"device", false)],
        _ => &[],
    }
}

/// Splits `s` at `sep` bytes not preceded by a backslash (when `escapes`), keeping the escapes.
fn split(s: &[u8], sep: u8, escapes: bool) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < s.len() {
        if escapes && s[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i] == sep {
            out.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&s[start.min(s.len())..]);
    out
}

/// One path value: its sysroot path, escaped for overlay, or the value unchanged.
fn map_one(t: &Thread, value: &[u8], escapes: bool) -> Vec<u8> {
    let plain: Vec<u8> = if escapes {
        let mut v = Vec::with_capacity(value.len());
        let mut it = value.iter();
        while let Some(&c) = it.next() {
            if c == b'\\' {
                v.extend(it.next());
            } else {
                v.push(c);
            }
        }
        v
    } else {
        value.to_vec()
    };
    if plain.first() != Some(&b'/') {
        return value.to_vec();
    }
    let Ok(c) = CString::new(plain.clone()) else {
        return value.to_vec();
    };
    let mapped = super::fs::sysroot_path(t, c, true).into_bytes();
    if mapped == plain {
        return value.to_vec();
    }
    if !escapes {
        return mapped;
    }
    let mut out = Vec::with_capacity(mapped.len());
    for c in mapped {
        if matches!(c, b',' | b':' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

/// The value of option `key` of `fstype` with its paths under the sysroot; None when `key`
/// takes no path or nothing changed.
pub(crate) fn map_value(t: &Thread, fstype: &[u8], key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    t.proc.opts.sysroot.as_ref()?;
    let &(_, list) = path_keys(fstype).iter().find(|(k, _)| *k == key)?;
    let escapes = fstype == b"overlay";
    let out = if list {
        split(value, b':', escapes)
            .into_iter()
            .map(|v| {
                if v.is_empty() {
                    Vec::new()
                } else {
                    map_one(t, v, escapes)
                }
            })
            .collect::<Vec<_>>()
            .join(&b':')
    } else {
        map_one(t, value, escapes)
    };
    (out != value).then_some(out)
}

/// mount(2)'s option string `data` (up to its NUL) for a new mount of `fstype`, with the
/// paths of its path options under the sysroot; None when nothing changed.
pub(crate) fn map_data(t: &Thread, fstype: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    t.proc.opts.sysroot.as_ref()?;
    if path_keys(fstype).is_empty() {
        return None;
    }
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let escapes = fstype == b"overlay";
    let mut changed = false;
    let opts: Vec<Vec<u8>> = split(&data[..end], b',', escapes)
        .into_iter()
        .map(|opt| {
            let Some(eq) = opt.iter().position(|&b| b == b'=') else {
                return opt.to_vec();
            };
            match map_value(t, fstype, &opt[..eq], &opt[eq + 1..]) {
                Some(v) => {
                    changed = true;
                    [&opt[..=eq], &v[..]].concat()
                }
                None => opt.to_vec(),
            }
        })
        .collect();
    changed.then(|| opts.join(&b','))
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn split_keeps_escapes_and_empty_parts() {
        let s: &[u8] = b"a\\:b:c::d";
        assert_eq!(split(s, b':', true), vec![&b"a\\:b"[..], b"c", b"", b"d"]);
        assert_eq!(
            split(s, b':', false),
            vec![&b"a\\"[..], b"b", b"c", b"", b"d"]
        );
        assert_eq!(split(b"", b',', true), vec![&b""[..]]);
    }
}
