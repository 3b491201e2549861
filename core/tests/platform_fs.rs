//! The filesystem side of `platform` on real files: the native stat (`statx` on Linux) and the
//! portable one (`fstatat`, what macOS runs) agree on every kind of file; directory handles
//! never follow a link on either path; a clone where the filesystem cannot clone leaves nothing;
//! the contents copy moves every byte, falling back where `copy_file_range` cannot.

use rustix::fd::AsFd;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use vibetrees_core::platform::{self, portable};

fn tree(root: &Path) {
    std::fs::write(root.join("plain"), b"hello world").unwrap();
    std::fs::write(root.join("exec"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("exec"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("private"), b"").unwrap();
    std::fs::set_permissions(root.join("private"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(root.join("dir")).unwrap();
    std::fs::set_permissions(root.join("dir"), std::fs::Permissions::from_mode(0o750)).unwrap();
    symlink("plain", root.join("link")).unwrap();
    symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    std::fs::write(root.join("ünïcode naïve.js"), vec![b'x'; 70_000]).unwrap();
    // an mtime with nanoseconds, far in the past
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(root.join("plain"))
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn native_and_portable_stat_agree_on_every_kind_of_file() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let fd = platform::open_dir_handle_path(dir.path()).unwrap();
    for name in [
        "plain",
        "exec",
        "private",
        "dir",
        "link",
        "dangling",
        "ünïcode naïve.js",
    ] {
        let c = std::ffi::CString::new(name).unwrap();
        let native = platform::stat_at(fd.as_fd(), &c).unwrap();
        let fallback = portable::stat_at(fd.as_fd(), &c).unwrap();
        assert_eq!(native, fallback, "{name}");
        let std_meta = std::fs::symlink_metadata(dir.path().join(name)).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(native.mode, std_meta.mode(), "{name}");
        assert_eq!(native.size, std_meta.size(), "{name}");
        assert_eq!(native.ino, std_meta.ino(), "{name}");
        assert_eq!(native.dev, std_meta.dev(), "{name}");
        assert_eq!(
            (native.mtime_sec, i64::from(native.mtime_nsec)),
            (std_meta.mtime(), std_meta.mtime_nsec()),
            "{name}"
        );
    }
    let plain = platform::stat_at(fd.as_fd(), c"plain").unwrap();
    assert_eq!(
        (plain.mtime_sec, plain.mtime_nsec),
        (1_000_000_000, 123_456_789)
    );
    assert_eq!(
        platform::stat_at(fd.as_fd(), c"exec")
            .unwrap()
            .permissions(),
        0o755
    );
    assert!(
        platform::stat_at(fd.as_fd(), c"link")
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for stat in [platform::stat_at, portable::stat_at] {
        assert_eq!(stat(fd.as_fd(), c"missing"), Err(rustix::io::Errno::NOENT));
    }
    assert_eq!(
        platform::fstat(fd.as_fd()).unwrap(),
        portable::stat_at(
            platform::open_dir_handle_path(dir.path().parent().unwrap())
                .unwrap()
                .as_fd(),
            &std::ffi::CString::new(dir.path().file_name().unwrap().as_encoded_bytes()).unwrap()
        )
        .unwrap()
    );
}

#[test]
fn directory_handles_never_follow_a_link_on_either_path() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    symlink("dir", dir.path().join("dir-link")).unwrap();
    let fd = platform::open_dir_handle_path(dir.path()).unwrap();
    for (name, open) in [
        ("native", platform::open_dir_handle as fn(_, _) -> _),
        ("portable", portable::open_dir_handle),
    ] {
        let d = open(fd.as_fd(), c"dir").unwrap();
        // usable for *at calls
        assert!(platform::stat_at(d.as_fd(), c"nothing").is_err());
        let e = open(fd.as_fd(), c"dir-link").unwrap_err();
        assert!(
            e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR,
            "{name}: {e:?}"
        );
        assert!(open(fd.as_fd(), c"plain").is_err(), "{name}: a file");
    }
    // the portable handle of a path is a folder handle as well
    let p = portable::open_dir_handle_path(dir.path()).unwrap();
    assert_eq!(portable::fstat(p.as_fd()), platform::fstat(fd.as_fd()));
}

#[test]
fn a_clone_the_filesystem_refuses_leaves_nothing_behind() {
    // tmpfs cannot clone (no reflink); the portable clone never can
    let Some(shm) = Some(Path::new("/dev/shm")).filter(|p| p.is_dir()) else {
        eprintln!("SKIP: no /dev/shm");
        return;
    };
    let dir = tempfile::tempdir_in(shm).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::create_dir(dir.path().join("dst")).unwrap();
    std::fs::write(dir.path().join("src/f"), b"data").unwrap();
    let src = platform::open_dir_handle_path(&dir.path().join("src")).unwrap();
    let dst = platform::open_dir_handle_path(&dir.path().join("dst")).unwrap();
    for clone in [platform::clone_file_at, portable::clone_file_at] {
        let e = clone(src.as_fd(), dst.as_fd(), c"f", 0o644).unwrap_err();
        assert!(platform::clone_unsupported(e), "{e:?}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("dst")).unwrap().count(),
            0
        );
    }
}

/// Copies `src` into a new file `dst` with `platform::copy_contents` and returns what landed.
fn copy_via_platform(src: &Path, dst: &Path) -> Vec<u8> {
    let s: rustix::fd::OwnedFd = std::fs::File::open(src).unwrap().into();
    let d: rustix::fd::OwnedFd = std::fs::File::create_new(dst).unwrap().into();
    platform::copy_contents(&s, &d).unwrap();
    drop(d);
    std::fs::read(dst).unwrap()
}

#[test]
fn copy_contents_copies_every_byte_and_falls_back_where_the_kernel_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // empty, small, and several MiB of varied bytes (more than one page cache page, one call)
    let big: Vec<u8> = (0..5u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("small", b"abc".to_vec()),
        ("big", big),
    ] {
        std::fs::write(d.join(name), &bytes).unwrap();
        let got = copy_via_platform(&d.join(name), &d.join(format!("{name}.copy")));
        assert_eq!(got.len(), bytes.len(), "{name}");
        assert!(got == bytes, "{name}: contents differ");
    }
    // a virtual file whose size reads as 0 but that has contents (copy_file_range cannot copy it)
    if Path::new("/proc/self/status").exists() {
        let got = copy_via_platform(Path::new("/proc/self/status"), &d.join("status.copy"));
        assert!(
            got.starts_with(b"Name:"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
}
