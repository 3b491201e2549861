//! The critical containers, before "ready": `pull-images` (their images, pulled at once, beside
//! the checkout) and `docker-compose-up` (`up -d` of the critical services once `.env` is
//! written). Both are optional: a container failure is a progress message, never a failed
//! creation. The other services start in the background after ready (`create/background.rs`).
//! Must not stop containers (removal and the undo of a cancelled creation do).

use super::ports_env_mcp::EnvWritten;
use super::services::ServicesLoaded;
use crate::optimizer::TaskError;
use crate::services::containers::{ContainerOutcome, LineSink, RuntimeChoice};
use crate::worktree::create::Creation;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The critical services' images. JSON: one outcome per image, or `{ skipped: "no container
/// runtime" }`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ImagesPulled {
    /// No engine: nothing pulled.
    Skipped {
        /// Why.
        skipped: &'static str,
    },
    /// One outcome per image (pulled, or found present).
    Pulled(Vec<ContainerOutcome>),
}

/// Pulls the images of the critical services that are not built locally.
pub async fn pull_images(
    c: Arc<Creation>,
    services: Arc<ServicesLoaded>,
) -> Result<ImagesPulled, TaskError> {
    let Some(engine) = &services.engine else {
        return Ok(ImagesPulled::Skipped {
            skipped: "no container runtime",
        });
    };
    let images: Vec<String> = services
        .services
        .services
        .iter()
        .filter(|s| services.critical.contains(&s.name) && !s.builds)
        .filter_map(|s| s.image.clone())
        .collect();
    let outs = c.until_cancelled(engine.pull_images(&images, None)).await?;
    Ok(ImagesPulled::Pulled(outs))
}

/// The critical services. JSON: `{ skipped: why }`, `{ started: [] }` (none to start), or the
/// `up` command's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CriticalStarted {
    /// No engine or no compose file.
    Skipped {
        /// Why.
        skipped: &'static str,
    },
    /// No critical service.
    NoneCritical {
        /// Always empty.
        started: [String; 0],
    },
    /// `up -d` of the critical services ran.
    Up(ContainerOutcome),
}

/// Starts the critical services (`up -d`), after `.env` and their image pulls.
pub async fn start_critical(
    c: Arc<Creation>,
    (_, _, services): (
        Arc<EnvWritten>,
        Option<Arc<ImagesPulled>>,
        Arc<ServicesLoaded>,
    ),
) -> Result<CriticalStarted, TaskError> {
    let Some(engine) = &services.engine else {
        let why = if c.state.settings.runtime == RuntimeChoice::None {
            "runtime none"
        } else {
            "no compose file or no container runtime"
        };
        c.emit("containers", format!("✓ Containers skipped ({why})"));
        return Ok(CriticalStarted::Skipped { skipped: why });
    };
    let (critical, _) = services.split_critical();
    if critical.is_empty() {
        c.emit("containers", "✓ No critical services to start before ready");
        return Ok(CriticalStarted::NoneCritical { started: [] });
    }
    let Some(project) = services.confined_project(&c, "docker-compose-up") else {
        return Ok(CriticalStarted::Skipped {
            skipped: "a symbolic link is on the compose file's way",
        });
    };
    c.emit("containers", format!("Starting {}", critical.join(", ")));
    let c2 = Arc::clone(&c);
    let sink: LineSink = Arc::new(move |l: &str| c2.emit("containers", l.to_string()));
    let out = c
        .until_cancelled(engine.up(&project, &critical, Some(sink), Duration::from_secs(600)))
        .await?;
    c.emit(
        if out.ok { "database" } else { "containers" },
        out.message.clone(),
    );
    Ok(CriticalStarted::Up(out))
}
