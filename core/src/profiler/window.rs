//! The bounded window of ended operations ([`Window`]) and how one ended operation ([`Done`])
//! becomes an [`OperationResult`] with its children. Owns no locking: the profiler holds the
//! window behind its own lock.

use super::ids::{self, IdBuildHasher};
use super::{NameEntry, OperationResult, ThreadInfo};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// An ended operation, as kept in the window.
pub(crate) struct Done {
    pub(crate) num: u64,
    pub(super) entry: Arc<NameEntry>,
    /// The operation's own name when it is counted under [`OTHER_NAMES`].
    pub(super) own_name: Option<Arc<str>>,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) parent: Option<u64>,
    /// Children that had ended when this one ended, in start order.
    pub(super) ended_children: Vec<u64>,
    /// Children still running when this one ended.
    pub(super) running_children: Vec<u64>,
    pub(crate) error: Option<Box<str>>,
    pub(crate) thread: Arc<ThreadInfo>,
}

impl Done {
    /// The operation's name.
    pub(crate) fn name(&self) -> &str {
        self.own_name.as_deref().unwrap_or(&self.entry.name)
    }
}

/// The bounded window of ended operations, oldest first, with an index by operation number.
pub(crate) struct Window {
    ring: VecDeque<Done>,
    /// Operation number -> sequence number (position + `first_seq`).
    index: HashMap<u64, u64, IdBuildHasher>,
    first_seq: u64,
    cap: usize,
}

impl Window {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(cap.min(1 << 14)),
            index: HashMap::with_capacity_and_hasher(cap.min(1 << 14), IdBuildHasher::default()),
            first_seq: 0,
            cap,
        }
    }

    pub(crate) fn get(&self, num: u64) -> Option<&Done> {
        let seq = *self.index.get(&num)?;
        self.ring.get((seq - self.first_seq) as usize)
    }

    pub(super) fn contains(&self, num: u64) -> bool {
        self.index.contains_key(&num)
    }

    pub(super) fn push(&mut self, done: Done) {
        if self.cap == 0 {
            return;
        }
        if self.ring.len() >= self.cap
            && let Some(old) = self.ring.pop_front()
        {
            self.index.remove(&old.num);
            self.first_seq += 1;
        }
        self.index
            .insert(done.num, self.first_seq + self.ring.len() as u64);
        self.ring.push_back(done);
    }

    pub(super) fn clear(&mut self) {
        self.first_seq += self.ring.len() as u64;
        self.ring.clear();
        self.index.clear();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Done> {
        self.ring.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Entries in the index by operation number (always [`Self::len`]).
    #[cfg(test)]
    pub(super) fn indexed(&self) -> usize {
        self.index.len()
    }

    /// The result of `done` with its ended children's results, nested, built without recursion
    /// (deep chains of spans must not overflow the stack).
    pub(super) fn build_result(&self, done: &Done, id: Option<&str>) -> OperationResult {
        let mut stack: Vec<(&Done, usize, OperationResult)> = vec![(done, 0, shell(done, id))];
        loop {
            let top = stack
                .last_mut()
                .expect("stack holds the root until it returns");
            if top.1 < top.0.ended_children.len() {
                let child = top.0.ended_children[top.1];
                top.1 += 1;
                if let Some(c) = self.get(child) {
                    stack.push((c, 0, shell(c, None)));
                }
            } else {
                let (_, _, result) = stack.pop().expect("non-empty");
                match stack.last_mut() {
                    Some(parent) => parent.2.children.push(result),
                    None => return result,
                }
            }
        }
    }
}

pub(super) const NS_PER_MS: f64 = 1_000_000.0;

/// An [`OperationResult`] of `done` without its children; `id` is its id string when the caller
/// has it already.
pub(super) fn shell(done: &Done, id: Option<&str>) -> OperationResult {
    OperationResult {
        id: match id {
            Some(id) => id.to_owned(),
            None => ids::format_id(done.num),
        },
        name: String::from(done.name()),
        duration: (done.end_ns - done.start_ns) as f64 / NS_PER_MS,
        start_time: done.start_ns as f64 / NS_PER_MS,
        end_time: done.end_ns as f64 / NS_PER_MS,
        children: Vec::new(),
        parent_id: done.parent.map(ids::format_id),
        failed: done.error.is_some(),
        error: done.error.as_deref().map(str::to_owned),
        running_children: done
            .running_children
            .iter()
            .map(|&n| ids::format_id(n))
            .collect(),
    }
}
