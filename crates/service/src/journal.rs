//! The run journal: workers hand the bookkeeping of their runs (a run opened, a run
//! finished, a request completed) to one writer, which commits every write that
//! arrived together in one transaction. A lone write goes at once; under load, many
//! runs share a commit, which is what the database's commit rate limits.

use std::sync::Arc;

use dwsched_model::{Completion, FinishRun, NewRun, RunWrite, RunWritten};
use dwsched_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<RunWritten, StoreError>>;

pub(crate) struct RunJournal {
    sender: mpsc::UnboundedSender<(RunWrite, Reply)>,
}

impl RunJournal {
    /// Starts the writer; it ends when the journal is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(writer(store, receiver));
        Self { sender }
    }

    async fn write(&self, write: RunWrite) -> Result<RunWritten, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Invalid("the node's run journal has stopped".into());
        self.sender.send((write, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
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

    /// [`Store::complete_request`], in the next shared transaction.
    pub async fn complete(&self, completion: &Completion) -> Result<bool, StoreError> {
        match self.write(RunWrite::Complete(completion.clone())).await? {
            RunWritten::Completed(done) => Ok(done),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(written: RunWritten) -> StoreError {
    StoreError::Invalid(format!("the run journal answered {written:?} to another write"))
}

async fn writer(
    store: Arc<dyn Store>,
    mut receiver: mpsc::UnboundedReceiver<(RunWrite, Reply)>,
) {
    let mut writes = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((write, reply)) = receiver.recv().await {
        writes.push(write);
        replies.push(reply);
        // Whatever queued up while the previous transaction committed goes in this one.
        while writes.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok((write, reply)) => {
                    writes.push(write);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        commit(store.as_ref(), &writes, replies.drain(..)).await;
        writes.clear();
    }
}

/// Writes a batch in one transaction. When that fails, each write is tried alone, so
/// that one bad write (or a database that went away) is answered to its own worker
/// and does not fail the others.
async fn commit(store: &dyn Store, writes: &[RunWrite], mut replies: impl Iterator<Item = Reply>) {
    match store.write_runs(writes).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(err) if writes.len() == 1 => {
            if let Some(reply) = replies.next() {
                let _ = reply.send(Err(err));
            }
        }
        Err(_) => {
            for (write, reply) in writes.iter().zip(replies) {
                let outcome = match store.write_runs(std::slice::from_ref(write)).await {
                    Ok(mut outcomes) => outcomes.pop().unwrap_or_else(|| {
                        Err(StoreError::Invalid("a run write had no outcome".into()))
                    }),
                    Err(err) => Err(err),
                };
                let _ = reply.send(outcome);
            }
        }
    }
}
