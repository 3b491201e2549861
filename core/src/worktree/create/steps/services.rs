//! `compose-services`: the container engine (`auto/docker/podman/none`) and the compose file's
//! services and ports (`compose config` only when the YAML cannot tell; its result is cached by
//! digest). A runtime asked for by name that is not installed is a progress message: the
//! worktree is made without containers. Must not start anything (`containers.rs` does).

use super::inputs::ProjectInputs;
use crate::optimizer::TaskError;
use crate::services::compose::{self, ComposeServices, ServicesSource};
use crate::services::containers::{self, ComposeProject, Engine};
use crate::worktree::create::Creation;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// The engine and the services. JSON: `{ engine, engineError, services, critical, source }`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicesLoaded {
    /// The engine found, if any (JSON: its label, `docker compose`, `podman-compose`).
    #[serde(rename = "engine", serialize_with = "engine_label")]
    pub engine: Option<Engine>,
    /// Why the engine asked for by name is not there.
    pub engine_error: Option<String>,
    /// The compose services (JSON: their names).
    #[serde(rename = "services", serialize_with = "service_names")]
    pub services: ComposeServices,
    /// The services started before "ready".
    pub critical: Vec<String>,
    /// Where the services came from.
    pub source: ServicesSource,
}

fn engine_label<S: serde::Serializer>(e: &Option<Engine>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_str(&e.label()),
        None => s.serialize_none(),
    }
}

fn service_names<S: serde::Serializer>(c: &ComposeServices, s: S) -> Result<S::Ok, S::Error> {
    c.service_names().serialize(s)
}

impl ServicesLoaded {
    /// The worktree's compose project, for `up`/`down` in its folder.
    pub fn project(&self, c: &Creation) -> ComposeProject {
        ComposeProject::for_worktree(&c.path, Path::new(c.state.settings.compose_file()))
    }

    /// [`project`](Self::project), unless a symbolic link is on the compose file's way in the
    /// worktree: then `None`, after a `⚠ <step> skipped: ... is a symbolic link` message (the
    /// engine would read the link's target).
    pub fn confined_project(&self, c: &Creation, step: &str) -> Option<ComposeProject> {
        let file = c.state.settings.compose_file();
        match super::ports_env_mcp::link_in_the_way(c, &c.path, file, (step, "containers")) {
            Ok(None) => Some(self.project(c)),
            Ok(Some(_)) => None,
            Err(e) => {
                c.emit("containers", format!("⚠ {step} skipped: {}", e.message));
                None
            }
        }
    }

    /// The services to start before "ready" and the others, in file order.
    pub fn split_critical(&self) -> (Vec<String>, Vec<String>) {
        containers::split_critical(&self.services.service_names(), &self.critical)
    }
}

/// Finds the engine and loads the compose file's services.
pub async fn load_services(
    c: Arc<Creation>,
    inputs: Arc<ProjectInputs>,
) -> Result<ServicesLoaded, TaskError> {
    let settings = &c.state.settings;
    let mut engine_error = None;
    let engine = if inputs.compose_text.is_some() {
        match containers::detect(settings.runtime, &Default::default()).await {
            Ok(e) => e,
            Err(e) => {
                let m = format!("containers skipped: {}", e.full_message());
                c.emit("containers", m.clone());
                engine_error = Some(m);
                None
            }
        }
    } else {
        None
    };
    let on_disk = c.state.root.join(settings.compose_file());
    // `<compose> config` (~1 s) only when the YAML cannot tell (include/extends); else it runs in
    // the background to fill the digest cache.
    let services = compose::load_services_fast(
        inputs.compose_text.as_deref(),
        Some(&on_disk),
        engine.as_ref(),
        Some(&c.state.cache_dir),
    )
    .await?;
    let critical = match &settings.critical_services {
        Some(list) => list.clone(),
        None => services.database_services(),
    };
    Ok(ServicesLoaded {
        engine,
        engine_error,
        source: services.source,
        services,
        critical,
    })
}
