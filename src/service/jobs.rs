//! Runs jobs on at most a fixed number of worker threads, queueing the rest: a long backup
//! never delays the others, and no plan, however large, can exhaust threads or memory. A
//! worker ends once the queue is empty, so an idle service keeps no worker threads (their
//! stacks and caches) after a burst.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

type Runner<T> = Box<dyn Fn(T) + Send + Sync>;

struct Shared<T> {
    state: Mutex<State<T>>,
    run: Runner<T>,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Workers alive: counted under the lock, so a job queued as the last worker leaves
    /// always finds a worker, a new one if need be.
    workers: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panicking job never holds the lock, so a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a submitted job got a worker or waits for one.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    Now,
    /// Every worker is busy; the job runs when one is free.
    Queued,
}

pub struct Pool<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    /// Every worker started, the ended ones until the next submit drops them.
    handles: Vec<JoinHandle<()>>,
    limit: usize,
}

impl<T: Send + 'static> Pool<T> {
    /// A pool of up to `limit` workers, each running jobs with `run`.
    pub fn new(limit: usize, run: impl Fn(T) + Send + Sync + 'static) -> Pool<T> {
        let state = State {
            queue: VecDeque::new(),
            workers: 0,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            run: Box::new(run),
        });
        Pool {
            shared,
            handles: Vec::new(),
            limit: limit.max(1),
        }
    }

    /// Queues `job` and starts a worker for it unless `limit` workers are running; then one
    /// of them takes it when it is free.
    pub fn submit(&mut self, job: T) -> io::Result<Start> {
        self.handles.retain(|handle| !handle.is_finished());
        let mut state = self.shared.lock();
        state.queue.push_back(job);
        if state.workers >= self.limit {
            return Ok(Start::Queued);
        }
        state.workers += 1;
        drop(state);
        let shared = Arc::clone(&self.shared);
        let started = std::thread::Builder::new()
            .name("backup worker".into())
            .spawn(move || work(&shared));
        match started {
            Ok(handle) => {
                self.handles.push(handle);
                Ok(Start::Now)
            }
            Err(err) => {
                // The job stays queued for the next worker that starts.
                self.shared.lock().workers -= 1;
                Err(err)
            }
        }
    }

    /// Runs every queued job to its end, then returns with no worker left.
    pub fn finish(self) {
        for handle in self.handles {
            let _ = handle.join();
        }
        // A job whose worker could not start is still queued: run it here.
        loop {
            let job = self.shared.lock().queue.pop_front();
            let Some(job) = job else {
                break;
            };
            let _ = catch_unwind(AssertUnwindSafe(|| (self.shared.run)(job)));
        }
    }
}

fn work<T>(shared: &Shared<T>) {
    loop {
        let job = {
            let mut state = shared.lock();
            match state.queue.pop_front() {
                Some(job) => job,
                None => {
                    state.workers -= 1;
                    return;
                }
            }
        };
        // A bug in one job must not cost the pool a worker.
        let _ = catch_unwind(AssertUnwindSafe(|| (shared.run)(job)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn at_most_limit_jobs_run_at_once_and_the_rest_wait() {
        let release = Arc::new(Barrier::new(3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (r, p, d, b) = (running.clone(), peak.clone(), done.clone(), release.clone());
        let mut pool = Pool::new(2, move |wait: bool| {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            if wait {
                b.wait();
            }
            r.fetch_sub(1, Ordering::SeqCst);
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(pool.submit(true).unwrap(), Start::Now);
        assert_eq!(pool.submit(true).unwrap(), Start::Now);
        // Both workers are blocked on the barrier: the next jobs must queue.
        assert_eq!(pool.submit(false).unwrap(), Start::Queued);
        assert_eq!(pool.submit(false).unwrap(), Start::Queued);
        release.wait();
        pool.finish();
        assert_eq!(
            done.load(Ordering::SeqCst),
            4,
            "queued jobs run before finish returns"
        );
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_job_does_not_take_a_worker_with_it() {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let mut pool = Pool::new(1, move |fail: bool| {
            if fail {
                panic!("job bug");
            }
            d.fetch_add(1, Ordering::SeqCst);
        });
        pool.submit(true).unwrap();
        pool.submit(false).unwrap();
        pool.finish();
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
