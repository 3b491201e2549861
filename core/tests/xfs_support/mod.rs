//! A real XFS filesystem with reflink for the tests that clone: a 320 MiB loop image, mounted in
//! a temporary folder and unmounted on drop. Needs root and `mkfs.xfs` (xfsprogs).

use std::path::PathBuf;
use std::process::Command;

/// A loop-mounted XFS image with reflink, unmounted on drop.
pub struct XfsMount {
    /// Where it is mounted.
    pub dir: PathBuf,
    _holder: tempfile::TempDir,
}

impl XfsMount {
    /// Makes and mounts the image, or says why it cannot here.
    pub fn new() -> Result<XfsMount, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not root: cannot mount a loop XFS image".into());
        }
        let holder = tempfile::tempdir().map_err(|e| e.to_string())?;
        let img = holder.path().join("xfs.img");
        let dir = holder.path().join("mnt");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(320 << 20))
            .map_err(|e| e.to_string())?;
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        run(Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&img))
        .map_err(|e| format!("mkfs.xfs (apt-get install xfsprogs): {e}"))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&dir))?;
        Ok(XfsMount {
            dir,
            _holder: holder,
        })
    }
}

impl Drop for XfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
