//! The run journal: workers hand the bookkeeping of their runs (a run opened, a run
//! finished, a request completed) to a few writers, each of which commits the writes
//! that arrived together in one transaction. A lone write goes at once; under load,
//! many runs share a transaction and a handful of statements.

use std::sync::Arc;

use dwsched_model::{FinishRun, NewRun, RunWrite, RunWritten};
use dwsched_store::{Store, StoreError};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 64;
/// Transactions in flight at once: one commit's wait for the disk overlaps the next
/// batch's statements (the server flushes concurrent commits together).
const WRITERS: usize = 4;

type Outcomes = Vec<Result<RunWritten, StoreError>>;

/// Writes that go in the same transaction, and where their outcomes go.
struct Group {
    writes: Vec<RunWrite>,
    /// Each write's outcome, or the error that failed the group's transaction.
    reply: oneshot::Sender<Result<Outcomes, StoreError>>,
}

pub(crate) struct RunJournal {
    sender: mpsc::UnboundedSender<Group>,
}

impl RunJournal {
    /// Starts the writers; they end when the journal is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(store, receiver));
        Self { sender }
    }

    /// Writes `writes` in one transaction (with others' writes) and returns what each
    /// did; the first refusal or error is returned instead.
    pub async fn write_all(&self, writes: Vec<RunWrite>) -> Result<Vec<RunWritten>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Invalid("the node's run journal has stopped".into());
        self.sender
            .send(Group { writes, reply })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())??.into_iter().collect()
    }

    async fn write(&self, write: RunWrite) -> Result<RunWritten, StoreError> {
        let mut written = self.write_all(vec![write]).await?;
        written
            .pop()
            .ok_or_else(|| StoreError::Invalid("a run write had no outcome".into()))
    }

    /// [`Store::open_run`], in the next shared transaction.
    pub async fn open(&self, run: &NewRun) -> Result<i64, StoreError> {
        match self.write(RunWrite::Open(run.clone())).await? {
            RunWritten::Opened(prcid) => Ok(prcid),
            other => Err(unexpected(other)),
        }
    }

    /// [`Store::finish_run`], in the next shared transaction.
    pub async fn finish(&self, finish: &FinishRun) -> Result<bool, StoreError> {
        match self.write(RunWrite::Finish(finish.clone())).await? {
            RunWritten::Finished(closed) => Ok(closed),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(written: RunWritten) -> StoreError {
    StoreError::Invalid(format!(
        "the run journal answered {written:?} to another write"
    ))
}

async fn dispatch(store: Arc<dyn Store>, mut receiver: mpsc::UnboundedReceiver<Group>) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    while let Some(first) = receiver.recv().await {
        // While every writer is busy, writes pile up here and go in one batch.
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut size = first.writes.len();
        let mut groups = vec![first];
        while size < MAX_BATCH {
            match receiver.try_recv() {
                Ok(group) => {
                    size += group.writes.len();
                    groups.push(group);
                }
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            commit(store.as_ref(), groups).await;
            drop(writer);
        });
    }
}

/// Writes a batch in one transaction. When that fails, each group is tried alone, so
/// that one bad write (or a database that went away) is answered to its own worker
/// and does not fail the others.
async fn commit(store: &dyn Store, groups: Vec<Group>) {
    let writes: Vec<RunWrite> = groups.iter().flat_map(|g| g.writes.clone()).collect();
    match store.write_runs(&writes).await {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for group in groups {
                let mine: Outcomes = outcomes.by_ref().take(group.writes.len()).collect();
                let _ = group.reply.send(Ok(mine));
            }
        }
        Err(err) if groups.len() == 1 => {
            if let Some(group) = groups.into_iter().next() {
                let _ = group.reply.send(Err(err));
            }
        }
        Err(_) => {
            for group in groups {
                let _ = group.reply.send(store.write_runs(&group.writes).await);
            }
        }
    }
}
