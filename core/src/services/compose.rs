//! Services and published ports of a compose file.
//!
//! The source of truth is the rendered file (`<compose> -f FILE config`, which resolves
//! interpolation, `extends` and `include`), cached by the digest of the file's text under the cache
//! folder; with no container runtime the compose YAML itself is parsed. Env var names come from the
//! raw YAML (`"${POSTGRES_PORT:-5432}:5432"` names `POSTGRES_PORT`), since rendering replaces them.
//!
//! Services with `profiles` none of which is active (`COMPOSE_PROFILES`) are left out, as a plain
//! `compose up` leaves them out.
//!
//! Port naming (as the Node server): a service's first published port is keyed by the service name;
//! further ports are `<service>-ui` (temporal's second), `<service>-console` (minio's second), else
//! `<service>-port<N>` with N the 1-based position. Env var: the one the YAML names, else the
//! contract's table ([`crate::services::ports::env_var_for`]). Base port: the YAML's default published port
//! (`${X:-5432}` or a literal `8080:80`), else the contract's base port.

use crate::error::{Error, Result};
use crate::services::containers::Engine;
use crate::services::ports::{ServicePort, base_port_for, default_service_ports, env_var_for};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};

/// The default compose file name.
pub const DEFAULT_COMPOSE_FILE: &str = "docker-compose.yml";

/// One service of a compose file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeService {
    /// The service name.
    pub name: String,
    /// Its `image`, if any.
    pub image: Option<String>,
    /// True when it has a `build` section.
    pub builds: bool,
    /// Its published ports, named for the registry.
    pub ports: Vec<ServicePort>,
}

/// Where a [`ComposeServices`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ServicesSource {
    /// `<compose> config` output.
    Rendered,
    /// A cached `<compose> config` result for the same file text.
    Cached,
    /// The compose YAML, parsed without a runtime.
    Yaml,
    /// No compose file: the contract's default services.
    Defaults,
}

/// The services of a project and the ports to allocate for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeServices {
    /// Services in file order (empty for [`ServicesSource::Defaults`]: nothing to start).
    pub services: Vec<ComposeService>,
    /// Every published port, in service order then port order: what the registry allocates.
    pub ports: Vec<ServicePort>,
    /// Where this came from.
    pub source: ServicesSource,
    /// Why the preferred source was not used (e.g. `config` failed), if it was not.
    pub note: Option<String>,
}

impl ComposeServices {
    /// The contract's default services (no compose file): ports only, no containers.
    pub fn defaults() -> Self {
        Self {
            services: Vec::new(),
            ports: default_service_ports(),
            source: ServicesSource::Defaults,
            note: None,
        }
    }

    /// Service names, in file order.
    pub fn service_names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    /// Images to pull: services' images that are not built locally, deduplicated, in order.
    pub fn images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.services {
            if let Some(i) = &s.image
                && !s.builds
                && !out.contains(i)
            {
                out.push(i.clone());
            }
        }
        out
    }

    /// The database-like services (the default critical set): a name or image naming postgres,
    /// mysql, mariadb, mongo, redis, valkey, or a name `db` / `database` / ending in `-db`.
    pub fn database_services(&self) -> Vec<String> {
        const WORDS: &[&str] = &["postgres", "mysql", "mariadb", "mongo", "redis", "valkey"];
        self.services
            .iter()
            .filter(|s| {
                let n = s.name.to_ascii_lowercase();
                let img = s.image.as_deref().unwrap_or("").to_ascii_lowercase();
                let img_name = img.rsplit('/').next().unwrap_or("");
                WORDS
                    .iter()
                    .any(|w| n.contains(w) || img_name.starts_with(w))
                    || n == "db"
                    || n == "database"
                    || n.ends_with("-db")
                    || n.ends_with("_db")
            })
            .map(|s| s.name.clone())
            .collect()
    }
}

/// A port entry of a compose service, before naming.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct PortSpec {
    /// The env var the host port names (`${API_PORT:-3000}`).
    env_var: Option<String>,
    /// The published port's default value.
    published: Option<u16>,
    /// The container port.
    target: Option<u16>,
}

/// Splits on `sep` outside `${...}`.
fn split_outside_braces(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let bytes: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    while i < bytes.len() {
        let (pos, c) = bytes[i];
        if c == '$' && bytes.get(i + 1).map(|b| b.1) == Some('{') {
            depth += 1;
            i += 2;
            continue;
        }
        if c == '}' && depth > 0 {
            depth -= 1;
        } else if c == sep && depth == 0 {
            parts.push(&s[start..pos]);
            start = pos + c.len_utf8();
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// `${NAME:-d}` / `${NAME-d}` / `${NAME}` / `$NAME` / a literal: (env var, default value text).
fn parse_interpolated(s: &str) -> (Option<String>, Option<String>) {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        let end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let name = &inner[..end];
        let rest = &inner[end..];
        let default = rest
            .strip_prefix(":-")
            .or_else(|| rest.strip_prefix('-'))
            .map(|d| d.to_string());
        return ((!name.is_empty()).then(|| name.to_string()), default);
    }
    if let Some(name) = s.strip_prefix('$')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return (Some(name.to_string()), None);
    }
    (None, Some(s.to_string()))
}

/// First number of `3000` / `3000-3005`, ignoring a `/tcp` suffix.
fn first_port(s: &str) -> Option<u16> {
    let s = s.split('/').next()?.trim();
    s.split('-').next()?.trim().parse().ok()
}

fn port_of_value(v: &Value) -> (Option<String>, Option<u16>) {
    match v {
        Value::Number(n) => (None, n.as_u64().and_then(|n| u16::try_from(n).ok())),
        Value::String(s) => {
            let (var, default) = parse_interpolated(s);
            (var, default.as_deref().and_then(first_port))
        }
        _ => (None, None),
    }
}

fn parse_port_entry(v: &Value) -> Option<PortSpec> {
    match v {
        Value::Number(n) => {
            let p = n.as_u64().and_then(|n| u16::try_from(n).ok())?;
            Some(PortSpec {
                env_var: None,
                published: Some(p),
                target: Some(p),
            })
        }
        Value::String(s) => {
            let s = s.trim();
            let s = split_outside_braces(s, '/')[0];
            // An IPv6 host address in brackets (`[::1]:8080:80`) is not split on its colons.
            let s = match (s.starts_with('['), s.find("]:")) {
                (true, Some(i)) => &s[i + 2..],
                _ => s,
            };
            let parts = split_outside_braces(s, ':');
            let (host, target) = match parts.len() {
                0 => return None,
                1 => (parts[0], parts[0]),
                n => (parts[n - 2], parts[n - 1]),
            };
            let (env_var, default) = parse_interpolated(host);
            let (_, target_text) = parse_interpolated(target);
            Some(PortSpec {
                env_var,
                published: default.as_deref().and_then(first_port),
                target: target_text.as_deref().and_then(first_port),
            })
        }
        Value::Mapping(m) => {
            let target = m.get("target").and_then(|t| port_of_value(t).1);
            let (env_var, published) = m
                .get("published")
                .map(port_of_value)
                .unwrap_or((None, None));
            Some(PortSpec {
                env_var,
                published: published.or(target),
                target,
            })
        }
        _ => None,
    }
}

/// Registry key of a service's `index`-th published port (0-based).
pub fn port_key(service: &str, index: usize) -> String {
    match (service, index) {
        (_, 0) => service.to_string(),
        ("temporal", 1) => "temporal-ui".to_string(),
        ("minio", 1) => "minio-console".to_string(),
        _ => format!("{service}-port{}", index + 1),
    }
}

struct RawService {
    name: String,
    image: Option<String>,
    builds: bool,
    ports: Vec<PortSpec>,
}

fn parse_services(text: &str, what: &str) -> Result<Vec<RawService>> {
    let mut doc: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::Parse {
        what: what.to_string(),
        message: e.to_string(),
    })?;
    // `<<: *anchor` merge keys, common in compose files (x- fragments).
    doc.apply_merge().map_err(|e| Error::Parse {
        what: what.to_string(),
        message: e.to_string(),
    })?;
    let services = match doc.get("services") {
        Some(Value::Mapping(m)) => m,
        Some(Value::Null) | None => return Ok(Vec::new()),
        Some(_) => {
            return Err(Error::Parse {
                what: what.to_string(),
                message: "`services` must be a mapping".into(),
            });
        }
    };
    let active: Vec<String> = std::env::var("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let out: Vec<RawService> = services
        .iter()
        .filter_map(|(k, v)| {
            let name = match k.as_str() {
                Some(n) => n.to_string(),
                None => format!("{k:?}"),
            };
            // A service with `profiles` is not part of a plain `up` unless one of its profiles is
            // active (COMPOSE_PROFILES), as compose itself decides.
            if let Some(Value::Sequence(profiles)) = v.get("profiles")
                && !profiles.is_empty()
                && !profiles
                    .iter()
                    .any(|p| p.as_str().is_some_and(|p| active.iter().any(|a| a == p)))
            {
                return None;
            }
            let image = v.get("image").and_then(|i| i.as_str()).map(String::from);
            let builds = v.get("build").is_some_and(|b| !b.is_null());
            let ports = match v.get("ports") {
                Some(Value::Sequence(seq)) => seq.iter().filter_map(parse_port_entry).collect(),
                _ => Vec::new(),
            };
            Some(RawService {
                name,
                image,
                builds,
                ports,
            })
        })
        .collect();
    for r in &out {
        super::names::check_service(what, &r.name, r.image.as_deref())?;
    }
    Ok(out)
}

fn name_ports(service: &str, specs: &[PortSpec]) -> Vec<ServicePort> {
    specs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let key = port_key(service, i);
            ServicePort {
                env_var: p.env_var.clone().unwrap_or_else(|| env_var_for(&key)),
                base_port: p.published.unwrap_or_else(|| base_port_for(&key)),
                name: key,
            }
        })
        .collect()
}

fn assemble(services: Vec<ComposeService>, source: ServicesSource) -> ComposeServices {
    let ports = services.iter().flat_map(|s| s.ports.clone()).collect();
    ComposeServices {
        services,
        ports,
        source,
        note: None,
    }
}

/// Services and ports from a compose file's YAML text (no runtime needed). `text` may come from a
/// file or from a git blob.
pub fn parse_compose_yaml(text: &str) -> Result<ComposeServices> {
    let raw = parse_services(text, "compose file")?;
    let services = raw
        .into_iter()
        .map(|r| ComposeService {
            ports: name_ports(&r.name, &r.ports),
            name: r.name,
            image: r.image,
            builds: r.builds,
        })
        .collect();
    Ok(assemble(services, ServicesSource::Yaml))
}

/// Services and ports from `<compose> config` output (YAML or JSON), with env var names and
/// default ports taken from the raw compose text `raw` when given (matched by service and
/// container port, else by position).
pub fn parse_rendered_config(rendered: &str, raw: Option<&str>) -> Result<ComposeServices> {
    let mut rendered = parse_services(rendered, "rendered compose config")?;
    let raw = match raw {
        Some(t) => parse_services(t, "compose file").unwrap_or_default(),
        None => Vec::new(),
    };
    // Renderers may sort services (podman-compose does): keep the file's order where known.
    rendered.sort_by_key(|r| {
        raw.iter()
            .position(|x| x.name == r.name)
            .unwrap_or(usize::MAX)
    });
    let services = rendered
        .into_iter()
        .map(|mut r| {
            if let Some(src) = raw.iter().find(|x| x.name == r.name) {
                let mut used = vec![false; src.ports.len()];
                for (i, p) in r.ports.iter_mut().enumerate() {
                    let by_target =
                        src.ports.iter().enumerate().position(|(j, q)| {
                            !used[j] && q.target.is_some() && q.target == p.target
                        });
                    let j = by_target.or_else(|| (i < used.len() && !used[i]).then_some(i));
                    if let Some(j) = j {
                        used[j] = true;
                        let q = &src.ports[j];
                        if q.env_var.is_some() {
                            p.env_var = q.env_var.clone();
                            if q.published.is_some() {
                                p.published = q.published;
                            }
                        }
                    }
                }
            }
            ComposeService {
                ports: name_ports(&r.name, &r.ports),
                name: r.name,
                image: r.image,
                builds: r.builds,
            }
        })
        .collect();
    Ok(assemble(services, ServicesSource::Rendered))
}

/// The cache file of a rendered config: `<cache_dir>/compose/<blake3(label, text)>.json`.
pub fn cache_path(cache_dir: &Path, engine_label: &str, text: &str) -> PathBuf {
    let mut h = blake3::Hasher::new();
    h.update(engine_label.as_bytes());
    h.update(&[0]);
    h.update(text.as_bytes());
    cache_dir
        .join("compose")
        .join(format!("{}.json", h.finalize().to_hex()))
}

/// The services of a project's compose file.
///
/// - `text`: the compose file's content (read from disk or from the `from` tree's blob); `None`
///   means the project has no compose file: the contract's default services.
/// - `on_disk`: where that file is on disk. `<compose> config` runs on it only when its content is
///   `text` (so a blob from another tree is never rendered from the wrong file).
/// - `engine`: the container engine; `None` parses the YAML.
/// - `cache_dir`: where rendered results are cached by the text's digest (`None`: no cache).
///
/// A failing `config` falls back to the YAML, with the reason in [`ComposeServices::note`].
pub async fn load_services(
    text: Option<&str>,
    on_disk: Option<&Path>,
    engine: Option<&Engine>,
    cache_dir: Option<&Path>,
) -> Result<ComposeServices> {
    let Some(text) = text else {
        return Ok(ComposeServices::defaults());
    };
    let Some(engine) = engine else {
        return parse_compose_yaml(text);
    };
    let cache = cache_dir.map(|d| cache_path(d, &engine.label(), text));
    if let Some(c) = &cache
        && let Ok(bytes) = std::fs::read(c)
        && let Ok(mut found) = serde_json::from_slice::<ComposeServices>(&bytes)
    {
        found.source = ServicesSource::Cached;
        return Ok(found);
    }
    let file = match on_disk {
        Some(p) if std::fs::read_to_string(p).is_ok_and(|t| t == text) => p,
        _ => {
            let mut s = parse_compose_yaml(text)?;
            s.note = Some("compose file not on disk with this content: parsed its YAML".into());
            return Ok(s);
        }
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    match engine.compose_config(file, dir).await {
        Ok(rendered) => {
            let found = parse_rendered_config(&rendered, Some(text))?;
            if let Some(c) = &cache
                && let Some(parent) = c.parent()
                && std::fs::create_dir_all(parent).is_ok()
            {
                let _ = crate::services::ports::write_atomic(c, &serde_json::to_vec(&found)?);
            }
            Ok(found)
        }
        Err(e) => {
            let mut s = parse_compose_yaml(text)?;
            s.note = Some(format!("`config` failed, parsed the YAML instead: {e}"));
            Ok(s)
        }
    }
}

/// True when only `<compose> config` can tell the services: the file `include`s others or a
/// service `extends` one. Anything else the YAML parse reads exactly as the renderer does.
pub fn needs_render(text: &str) -> bool {
    let Ok(doc) = serde_yaml_ng::from_str::<Value>(text) else {
        return true;
    };
    if doc.get("include").is_some() {
        return true;
    }
    match doc.get("services") {
        Some(Value::Mapping(m)) => m.values().any(|v| v.get("extends").is_some()),
        _ => false,
    }
}

/// Like [`load_services`], without waiting for `<compose> config` when it is not needed: on a
/// cache miss, a file the YAML parse reads exactly ([`needs_render`] false) is answered from its
/// YAML at once, and the rendered result is computed in the background (a tokio task) to fill
/// the digest cache for the next call. Files that `include` or `extends` are rendered first.
pub async fn load_services_fast(
    text: Option<&str>,
    on_disk: Option<&Path>,
    engine: Option<&Engine>,
    cache_dir: Option<&Path>,
) -> Result<ComposeServices> {
    let (Some(t), Some(engine)) = (text, engine) else {
        return load_services(text, on_disk, engine, cache_dir).await;
    };
    if needs_render(t) {
        return load_services(text, on_disk, Some(engine), cache_dir).await;
    }
    if let Some(dir) = cache_dir
        && let Ok(bytes) = std::fs::read(cache_path(dir, &engine.label(), t))
        && let Ok(mut found) = serde_json::from_slice::<ComposeServices>(&bytes)
    {
        found.source = ServicesSource::Cached;
        return Ok(found);
    }
    let mut parsed = parse_compose_yaml(t)?;
    if let (Some(file), Some(dir)) = (on_disk, cache_dir)
        && tokio::runtime::Handle::try_current().is_ok()
    {
        let (t, file, dir, engine) = (
            t.to_string(),
            file.to_path_buf(),
            dir.to_path_buf(),
            engine.clone(),
        );
        tokio::spawn(async move {
            let _ = load_services(Some(&t), Some(&file), Some(&engine), Some(&dir)).await;
        });
        parsed.note = Some("parsed the YAML; `config` runs in the background for the cache".into());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_and_splitting() {
        assert_eq!(
            split_outside_braces("${H:-127.0.0.1}:${P:-80}:80", ':'),
            vec!["${H:-127.0.0.1}", "${P:-80}", "80"]
        );
        assert_eq!(
            parse_interpolated("${API_PORT:-3000}"),
            (Some("API_PORT".into()), Some("3000".into()))
        );
        assert_eq!(parse_interpolated("$X"), (Some("X".into()), None));
        assert_eq!(port_key("temporal", 1), "temporal-ui");
        assert_eq!(port_key("minio", 1), "minio-console");
        assert_eq!(port_key("web", 2), "web-port3");
    }
}
