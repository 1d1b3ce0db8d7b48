//! The engine thread: a bounded queue in front of a continuously batched
//! decode loop.
//!
//! Callers (one per concurrent `generate`) submit a [`Job`] and read
//! [`Event`]s from their own channel. One engine thread owns every live
//! sequence; at each step it admits waiting jobs into free batch slots, runs
//! one forward pass over a chunk of each new prompt plus the next token of
//! every decoding sequence, samples, and streams token ids back. Finished or
//! abandoned sequences leave the batch at once, and their caches are dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use candle_core::{IndexOp, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use cloister_inference::{InferenceError, SamplingParams};

use crate::model::{LlamaModel, Segment, SequenceCache};
use crate::text::TextCodec;

/// What the engine tells a waiting caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One generated token (never an end-of-sequence token).
    Token(u32),
    /// The model emitted an end-of-sequence token.
    EndOfSequence,
    /// `max_tokens` tokens were generated.
    Length,
    /// The engine failed; the message names the cause.
    Failed(String),
}

/// One generation request, as queued.
#[derive(Debug)]
pub struct Job {
    /// Prompt token ids (non-empty).
    pub prompt: Vec<u32>,
    /// Sampling settings; `max_tokens` is already clamped to the context.
    pub params: SamplingParams,
    /// Past this instant the engine drops the job.
    pub deadline: Option<Instant>,
    /// Set by the caller to withdraw the job.
    pub cancelled: Arc<AtomicBool>,
    /// Where the engine sends this job's events.
    pub events: Sender<Event>,
}

impl Job {
    fn abandoned(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
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
    job: Job,
    cache: SequenceCache,
    /// Prompt followed by generated tokens; the last one may not be in the cache yet.
    tokens: Vec<u32>,
    generated: u32,
    sampler: LogitsProcessor,
    done: bool,
}

impl Sequence {
    fn new(job: Job, cache: SequenceCache) -> Self {
        let sampler = LogitsProcessor::from_sampling(job.params.seed, sampling(&job.params));
        let tokens = job.prompt.clone();
        Self {
            job,
            cache,
            tokens,
            generated: 0,
            sampler,
            done: false,
        }
    }

    /// Whether the prompt is still being read (nothing sampled yet).
    fn in_prompt(&self) -> bool {
        self.generated == 0
    }

    /// Sends `event`; a caller that went away ends the sequence.
    fn send(&mut self, event: Event) {
        let ends = !matches!(event, Event::Token(_));
        if self.job.events.send(event).is_err() || ends {
            self.done = true;
        }
    }

    /// Samples the next token from this sequence's logits row.
    fn advance(&mut self, logits: &Tensor, codec: &TextCodec) -> candle_core::Result<()> {
        let params = &self.job.params;
        let logits = if params.repeat_penalty == 1.0 || params.repeat_penalty_last_n == 0 {
            logits.clone()
        } else {
            let window = self
                .tokens
                .len()
                .saturating_sub(params.repeat_penalty_last_n as usize);
            candle_transformers::utils::apply_repeat_penalty(
                logits,
                params.repeat_penalty,
                &self.tokens[window..],
            )?
        };
        let token = self.sampler.sample(&logits)?;
        self.generated += 1;
        if codec.is_end_of_sequence(token) {
            self.send(Event::EndOfSequence);
            return Ok(());
        }
        self.tokens.push(token);
        self.send(Event::Token(token));
        if !self.done && self.generated >= self.job.params.max_tokens {
            self.send(Event::Length);
        }
        Ok(())
    }
}

/// The sampler llama.cpp users would expect for these parameters.
fn sampling(params: &SamplingParams) -> Sampling {
    let temperature = f64::from(params.temperature);
    let top_p = f64::from(params.top_p);
    let k = params.top_k as usize;
    match (temperature > 0.0, k > 0, top_p < 1.0) {
        (false, _, _) => Sampling::ArgMax,
        (true, true, true) => Sampling::TopKThenTopP {
            k,
            p: top_p,
            temperature,
        },
        (true, true, false) => Sampling::TopK { k, temperature },
        (true, false, true) => Sampling::TopP {
            p: top_p,
            temperature,
        },
        (true, false, false) => Sampling::All { temperature },
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
                    sequence.send(Event::Failed(e.to_string()));
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
                self.active.push(Sequence::new(job, self.model.new_cache()));
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

    /// One forward pass over every sequence in the batch.
    fn step(&mut self) -> candle_core::Result<()> {
        for sequence in &mut self.active {
            if sequence.job.abandoned() {
                sequence.done = true;
            }
        }
        let mut prefill_budget = self.shared.limits.prefill_chunk;
        let mut segments = Vec::with_capacity(self.active.len());
        let mut sampled = Vec::with_capacity(self.active.len());
        let mut prompt_tokens = 0;
        for (index, sequence) in self.active.iter_mut().enumerate() {
            if sequence.done {
                continue;
            }
            let start = sequence.cache.len();
            let pending = sequence.tokens.len() - start;
            let take = if sequence.in_prompt() {
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
            let wants_logits = start + take == sequence.tokens.len();
            if wants_logits {
                sampled.push(index);
            }
            segments.push(Segment {
                tokens: &sequence.tokens[start..start + take],
                cache: &mut sequence.cache,
                wants_logits,
            });
        }
        if segments.is_empty() {
            return Ok(());
        }
        let batch = segments.len() as u64;
        let logits = self.model.forward(&mut segments)?;
        drop(segments);
        let c = &self.shared.counters;
        c.forward_passes.fetch_add(1, Ordering::Relaxed);
        if batch > 1 {
            c.batched_passes.fetch_add(1, Ordering::Relaxed);
        }
        c.max_batch.fetch_max(batch, Ordering::Relaxed);
        c.prompt_tokens
            .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
        if let Some(logits) = logits {
            // Counted before the tokens reach their callers.
            c.generated_tokens
                .fetch_add(sampled.len() as u64, Ordering::Relaxed);
            for (row, &index) in sampled.iter().enumerate() {
                self.active[index].advance(&logits.i(row)?, &self.codec)?;
            }
        }
        Ok(())
    }

    /// Drops finished sequences (and their caches) from the batch.
    fn retire(&mut self) {
        let before = self.active.len();
        self.active.retain(|s| !s.done);
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
