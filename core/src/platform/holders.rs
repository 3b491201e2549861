//! Who holds what, for recovery: the "world" a process id means something in (the boot and the
//! pid namespace, written into our markers beside a pid), whether a marker's holder may still
//! run, and which processes hold a file open (a git `.lock` file).
//!
//! Every doubt answers "alive" / "held": deleting what a live process still uses loses data.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a pid is meaningful: the boot and the pid namespace of the process that wrote it. A
/// field is `None` where the platform does not tell (then a pid is never judged dead by it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessWorld {
    /// Linux: `/proc/sys/kernel/random/boot_id`.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Linux: the target of `/proc/self/ns/pid` (e.g. `pid:[4026531836]`).
    #[serde(default)]
    pub pid_ns: Option<String>,
}

/// The world of this process.
pub fn this_world() -> ProcessWorld {
    #[cfg(target_os = "linux")]
    {
        ProcessWorld {
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        ProcessWorld::default()
    }
}

/// True unless process `pid` of `world` is certainly gone. A pid written in another boot (or on
/// another machine sharing the folder: the two cannot be told apart) or in another pid namespace
/// (a container) cannot be checked from here, and neither can one whose world is unknown while
/// ours is known: all count as alive. In our own world: [`crate::process::alive`] (`EPERM`, a
/// process of another user, is alive).
pub fn holder_alive(pid: u32, world: &ProcessWorld) -> bool {
    let ours = this_world();
    if world != &ours {
        return true;
    }
    crate::process::alive(pid)
}

/// A short, stable tag of `world` for the names of folders that carry a pid (`w` and 16 hex
/// digits: FNV-1a over its fields, the same in every build and binding), so a name left in a
/// shared folder says in which world its pid means something. No `-` in it.
pub fn world_tag(world: &ProcessWorld) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for field in [&world.boot_id, &world.pid_ns] {
        // a field's presence and its bytes, then a separator no field contains
        let bytes = field.as_deref().map(str::as_bytes);
        for b in [u8::from(bytes.is_some())]
            .iter()
            .chain(bytes.unwrap_or_default())
            .chain(&[0u8])
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("w{h:016x}")
}

/// The [`world_tag`] of this process (computed once).
pub fn this_world_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| world_tag(&this_world()))
}

/// True unless process `pid`, named in a folder name with world tag `tag`, is certainly gone.
/// A name of another world, or one without a tag (written before names carried one: its world
/// is unknown), counts as alive; in our world, [`crate::process::alive`].
pub fn tagged_holder_alive(pid: u32, tag: Option<&str>) -> bool {
    match tag {
        Some(t) if t == this_world_tag() => crate::process::alive(pid),
        _ => true,
    }
}

/// The processes that hold `path` open (Linux: every `/proc/<pid>/fd` we may read), or `None`
/// when that cannot be known: not Linux, `/proc` unreadable, or the file belongs to another user
/// (whose processes' descriptors we may not read).
pub fn file_holders(path: &Path) -> Option<Vec<u32>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path).ok()?;
        // SAFETY: geteuid has no preconditions.
        if meta.uid() != unsafe { libc::geteuid() } {
            return None;
        }
        let target = std::fs::canonicalize(path).ok()?;
        let procs = std::fs::read_dir("/proc").ok()?;
        let mut out = Vec::new();
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            if fds
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == target))
            {
                out.push(pid);
            }
        }
        Some(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_of_another_world_is_never_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let ours = this_world();
        if ours.boot_id.is_some() {
            assert!(!holder_alive(pid, &ours), "a reaped child of ours is dead");
        }
        let other_ns = ProcessWorld {
            pid_ns: Some("pid:[1]".into()),
            ..ours.clone()
        };
        assert!(holder_alive(pid, &other_ns));
        let other_boot = ProcessWorld {
            boot_id: Some("another-boot".into()),
            ..ours.clone()
        };
        assert!(holder_alive(pid, &other_boot));
        assert!(holder_alive(pid, &ProcessWorld::default()) || ours == ProcessWorld::default());
    }

    #[test]
    fn a_world_tag_tells_worlds_apart_and_a_name_of_another_world_is_never_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let ours = this_world();
        let tag = world_tag(&ours);
        assert_eq!(tag, this_world_tag());
        assert_eq!(tag.len(), 17);
        assert!(!tag.contains('-'));
        let other_ns = ProcessWorld {
            pid_ns: Some("pid:[1]".into()),
            ..ours.clone()
        };
        let other_boot = ProcessWorld {
            boot_id: Some("another-boot".into()),
            ..ours.clone()
        };
        for other in [&other_ns, &other_boot] {
            assert_ne!(world_tag(other), tag);
            assert!(tagged_holder_alive(pid, Some(&world_tag(other))));
        }
        assert_ne!(world_tag(&ProcessWorld::default()), world_tag(&other_ns));
        // untagged (an older name): its world is unknown, so alive
        assert!(tagged_holder_alive(pid, None));
        // our world: the reaped child is dead, this process is not
        assert!(!tagged_holder_alive(pid, Some(&tag)));
        assert!(tagged_holder_alive(std::process::id(), Some(&tag)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_held_open_by_a_live_process_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.lock");
        std::fs::write(&f, "").unwrap();
        assert_eq!(file_holders(&f), Some(vec![]));
        let held = std::fs::File::open(&f).unwrap();
        assert_eq!(file_holders(&f), Some(vec![std::process::id()]));
        drop(held);
    }
}
