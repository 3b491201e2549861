//! Running the core's futures from Python.
//!
//! - [`wait`]: a blocking call. The future runs on the core's shared runtime while the calling thread
//!   waits detached from the interpreter (other Python threads run), waking every
//!   [`SIGNAL_POLL`] to run Python's signal handlers: a Ctrl-C drops the core's future (its own
//!   cancellation cleans up), waits until it is gone, then raises `KeyboardInterrupt`.
//! - [`wait_to_end`], [`wait_blocking`]: the same for work that must not stop half-way (a removal,
//!   an atomic cache operation): a Ctrl-C lets it finish, then raises `KeyboardInterrupt`.
//! - [`to_asyncio_future`]: an awaitable. The future runs on the core's runtime and resolves an
//!   `asyncio.Future` of the caller's running loop; cancelling that future drops the core's future.
//! - [`await_coroutine`]: the other way round, a Python coroutine run on a given event loop and
//!   awaited from Rust (for `async def` task bodies).
//! - [`to_asyncio_future_cancellable`]: an awaitable whose cancellation cancels a core
//!   [`CancellationToken`] instead of dropping the work, which then stops and undoes itself
//!   (worktree creations); a result that arrives for nobody runs a hook instead.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyTuple};
use vibetrees_core::Error;
use vibetrees_core::optimizer::CancellationToken;
use vibetrees_core::runtime::runtime;

use crate::errors::to_py_err;

/// How often a blocking call wakes up to run Python's signal handlers (Ctrl-C).
pub const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs `fut` on the core's runtime and waits for it with the interpreter released.
///
/// `what` names the operation for the error raised if the future panics.
pub fn wait<F, T>(py: Python<'_>, what: &str, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel::<T>(1);
    // A Mutex makes the receiver shareable with the detached closure (it is used by one thread).
    let rx = Mutex::new(rx);
    let handle = runtime().spawn(async move {
        let out = fut.await;
        let _ = tx.send(out);
    });
    loop {
        match py.detach(|| rx.lock().recv_timeout(SIGNAL_POLL)) {
            Ok(out) => return Ok(out),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    handle.abort();
                    // The sender is dropped with the future: once recv fails, the core's drop
                    // guards have run and nothing half-made is left behind.
                    let _ = py.detach(|| rx.lock().recv());
                    return Err(interrupt);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(to_py_err(Error::Internal(format!(
                    "{what} panicked; the operation was abandoned"
                ))));
            }
        }
    }
}

/// As [`wait`] for work that must not stop half-way (e.g. a removal): a Ctrl-C lets the future
/// run to its end, then raises `KeyboardInterrupt` (the outcome is dropped, the work is done).
pub fn wait_to_end<F, T>(py: Python<'_>, what: &str, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel::<T>(1);
    let rx = Mutex::new(rx);
    runtime().spawn(async move {
        let out = fut.await;
        let _ = tx.send(out);
    });
    let mut interrupt: Option<PyErr> = None;
    loop {
        match py.detach(|| rx.lock().recv_timeout(SIGNAL_POLL)) {
            Ok(out) => {
                return match interrupt {
                    Some(e) => Err(e),
                    None => Ok(out),
                };
            }
            Err(RecvTimeoutError::Timeout) => {
                if interrupt.is_none()
                    && let Err(e) = py.check_signals()
                {
                    interrupt = Some(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(to_py_err(Error::Internal(format!(
                    "{what} panicked; the operation was abandoned"
                ))));
            }
        }
    }
}

/// Runs the blocking closure `f` on a blocking thread of the core's runtime and waits for it with
/// the interpreter released. A blocking core operation cannot be stopped from outside, and each
/// one is atomic on disk (staged, then renamed into place), so a Ctrl-C lets it finish (or fail)
/// and then raises `KeyboardInterrupt`: nothing half-made is left, and the interrupt is not lost.
pub fn wait_blocking<F, T>(py: Python<'_>, what: &str, f: F) -> PyResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Spawned from inside the runtime (the async block runs there), not from this thread.
    wait_to_end(
        py,
        what,
        async move { tokio::task::spawn_blocking(f).await },
    )?
    .map_err(|e| {
        to_py_err(Error::Internal(format!(
            "{what} panicked; the operation was abandoned: {e}"
        )))
    })
}

/// The calling thread's running asyncio loop (raises `RuntimeError` outside a coroutine).
pub fn running_loop(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(py
        .import("asyncio")?
        .call_method0("get_running_loop")?
        .unbind())
}

/// Spawns `fut` on the core's runtime and returns an `asyncio.Future` of `event_loop` that it
/// resolves. Cancelling the asyncio future (e.g. `task.cancel()`) drops the core's future.
pub fn to_asyncio_future<'py, F>(
    py: Python<'py>,
    event_loop: Py<PyAny>,
    fut: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<Py<PyAny>>> + Send + 'static,
{
    spawn_resolving(
        py,
        event_loop,
        OnCancel::Abort,
        async move { (fut.await, None) },
    )
}

/// Work to run when a result arrives for an asyncio future whose awaiter already cancelled it
/// (e.g. undo a creation that finished before it saw the cancellation).
pub type OrphanHook = Box<dyn FnOnce() + Send>;

/// What cancelling the asyncio future does to the core's work.
enum OnCancel {
    /// Drops the core's future (its own drop guards clean up).
    Abort,
    /// Cancels this token and lets the work run to its end (it stops and undoes itself).
    Cancel(CancellationToken),
}

/// As [`to_asyncio_future`] for work that must not be dropped half-way: cancelling the asyncio
/// future cancels `token` instead; `fut` runs to its end, and if the asyncio future was
/// cancelled by then, the hook `fut` returned with its result runs instead of delivering it.
/// Cancellation and delivery both happen on the loop's thread, so exactly one of them wins.
pub fn to_asyncio_future_cancellable<'py, F>(
    py: Python<'py>,
    event_loop: Py<PyAny>,
    token: CancellationToken,
    fut: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = (PyResult<Py<PyAny>>, Option<OrphanHook>)> + Send + 'static,
{
    spawn_resolving(py, event_loop, OnCancel::Cancel(token), fut)
}

fn spawn_resolving<'py, F>(
    py: Python<'py>,
    event_loop: Py<PyAny>,
    on_cancel: OnCancel,
    fut: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = (PyResult<Py<PyAny>>, Option<OrphanHook>)> + Send + 'static,
{
    let py_fut = event_loop.bind(py).call_method0("create_future")?;
    let py_fut_owned = py_fut.clone().unbind();
    let loop_owned = event_loop.clone_ref(py);
    let handle = runtime().spawn(async move {
        let (out, hook) = fut.await;
        let hook = Arc::new(Mutex::new(hook));
        Python::attach(|py| {
            let hook_for_loop = Arc::clone(&hook);
            let out = Mutex::new(Some(out));
            let resolve = PyCFunction::new_closure(py, None, None, move |args, _kw| {
                let Some(out) = out.lock().take() else {
                    return Ok(());
                };
                let delivered = resolve_future(args, out)?;
                if !delivered && let Some(hook) = hook_for_loop.lock().take() {
                    hook();
                }
                Ok::<(), PyErr>(())
            });
            let scheduled = resolve.and_then(|resolve| {
                loop_owned
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (resolve, py_fut_owned.bind(py)))
            });
            if scheduled.is_err() {
                // The loop is closed: nobody will ever get the result.
                if let Some(hook) = hook.lock().take() {
                    py.detach(hook);
                }
            }
        });
    });
    let abort = Mutex::new(Some(handle.abort_handle()));
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kw| -> PyResult<()> {
        let fut = args.get_item(0)?;
        if fut.call_method0("cancelled")?.is_truthy()? {
            match &on_cancel {
                OnCancel::Abort => {
                    if let Some(abort) = abort.lock().take() {
                        abort.abort();
                    }
                }
                OnCancel::Cancel(token) => token.cancel(),
            }
        }
        Ok(())
    })?;
    py_fut.call_method1("add_done_callback", (on_done,))?;
    Ok(py_fut)
}

/// Sets the result or exception of the asyncio future `args[0]` unless it is already done
/// (cancelled by its awaiter); returns whether it was delivered. Runs on the loop's thread.
fn resolve_future(args: &Bound<'_, PyTuple>, out: PyResult<Py<PyAny>>) -> PyResult<bool> {
    let py = args.py();
    let fut = args.get_item(0)?;
    if fut.call_method0("done")?.is_truthy()? {
        return Ok(false);
    }
    match out {
        Ok(value) => fut.call_method1("set_result", (value.bind(py),))?,
        Err(err) => fut.call_method1("set_exception", (err.into_value(py),))?,
    };
    Ok(true)
}

/// Runs the coroutine `coro` on `event_loop` (from any thread) and waits for its outcome without
/// holding the interpreter. Dropping the returned future cancels the coroutine.
pub fn await_coroutine(
    py: Python<'_>,
    event_loop: &Py<PyAny>,
    coro: Bound<'_, PyAny>,
) -> PyResult<impl Future<Output = PyResult<Py<PyAny>>> + Send + 'static + use<>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<PyResult<Py<PyAny>>>();
    let tx = Mutex::new(Some(tx));
    let concurrent = py
        .import("asyncio")?
        .call_method1("run_coroutine_threadsafe", (coro, event_loop.bind(py)))?;
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kw| -> PyResult<()> {
        let done = args.get_item(0)?;
        let outcome = if done.call_method0("cancelled")?.is_truthy()? {
            Err(to_py_err(Error::Cancelled(
                "the task's coroutine was cancelled".into(),
            )))
        } else {
            match done.call_method0("exception")? {
                e if e.is_none() => Ok(done.call_method0("result")?.unbind()),
                e => Err(PyErr::from_value(e)),
            }
        };
        if let Some(tx) = tx.lock().take() {
            let _ = tx.send(outcome);
        }
        Ok(())
    })?;
    concurrent.call_method1("add_done_callback", (on_done,))?;
    let guard = CancelOnDrop(Some(concurrent.unbind()));
    Ok(async move {
        let out = rx.await;
        drop(guard);
        out.unwrap_or_else(|_| {
            Err(to_py_err(Error::Internal(
                "a coroutine's outcome was never reported".into(),
            )))
        })
    })
}

/// Cancels a `concurrent.futures.Future` (a coroutine on a loop) when dropped unfinished.
struct CancelOnDrop(Option<Py<PyAny>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(fut) = self.0.take() {
            Python::attach(|py| {
                let fut = fut.bind(py);
                if !fut
                    .call_method0("done")
                    .and_then(|d| d.is_truthy())
                    .unwrap_or(true)
                {
                    let _ = fut.call_method0("cancel");
                }
            });
        }
    }
}
