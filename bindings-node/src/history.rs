//! `History`: the creations recorded by `WorktreeManager` (timings per step, critical paths,
//! Chrome traces) in `~/.vibetrees/history.sqlite`. Every read opens the database on a blocking
//! thread, so the event loop never waits on SQLite.

use std::path::PathBuf;

use napi::Env;
use napi::bindgen_prelude::PromiseRaw;
use napi_derive::napi;
use vibetrees_core::worktree::history::{History, default_history_path};

use crate::errors::spawn_blocking;

/// Options of `new History(options?)`.
#[napi(object)]
pub struct HistoryOptions {
    /// The history database; default `~/.vibetrees/history.sqlite`.
    pub path: Option<String>,
}

/// Read access to the recorded creations.
#[napi(js_name = "History")]
pub struct JsHistory {
    path: Option<PathBuf>,
}

impl JsHistory {
    fn open(path: &Option<PathBuf>) -> vibetrees_core::Result<History> {
        match path {
            Some(p) => History::open(p),
            None => History::open(&default_history_path()),
        }
    }
}

#[napi]
impl JsHistory {
    /// A history reader (nothing is opened until a method is called).
    #[napi(constructor)]
    pub fn new(options: Option<HistoryOptions>) -> Self {
        Self {
            path: options.and_then(|o| o.path).map(PathBuf::from),
        }
    }

    /// The database path.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path
            .clone()
            .unwrap_or_else(default_history_path)
            .to_string_lossy()
            .into_owned()
    }

    /// The last `n` creations (default 20), newest first, with per-step timings.
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn recent<'env>(
        &self,
        env: &'env Env,
        n: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let path = self.path.clone();
        let n = n.unwrap_or(20) as usize;
        spawn_blocking(
            env,
            move || Ok(serde_json::to_value(Self::open(&path)?.recent(n)?)?),
            |_, v| Ok(v),
        )
    }

    /// p50/p95 per step over the last `n` creations (default 50), slowest p95 first.
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn step_summaries<'env>(
        &self,
        env: &'env Env,
        n: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let path = self.path.clone();
        let n = n.unwrap_or(50) as usize;
        spawn_blocking(
            env,
            move || Ok(serde_json::to_value(Self::open(&path)?.step_summaries(n)?)?),
            |_, v| Ok(v),
        )
    }

    /// What to look at, over the last `n` creations (default 50): the step most often on the
    /// critical path and the steps getting slower.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn advice<'env>(
        &self,
        env: &'env Env,
        n: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let path = self.path.clone();
        let n = n.unwrap_or(50) as usize;
        spawn_blocking(
            env,
            move || Ok(serde_json::to_value(Self::open(&path)?.advice(n)?)?),
            |_, v| Ok(v),
        )
    }

    /// The Chrome trace (JSON string) of a creation, by row id or worktree name (its latest
    /// creation); null when there is none.
    #[napi]
    pub fn trace<'env>(
        &self,
        env: &'env Env,
        which: String,
    ) -> napi::Result<PromiseRaw<'env, Option<String>>> {
        let path = self.path.clone();
        spawn_blocking(env, move || Self::open(&path)?.trace(&which), |_, v| Ok(v))
    }
}
