//! Keeping C callbacks inside the call that registered them.
//!
//! A [`CallGate`] makes sure no C callback runs after the `vt_` call that owns it returns, so the
//! caller may free its userdata then: each callback enters the gate, and the owner closes it and
//! waits for the callbacks inside to finish. A callback that would start after closing is skipped.

use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};

/// See the module docs.
#[derive(Default)]
pub struct CallGate {
    /// `(closed, callbacks inside)`.
    state: Mutex<(bool, usize)>,
    idle: Condvar,
}

impl CallGate {
    /// Enters the gate, or `None` when it is closed.
    pub fn enter(self: &Arc<Self>) -> Option<GateTicket> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 {
            return None;
        }
        s.1 += 1;
        Some(GateTicket(Arc::clone(self)))
    }

    /// Closes the gate and waits until no callback is inside.
    pub fn close_and_wait(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = true;
        while s.1 > 0 {
            s = self.idle.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A callback inside the gate; dropping it leaves.
pub struct GateTicket(Arc<CallGate>);

impl Drop for GateTicket {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 -= 1;
        if s.1 == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// The caller's userdata pointer, carried to the worker threads that call its callbacks. The
/// library never dereferences it; the C contract of each callback type makes the C side
/// responsible for using it from those threads.
#[derive(Clone, Copy)]
pub struct UserData(pub *mut c_void);

impl UserData {
    /// The pointer (a method, so closures capture the whole `Send` wrapper, not the raw field).
    pub fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: only handed back to the caller's own callbacks, documented as called on library threads.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_waits_for_callbacks_inside_and_refuses_new_ones() {
        let gate = Arc::new(CallGate::default());
        let ticket = gate.enter().expect("open gate");
        let g2 = Arc::clone(&gate);
        let (tx, rx) = std::sync::mpsc::channel();
        let closer = std::thread::spawn(move || {
            g2.close_and_wait();
            tx.send(()).unwrap();
        });
        // The closer cannot finish while a ticket is out.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(50))
                .is_err()
        );
        drop(ticket);
        rx.recv().unwrap();
        closer.join().unwrap();
        assert!(gate.enter().is_none());
    }
}
