//! The local model: llama.cpp in the `sotto-llm-worker` process.
//!
//! [`LocalLlm`] starts the worker on first use, waits for its `ready` line, and routes
//! its NDJSON events to the answers in flight by id. If the worker dies, every answer in
//! flight ends with an error quoting its last stderr lines, and the next request starts a
//! fresh worker. Dropping the `LocalLlm` kills the worker.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sotto_llm_protocol::{encode_line, ChatRequest as WorkerChat, Event, LineDecoder, Request};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use crate::context;
use crate::{
    Answer, AnswerSender, CancellationToken, ChatRequest, Chunk, Finish, Llm, LlmError, Message,
    Role, Sampling,
};

/// The worker binary's file name.
pub const WORKER_BINARY: &str = "sotto-llm-worker";

/// Lines of the worker's stderr kept for error messages.
const STDERR_LINES: usize = 20;

/// The default [`LocalConfig::first_token_timeout`]: a full 4,096-token context is read in
/// well under 20 s on a 2-core laptop with the default model.
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(60);

/// The default [`LocalConfig::token_timeout`]: a token takes 15-70 ms here.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the local model.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The `sotto-llm-worker` executable.
    pub worker: PathBuf,
    /// The GGUF model file.
    pub model: PathBuf,
    /// Context window in tokens (the worker caps it at the model's training length).
    pub n_ctx: u32,
    /// CPU threads while generating (`None`: all cores).
    pub threads: Option<usize>,
    /// CPU threads while reading the prompt (`None`: as [`LocalConfig::threads`]).
    pub batch_threads: Option<usize>,
    /// How long loading the model may take.
    pub start_timeout: Duration,
    /// How long the first token may take, the prompt's reading included. A worker that
    /// misses it (or [`LocalConfig::token_timeout`]) is taken for hung: it is killed, the
    /// answer ends with [`LlmError::Timeout`], and the next request starts a fresh one.
    pub first_token_timeout: Duration,
    /// How long the worker may stay quiet between two tokens.
    pub token_timeout: Duration,
    /// How long a cancelled answer may take to stop.
    pub cancel_grace: Duration,
    /// Reuse the KV cache of the conversation read so far (off only to measure what the
    /// reuse saves).
    pub reuse_prefix: bool,
}

impl LocalConfig {
    /// Defaults for `model`, with the worker found by [`find_worker`].
    pub fn new(model: impl Into<PathBuf>) -> Result<LocalConfig, LlmError> {
        Ok(LocalConfig {
            worker: find_worker()?,
            model: model.into(),
            n_ctx: 4096,
            threads: None,
            batch_threads: None,
            start_timeout: Duration::from_secs(60),
            first_token_timeout: DEFAULT_FIRST_TOKEN_TIMEOUT,
            token_timeout: DEFAULT_TOKEN_TIMEOUT,
            cancel_grace: Duration::from_secs(2),
            reuse_prefix: true,
        })
    }
}

/// Where the worker is: `$SOTTO_LLM_WORKER`, else next to this executable (installed
/// apps, `cargo run`), else one folder up (test binaries live in `target/*/deps`).
pub fn find_worker() -> Result<PathBuf, LlmError> {
    if let Some(path) = std::env::var_os("SOTTO_LLM_WORKER") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| LlmError::Worker(e.to_string()))?;
    let dirs = exe.ancestors().skip(1).take(2);
    let candidates: Vec<PathBuf> = dirs.map(|d| d.join(WORKER_BINARY)).collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            LlmError::Worker(format!(
                "{WORKER_BINARY} was not found (looked at {}). Reinstall Sotto, or set SOTTO_LLM_WORKER.",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

type Routes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>>;

/// A running worker process.
struct Worker {
    stdin: tokio::sync::Mutex<ChildStdin>,
    routes: Routes,
    dead: Arc<AtomicBool>,
    n_ctx: u32,
    pid: Option<u32>,
    /// The process: killed when the worker is dropped, or when it hangs.
    child: Mutex<Child>,
}

impl Worker {
    async fn start(config: &LocalConfig) -> Result<Worker, LlmError> {
        if !config.model.is_file() {
            return Err(LlmError::Worker(format!(
                "the model file {} is missing. Run `sotto models fetch` to install it.",
                config.model.display()
            )));
        }
        let mut command = Command::new(&config.worker);
        command
            .arg("--model")
            .arg(&config.model)
            .arg("--ctx")
            .arg(config.n_ctx.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(threads) = config.threads {
            command.arg("--threads").arg(threads.to_string());
        }
        if let Some(threads) = config.batch_threads.or(config.threads) {
            command.arg("--batch-threads").arg(threads.to_string());
        }
        // llama.cpp's OpenMP threads spin while idle by default, burning the core the
        // voice needs between tokens; a user's own setting wins.
        if std::env::var_os("OMP_WAIT_POLICY").is_none() {
            command.env("OMP_WAIT_POLICY", "PASSIVE");
        }
        let mut child = command.spawn().map_err(|e| {
            LlmError::Worker(format!(
                "cannot start {} ({e}). Reinstall Sotto, or set SOTTO_LLM_WORKER.",
                config.worker.display()
            ))
        })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(LlmError::Worker(
                "the worker's pipes could not be opened".into(),
            ));
        };
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(keep_stderr(stderr, Arc::clone(&stderr_tail)));
        let routes: Routes = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(read_events(
            stdout,
            Arc::clone(&routes),
            Arc::clone(&dead),
            stderr_tail,
            ready_tx,
        ));
        let n_ctx = match tokio::time::timeout(config.start_timeout, ready_rx).await {
            Ok(Ok(Ok(n_ctx))) => n_ctx,
            Ok(Ok(Err(message))) => return Err(LlmError::Worker(message)),
            Ok(Err(_)) => return Err(LlmError::Worker("the worker stopped while starting".into())),
            Err(_) => {
                return Err(LlmError::Worker(format!(
                    "the model did not load within {} s",
                    config.start_timeout.as_secs()
                )))
            }
        };
        Ok(Worker {
            stdin: tokio::sync::Mutex::new(stdin),
            routes,
            dead,
            n_ctx,
            pid,
            child: Mutex::new(child),
        })
    }

    /// Kills a hung worker; the next request starts a fresh one.
    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        if let Ok(mut child) = self.child.lock() {
            let _ = child.start_kill();
        }
    }

    async fn send(&self, request: &Request) -> Result<(), LlmError> {
        let mut stdin = self.stdin.lock().await;
        let line = encode_line(request);
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        written.await.map_err(|e| {
            self.dead.store(true, Ordering::SeqCst);
            LlmError::Worker(format!("the worker is not accepting requests ({e})"))
        })
    }
}

/// Keeps the last lines the worker wrote to stderr.
async fn keep_stderr(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// Reads the worker's events: the first `ready` (or error) goes to `ready`, the rest to
/// the answer they belong to. When the worker's stdout closes, every answer in flight
/// is told why.
async fn read_events(
    mut stdout: tokio::process::ChildStdout,
    routes: Routes,
    dead: Arc<AtomicBool>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    ready: oneshot::Sender<Result<u32, String>>,
) {
    let mut ready = Some(ready);
    let mut decoder = LineDecoder::<Event>::default();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for event in decoder.feed(&buf[..n]) {
            let event = match event {
                Ok(event) => event,
                Err(bad) => {
                    tracing::warn!("the worker wrote a line Sotto cannot read: {}", bad.line);
                    continue;
                }
            };
            match event {
                Event::Ready { n_ctx, .. } => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(n_ctx));
                    }
                }
                Event::Error { id: None, message } => match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(message));
                    }
                    None => tracing::warn!("worker: {message}"),
                },
                Event::Token { ref id, .. }
                | Event::Done { ref id, .. }
                | Event::Error {
                    id: Some(ref id), ..
                } => {
                    let route = routes.lock().ok().and_then(|r| r.get(id).cloned());
                    if let Some(route) = route {
                        let _ = route.send(event);
                    }
                }
            }
        }
    }
    dead.store(true, Ordering::SeqCst);
    // Give stderr a moment to deliver the worker's last words.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last_words = stderr_tail
        .lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
        .unwrap_or_default();
    let message = if last_words.is_empty() {
        "the local model's worker process stopped unexpectedly".to_string()
    } else {
        format!("the local model's worker process stopped unexpectedly: {last_words}")
    };
    if let Some(ready) = ready.take() {
        let _ = ready.send(Err(message.clone()));
    }
    let routes: Vec<_> = routes
        .lock()
        .map(|mut r| r.drain().collect())
        .unwrap_or_default();
    for (id, route) in routes {
        let _ = route.send(Event::Error {
            id: Some(id),
            message: message.clone(),
        });
    }
}

struct Inner {
    name: String,
    config: LocalConfig,
    worker: tokio::sync::Mutex<Option<Arc<Worker>>>,
    next_id: AtomicU64,
    /// A read-ahead is being read: a new one is skipped rather than queued behind it.
    reading_ahead: AtomicBool,
}

impl Inner {
    /// The running worker, started (or restarted after a crash) if needed.
    async fn worker(&self) -> Result<Arc<Worker>, LlmError> {
        let mut slot = self.worker.lock().await;
        if let Some(worker) = slot.as_ref() {
            if !worker.dead.load(Ordering::SeqCst) {
                return Ok(Arc::clone(worker));
            }
            tracing::warn!("the LLM worker died; starting a new one");
        }
        // Dropping the old worker kills what is left of it.
        *slot = None;
        let worker = Arc::new(Worker::start(&self.config).await?);
        *slot = Some(Arc::clone(&worker));
        Ok(worker)
    }

    /// Answers `request` (read in batches of `prompt_batch` tokens, when set).
    async fn answer(
        &self,
        request: ChatRequest,
        prompt_batch: Option<u32>,
        cancel: CancellationToken,
        tx: AnswerSender,
    ) {
        if let Err(e) = self.try_answer(request, prompt_batch, &cancel, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn try_answer(
        &self,
        request: ChatRequest,
        prompt_batch: Option<u32>,
        cancel: &CancellationToken,
        tx: &AnswerSender,
    ) -> Result<(), LlmError> {
        let worker = tokio::select! {
            worker = self.worker() => worker?,
            _ = cancel.cancelled() => {
                let _ = tx.send(Ok(Chunk::Done(self.finish(sotto_llm_protocol::FinishReason::Cancelled, None)))).await;
                return Ok(());
            }
        };
        let id = format!("c{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let budget = (worker.n_ctx as usize).saturating_sub(request.sampling.max_tokens as usize);
        let chat = WorkerChat {
            id: id.clone(),
            messages: context::fit(&request.messages, budget),
            sampling: request.sampling,
            reuse_prefix: self.config.reuse_prefix,
            prompt_batch,
        };
        let (events_tx, mut events) = mpsc::unbounded_channel();
        if let Ok(mut routes) = worker.routes.lock() {
            routes.insert(id.clone(), events_tx);
        }
        let result = self
            .relay(&worker, &id, chat, &mut events, cancel, tx)
            .await;
        if let Ok(mut routes) = worker.routes.lock() {
            routes.remove(&id);
        }
        result
    }

    async fn relay(
        &self,
        worker: &Worker,
        id: &str,
        chat: WorkerChat,
        events: &mut mpsc::UnboundedReceiver<Event>,
        cancel: &CancellationToken,
        tx: &AnswerSender,
    ) -> Result<(), LlmError> {
        let config = &self.config;
        let mut wait = Wait::new(&self.name, config.first_token_timeout, "first token");
        self.send_within(worker, &Request::Chat(chat), &wait)
            .await?;
        let mut cancel_sent = false;
        loop {
            let event = tokio::select! {
                event = tokio::time::timeout_at(wait.deadline, events.recv()) => match event {
                    Ok(event) => event,
                    Err(_) => {
                        tracing::warn!("the LLM worker hung (no {}): restarting it", wait.stage);
                        worker.kill();
                        return Err(wait.timeout());
                    }
                },
                _ = cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    wait.at_most(config.cancel_grace, "stop after a cancel");
                    let cancel = Request::Cancel { id: id.to_string() };
                    self.send_within(worker, &cancel, &wait).await?;
                    continue;
                }
            };
            match event {
                Some(Event::Token { text, .. }) => {
                    if !cancel_sent {
                        wait = Wait::new(&self.name, config.token_timeout, "next token");
                    }
                    if tx.send(Ok(Chunk::Text(text))).await.is_err() && !cancel_sent {
                        // Nobody is listening: stop generating for nothing.
                        cancel_sent = true;
                        wait.at_most(config.cancel_grace, "stop after a cancel");
                        let cancel = Request::Cancel { id: id.to_string() };
                        self.send_within(worker, &cancel, &wait).await?;
                    }
                }
                Some(Event::Done {
                    finish_reason,
                    usage,
                    ..
                }) => {
                    let _ = tx
                        .send(Ok(Chunk::Done(self.finish(finish_reason, Some(usage)))))
                        .await;
                    return Ok(());
                }
                Some(Event::Error { message, .. }) => return Err(LlmError::Worker(message)),
                Some(Event::Ready { .. }) => {}
                None => {
                    return Err(LlmError::Worker(
                        "the local model's worker process stopped unexpectedly".into(),
                    ))
                }
            }
        }
    }

    /// Sends `request`, killing a worker that does not take it before `wait`'s deadline
    /// (one that stopped reading its input).
    async fn send_within(
        &self,
        worker: &Worker,
        request: &Request,
        wait: &Wait,
    ) -> Result<(), LlmError> {
        match tokio::time::timeout_at(wait.deadline, worker.send(request)).await {
            Ok(sent) => sent,
            Err(_) => {
                tracing::warn!("the LLM worker stopped reading requests: restarting it");
                worker.kill();
                Err(wait.timeout())
            }
        }
    }

    fn finish(
        &self,
        reason: sotto_llm_protocol::FinishReason,
        usage: Option<sotto_llm_protocol::Usage>,
    ) -> Finish {
        Finish {
            reason,
            usage,
            provider: self.name.clone(),
        }
    }
}

/// What the relay waits for from the worker, and until when.
struct Wait {
    provider: String,
    deadline: tokio::time::Instant,
    limit: Duration,
    stage: &'static str,
}

impl Wait {
    fn new(provider: &str, limit: Duration, stage: &'static str) -> Wait {
        Wait {
            provider: provider.to_string(),
            deadline: tokio::time::Instant::now() + limit,
            limit,
            stage,
        }
    }

    /// Waits no longer than `limit` from now, for `stage`.
    fn at_most(&mut self, limit: Duration, stage: &'static str) {
        let deadline = tokio::time::Instant::now() + limit;
        if deadline < self.deadline {
            *self = Wait {
                deadline,
                limit,
                stage,
                provider: std::mem::take(&mut self.provider),
            };
        }
    }

    fn timeout(&self) -> LlmError {
        LlmError::Timeout {
            provider: self.provider.clone(),
            stage: self.stage,
            after: self.limit,
        }
    }
}

/// The local model.
#[derive(Clone)]
pub struct LocalLlm {
    inner: Arc<Inner>,
}

impl LocalLlm {
    /// A local model run as configured; the worker starts on first use (or [`Self::start`]).
    pub fn new(config: LocalConfig) -> LocalLlm {
        LocalLlm {
            inner: Arc::new(Inner {
                name: "local".into(),
                config,
                worker: tokio::sync::Mutex::new(None),
                next_id: AtomicU64::new(1),
                reading_ahead: AtomicBool::new(false),
            }),
        }
    }

    /// Starts the worker now, so the first answer does not wait for the model to load.
    pub async fn start(&self) -> Result<(), LlmError> {
        self.inner.worker().await.map(|_| ())
    }

    /// The worker's process id, while it runs.
    pub async fn worker_pid(&self) -> Option<u32> {
        self.inner.worker.lock().await.as_ref().and_then(|w| w.pid)
    }

    /// The model file.
    pub fn model(&self) -> &Path {
        &self.inner.config.model
    }
}

impl Llm for LocalLlm {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn is_cloud(&self) -> bool {
        false
    }

    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer {
        let (tx, answer) = Answer::channel();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.answer(request, None, cancel, tx).await });
        answer
    }

    /// Reads `prefix` and an empty question without answering (`max_tokens` 0): the
    /// model's weights are paged in and the prefix stays in the worker's KV cache, which
    /// the first real question then reuses.
    fn warm_up(&self, mut prefix: Vec<Message>) {
        prefix.push(Message {
            role: Role::User,
            content: String::new(),
        });
        let answer = self.chat(read_only(prefix), CancellationToken::new());
        tokio::spawn(async move {
            // A failure here shows again, with its message, on the first question.
            if let Err(e) = answer.collect().await {
                tracing::warn!("warming up the local model failed: {e}");
            }
        });
    }

    /// Reads `messages` without answering, as [`LocalLlm::warm_up`] does: they stay in
    /// the worker's KV cache, and the question that starts with them reads only the rest.
    /// Read [`READ_AHEAD_BATCH`] tokens at a time, so a cancel stops it soon.
    fn read_ahead(&self, messages: Vec<Message>, cancel: CancellationToken) {
        if cancel.is_cancelled() || self.inner.reading_ahead.swap(true, Ordering::SeqCst) {
            return;
        }
        let (tx, answer) = Answer::channel();
        let reader = Arc::clone(&self.inner);
        tokio::spawn(async move {
            reader
                .answer(read_only(messages), Some(READ_AHEAD_BATCH), cancel, tx)
                .await;
        });
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            // Only time was to be saved: the question itself reports any failure.
            if let Err(e) = answer.collect().await {
                tracing::debug!("reading ahead failed: {e}");
            }
            inner.reading_ahead.store(false, Ordering::SeqCst);
        });
    }
}

/// Prompt tokens per batch of a read-ahead: it is stopped when the user pauses (the
/// recogniser then wants the cores), and the worker sees a cancel between batches; eight
/// tokens take about 60 ms on two slow cores with a 0.5B model.
const READ_AHEAD_BATCH: u32 = 8;

/// A request that reads `messages` into the worker's cache and answers nothing.
fn read_only(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        messages,
        sampling: Sampling {
            max_tokens: 0,
            ..Sampling::default()
        },
    }
}
