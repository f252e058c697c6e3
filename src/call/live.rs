//! The media sessions running now: capped, so a flood of WebSocket upgrades cannot exhaust the
//! models or memory, and counted, so shutdown and rehearsals can wait until every call's last
//! words and verdict are in.

use std::sync::Arc;

use tokio::sync::watch;

/// A counter of live sessions with a cap. Cloning shares it.
#[derive(Clone)]
pub struct LiveSessions {
    max: usize,
    live: Arc<watch::Sender<usize>>,
    /// The appliance is stopping: no new session starts.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

/// One live session; dropping it frees the place.
pub struct SessionPlace {
    live: Arc<watch::Sender<usize>>,
}

impl Drop for SessionPlace {
    fn drop(&mut self) {
        self.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl LiveSessions {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            live: Arc::new(watch::Sender::new(0)),
            closed: Arc::default(),
        }
    }

    /// No new session from now on (shutdown); the live ones go on.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a new call would be refused now (at the cap, or stopping).
    pub fn refuses(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst) || self.count() >= self.max
    }

    /// A place for one more session, or `None` when `max` are running or it is stopping.
    pub fn enter(&self) -> Option<SessionPlace> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let mut entered = false;
        self.live.send_if_modified(|n| {
            entered = *n < self.max;
            if entered {
                *n += 1;
            }
            entered
        });
        entered.then(|| SessionPlace {
            live: self.live.clone(),
        })
    }

    pub fn count(&self) -> usize {
        *self.live.borrow()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Resolves once no session runs.
    pub async fn idle(&self) {
        let mut rx = self.live.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_are_capped_freed_on_drop_and_idle_waits_for_the_last() {
        let live = LiveSessions::new(2);
        let a = live.enter().expect("first");
        let b = live.enter().expect("second");
        assert!(live.enter().is_none(), "the cap holds");
        assert_eq!(live.count(), 2);
        drop(a);
        let c = live.enter().expect("a freed place is reused");
        let waiter = tokio::spawn({
            let live = live.clone();
            async move { live.idle().await }
        });
        drop(b);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one session still runs");
        drop(c);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("idle once the last place is dropped")
            .unwrap();
        assert_eq!(live.count(), 0);
    }

    #[test]
    fn a_closed_count_refuses_new_sessions_and_keeps_the_live_ones() {
        let live = LiveSessions::new(4);
        let a = live.enter().expect("open");
        assert!(!live.refuses());
        live.close();
        assert!(live.refuses() && live.enter().is_none(), "stopping");
        assert_eq!(live.count(), 1);
        drop(a);
        assert_eq!(live.count(), 0);
        assert!(live.enter().is_none(), "still closed");
    }
}
