//! What the assistant says (issue #18): everyday questions answered by each installed
//! language model through the voice path's own prompt, sampling, sentence splitter and
//! answer guard, graded for being right and for being fit to be heard, with the first
//! token and the generation speed of the same answers, so quality and speed are chosen
//! together.
//!
//! `cargo xtask bench answers [--models ID,ID] [--model-file FILE.gguf]... [--personas speech,plain] [--persona text:PROMPT]...
//! [--questions FILE] [--temperature T] [--show] [--json FILE]`; `--provider ID [--base-url URL]
//! [--model NAME]` grades a cloud provider (or a server on this machine) the same way, its
//! key from the keychain or the provider's environment variable.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sotto_core::answer_guard::AnswerGuard;
use sotto_core::budget::CpuBudget;
use sotto_core::TurnSettings;
use sotto_llm::exact::Exact;
use sotto_llm::http::{HttpConfig, OfflineSwitch};
use sotto_llm::keys::KeyStore;
use sotto_llm::local::{LocalConfig, LocalLlm};
use sotto_llm::providers::{self, CloudSetup};
use sotto_llm::{CancellationToken, ChatRequest, Chunk, FinishReason, Llm, Message, Role};
use sotto_models::ModelStore;
use sotto_tts::split::SentenceSplitter;

use crate::grade::{self, Expect, Unfit};
use crate::quantile;

mod table;
use table::print_table;

/// The questions shipped with the bench.
const QUESTIONS: &str = include_str!("../data/answers.toml");

/// The persona before issue #18, for comparison.
const PLAIN: &str = "You are a helpful assistant.";

#[derive(Deserialize)]
struct QuestionFile {
    version: u32,
    question: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    id: String,
    kind: String,
    ask: String,
    /// Earlier questions of the same conversation, asked first.
    #[serde(default)]
    before: Vec<String>,
    #[serde(flatten)]
    expect: Expect,
}

/// What the bench was asked to do.
struct Options {
    models: Option<Vec<String>>,
    /// GGUF files graded beside (or instead of, with `--models ""`) the manifest's models.
    model_files: Vec<PathBuf>,
    /// A provider to grade instead of the local models (`openai`, `ollama`, ...).
    provider: Option<String>,
    base_url: Option<String>,
    provider_model: Option<String>,
    personas: Vec<String>,
    questions: Option<PathBuf>,
    temperature: Option<f32>,
    /// Sums and conversions worked out exactly in front of the model, as the voice path
    /// does (`--no-exact`: the model answers everything).
    exact: bool,
    show: bool,
    json: Option<PathBuf>,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        models: None,
        model_files: Vec::new(),
        provider: None,
        base_url: None,
        provider_model: None,
        personas: vec!["speech".into(), "plain".into()],
        questions: None,
        temperature: None,
        exact: true,
        show: false,
        json: None,
    };
    let mut personas_given = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--models" => {
                let ids = value()?;
                o.models = Some(
                    ids.split(',')
                        .filter(|id| !id.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--model-file" => o.model_files.push(PathBuf::from(value()?)),
            "--personas" => o.personas = value()?.split(',').map(str::to_string).collect(),
            // One persona, commas and all ("text:You are ..."); repeat for more.
            "--persona" => {
                let one = value()?.to_string();
                if personas_given {
                    o.personas.push(one);
                } else {
                    o.personas = vec![one];
                    personas_given = true;
                }
            }
            "--provider" => o.provider = Some(value()?.to_string()),
            "--base-url" => o.base_url = Some(value()?.to_string()),
            "--model" => o.provider_model = Some(value()?.to_string()),
            "--questions" => o.questions = Some(PathBuf::from(value()?)),
            "--temperature" => o.temperature = Some(value()?.parse()?),
            "--json" => o.json = Some(PathBuf::from(value()?)),
            "--show" => o.show = true,
            "--no-exact" => o.exact = false,
            other => anyhow::bail!(
                "unknown option {other} (known: --models, --model-file, --personas, --persona, \
                 --provider, --base-url, --model, --questions, --temperature, --no-exact, --show, \
                 --json)"
            ),
        }
    }
    Ok(o)
}

/// The system prompt a persona name stands for.
fn persona(name: &str) -> anyhow::Result<String> {
    match name {
        "speech" => Ok(TurnSettings::default().system_prompt),
        "plain" => Ok(PLAIN.into()),
        other => match other.strip_prefix("text:") {
            Some(text) => Ok(text.to_string()),
            None => anyhow::bail!("unknown persona {other} (known: speech, plain, text:PROMPT)"),
        },
    }
}

/// One answer as the voice path makes it.
struct Spoken {
    /// What the voice says: the pieces the guard let through.
    text: String,
    /// Why the guard stopped the rest, if it did.
    cut: Option<&'static str>,
    first_token: Duration,
    /// Until the first piece the voice would say (`None`: nothing was said).
    first_piece: Option<Duration>,
    /// Tokens per second while generating (`None` when too short to tell).
    rate: Option<f64>,
    /// Worked out by [`sotto_llm::exact`], not generated.
    exact: bool,
}

/// Answers `messages` the way the orchestrator does: the stream is cut into pieces, the
/// guard lets pieces through until a loop or the length for speech, then stops the model.
async fn speak(
    llm: &dyn Llm,
    settings: &TurnSettings,
    messages: Vec<Message>,
    question: &str,
) -> anyhow::Result<Spoken> {
    let request = ChatRequest {
        messages,
        sampling: settings.sampling.clone(),
    };
    let cancel = CancellationToken::new();
    let mut splitter = SentenceSplitter::new(settings.split);
    let mut guard = AnswerGuard::for_question(question, settings.answer_words);
    let mut said = Vec::new();
    let started = Instant::now();
    let mut first_token = None;
    let mut first_piece = None;
    let mut tokens = 0u32;
    let mut exact = false;
    let mut answer = llm.chat(request, cancel.clone());
    while let Some(chunk) = answer.next().await {
        match chunk? {
            Chunk::Text(t) => {
                first_token.get_or_insert_with(|| started.elapsed());
                tokens += 1;
                said.extend(guard.admit(splitter.push(&t)));
                if !said.is_empty() {
                    first_piece.get_or_insert_with(|| started.elapsed());
                }
                if guard.cut().is_some() {
                    cancel.cancel();
                    break;
                }
            }
            Chunk::FellBack { .. } => {}
            Chunk::Done(finish) => {
                exact = finish.provider == sotto_llm::exact::PROVIDER;
                if let Some(usage) = finish.usage {
                    tokens = usage.completion_tokens.max(tokens);
                }
                let at_limit = finish.reason == FinishReason::Length;
                said.extend(guard.finish(splitter.finish(), at_limit));
                if !said.is_empty() {
                    first_piece.get_or_insert_with(|| started.elapsed());
                }
                break;
            }
        }
    }
    let total = started.elapsed();
    let first_token = first_token.unwrap_or(total);
    let generating = total.saturating_sub(first_token).as_secs_f64();
    Ok(Spoken {
        text: said.join(" "),
        cut: guard.cut().map(|c| c.describe()),
        first_token,
        first_piece,
        rate: (tokens > 4 && generating > 0.0).then(|| f64::from(tokens - 1) / generating),
        exact,
    })
}

#[derive(Serialize)]
struct Graded {
    id: String,
    kind: String,
    answer: String,
    right: bool,
    unfit: Option<Unfit>,
    cut: Option<&'static str>,
    words: usize,
    first_token_ms: f64,
    /// Worked out exactly, not generated (its times are not the model's).
    exact: bool,
}

#[derive(Serialize)]
struct Row {
    model: String,
    persona: String,
    temperature: f32,
    questions: usize,
    right_share: f64,
    fit_share: f64,
    cut_share: f64,
    /// Answered by [`sotto_llm::exact`]; the times are of the model's answers only.
    exact_share: f64,
    words_p50: f64,
    spoken_s_max: f64,
    first_token_ms_p50: f64,
    first_token_ms_p95: f64,
    /// Until the first piece the voice says.
    first_piece_ms_p50: f64,
    first_piece_ms_p95: f64,
    tokens_per_s_p50: f64,
    /// Right share by kind of question.
    by_kind: Vec<(String, f64)>,
    answers: Vec<Graded>,
}

/// Runs the answers benchmark and prints its table.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = options(args)?;
    let text = match &options.questions {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => QUESTIONS.to_string(),
    };
    let file: QuestionFile = toml::from_str(&text).context("the questions file")?;
    anyhow::ensure!(
        file.version == 1,
        "questions file version {} unknown",
        file.version
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(measure(&options, &file.question))
}

async fn measure(options: &Options, questions: &[Question]) -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let threads = CpuBudget::detect().threads();
    let ids: Vec<String> = match &options.models {
        Some(ids) => ids.clone(),
        None => store
            .manifest()
            .models
            .iter()
            .filter(|m| m.kind == sotto_models::ModelKind::Llm && store.require(&m.id).is_ok())
            .map(|m| m.id.clone())
            .collect(),
    };
    let mut rows = Vec::new();
    if let Some(provider) = &options.provider {
        anyhow::ensure!(
            options.model_files.is_empty(),
            "--model-file grades a local file; it cannot be combined with --provider"
        );
        let preset = providers::require(provider)?;
        let key = providers::find_key(preset, &KeyStore::default())?.map(|(key, _)| key);
        let setup = CloudSetup {
            preset,
            base_url: options.base_url.as_deref(),
            model: options.provider_model.as_deref(),
            http: HttpConfig::default(),
        };
        let llm = exact_in_front(
            providers::connect(setup, key, &OfflineSwitch::default(), None)?,
            options.exact,
        );
        let name = format!(
            "{provider}: {}",
            options.provider_model.as_deref().unwrap_or(preset.model)
        );
        for persona_name in &options.personas {
            let settings = settings_for(persona_name, options.temperature)?;
            let row = ask_all(
                llm.as_ref(),
                &settings,
                &name,
                persona_name,
                questions,
                options.show,
            )
            .await?;
            rows.push(row);
        }
        print_table(&rows, threads.llm);
        return write_json(options, &rows);
    }
    let mut files = Vec::new();
    for id in &ids {
        files.push((id.clone(), store.require(id)?.main_file().to_path_buf()));
    }
    for path in &options.model_files {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        files.push((name, path.clone()));
    }
    for (id, path) in &files {
        let mut config = LocalConfig::new(path)?;
        config.threads = Some(threads.llm);
        config.batch_threads = Some(threads.llm_batch);
        let local = Arc::new(LocalLlm::new(config));
        local.start().await?;
        let llm = exact_in_front(local, options.exact);
        for name in &options.personas {
            let settings = settings_for(name, options.temperature)?;
            let row = ask_all(llm.as_ref(), &settings, id, name, questions, options.show).await?;
            eprintln!(
                "{id} / {name}: {:.0} % right, {:.0} % fit",
                row.right_share * 100.0,
                row.fit_share * 100.0
            );
            rows.push(row);
        }
    }
    print_table(&rows, threads.llm);
    write_json(options, &rows)
}

/// `model` with exact sums and conversions in front, as the voice path has it, when `exact`.
fn exact_in_front(model: Arc<dyn Llm>, exact: bool) -> Arc<dyn Llm> {
    if exact {
        Arc::new(Exact::new(model))
    } else {
        model
    }
}

/// The voice path's settings with persona `name` (and the temperature, when given).
fn settings_for(name: &str, temperature: Option<f32>) -> anyhow::Result<TurnSettings> {
    let mut settings = TurnSettings {
        system_prompt: persona(name)?,
        ..TurnSettings::default()
    };
    if let Some(t) = temperature {
        settings.sampling.temperature = t;
    }
    Ok(settings)
}

fn write_json(options: &Options, rows: &[Row]) -> anyhow::Result<()> {
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(rows)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn ask_all(
    llm: &dyn Llm,
    settings: &TurnSettings,
    model: &str,
    persona: &str,
    questions: &[Question],
    show: bool,
) -> anyhow::Result<Row> {
    let system = Message {
        role: Role::System,
        content: settings.system_prompt.clone(),
    };
    let mut answers = Vec::new();
    let (mut first, mut rates, mut pieces) = (Vec::new(), Vec::new(), Vec::new());
    for q in questions {
        // Each question is a new conversation; a follow-up's earlier turns are asked
        // first, and what was said of their answers is the history, as in the app.
        let mut history = vec![system.clone()];
        for before in &q.before {
            history.push(user(before));
            let spoken = speak(llm, settings, history.clone(), before).await?;
            history.push(Message {
                role: Role::Assistant,
                content: spoken.text,
            });
        }
        history.push(user(&q.ask));
        let spoken = speak(llm, settings, history, &q.ask).await?;
        // The times describe the model: an answer worked out exactly took none of it.
        if !spoken.exact {
            first.push(ms(spoken.first_token));
            pieces.extend(spoken.first_piece.map(ms));
            rates.extend(spoken.rate);
        }
        let graded = Graded {
            id: q.id.clone(),
            kind: q.kind.clone(),
            right: grade::is_right(&spoken.text, &q.expect),
            unfit: grade::unfit(&spoken.text, grade::FIT_WORDS),
            cut: spoken.cut,
            words: grade::words(&spoken.text),
            first_token_ms: ms(spoken.first_token),
            exact: spoken.exact,
            answer: spoken.text,
        };
        if show {
            eprintln!(
                "[{}]{} {} {:?} {} -> {}",
                if graded.right { "right" } else { "WRONG" },
                if graded.exact { "[exact]" } else { "" },
                q.id,
                graded.unfit,
                graded.cut.unwrap_or(""),
                graded.answer
            );
        }
        answers.push(graded);
    }
    let n = answers.len().max(1) as f64;
    let share = |f: &dyn Fn(&Graded) -> bool| answers.iter().filter(|a| f(a)).count() as f64 / n;
    let mut kinds: Vec<String> = questions.iter().map(|q| q.kind.clone()).collect();
    kinds.dedup();
    let by_kind = kinds
        .into_iter()
        .map(|k| {
            let of: Vec<_> = answers.iter().filter(|a| a.kind == k).collect();
            let right = of.iter().filter(|a| a.right).count() as f64 / of.len().max(1) as f64;
            (k, right)
        })
        .collect();
    let words: Vec<f64> = answers.iter().map(|a| a.words as f64).collect();
    Ok(Row {
        model: model.to_string(),
        persona: persona.to_string(),
        temperature: settings.sampling.temperature,
        questions: answers.len(),
        right_share: share(&|a| a.right),
        fit_share: share(&|a| a.unfit.is_none()),
        cut_share: share(&|a| a.cut.is_some()),
        exact_share: share(&|a| a.exact),
        words_p50: quantile(&words, 0.5),
        spoken_s_max: words.iter().copied().fold(0.0, f64::max) / grade::WORDS_PER_S,
        first_token_ms_p50: quantile(&first, 0.5),
        first_token_ms_p95: quantile(&first, 0.95),
        first_piece_ms_p50: quantile(&pieces, 0.5),
        first_piece_ms_p95: quantile(&pieces, 0.95),
        tokens_per_s_p50: quantile(&rates, 0.5),
        by_kind,
        answers,
    })
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: text.to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use sotto_llm::http::{ApiKey, HttpClient, HttpConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// What a scripted server answers: the answer of the first cue the question contains.
    type Script = Vec<(&'static str, &'static str)>;

    /// A loopback server speaking OpenAI's streaming Chat Completions: each request gets
    /// its scripted answer word by word. Returns its base URL and the system prompts it
    /// was sent.
    async fn openai_server(script: Script) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let systems = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&systems);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, script.clone(), Arc::clone(&seen)));
            }
        });
        (url, systems)
    }

    async fn answer(mut stream: TcpStream, script: Script, seen: Arc<Mutex<Vec<String>>>) {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        let body = loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            bytes.extend_from_slice(&buf[..n]);
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                break bytes[end + 4..end + 4 + length].to_vec();
            }
        };
        let request: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        let text = |m: &serde_json::Value| m["content"].as_str().unwrap_or("").to_string();
        if let Some(system) = messages.iter().find(|m| m["role"] == "system") {
            seen.lock().expect("lock").push(text(system));
        }
        let question = messages.last().map(text).unwrap_or_default();
        let reply = script
            .iter()
            .find(|(cue, _)| question.contains(cue))
            .map_or("I do not know.", |(_, a)| a);
        let mut out = String::from(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        );
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let event = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": "scripted",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {event}\n\n")
        };
        for (i, word) in reply.split(' ').enumerate() {
            let piece = if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            out.push_str(&chunk(json!({"content": piece}), None));
        }
        out.push_str(&chunk(json!({}), Some("stop")));
        out.push_str("data: [DONE]\n\n");
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn question(id: &str, ask: &str, expect: &[&[&str]], before: &[&str]) -> Question {
        Question {
            id: id.into(),
            kind: "test".into(),
            ask: ask.into(),
            before: before.iter().map(|b| b.to_string()).collect(),
            expect: Expect {
                expect: expect
                    .iter()
                    .map(|g| g.iter().map(|a| a.to_string()).collect())
                    .collect(),
                reject: Vec::new(),
            },
        }
    }

    /// The harness itself, graded against scripted cloud answers: right and wrong facts,
    /// a list, a loop the guard stops, a follow-up; the persona is the voice path's.
    #[tokio::test]
    async fn a_cloud_provider_is_graded_like_the_local_models() {
        let loop_answer = "Octopuses are clever. They can open jars. They can open jars. \
                           They can open jars. They can open jars.";
        let (url, systems) = openai_server(vec![
            ("capital of France", "The capital of France is Paris."),
            ("largest planet", "The largest planet is Saturn."),
            (
                "boil an egg",
                "Follow these steps: 1. Boil water. 2. Add the egg.",
            ),
            ("octopuses", loop_answer),
            ("12 times 12", "12 times 12 is 144."),
            ("half of that", "Half of 144 is 72."),
        ])
        .await;
        let preset = providers::require("openai").expect("the openai preset");
        let http = HttpClient::new(HttpConfig::default(), OfflineSwitch::default())
            .expect("an HTTP client");
        let llm = providers::cloud_provider(
            preset,
            Some(&url),
            Some("scripted"),
            Some(ApiKey::new("test-key")),
            http,
        );
        let questions = vec![
            question(
                "france",
                "What is the capital of France?",
                &[&["paris"]],
                &[],
            ),
            question(
                "planet",
                "What is the largest planet?",
                &[&["jupiter"]],
                &[],
            ),
            question("egg", "How do I boil an egg?", &[&["water"]], &[]),
            question("octopus", "Tell me about octopuses.", &[&["jars"]], &[]),
            question(
                "half",
                "And half of that?",
                &[&["72"]],
                &["What is 12 times 12?"],
            ),
        ];
        let settings = settings_for("speech", None).expect("the speech persona");
        let row = ask_all(
            llm.as_ref(),
            &settings,
            "scripted",
            "speech",
            &questions,
            false,
        )
        .await
        .expect("every question answered");
        let by_id = |id: &str| row.answers.iter().find(|a| a.id == id).expect("graded");
        assert!(by_id("france").right && by_id("france").unfit.is_none());
        assert!(!by_id("planet").right);
        assert!(by_id("egg").right);
        assert_eq!(by_id("egg").unfit, Some(Unfit::Written));
        // The guard stopped the loop: what is said ends before the repetition.
        let octopus = by_id("octopus");
        assert_eq!(octopus.answer, "Octopuses are clever. They can open jars.");
        assert_eq!(octopus.cut, Some("the answer started repeating itself"));
        assert!(octopus.right && octopus.unfit.is_none());
        assert!(by_id("half").right);
        assert!((row.right_share - 0.8).abs() < 1e-9, "{}", row.right_share);
        assert!((row.fit_share - 0.8).abs() < 1e-9, "{}", row.fit_share);
        // Every request (the follow-up's first turn too) carried the voice path's persona.
        let systems = systems.lock().expect("lock").clone();
        assert_eq!(systems.len(), 6);
        assert!(systems.iter().all(|s| s == sotto_core::SPEECH_PERSONA));
    }
}
