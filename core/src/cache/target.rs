//! What a restore may replace: only a real `node_modules` folder, and only when told.

use crate::{Error, Result};
use std::path::Path;

/// Refuses a restore target that would replace what is not ours to replace: an existing target
/// that is not a real folder named `node_modules` (a link, a file, a project folder) is
/// [`Error::InvalidArgument`]; an existing `node_modules` folder is [`Error::AlreadyExists`]
/// unless `replace`. A target that does not exist is fine.
pub fn check_target(target: &Path, replace: bool) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return Ok(());
    };
    let named = target.file_name().is_some_and(|n| n == "node_modules");
    if !meta.is_dir() || !named {
        return Err(Error::InvalidArgument(format!(
            "restore target {} exists and is not a node_modules folder: refusing to replace it",
            target.display()
        )));
    }
    if !replace {
        return Err(Error::AlreadyExists(format!(
            "restore target {} exists: say replace (`--replace`, `replace: true`) to replace it",
            target.display()
        )));
    }
    Ok(())
}
