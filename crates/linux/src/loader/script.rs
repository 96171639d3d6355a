//! `#!` lines, parsed with binfmt_script's rules (Linux 5.1+): the line ends at the first
//! newline within the first 256 bytes; spaces and tabs separate the interpreter from one
//! optional argument (which keeps inner spaces); a line with no newline is accepted only if
//! the interpreter name visibly ends inside the buffer.

use super::BINPRM_BUF_SIZE;

fn spacetab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn terminator(c: u8) -> bool {
    spacetab(c) || c == 0
}

/// Returns (interpreter, optional argument), or why the line is not usable (ENOEXEC).
pub fn parse(head: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), &'static str> {
    // The kernel's buffer is zero-filled past the end of the file.
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = head.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    if buf[0] != b'#' || buf[1] != b'!' {
        return Err("not a #! script");
    }
    let buf_end = BINPRM_BUF_SIZE - 1;
    // The newline search stops at a NUL, like strnchr.
    let newline = buf
        .iter()
        .take_while(|&&c| c != 0)
        .position(|&c| c == b'\n');
    let mut i_end = match newline {
        Some(p) => p,
        None => {
            let first = (2..buf_end)
                .find(|&i| !spacetab(buf[i]))
                .ok_or("#! line holds only blanks")?;
            // No terminator after the name: the interpreter path was cut off.
            if !(first..buf_end).any(|i| terminator(buf[i])) {
                return Err("#! interpreter path is too long (truncated at 256 bytes)");
            }
            buf_end
        }
    };
    while i_end > 2 && spacetab(buf[i_end - 1]) {
        i_end -= 1;
    }
    buf[i_end] = 0;
    let i_name = (2..i_end)
        .find(|&i| !spacetab(buf[i]))
        .ok_or("#! line names no interpreter")?;
    let sep = (i_name..i_end).find(|&i| terminator(buf[i]));
    let cstr = |from: usize, to: usize| -> Vec<u8> {
        let s = &buf[from..to];
        let z = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        s[..z].to_vec()
    };
    let name_end = sep.unwrap_or(i_end);
    let name = cstr(i_name, name_end);
    if name.is_empty() {
        return Err("#! line names no interpreter");
    }
    let arg = match sep {
        Some(s) if buf[s] != 0 => (s..i_end)
            .find(|&i| !spacetab(buf[i]))
            .map(|a| cstr(a, i_end))
            .filter(|a| !a.is_empty()),
        _ => None,
    };
    Ok((name, arg))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn p(s: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), &'static str> {
        parse(s)
    }

    #[test]
    fn simple_lines() {
        assert_eq!(p(b"#!/bin/sh\necho").unwrap(), (b"/bin/sh".to_vec(), None));
        assert_eq!(
            p(b"#! /usr/bin/env  python3 -u  \n").unwrap(),
            (b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec()))
        );
        assert_eq!(p(b"#!/bin/sh").unwrap(), (b"/bin/sh".to_vec(), None));
        assert_eq!(
            p(b"#!\t/bin/awk\t-f\n").unwrap(),
            (b"/bin/awk".to_vec(), Some(b"-f".to_vec()))
        );
    }

    #[test]
    fn bad_lines() {
        assert!(p(b"#!\n").is_err());
        assert!(p(b"#!   \t \n").is_err());
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        assert!(p(&long).is_err());
        // A long argument is merely truncated.
        let mut arg = b"#!/bin/sh ".to_vec();
        arg.extend(std::iter::repeat_n(b'x', 300));
        let (n, a) = p(&arg).unwrap();
        assert_eq!(n, b"/bin/sh");
        assert_eq!(a.unwrap().len(), 255 - 10);
    }
}
