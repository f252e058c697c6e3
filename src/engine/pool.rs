//! Supervised worker pools: the queue and threads every engine runs on.
//!
//! A stranger who can place calls can also fill an engine's queue, so the queue is bounded and
//! every job carries a deadline: a job that cannot be queued is refused at once
//! ([`EngineError::Overloaded`]) and one that waited past its deadline is dropped unrun (the
//! caller it was for has moved on; running it would only delay the jobs behind it).
//!
//! A worker that panics must not take the engine with it, and `/health` must not say "ok" while
//! an engine is gone: each job runs under `catch_unwind`; a panic fails that job (its reply
//! channel drops: [`EngineError::Crashed`]), is logged, and the worker builds fresh state (a new
//! Whisper state, a new llama context) before taking the next job. A worker that cannot rebuild
//! stays down and [`EngineHealth`] says so. A native abort (C++ `abort()`) cannot be caught;
//! that is the process supervisor's job (systemd, Docker's restart policy).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::EngineError;

/// How much an engine's queue may hold and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Jobs waiting for a worker; one more is refused.
    pub max_jobs: usize,
    /// The longest a job may wait for a worker before it is dropped unrun.
    pub max_wait: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_jobs: 64,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// One engine's state as `/health` and `/metrics` report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineHealth {
    pub workers: usize,
    /// Workers serving jobs; 0 means the engine is down.
    pub alive: usize,
    /// Jobs waiting for a worker.
    pub queued: usize,
    /// How long the longest job now running has run (a stuck worker shows here).
    pub busy_ms: u64,
    /// Workers rebuilt after a panic, since start.
    pub restarts: u64,
    /// Jobs refused because the queue was full.
    pub shed: u64,
    /// Jobs dropped unrun because they waited past their deadline.
    pub expired: u64,
}

impl EngineHealth {
    /// What a fake engine (no threads of its own) reports.
    pub fn inline() -> Self {
        Self {
            workers: 1,
            alive: 1,
            ..Self::default()
        }
    }

    pub fn is_up(&self) -> bool {
        self.alive > 0
    }

    /// Two pools of one engine as one (the LLM has a queue per worker).
    pub fn merge(mut self, other: &EngineHealth) -> Self {
        self.workers += other.workers;
        self.alive += other.alive;
        self.queued += other.queued;
        self.busy_ms = self.busy_ms.max(other.busy_ms);
        self.restarts += other.restarts;
        self.shed += other.shed;
        self.expired += other.expired;
        self
    }
}

#[derive(Default)]
struct Stats {
    workers: usize,
    alive: AtomicUsize,
    restarts: AtomicU64,
    shed: AtomicU64,
    expired: AtomicU64,
    /// Per worker: when its current job started, in ms since `epoch` plus one; 0 when idle.
    busy: Vec<AtomicU64>,
    /// Fault injection: the next job panics (drills and the fault tests).
    panic_next: AtomicBool,
}

struct Queued<J> {
    job: J,
    queued_at: Instant,
}

/// A bounded queue served by supervised worker threads. Cloning is cheap; the workers stop
/// when every handle is gone, and the last handle's drop waits for them (see [`Threads`]).
pub struct Pool<J> {
    name: &'static str,
    // Declared before `threads`: fields drop in order, so the last handle disconnects the
    // queue (the workers' signal to stop) before it waits for them.
    tx: crossbeam_channel::Sender<Queued<J>>,
    stats: Arc<Stats>,
    epoch: Instant,
    threads: Arc<Threads>,
}

impl<J> Clone for Pool<J> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            tx: self.tx.clone(),
            stats: self.stats.clone(),
            epoch: self.epoch,
            threads: self.threads.clone(),
        }
    }
}

/// How long the last handle's drop waits for the workers to finish their job and free their
/// state.
const JOIN_WAIT: Duration = Duration::from_secs(5);

/// A pool's worker threads, joined when the pool's last handle is gone. An engine's native
/// state must be freed before the process exits: ggml's CUDA backend aborts the process when a
/// worker frees its context while the exiting main thread shuts the CUDA driver down (seen on
/// an H200 with several workers per engine). A worker still busy after [`JOIN_WAIT`] is left
/// to finish alone, with a warning.
struct Threads(Vec<std::thread::JoinHandle<()>>);

impl Drop for Threads {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let deadline = Instant::now() + JOIN_WAIT;
        for handle in self.0.drain(..) {
            // The last handle dropped by a worker itself: it cannot wait for itself.
            if handle.thread().id() == me {
                continue;
            }
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                let name = handle.thread().name().unwrap_or("?").to_string();
                tracing::warn!(worker = %name, "engine worker still busy at shutdown; not waited for");
            }
        }
    }
}

/// What a simple worker does: build its state (again after a panic), run a job, refuse a job.
/// Engines whose state borrows from something the thread owns write their loop over [`Jobs`]
/// with [`Pool::start_with`] instead.
pub struct Worker<I, H, R> {
    /// Builds a worker's state on its own thread (the argument is the worker's index). At start
    /// an error fails the engine's load; after a panic it leaves that worker down.
    pub init: I,
    /// Runs one job; sends its reply itself.
    pub run: H,
    /// Answers a job that will not run (deadline passed) with the error.
    pub refuse: R,
}

impl<J: Send + 'static> Pool<J> {
    /// Starts `workers` threads named `{name}-{i}` and waits until each has built its state.
    pub fn start<S, I, H, R>(
        name: &'static str,
        workers: usize,
        limits: QueueLimits,
        worker: Worker<I, H, R>,
    ) -> Result<Self, EngineError>
    where
        I: Fn(usize) -> Result<S, EngineError> + Send + Sync + 'static,
        H: Fn(&mut S, J) + Send + Sync + 'static,
        R: Fn(J, EngineError) + Send + Sync + 'static,
    {
        let Worker { init, run, refuse } = worker;
        Self::start_with(name, workers, limits, refuse, move |index, jobs| loop {
            let built = match catch_unwind(AssertUnwindSafe(|| init(index))) {
                Ok(built) => built,
                Err(p) => {
                    log_panic(name, index, &p);
                    Err(EngineError::Crashed(name))
                }
            };
            let Some(mut state) = jobs.up(built) else {
                return;
            };
            while let Some(job) = jobs.next() {
                if !jobs.run(|| run(&mut state, job)) {
                    break;
                }
            }
            if jobs.closed() {
                return;
            }
            // The state a panic left behind may be inconsistent: drop it (quietly, should
            // dropping it panic too) and build a new one.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(state)));
        })
    }

    /// Starts `workers` threads that each run `body` over their side of the queue, and waits
    /// until each has reported its state built ([`Jobs::up`]).
    pub fn start_with<R, B>(
        name: &'static str,
        workers: usize,
        limits: QueueLimits,
        refuse: R,
        body: B,
    ) -> Result<Self, EngineError>
    where
        R: Fn(J, EngineError) + Send + Sync + 'static,
        B: Fn(usize, &Jobs<J>) + Send + Sync + 'static,
    {
        let workers = workers.max(1);
        let (tx, rx) = crossbeam_channel::bounded::<Queued<J>>(limits.max_jobs.max(1));
        let stats = Arc::new(Stats {
            workers,
            busy: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            ..Stats::default()
        });
        let epoch = Instant::now();
        let refuse: Arc<dyn Fn(J, EngineError) + Send + Sync> = Arc::new(refuse);
        let body = Arc::new(body);
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let jobs = Jobs {
                name,
                index,
                rx: rx.clone(),
                stats: stats.clone(),
                epoch,
                max_wait: limits.max_wait,
                refuse: refuse.clone(),
                ready: std::cell::RefCell::new(Some(ready_tx)),
                up: std::cell::Cell::new(false),
                closed: std::cell::Cell::new(false),
            };
            let body = body.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    body(index, &jobs);
                    jobs.down();
                })
                .map_err(|e| EngineError::Load {
                    engine: name,
                    reason: e.to_string(),
                })?;
            threads.push(thread);
            ready_rx.recv().map_err(|_| EngineError::Stopped(name))??;
        }
        Ok(Self {
            name,
            tx,
            stats,
            epoch,
            threads: Arc::new(Threads(threads)),
        })
    }

    /// Queues a job, or gives it back with why it cannot be queued.
    pub fn submit(&self, job: J) -> Result<(), (J, EngineError)> {
        let queued = Queued {
            job,
            queued_at: Instant::now(),
        };
        self.tx.try_send(queued).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(q) => {
                self.stats.shed.fetch_add(1, Ordering::Relaxed);
                (q.job, EngineError::Overloaded(self.name))
            }
            crossbeam_channel::TrySendError::Disconnected(q) => {
                (q.job, EngineError::Stopped(self.name))
            }
        })
    }

    /// Queues a job that carries a one-shot reply, and awaits the reply.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, EngineError>>) -> J,
    ) -> Result<T, EngineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(make(tx)).map_err(|(_, e)| e)?;
        // A reply dropped unsent: the job's worker panicked (and was rebuilt).
        rx.await.map_err(|_| EngineError::Crashed(self.name))?
    }

    pub fn health(&self) -> EngineHealth {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let s = &self.stats;
        EngineHealth {
            workers: s.workers,
            alive: s.alive.load(Ordering::Relaxed),
            queued: self.tx.len(),
            busy_ms: s
                .busy
                .iter()
                .map(|b| match b.load(Ordering::Relaxed) {
                    0 => 0,
                    since => now.saturating_sub(since),
                })
                .max()
                .unwrap_or(0),
            restarts: s.restarts.load(Ordering::Relaxed),
            shed: s.shed.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
        }
    }

    /// Makes the next job this pool runs panic: for fault drills and the fault tests, which
    /// show a call surviving a crashed engine.
    pub fn panic_next_job(&self) {
        self.stats.panic_next.store(true, Ordering::SeqCst);
    }
}

/// One worker's side of the queue: the jobs still worth running, each run supervised.
pub struct Jobs<J> {
    name: &'static str,
    index: usize,
    rx: crossbeam_channel::Receiver<Queued<J>>,
    stats: Arc<Stats>,
    epoch: Instant,
    max_wait: Duration,
    refuse: Arc<dyn Fn(J, EngineError) + Send + Sync>,
    /// Until the first report: where [`Pool::start_with`] waits for it.
    ready: std::cell::RefCell<Option<std::sync::mpsc::Sender<Result<(), EngineError>>>>,
    up: std::cell::Cell<bool>,
    closed: std::cell::Cell<bool>,
}

impl<J> Jobs<J> {
    /// Reports the worker's state built (or not). The first report answers the engine's load;
    /// a later failure (a rebuild after a panic) leaves this worker down, logged. Gives the
    /// state back when it was built.
    pub fn up<S>(&self, built: Result<S, EngineError>) -> Option<S> {
        let report = built.as_ref().map(|_| ()).map_err(|e| e.to_string());
        let first = self.ready.borrow_mut().take();
        match (built, first) {
            (Ok(state), first) => {
                if let Some(ready) = first {
                    let _ = ready.send(Ok(()));
                }
                self.up.set(true);
                self.stats.alive.fetch_add(1, Ordering::Relaxed);
                Some(state)
            }
            (Err(e), Some(ready)) => {
                let _ = ready.send(Err(e));
                None
            }
            (Err(_), None) => {
                tracing::error!(
                    engine = self.name,
                    worker = self.index,
                    error = %report.unwrap_err(),
                    "cannot rebuild the engine worker after a panic: it stays down"
                );
                None
            }
        }
    }

    /// The next job still worth running; `None` once the engine's handles are all gone. Jobs
    /// that waited past their deadline are refused on the way.
    pub fn next(&self) -> Option<J> {
        self.take(true)
    }

    /// As [`Jobs::next`] without waiting: the next job already queued, if any (a batching
    /// worker takes new jobs between steps). `None` also once the handles are all gone, which
    /// [`Jobs::closed`] then says.
    pub fn try_next(&self) -> Option<J> {
        self.take(false)
    }

    fn take(&self, wait: bool) -> Option<J> {
        loop {
            let received = if wait {
                self.rx.recv().map_err(|_| true)
            } else {
                self.rx.try_recv().map_err(|e| e.is_disconnected())
            };
            let Queued { job, queued_at } = match received {
                Ok(q) => q,
                Err(closed) => {
                    self.closed.set(closed);
                    return None;
                }
            };
            if queued_at.elapsed() <= self.max_wait {
                return Some(job);
            }
            self.stats.expired.fetch_add(1, Ordering::Relaxed);
            (self.refuse)(job, EngineError::Overloaded(self.name));
        }
    }

    /// Runs one job under `catch_unwind`. `false`: it panicked (logged and counted); the
    /// worker must rebuild its state before the next job.
    pub fn run(&self, job: impl FnOnce()) -> bool {
        let busy = &self.stats.busy[self.index];
        busy.store(
            self.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        let result = catch_unwind(AssertUnwindSafe(|| {
            if self.stats.panic_next.swap(false, Ordering::SeqCst) {
                panic!("injected fault (panic_next_job)");
            }
            job()
        }));
        busy.store(0, Ordering::Relaxed);
        match result {
            Ok(()) => true,
            Err(p) => {
                self.down();
                self.stats.restarts.fetch_add(1, Ordering::Relaxed);
                log_panic(self.name, self.index, &p);
                false
            }
        }
    }

    /// Whether the engine's handles are all gone (the worker should end).
    pub fn closed(&self) -> bool {
        self.closed.get()
    }

    fn down(&self) {
        if self.up.replace(false) {
            self.stats.alive.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn log_panic(name: &'static str, index: usize, panic: &Box<dyn std::any::Any + Send>) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into());
    tracing::error!(
        engine = name,
        worker = index,
        panic = %message,
        "engine worker panicked: its job failed; rebuilding the worker"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    type Reply = tokio::sync::oneshot::Sender<Result<u32, EngineError>>;

    /// A pool that doubles numbers; 13 panics; each rebuild counts.
    fn doubler(limits: QueueLimits, builds: Arc<AtomicUsize>) -> Pool<(u32, Reply)> {
        Pool::start(
            "test",
            1,
            limits,
            Worker {
                init: move |_| {
                    builds.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
                run: |_: &mut (), (n, reply): (u32, Reply)| {
                    if n == 13 {
                        panic!("unlucky");
                    }
                    if n == 1000 {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    let _ = reply.send(Ok(n * 2));
                },
                refuse: |(_, reply): (u32, Reply), e| {
                    let _ = reply.send(Err(e));
                },
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_worker_is_rebuilt() {
        let builds = Arc::new(AtomicUsize::new(0));
        let pool = doubler(QueueLimits::default(), builds.clone());
        assert_eq!(pool.ask(|r| (2, r)).await.unwrap(), 4);
        let err = pool.ask(|r| (13, r)).await.unwrap_err();
        assert!(matches!(err, EngineError::Crashed("test")), "{err}");
        assert_eq!(pool.ask(|r| (3, r)).await.unwrap(), 6, "served again");
        let h = pool.health();
        assert_eq!((h.workers, h.alive, h.restarts), (1, 1, 1));
        assert_eq!(builds.load(Ordering::SeqCst), 2, "state rebuilt once");

        pool.panic_next_job();
        assert!(matches!(
            pool.ask(|r| (5, r)).await,
            Err(EngineError::Crashed(_))
        ));
        assert_eq!(pool.ask(|r| (5, r)).await.unwrap(), 10);
        assert_eq!(pool.health().restarts, 2);
    }

    #[tokio::test]
    async fn a_full_queue_sheds_and_a_stale_job_is_dropped_unrun() {
        let limits = QueueLimits {
            max_jobs: 2,
            max_wait: Duration::from_millis(100),
        };
        let pool = doubler(limits, Arc::default());
        // The worker sleeps 300 ms on the first job; two wait; the fourth is refused.
        let slow = tokio::spawn({
            let pool = pool.clone();
            async move { pool.ask(|r| (1000, r)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.health().busy_ms > 0, "the slow job shows as running");
        let waiting: Vec<_> = (0..2)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.ask(|r| (n, r)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.health().queued, 2);
        let refused = pool.ask(|r| (7, r)).await.unwrap_err();
        assert!(
            matches!(refused, EngineError::Overloaded("test")),
            "{refused}"
        );
        assert_eq!(slow.await.unwrap().unwrap(), 2000);
        for w in waiting {
            let e = w.await.unwrap().unwrap_err();
            assert!(matches!(e, EngineError::Overloaded(_)), "expired: {e}");
        }
        let h = pool.health();
        assert_eq!((h.shed, h.expired, h.queued, h.busy_ms), (1, 2, 0, 0));
        assert_eq!(pool.ask(|r| (4, r)).await.unwrap(), 8, "fresh jobs run");
    }

    #[test]
    fn a_worker_that_cannot_build_fails_the_load() {
        let r: Result<Pool<()>, _> = Pool::start(
            "test",
            2,
            QueueLimits::default(),
            Worker {
                init: |_| Err::<(), _>(EngineError::Stopped("test")),
                run: |_: &mut (), _: ()| {},
                refuse: |_: (), _| {},
            },
        );
        assert!(r.is_err());
    }

    /// Sets its flag when dropped: a worker's state freed.
    struct Freed(Arc<AtomicBool>);

    impl Drop for Freed {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(50));
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_last_handle_waits_for_every_worker_to_free_its_state() {
        let flags: Vec<Arc<AtomicBool>> =
            (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
        let init_flags = flags.clone();
        let pool: Pool<()> = Pool::start(
            "test",
            3,
            QueueLimits::default(),
            Worker {
                init: move |i: usize| Ok(Freed(init_flags[i].clone())),
                run: |_: &mut Freed, ()| {},
                refuse: |(), _| {},
            },
        )
        .unwrap();
        let other = pool.clone();
        drop(pool);
        assert!(
            flags.iter().all(|f| !f.load(Ordering::SeqCst)),
            "a handle is left"
        );
        drop(other);
        assert!(
            flags.iter().all(|f| f.load(Ordering::SeqCst)),
            "every state freed"
        );
    }
}
