//! `sotto-llm-worker`: runs llama.cpp in its own process (whisper.cpp and llama.cpp each
//! vendor ggml and cannot share one binary; docs/ARCHITECTURE.md).
//!
//! Usage: `sotto-llm-worker --model FILE.gguf [--ctx TOKENS] [--threads N] [--batch-threads N]`
//! Requests arrive on stdin and events leave on stdout, one JSON object per line
//! (`sotto-llm-protocol`). The worker prints `ready` once the model is loaded, answers one
//! chat at a time (later chats wait their turn), stops an answer when it is cancelled,
//! survives bad requests, and exits when stdin closes.

mod engine;
mod text;

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use sotto_llm_protocol::{
    decode_line, encode_line, ChatRequest, Event, FinishReason, Request, Usage, WorkerTimings,
};
use sotto_models::FileFormat;

use engine::{Control, Engine};

/// Settings from the command line.
struct Args {
    model: PathBuf,
    n_ctx: u32,
    threads: i32,
    /// Threads while reading the prompt.
    batch_threads: i32,
}

fn parse_args() -> Result<Args, String> {
    let mut model = None;
    let mut n_ctx = 4096;
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    let mut batch_threads = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--model" => model = Some(PathBuf::from(value()?)),
            "--ctx" => n_ctx = value()?.parse().map_err(|_| "--ctx takes a number")?,
            "--threads" => threads = value()?.parse().map_err(|_| "--threads takes a number")?,
            "--batch-threads" => {
                batch_threads = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--batch-threads takes a number")?,
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        model: model.ok_or("--model FILE.gguf is required")?,
        n_ctx,
        threads,
        batch_threads: batch_threads.unwrap_or(threads),
    })
}

/// What the stdin reader thread hands the main loop.
enum Incoming {
    Request(Request),
    Bad { id: Option<String>, message: String },
}

/// Reads stdin on its own thread, so a cancel is seen while a chat is being generated.
/// The channel closes when stdin does.
fn spawn_stdin_reader() -> Receiver<Incoming> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().split(b'\n') {
            let Ok(line) = line else { break };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let incoming = match decode_line::<Request>(&line) {
                Ok(request) => Incoming::Request(request),
                Err(bad) => Incoming::Bad {
                    // Name the request if its id can be read at all.
                    id: serde_json::from_slice::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v.get("id")?.as_str().map(String::from)),
                    message: format!("bad request: {}", bad.reason),
                },
            };
            if tx.send(incoming).is_err() {
                break;
            }
        }
    });
    rx
}

fn send(event: &Event) {
    let mut out = std::io::stdout().lock();
    // If Sotto has gone, stdout is closed and there is nobody to tell.
    let _ = out.write_all(encode_line(event).as_bytes());
    let _ = out.flush();
}

/// The main loop's side of the control channel while an answer is generated.
struct Inbox {
    rx: Receiver<Incoming>,
    waiting: VecDeque<ChatRequest>,
    stdin_closed: bool,
}

impl Inbox {
    /// Handles everything that has arrived; true if `active` was cancelled.
    fn drain(&mut self, active: &str) -> bool {
        let mut cancelled = false;
        loop {
            match self.rx.try_recv() {
                Ok(Incoming::Request(Request::Cancel { id })) => {
                    if id == active {
                        cancelled = true;
                    } else if let Some(at) = self.waiting.iter().position(|c| c.id == id) {
                        // A chat still waiting its turn ends here, and says so: Sotto
                        // waits for its `done`, and takes a silent worker for a hung one.
                        self.waiting.remove(at);
                        send(&Event::Done {
                            id,
                            finish_reason: FinishReason::Cancelled,
                            usage: Usage::default(),
                            timings: WorkerTimings::default(),
                        });
                    }
                }
                Ok(Incoming::Request(Request::Chat(chat))) => self.waiting.push_back(chat),
                Ok(Incoming::Bad { id, message }) => send(&Event::Error { id, message }),
                Err(TryRecvError::Empty) => return cancelled,
                Err(TryRecvError::Disconnected) => {
                    // Nobody is listening any more: stop at once.
                    self.stdin_closed = true;
                    return true;
                }
            }
        }
    }
}

impl Control for Inbox {
    fn cancelled(&mut self, id: &str) -> bool {
        self.drain(id)
    }

    fn send(&mut self, event: &Event) {
        send(event);
    }
}

fn fail(message: String) -> ExitCode {
    send(&Event::Error {
        id: None,
        message: message.clone(),
    });
    eprintln!("sotto-llm-worker: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => return fail(message),
    };
    let started = Instant::now();
    // Check the file before llama.cpp sees it: a damaged file must give a message, not
    // an abort deep in native code.
    if let Err(reason) = sotto_models::format::check(&args.model, FileFormat::Gguf) {
        return fail(format!(
            "{} is not a usable GGUF model: {reason}. Run `sotto models fetch` to repair it.",
            args.model.display()
        ));
    }
    let mut backend = match LlamaBackend::init() {
        Ok(backend) => backend,
        Err(e) => return fail(format!("llama.cpp did not start: {e}")),
    };
    if std::env::var_os("SOTTO_LLAMA_LOGS").is_none() {
        backend.void_logs();
    }
    let model =
        match LlamaModel::load_from_file(&backend, &args.model, &LlamaModelParams::default()) {
            Ok(model) => model,
            Err(e) => {
                return fail(format!(
                    "llama.cpp could not load {} ({e}). The file may be damaged: run \
                 `sotto models fetch` to repair it.",
                    args.model.display()
                ))
            }
        };
    let template = match model.chat_template(None) {
        Ok(template) => template,
        Err(e) => {
            return fail(format!(
                "{} has no chat template ({e}); Sotto needs an instruction-tuned model",
                args.model.display()
            ))
        }
    };
    let n_ctx = args.n_ctx.min(model.n_ctx_train()).max(256);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(512)
        .with_n_threads(args.threads)
        .with_n_threads_batch(args.batch_threads);
    let ctx = match model.new_context(&backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            return fail(format!(
                "llama.cpp could not create a context of {n_ctx} tokens: {e}"
            ))
        }
    };
    let mut engine = Engine::new(&model, ctx, template);
    let mut inbox = Inbox {
        rx: spawn_stdin_reader(),
        waiting: VecDeque::new(),
        stdin_closed: false,
    };
    send(&Event::Ready {
        model: args
            .model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        n_ctx,
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
    });

    loop {
        let chat = match inbox.waiting.pop_front() {
            Some(chat) => chat,
            None if inbox.stdin_closed => return ExitCode::SUCCESS,
            None => match inbox.rx.recv() {
                Ok(Incoming::Request(Request::Chat(chat))) => chat,
                // Nothing is running, so there is nothing to cancel.
                Ok(Incoming::Request(Request::Cancel { .. })) => continue,
                Ok(Incoming::Bad { id, message }) => {
                    send(&Event::Error { id, message });
                    continue;
                }
                Err(_) => return ExitCode::SUCCESS,
            },
        };
        engine.answer(&chat, &mut inbox);
    }
}
