//! `npm-bootstrap`: node_modules into place once the checkout is done. On a hit, the restored
//! tree is renamed in; on a near hit, renamed in and then `npm install --prefer-offline` installs
//! the difference (a failed one falls back to the clean install on a fresh tree); on a miss, the
//! project's own install (`npm run bootstrap`, pnpm, yarn, bun, `npm ci`), its output lines as
//! progress. A failed clean install is reported, not a failed creation. Cancelling the creation
//! stops the install at once. Must not populate the cache (the background does, after ready).

use super::cache_restore::CacheRestored;
use super::git_add::WorktreeAdded;
use super::inputs::ProjectInputs;
use super::ports_env_mcp::link_in_the_way;
use crate::Error;
use crate::optimizer::TaskError;
use crate::worktree::create::Creation;
use crate::worktree::install::{self, InstallCommand};
use crate::worktree::outcome::CacheOutcome;
use serde::{Serialize, Serializer};
use std::path::Path;
use std::sync::Arc;

/// What the step did. JSON (tagged by `outcome`): `{ outcome: "hit" }`, `{ outcome: "near",
/// command }` (`command` null when installs are off), `{ outcome: "none" }` (no package.json),
/// `{ outcome: "skipped", command }` (installs off), `{ outcome: "installed", command }`,
/// `{ outcome: "failed", command, error }`, `{ outcome: "refused", reason }` (a committed
/// `node_modules` link).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Bootstrap {
    /// The restored tree was renamed into place.
    Hit,
    /// A near entry, then the difference installed (`command`), unless installs are off.
    Near {
        /// The incremental install run.
        command: Option<String>,
    },
    /// No package.json: nothing to install.
    #[serde(rename = "none")]
    NoPackage,
    /// Installs are off; this would have run.
    Skipped {
        /// The install that would have run.
        command: String,
    },
    /// The clean install ran.
    Installed {
        /// The install run.
        command: String,
    },
    /// The branch commits `node_modules` as a symbolic link: nothing is restored, installed or
    /// populated through it (the creation goes on).
    #[serde(rename = "refused")]
    LinkedNodeModules {
        /// Why.
        reason: String,
    },
    /// The clean install failed (the worktree is made; the error is reported).
    Failed {
        /// The install run.
        command: String,
        /// Its error.
        error: String,
    },
}

/// The step's output: [`Bootstrap`] (its JSON) and what it changes in the creation's cache
/// report.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// What was done.
    pub outcome: Bootstrap,
    /// The install run last, if any (the report's `installCommand`).
    pub install_command: Option<String>,
    /// The clean install's error, if it failed.
    pub install_error: Option<String>,
    /// True when the cache is to be populated from the new node_modules after ready.
    pub populate: bool,
    /// True when a near entry's install failed and the clean install ran instead (the report's
    /// outcome becomes `miss`).
    pub near_failed: bool,
}

impl Serialize for Bootstrapped {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.outcome.serialize(s)
    }
}

impl Bootstrapped {
    fn done(outcome: Bootstrap) -> Self {
        Self {
            outcome,
            install_command: None,
            install_error: None,
            populate: false,
            near_failed: false,
        }
    }
}

/// Puts node_modules into the worktree: restored, restored then topped up, or installed.
pub async fn bootstrap(
    c: Arc<Creation>,
    (_, restored, inputs): (Arc<WorktreeAdded>, Arc<CacheRestored>, Arc<ProjectInputs>),
) -> Result<Bootstrapped, TaskError> {
    let target = c.path.join("node_modules");
    let install = c.state.settings.install;
    let mut near_failed = false;
    let mut near_command = None;
    if inputs.package_json.is_some()
        && let Some(link) = link_in_the_way(&c, &c.path, "node_modules", ("install", "install"))?
    {
        return Ok(Bootstrapped::done(Bootstrap::LinkedNodeModules {
            reason: format!("{} is a symbolic link", link.display()),
        }));
    }
    if let Some(staged) = &restored.staged {
        if std::fs::symlink_metadata(&target).is_err() {
            std::fs::rename(staged, &target)
                .map_err(|e| Error::io_path("move node_modules into", &target, e))?;
        }
        if restored.outcome == CacheOutcome::Hit {
            c.emit(
                "install",
                format!(
                    "✓ node_modules restored from cache ({} files, {})",
                    restored.files.unwrap_or(0),
                    restored.method.clone().unwrap_or_default()
                ),
            );
            return Ok(Bootstrapped::done(Bootstrap::Hit));
        }
        // a near entry: install the difference
        let cmd = install::incremental_install(&inputs.lockfiles)
            .ok_or_else(|| TaskError::new("near entry without npm lockfile"))?;
        if !install {
            return Ok(Bootstrapped::done(Bootstrap::Near { command: None }));
        }
        c.emit(
            cmd.step,
            format!("Installing the difference: {}", cmd.display()),
        );
        match run(&c, &cmd).await? {
            Ok(()) => {
                c.emit(
                    cmd.step,
                    format!(
                        "✓ Dependencies installed ({} files from a near entry, then {})",
                        restored.files.unwrap_or(0),
                        cmd.display()
                    ),
                );
                let populate = c.state.cache.is_some() && inputs.cache_key.is_some();
                return Ok(Bootstrapped {
                    install_command: Some(cmd.display()),
                    populate,
                    ..Bootstrapped::done(Bootstrap::Near {
                        command: Some(cmd.display()),
                    })
                });
            }
            Err(e) => {
                // fall back to the clean install, on a fresh node_modules
                c.emit(
                    cmd.step,
                    format!(
                        "incremental install failed, clean install instead: {}",
                        e.full_message()
                    ),
                );
                let _ = std::fs::create_dir_all(&c.staging);
                let _ = std::fs::rename(&target, c.staging.join("node_modules.failed"));
                near_failed = true;
                near_command = Some(cmd.display());
            }
        }
    }
    let Some(cmd) = install::clean_install(inputs.package_json.as_ref(), &inputs.lockfiles) else {
        return Ok(Bootstrapped {
            install_command: near_command,
            near_failed,
            ..Bootstrapped::done(Bootstrap::NoPackage)
        });
    };
    if !install {
        return Ok(Bootstrapped::done(Bootstrap::Skipped {
            command: cmd.display(),
        }));
    }
    c.emit(cmd.step, format!("Running {}", cmd.display()));
    let command = cmd.display();
    match run(&c, &cmd).await? {
        Ok(()) => {
            c.emit(cmd.step, format!("✓ Dependencies installed ({command})"));
            let populate = c.state.cache.is_some()
                && inputs.cache_key.is_some()
                && std::fs::symlink_metadata(c.path.join("node_modules")).is_ok_and(|m| m.is_dir()); // a link to elsewhere is never cached
            Ok(Bootstrapped {
                install_command: Some(command.clone()),
                populate,
                near_failed,
                ..Bootstrapped::done(Bootstrap::Installed { command })
            })
        }
        Err(e) => {
            // A failed install is reported; the worktree itself is made.
            let error = e.full_message();
            c.emit(cmd.step, format!("{command} failed: {error}"));
            Ok(Bootstrapped {
                install_command: Some(command.clone()),
                install_error: Some(error.clone()),
                near_failed,
                ..Bootstrapped::done(Bootstrap::Failed { command, error })
            })
        }
    }
}

/// Runs `cmd` in the worktree, stopped (the package manager killed) when the creation is
/// cancelled: the outer error is the cancellation, the inner result the install's.
async fn run(c: &Creation, cmd: &InstallCommand) -> Result<crate::Result<()>, TaskError> {
    let progress = c.state.on_progress.as_ref();
    let timeout = c.state.settings.install_timeout;
    c.until_cancelled(install::run(
        cmd,
        Path::new(&c.path),
        &c.name,
        progress,
        timeout,
    ))
    .await
}
