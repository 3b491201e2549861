//! The byte formats the OS hands out about processes and sockets, parsed as pure functions so
//! that every one is compiled and tested on every platform (the macOS `KERN_PROCARGS2` layout
//! included, on Linux). Reads nothing itself.

/// Listening ports in the text of a Linux `/proc/net/tcp{,6}` table (rows in state `0A`;
/// tested through [`crate::services::ports::parse_proc_net_tcp`]).
pub fn proc_net_tcp_listeners(text: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            if state != "0A" {
                return None;
            }
            let port_hex = local.rsplit(':').next()?;
            u16::from_str_radix(port_hex, 16).ok()
        })
        .collect()
}

/// The NUL-terminated strings of a buffer such as Linux's `/proc/<pid>/environ`; empty strings
/// are skipped.
pub fn nul_separated(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|b| *b == 0).filter(|s| !s.is_empty())
}

/// The environment entries (`NAME=value`) in a macOS `sysctl(KERN_PROCARGS2)` buffer.
///
/// Layout (XNU `sysctl_procargsx`, read the same way by psutil): `argc` as a native-endian
/// 32-bit integer; the executable path, NUL-terminated; NUL padding; `argc` arguments, each
/// NUL-terminated; then the environment entries, each NUL-terminated, up to an empty string.
/// A truncated or malformed buffer yields what could be read, never a panic.
pub fn procargs2_env(buf: &[u8]) -> Vec<&[u8]> {
    let Some(argc) = buf.get(..4) else {
        return Vec::new();
    };
    let mut argc = i32::from_ne_bytes([argc[0], argc[1], argc[2], argc[3]]).max(0);
    let mut rest = &buf[4..];
    // the executable path
    match rest.iter().position(|b| *b == 0) {
        Some(end) => rest = &rest[end..],
        None => return Vec::new(),
    }
    // the padding before the first argument
    let start = rest.iter().position(|b| *b != 0).unwrap_or(rest.len());
    rest = &rest[start..];
    // the arguments
    while argc > 0 {
        match rest.iter().position(|b| *b == 0) {
            Some(end) => rest = &rest[end + 1..],
            None => return Vec::new(),
        }
        argc -= 1;
    }
    // the environment, up to an empty string
    let mut env = Vec::new();
    while let Some(end) = rest.iter().position(|b| *b == 0) {
        if end == 0 {
            break;
        }
        env.push(&rest[..end]);
        rest = &rest[end + 1..];
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer laid out as XNU lays out `KERN_PROCARGS2`.
    fn procargs(argc: i32, exec: &str, pad: usize, args: &[&str], env: &[&str]) -> Vec<u8> {
        let mut b = argc.to_ne_bytes().to_vec();
        b.extend_from_slice(exec.as_bytes());
        b.push(0);
        b.extend(std::iter::repeat_n(0, pad));
        for s in args.iter().chain(env) {
            b.extend_from_slice(s.as_bytes());
            b.push(0);
        }
        // the end of the strings area, then what follows it on the stack
        b.extend_from_slice(b"\0\0ptr_munge=\0");
        b
    }

    #[test]
    fn procargs2_environment_follows_the_arguments() {
        let b = procargs(
            3,
            "/usr/local/bin/node",
            5,
            &["node", "npm-cli.js", "ci"],
            &["HOME=/Users/me", "VIBETREES_INSTALL_DIR=/w/a b", "X="],
        );
        let env = procargs2_env(&b);
        assert_eq!(
            env,
            vec![
                &b"HOME=/Users/me"[..],
                &b"VIBETREES_INSTALL_DIR=/w/a b"[..],
                &b"X="[..]
            ]
        );
        // an argument that looks like an entry is not one
        let b = procargs(2, "/bin/sh", 0, &["sh", "A=1"], &["B=2"]);
        assert_eq!(procargs2_env(&b), vec![&b"B=2"[..]]);
    }

    #[test]
    fn procargs2_truncated_or_malformed_never_panics() {
        let full = procargs(2, "/bin/sh", 3, &["sh", "-c"], &["A=1", "B=2"]);
        for n in 0..full.len() {
            let _ = procargs2_env(&full[..n]);
        }
        assert!(procargs2_env(&[]).is_empty());
        assert!(procargs2_env(&(-5i32).to_ne_bytes()).is_empty());
        // more arguments announced than present: nothing
        let b = procargs(9, "/bin/sh", 0, &["sh"], &["A=1"]);
        assert!(procargs2_env(&b).is_empty());
    }

    #[test]
    fn environ_entries_are_split_on_nul() {
        let v: Vec<&[u8]> = nul_separated(b"A=1\0B=2\0\0").collect();
        assert_eq!(v, vec![&b"A=1"[..], &b"B=2"[..]]);
    }
}
