//! Tasks: a name, the names of the tasks it depends on, and a body the optimizer runs.
//!
//! The body is one trait, [`TaskBody`], so every way of running code plugs into the same scheduler:
//! Rust async closures ([`Task::new`]), Rust blocking closures run on tokio's blocking threads
//! ([`Task::blocking`]), and the bindings' own bodies (a JavaScript promise, a Python callable, a C
//! function pointer) through [`Task::from_body`]. No binding needs scheduling code of its own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a [`TaskBody`] returns: `'static` and `Send`, so it can run on any worker thread.
pub type TaskFuture<T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send + 'static>>;

/// What a task does. Implement it to plug a foreign callable into the optimizer.
///
/// `run` is called once per run of the task, on a tokio worker thread, with the results of the
/// task's dependencies. It must return quickly: do the work inside the returned future. Work that
/// blocks the thread (a synchronous Python callable, a C function) belongs on a blocking thread:
/// wrap it with [`blocking_future`] (which is what [`Task::blocking`] does), never run it inside
/// `run` itself or inside the future's `poll`.
///
/// A panic in `run` or in the future is caught and reported as the task's failure.
pub trait TaskBody<T>: Send + Sync {
    /// Starts the task with its dependencies' results; the future yields its result or its error.
    fn run(&self, inputs: TaskInputs<T>) -> TaskFuture<T>;
}

/// Runs a blocking closure on tokio's blocking thread pool and returns it as a [`TaskFuture`].
///
/// Use it in a [`TaskBody`] whose work blocks the calling thread (a synchronous foreign call).
/// A panic in `f` becomes a [`TaskError`] saying so. If the run is cancelled while `f` runs, `f`
/// still runs to its end (a thread cannot be stopped from outside) and its result is dropped.
pub fn blocking_future<T, F>(f: F) -> TaskFuture<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, TaskError> + Send + 'static,
{
    Box::pin(async move {
        match tokio::task::spawn_blocking(f).await {
            Ok(result) => result,
            Err(join_error) if join_error.is_panic() => {
                Err(TaskError::from_panic(join_error.into_panic()))
            }
            Err(_) => Err(TaskError::with_code(
                "CANCELLED",
                "the blocking thread pool shut down before the task ran",
            )),
        }
    })
}

/// Why a task failed: a message, and optionally a machine-readable code (e.g. `"ENOENT"`, `"IO"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskError {
    /// The task's own error message, reported as is.
    pub message: String,
    /// An optional machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl TaskError {
    /// An error with a message and no code.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
        }
    }

    /// An error with a code and a message.
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: Some(code.into()),
        }
    }

    /// An error from any `std::error::Error`, with its cause chain in the message.
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(message)
    }

    /// An error describing a caught panic (`task panicked: <payload>`), code `"PANIC"`.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        };
        Self::with_code("PANIC", format!("task panicked: {text}"))
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for TaskError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for TaskError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<crate::Error> for TaskError {
    /// Keeps the core error's stable code and its full message.
    fn from(error: crate::Error) -> Self {
        Self::with_code(error.code(), error.full_message())
    }
}

impl From<std::io::Error> for TaskError {
    fn from(error: std::io::Error) -> Self {
        Self::with_code("IO", TaskError::from_error(&error).message)
    }
}

impl From<serde_json::Error> for TaskError {
    fn from(error: serde_json::Error) -> Self {
        Self::with_code("PARSE", error.to_string())
    }
}

/// The results of a task's dependencies, by dependency name, in the order the task declared them.
///
/// Holds an `Arc<T>` per dependency that succeeded. A dependency marked optional that failed has
/// no result; its error is in [`TaskInputs::failed`].
pub struct TaskInputs<T> {
    results: Vec<(Arc<str>, Arc<T>)>,
    failed: Vec<(Arc<str>, TaskError)>,
}

impl<T> TaskInputs<T> {
    /// Inputs with nothing in them (a task without dependencies).
    pub fn empty() -> Self {
        Self {
            results: Vec::new(),
            failed: Vec::new(),
        }
    }

    pub(crate) fn from_parts(
        results: Vec<(Arc<str>, Arc<T>)>,
        failed: Vec<(Arc<str>, TaskError)>,
    ) -> Self {
        Self { results, failed }
    }

    /// The result of dependency `name`, if it ran and succeeded.
    pub fn get(&self, name: &str) -> Option<&Arc<T>> {
        self.results
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v)
    }

    /// The results as `(name, result)` pairs in declaration order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Arc<T>)> {
        self.results.iter().map(|(n, v)| (&**n, v))
    }

    /// How many dependency results there are.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// True when there is no dependency result.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Optional dependencies that failed, as `(name, error)` pairs.
    pub fn failed(&self) -> impl ExactSizeIterator<Item = (&str, &TaskError)> {
        self.failed.iter().map(|(n, e)| (&**n, e))
    }

    /// The results as owned `(name, result)` pairs in declaration order.
    pub fn into_vec(self) -> Vec<(String, Arc<T>)> {
        self.results
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect()
    }
}

impl<T> Clone for TaskInputs<T> {
    fn clone(&self) -> Self {
        Self {
            results: self.results.clone(),
            failed: self.failed.clone(),
        }
    }
}

impl<T> fmt::Debug for TaskInputs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInputs")
            .field(
                "results",
                &self.results.iter().map(|(n, _)| &**n).collect::<Vec<_>>(),
            )
            .field("failed", &self.failed)
            .finish()
    }
}

/// A task of a graph: a unique name, the names it depends on, whether its failure is tolerated,
/// and its body.
pub struct Task<T> {
    /// The task's name, unique within a graph; also the name of its profiler span.
    pub name: String,
    /// The names of the tasks whose results it needs; it starts once they are all done.
    pub dependencies: Vec<String>,
    /// When true, its failure is reported but does not stop the graph, and its dependents run.
    pub optional: bool,
    /// What it runs.
    pub body: Arc<dyn TaskBody<T>>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("dependencies", &self.dependencies)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            dependencies: self.dependencies.clone(),
            optional: self.optional,
            body: Arc::clone(&self.body),
        }
    }
}

struct AsyncClosureBody<F>(F);

impl<T, F, Fut> TaskBody<T> for AsyncClosureBody<F>
where
    F: Fn(TaskInputs<T>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
{
    fn run(&self, inputs: TaskInputs<T>) -> TaskFuture<T> {
        Box::pin((self.0)(inputs))
    }
}

struct BlockingClosureBody<F>(Arc<F>);

impl<T, F> TaskBody<T> for BlockingClosureBody<F>
where
    T: Send + Sync + 'static,
    F: Fn(TaskInputs<T>) -> Result<T, TaskError> + Send + Sync + 'static,
{
    fn run(&self, inputs: TaskInputs<T>) -> TaskFuture<T> {
        let f = Arc::clone(&self.0);
        blocking_future(move || f(inputs))
    }
}

impl<T: Send + Sync + 'static> Task<T> {
    /// A task whose body is an async closure: `Task::new("c", &["a"], |inputs| async move { .. })`.
    pub fn new<F, Fut>(name: impl Into<String>, dependencies: &[&str], body: F) -> Self
    where
        F: Fn(TaskInputs<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
    {
        Self::from_body(
            name,
            dependencies.iter().map(|d| d.to_string()).collect(),
            Arc::new(AsyncClosureBody(body)),
        )
    }

    /// A task whose body is a blocking closure, run on tokio's blocking thread pool
    /// (`spawn_blocking`), so it may block (even wait on another graph) without stalling the
    /// scheduler.
    pub fn blocking<F>(name: impl Into<String>, dependencies: &[&str], body: F) -> Self
    where
        F: Fn(TaskInputs<T>) -> Result<T, TaskError> + Send + Sync + 'static,
    {
        Self::from_body(
            name,
            dependencies.iter().map(|d| d.to_string()).collect(),
            Arc::new(BlockingClosureBody(Arc::new(body))),
        )
    }

    /// A task with any [`TaskBody`]: the entry point for the bindings.
    pub fn from_body(
        name: impl Into<String>,
        dependencies: Vec<String>,
        body: Arc<dyn TaskBody<T>>,
    ) -> Self {
        Self {
            name: name.into(),
            dependencies,
            optional: false,
            body,
        }
    }

    /// Marks the task optional: its failure is reported, and its dependents still run.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Sets whether the task is optional.
    pub fn with_optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }
}
