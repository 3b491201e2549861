//! Chrome Trace Event Format export (opens in Perfetto and chrome://tracing).
//!
//! Every ended operation in the window becomes one complete event (`"ph": "X"`) with `ts` and
//! `dur` in microseconds. Complete events on one `pid`/`tid` must nest properly, or the viewer
//! stacks them wrongly; so operations are laid out on tracks (one `tid` each) such that on every
//! track each event lies wholly inside the event under it, and the event under it is one of its
//! ancestors:
//! - an operation goes on its parent's track when it fits there (the parent, or a descendant of
//!   the parent that contains it, is on top);
//! - otherwise (a concurrently running sibling holds the parent's track, or the parent is not in
//!   the window) on a track of the thread it was started on where it fits;
//! - otherwise on a new track ("lane") of that thread.
//!
//! Tracks are named after the thread that opened them (`thread_name` metadata), with a lane number
//! from the second lane on; each event's `args` carry its id, parent id, thread and failure.
//!
//! [`results_chrome_trace`] writes the same format from ended results instead of the window: one
//! creation's total span and its children (the worktree history keeps it), plus the background
//! steps that ended after it. This is the only Chrome-trace writer; it must not read the profiler's
//! state beyond what it is given.

use std::collections::HashMap;

use serde::Serialize;

use super::ids::IdBuildHasher;
use super::{Done, OperationResult, Window, ids};

type IdMap<V> = HashMap<u64, V, IdBuildHasher>;

/// One track (a `tid` in the trace).
struct Track {
    /// Open events on this track, outermost first: (operation number, end in ns).
    stack: Vec<(u64, u64)>,
    thread_name: String,
    lane: usize,
}

#[derive(Serialize)]
struct SpanArgs<'a> {
    id: String,
    #[serde(rename = "parentId", skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    thread: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    failed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// `args` of an event written from an [`OperationResult`].
#[derive(Serialize)]
struct ResultArgs<'a> {
    id: &'a str,
    failed: bool,
    error: Option<&'a str>,
    /// True for a step that ran after the creation was ready.
    background: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Args<'a> {
    Window(SpanArgs<'a>),
    Result(ResultArgs<'a>),
}

#[derive(Serialize)]
#[serde(untagged)]
enum MetaArgs {
    Name { name: String },
    SortIndex { sort_index: usize },
}

#[derive(Serialize)]
#[serde(untagged)]
enum TraceEvent<'a> {
    Span {
        name: &'a str,
        cat: &'static str,
        ph: &'static str,
        ts: f64,
        dur: f64,
        pid: u32,
        tid: usize,
        args: Args<'a>,
    },
    Instant {
        name: &'static str,
        cat: &'static str,
        ph: &'static str,
        s: &'static str,
        ts: f64,
        pid: u32,
        tid: usize,
    },
    Meta {
        name: &'static str,
        ph: &'static str,
        pid: u32,
        tid: usize,
        args: MetaArgs,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceDocument<'a> {
    trace_events: Vec<TraceEvent<'a>>,
    display_time_unit: &'static str,
}

/// Whether `ancestor` is `num`'s parent, grandparent, ... among the operations in the window.
fn is_ancestor(parents: &IdMap<Option<u64>>, ancestor: u64, num: u64) -> bool {
    let mut cur = parents.get(&num).copied().flatten();
    while let Some(p) = cur {
        if p == ancestor {
            return true;
        }
        cur = parents.get(&p).copied().flatten();
    }
    false
}

/// Whether `done` can go on `track` now; pops events that ended before `done` started (the
/// operations come in start order, so they can never hold a later one either).
fn fits(track: &mut Track, done: &Done, parents: &IdMap<Option<u64>>) -> bool {
    while let Some(&(_, end)) = track.stack.last() {
        if end <= done.start_ns {
            track.stack.pop();
        } else {
            break;
        }
    }
    match track.stack.last() {
        None => true,
        Some(&(top, end)) => end >= done.end_ns && is_ancestor(parents, top, done.num),
    }
}

/// The trace of every operation in `window`, as a JSON string.
pub(crate) fn chrome_trace(window: &Window) -> String {
    let pid = std::process::id();
    let mut spans: Vec<&Done> = window.iter().collect();
    // Start order; an enclosing operation before the ones it contains.
    spans.sort_by(|a, b| {
        a.start_ns
            .cmp(&b.start_ns)
            .then(b.end_ns.cmp(&a.end_ns))
            .then(a.num.cmp(&b.num))
    });
    let parents: IdMap<Option<u64>> = spans.iter().map(|d| (d.num, d.parent)).collect();

    let mut tracks: Vec<Track> = Vec::new();
    let mut thread_tracks: IdMap<Vec<usize>> = IdMap::default();
    let mut track_of: IdMap<usize> =
        IdMap::with_capacity_and_hasher(spans.len(), IdBuildHasher::default());
    let mut events: Vec<TraceEvent<'_>> = Vec::with_capacity(spans.len());

    for d in &spans {
        let mut chosen = None;
        if let Some(&t) = d.parent.and_then(|p| track_of.get(&p))
            && fits(&mut tracks[t], d, &parents)
        {
            chosen = Some(t);
        }
        if chosen.is_none()
            && let Some(list) = thread_tracks.get(&d.thread.ordinal)
        {
            chosen = list
                .iter()
                .copied()
                .find(|&t| fits(&mut tracks[t], d, &parents));
        }
        let t = match chosen {
            Some(t) => t,
            None => {
                let list = thread_tracks.entry(d.thread.ordinal).or_default();
                tracks.push(Track {
                    stack: Vec::new(),
                    thread_name: d.thread.name.to_string(),
                    lane: list.len(),
                });
                list.push(tracks.len() - 1);
                tracks.len() - 1
            }
        };
        tracks[t].stack.push((d.num, d.end_ns));
        track_of.insert(d.num, t);

        events.push(TraceEvent::Span {
            name: d.name(),
            cat: "vibetrees",
            ph: "X",
            ts: d.start_ns as f64 / 1000.0,
            dur: (d.end_ns - d.start_ns) as f64 / 1000.0,
            pid,
            tid: t + 1,
            args: Args::Window(SpanArgs {
                id: ids::format_id(d.num),
                parent_id: d.parent.map(ids::format_id),
                thread: &d.thread.name,
                failed: d.error.is_some(),
                error: d.error.as_deref(),
            }),
        });
    }

    let mut all: Vec<TraceEvent<'_>> = Vec::with_capacity(events.len() + 2 * tracks.len() + 1);
    all.push(TraceEvent::Meta {
        name: "process_name",
        ph: "M",
        pid,
        tid: 0,
        args: MetaArgs::Name {
            name: "vibetrees".to_owned(),
        },
    });
    for (i, t) in tracks.iter().enumerate() {
        let name = if t.lane == 0 {
            t.thread_name.clone()
        } else {
            format!("{} (lane {})", t.thread_name, t.lane + 1)
        };
        all.push(TraceEvent::Meta {
            name: "thread_name",
            ph: "M",
            pid,
            tid: i + 1,
            args: MetaArgs::Name { name },
        });
        all.push(TraceEvent::Meta {
            name: "thread_sort_index",
            ph: "M",
            pid,
            tid: i + 1,
            args: MetaArgs::SortIndex { sort_index: i },
        });
    }
    all.extend(events);
    serde_json::to_string(&TraceDocument {
        trace_events: all,
        display_time_unit: "ms",
    })
    .expect("a trace of plain strings and numbers serializes")
}

/// The trace of one creation from its ended results: `total` (its total span, with its steps and
/// their phases as children) then `background` (steps that ended after it, category
/// `vibetrees,background`), each span on a track of its own (concurrent steps would not nest on
/// one), with an instant event `ready` where `total` ended when there is any background step.
/// Each event's `args`: its id, `failed`, `error`, and `background`.
pub fn results_chrome_trace(total: &OperationResult, background: &[OperationResult]) -> String {
    fn walk<'a>(r: &'a OperationResult, bg: bool, events: &mut Vec<TraceEvent<'a>>) {
        let tid = events.len() + 1;
        events.push(TraceEvent::Span {
            name: &r.name,
            cat: if bg {
                "vibetrees,background"
            } else {
                "vibetrees"
            },
            ph: "X",
            ts: r.start_time * 1000.0,
            dur: r.duration * 1000.0,
            pid: 1,
            tid,
            args: Args::Result(ResultArgs {
                id: &r.id,
                failed: r.failed,
                error: r.error.as_deref(),
                background: bg,
            }),
        });
        for c in &r.children {
            walk(c, bg, events);
        }
    }
    let mut spans = Vec::new();
    walk(total, false, &mut spans);
    let ready = TraceEvent::Instant {
        name: "ready",
        cat: "vibetrees",
        ph: "i",
        s: "p",
        ts: total.end_time * 1000.0,
        pid: 1,
        tid: 1,
    };
    let mut background_spans = Vec::new();
    for b in background {
        let start = spans.len() + background_spans.len();
        let mut these = Vec::new();
        walk(b, true, &mut these);
        for (i, e) in these.iter_mut().enumerate() {
            if let TraceEvent::Span { tid, .. } = e {
                *tid = start + i + 1;
            }
        }
        background_spans.extend(these);
    }
    let mut events = spans;
    if !background.is_empty() {
        events.push(ready);
    }
    events.extend(background_spans);
    serde_json::to_string(&TraceDocument {
        trace_events: events,
        display_time_unit: "ms",
    })
    .expect("a trace of plain strings and numbers serializes")
}
