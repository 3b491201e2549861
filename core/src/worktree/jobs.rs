//! [`BackgroundJobs`]: the work a manager leaves running after a call returns (cache populate,
//! non-critical services, branch push, warm-up, trash deletion), so `wait_background` can await
//! it ("settled"). Owns only the list of join handles; must not know what the jobs do.

use parking_lot::Mutex;
use std::future::Future;

/// The background jobs of one manager: named tokio tasks.
#[derive(Default)]
pub struct BackgroundJobs {
    jobs: Mutex<Vec<(String, tokio::task::JoinHandle<()>)>>,
}

impl BackgroundJobs {
    /// Starts `fut` on the current tokio runtime as the job `name`.
    pub fn spawn<F>(&self, name: impl Into<String>, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(fut);
        let mut jobs = self.jobs.lock();
        jobs.retain(|(_, j)| !j.is_finished());
        jobs.push((name.into(), handle));
    }

    /// Waits for every job started so far, and for the jobs those start, until none is left.
    pub async fn wait_all(&self) {
        loop {
            let jobs: Vec<_> = std::mem::take(&mut *self.jobs.lock());
            if jobs.is_empty() {
                return;
            }
            for (_, j) in jobs {
                let _ = j.await;
            }
        }
    }

    /// Names of the jobs still running.
    pub fn running(&self) -> Vec<String> {
        self.jobs
            .lock()
            .iter()
            .filter(|(_, j)| !j.is_finished())
            .map(|(n, _)| n.clone())
            .collect()
    }
}
