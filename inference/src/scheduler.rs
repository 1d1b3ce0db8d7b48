//! The engine thread: a bounded queue in front of a continuously batched
//! decode loop.
//!
//! Callers (one per concurrent `generate` or `embed`) submit a [`Job`] and
//! read [`Event`]s from their own channel. One engine thread owns every live
//! job; at each step it admits waiting jobs into free batch slots, runs one
//! forward pass over a chunk of each new prompt plus the next token of every
//! decoding sequence, samples, and streams token ids back. An embedding job
//! takes one batch slot for all its texts: their tokens join the passes as
//! prompt chunks do, and their final-normed hidden states are summed as they
//! come, so a text split over several passes is pooled whole. Finished or
//! abandoned jobs leave the batch at once, and their caches are dropped (an
//! embedded text's as soon as its last token is through).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use candle_core::{DType, IndexOp, Tensor};
use cloister_inference::{InferenceError, SamplingParams};

use crate::model::{LlamaModel, Segment, SequenceCache};
use crate::sampling::{Sampler, penalise_repeats};
use crate::text::TextCodec;

/// What the engine tells a waiting caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One generated token (never an end-of-sequence token).
    Token(u32),
    /// The model emitted an end-of-sequence token.
    EndOfSequence,
    /// `max_tokens` tokens were generated.
    Length,
    /// One mean-pooled, L2-normalised vector per text of an embedding job,
    /// in order.
    Embeddings(Vec<Vec<f32>>),
    /// The engine failed; the message names the cause.
    Failed(String),
}

/// What a job asks of the model.
#[derive(Debug)]
pub enum Task {
    /// Generation after a prompt.
    Generate {
        /// Prompt token ids (non-empty).
        prompt: Vec<u32>,
        /// Sampling settings; `max_tokens` is already clamped to the context.
        params: SamplingParams,
    },
    /// One embedding per token sequence (each non-empty and within the
    /// context); nothing is sampled.
    Embed {
        /// The texts' token ids.
        texts: Vec<Vec<u32>>,
    },
}

/// One request, as queued.
#[derive(Debug)]
pub struct Job {
    /// What to compute.
    pub task: Task,
    /// Past this instant the engine drops the job.
    pub deadline: Option<Instant>,
    /// Set by the caller to withdraw the job.
    pub cancelled: Arc<AtomicBool>,
    /// Where the engine sends this job's events.
    pub events: Sender<Event>,
}

impl Job {
    fn abandoned(&self) -> bool {
        abandoned(&self.cancelled, self.deadline)
    }
}

/// Whether the caller withdrew or its deadline passed.
fn abandoned(cancelled: &AtomicBool, deadline: Option<Instant>) -> bool {
    cancelled.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d)
}

/// Limits of the scheduler.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sequences in one batch.
    pub max_concurrent: usize,
    /// Jobs waiting for a slot.
    pub queue_depth: usize,
    /// Prompt tokens per step across all sequences.
    pub prefill_chunk: usize,
}

/// Counters of the scheduler since start, for health output and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Jobs accepted into the queue.
    pub accepted: u64,
    /// Jobs refused with `Busy`.
    pub rejected_busy: u64,
    /// Jobs that left the batch (finished, cancelled, expired or failed).
    pub retired: u64,
    /// Forward passes run.
    pub forward_passes: u64,
    /// Forward passes that carried more than one sequence.
    pub batched_passes: u64,
    /// Most sequences seen in one forward pass.
    pub max_batch: u64,
    /// Prompt tokens processed.
    pub prompt_tokens: u64,
    /// Tokens generated (end-of-sequence tokens included).
    pub generated_tokens: u64,
    /// Texts embedded.
    pub embedded_texts: u64,
    /// Sequences in the batch now.
    pub active: u64,
    /// Jobs waiting now.
    pub queued: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    rejected_busy: AtomicU64,
    retired: AtomicU64,
    forward_passes: AtomicU64,
    batched_passes: AtomicU64,
    max_batch: AtomicU64,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    embedded_texts: AtomicU64,
}

struct Queue {
    waiting: VecDeque<Job>,
    active: usize,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    counters: Counters,
    limits: Limits,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock means the engine thread panicked mid-update of a
        // plain queue; its data is still consistent, so keep serving.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Handle to the engine thread; dropping it stops the thread.
pub struct Scheduler {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the engine thread, which runs its model inside `pool`.
    pub fn start(
        model: Arc<LlamaModel>,
        codec: Arc<TextCodec>,
        limits: Limits,
        pool: rayon::ThreadPool,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                active: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            counters: Counters::default(),
            limits,
        });
        let engine = Engine {
            shared: Arc::clone(&shared),
            model,
            codec,
            active: Vec::new(),
        };
        let worker = std::thread::Builder::new()
            .name("candle-engine".into())
            .spawn(move || pool.install(move || engine.run()))?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// Queues `job`, or refuses it with [`InferenceError::Busy`] when every
    /// batch slot is taken and the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), InferenceError> {
        let mut queue = self.shared.lock();
        let free_slots = self
            .shared
            .limits
            .max_concurrent
            .saturating_sub(queue.active);
        if queue.shutdown || queue.waiting.len() >= self.shared.limits.queue_depth + free_slots {
            self.shared
                .counters
                .rejected_busy
                .fetch_add(1, Ordering::Relaxed);
            return Err(InferenceError::Busy);
        }
        queue.waiting.push_back(job);
        self.shared
            .counters
            .accepted
            .fetch_add(1, Ordering::Relaxed);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SchedulerStats {
        let (active, queued) = {
            let queue = self.shared.lock();
            (queue.active as u64, queue.waiting.len() as u64)
        };
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SchedulerStats {
            accepted: get(&c.accepted),
            rejected_busy: get(&c.rejected_busy),
            retired: get(&c.retired),
            forward_passes: get(&c.forward_passes),
            batched_passes: get(&c.batched_passes),
            max_batch: get(&c.max_batch),
            prompt_tokens: get(&c.prompt_tokens),
            generated_tokens: get(&c.generated_tokens),
            embedded_texts: get(&c.embedded_texts),
            active,
            queued,
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(worker) = self.worker.take()
            && worker.join().is_err()
        {
            tracing::error!("candle engine thread panicked");
        }
    }
}

/// A job in the batch.
struct Sequence {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
    reply: Reply,
    work: Work,
}

/// The channel back to a job's caller.
struct Reply {
    events: Sender<Event>,
    /// The job has ended (or its caller went away).
    done: bool,
}

impl Reply {
    /// Sends `event`; a caller that went away ends the job.
    fn send(&mut self, event: Event) {
        let ends = !matches!(event, Event::Token(_));
        if self.events.send(event).is_err() || ends {
            self.done = true;
        }
    }
}

/// The state of a job's computation.
enum Work {
    /// Boxed: the sampler is large, and the batch moves its entries.
    Generate(Box<Decoding>),
    Embed(Vec<Pooling>),
}

/// A generation: one sequence, sampled token by token.
struct Decoding {
    params: SamplingParams,
    cache: SequenceCache,
    /// Prompt followed by generated tokens; the last one may not be in the cache yet.
    tokens: Vec<u32>,
    generated: u32,
    sampler: Sampler,
}

/// One text of an embedding job.
struct Pooling {
    tokens: Vec<u32>,
    /// Until the text's last token is through; its length is the tokens done.
    cache: Option<SequenceCache>,
    /// Sum of the final-normed hidden states so far, then their normalised mean.
    sum: Vec<f32>,
}

impl Pooling {
    /// Adds `rows`, the hidden states of the text's next tokens; after the
    /// last one, turns the sum into the unit-length mean and drops the cache.
    fn absorb(&mut self, rows: &Tensor) -> candle_core::Result<()> {
        let partial = rows.sum(0)?.to_vec1::<f32>()?;
        if self.sum.is_empty() {
            self.sum = partial;
        } else {
            for (total, value) in self.sum.iter_mut().zip(partial) {
                *total += value;
            }
        }
        if self
            .cache
            .as_ref()
            .is_some_and(|c| c.len() == self.tokens.len())
        {
            self.cache = None;
            // The mean's direction is the sum's: normalising the sum is the
            // same vector.
            let norm = self.sum.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                for value in &mut self.sum {
                    *value /= norm;
                }
            }
        }
        Ok(())
    }
}

impl Sequence {
    fn new(job: Job, model: &LlamaModel) -> Self {
        let work = match job.task {
            Task::Generate { prompt, params } => Work::Generate(Box::new(Decoding {
                sampler: Sampler::new(&params),
                params,
                cache: model.new_cache(),
                tokens: prompt,
                generated: 0,
            })),
            Task::Embed { texts } => Work::Embed(
                texts
                    .into_iter()
                    .map(|tokens| Pooling {
                        // A text without tokens has nothing to pool.
                        cache: (!tokens.is_empty()).then(|| model.new_cache()),
                        tokens,
                        sum: Vec::new(),
                    })
                    .collect(),
            ),
        };
        Self {
            deadline: job.deadline,
            cancelled: job.cancelled,
            reply: Reply {
                events: job.events,
                done: false,
            },
            work,
        }
    }

    /// Sends the vectors once every text of an embedding job is through.
    fn finish_embedding(&mut self) {
        let Work::Embed(texts) = &mut self.work else {
            return;
        };
        if self.reply.done || texts.iter().any(|text| text.cache.is_some()) {
            return;
        }
        let vectors = texts
            .iter_mut()
            .map(|t| std::mem::take(&mut t.sum))
            .collect();
        self.reply.send(Event::Embeddings(vectors));
    }
}

impl Decoding {
    /// Whether the prompt is still being read (nothing sampled yet).
    fn in_prompt(&self) -> bool {
        self.generated == 0
    }

    /// Samples the next token from this sequence's logits row and tells
    /// the caller.
    fn advance(
        &mut self,
        logits: &Tensor,
        codec: &TextCodec,
        reply: &mut Reply,
    ) -> candle_core::Result<()> {
        let params = &self.params;
        let mut logits = logits.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        if params.repeat_penalty != 1.0 && params.repeat_penalty_last_n > 0 {
            let window = self
                .tokens
                .len()
                .saturating_sub(params.repeat_penalty_last_n as usize);
            penalise_repeats(&mut logits, params.repeat_penalty, &self.tokens[window..]);
        }
        let token = self.sampler.sample(&logits)?;
        self.generated += 1;
        if codec.is_end_of_sequence(token) {
            reply.send(Event::EndOfSequence);
            return Ok(());
        }
        self.tokens.push(token);
        reply.send(Event::Token(token));
        if !reply.done && self.generated >= self.params.max_tokens {
            reply.send(Event::Length);
        }
        Ok(())
    }
}

struct Engine {
    shared: Arc<Shared>,
    model: Arc<LlamaModel>,
    codec: Arc<TextCodec>,
    active: Vec<Sequence>,
}

impl Engine {
    fn run(mut self) {
        while self.admit() {
            if let Err(e) = self.step() {
                tracing::error!(error = %e, batch = self.active.len(), "forward pass failed");
                for sequence in &mut self.active {
                    sequence.reply.send(Event::Failed(e.to_string()));
                }
            }
            self.retire();
        }
    }

    /// Moves waiting jobs into free slots, sleeping while there is no work.
    /// Returns false on shutdown.
    fn admit(&mut self) -> bool {
        let mut queue = self.shared.lock();
        loop {
            if queue.shutdown {
                return false;
            }
            while self.active.len() < self.shared.limits.max_concurrent {
                let Some(job) = queue.waiting.pop_front() else {
                    break;
                };
                if job.abandoned() {
                    self.shared.counters.retired.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut sequence = Sequence::new(job, &self.model);
                // A job with nothing to embed is answered at once.
                sequence.finish_embedding();
                self.active.push(sequence);
            }
            queue.active = self.active.len();
            if !self.active.is_empty() {
                return true;
            }
            queue = self
                .shared
                .wake
                .wait(queue)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// One forward pass over every job in the batch.
    fn step(&mut self) -> candle_core::Result<()> {
        for sequence in &mut self.active {
            if abandoned(&sequence.cancelled, sequence.deadline) {
                sequence.reply.done = true;
            }
        }
        let mut prefill_budget = self.shared.limits.prefill_chunk;
        let mut segments = Vec::with_capacity(self.active.len());
        let mut sampled = Vec::with_capacity(self.active.len());
        // (job, text, tokens) of each embedding segment, in segment order.
        let mut pooled = Vec::new();
        let mut prompt_tokens = 0;
        for (index, sequence) in self.active.iter_mut().enumerate() {
            if sequence.reply.done {
                continue;
            }
            match &mut sequence.work {
                Work::Generate(decoding) => {
                    let start = decoding.cache.len();
                    let pending = decoding.tokens.len() - start;
                    let take = if decoding.in_prompt() {
                        let take = pending.min(prefill_budget);
                        prefill_budget -= take;
                        prompt_tokens += take;
                        take
                    } else {
                        pending
                    };
                    if take == 0 {
                        continue;
                    }
                    let wants_logits = start + take == decoding.tokens.len();
                    if wants_logits {
                        sampled.push(index);
                    }
                    segments.push(Segment {
                        tokens: &decoding.tokens[start..start + take],
                        cache: &mut decoding.cache,
                        wants_logits,
                        wants_hidden: false,
                    });
                }
                Work::Embed(texts) => {
                    for (text, pooling) in texts.iter_mut().enumerate() {
                        let Some(cache) = pooling.cache.as_mut() else {
                            continue;
                        };
                        let start = cache.len();
                        let take = (pooling.tokens.len() - start).min(prefill_budget);
                        if take == 0 {
                            break;
                        }
                        prefill_budget -= take;
                        prompt_tokens += take;
                        pooled.push((index, text, take));
                        segments.push(Segment {
                            tokens: &pooling.tokens[start..start + take],
                            cache,
                            wants_logits: false,
                            wants_hidden: true,
                        });
                    }
                }
            }
        }
        if segments.is_empty() {
            return Ok(());
        }
        let batch = segments.len() as u64;
        let outputs = self.model.forward_outputs(&mut segments)?;
        drop(segments);
        let c = &self.shared.counters;
        c.forward_passes.fetch_add(1, Ordering::Relaxed);
        if batch > 1 {
            c.batched_passes.fetch_add(1, Ordering::Relaxed);
        }
        c.max_batch.fetch_max(batch, Ordering::Relaxed);
        c.prompt_tokens
            .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
        if let Some(logits) = outputs.logits {
            // Counted before the tokens reach their callers.
            c.generated_tokens
                .fetch_add(sampled.len() as u64, Ordering::Relaxed);
            for (row, &index) in sampled.iter().enumerate() {
                let sequence = &mut self.active[index];
                if let Work::Generate(decoding) = &mut sequence.work {
                    decoding.advance(&logits.i(row)?, &self.codec, &mut sequence.reply)?;
                }
            }
        }
        if let Some(hidden) = outputs.hidden {
            let mut offset = 0;
            for &(index, text, take) in &pooled {
                if let Work::Embed(texts) = &mut self.active[index].work {
                    texts[text].absorb(&hidden.narrow(0, offset, take)?)?;
                    if texts[text].cache.is_none() {
                        c.embedded_texts.fetch_add(1, Ordering::Relaxed);
                    }
                }
                offset += take;
            }
            for &(index, ..) in &pooled {
                self.active[index].finish_embedding();
            }
        }
        Ok(())
    }

    /// Drops finished jobs (and their caches) from the batch.
    fn retire(&mut self) {
        let before = self.active.len();
        self.active.retain(|s| !s.reply.done);
        let retired = before - self.active.len();
        if retired > 0 {
            self.shared
                .counters
                .retired
                .fetch_add(retired as u64, Ordering::Relaxed);
            self.shared.lock().active = self.active.len();
        }
    }
}
