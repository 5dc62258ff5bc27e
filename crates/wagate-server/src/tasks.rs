//! How background work stops, the one way everywhere: a [`CancellationToken`] tells the tasks
//! to finish what they are doing, and a [`TaskTracker`] waits until every one has. Shutdown
//! stops each part in turn (the HTTP front, webhooks, sessions, writers, the live feed), so
//! each part holds its own [`Tasks`].

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Background tasks that stop together.
#[derive(Default)]
pub(crate) struct Tasks {
    stopping: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// Runs `task` in the background; [`Tasks::stop`] waits for it to end. A task that runs
    /// until told otherwise watches [`Tasks::stopping`].
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Cancelled when [`Tasks::stop`] is called.
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Whether [`Tasks::stop`] has been called.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Whether any task is still running.
    pub(crate) fn is_running(&self) -> bool {
        !self.tracker.is_empty()
    }

    /// Tells the tasks to finish and waits until every one has.
    pub(crate) async fn stop(&self) {
        self.stopping.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
