//! The local provider with the real `sotto-llm-worker` and SmolLM2-135M: streaming,
//! cancellation, a worker killed mid-answer, damaged model files, prefix reuse, the
//! warm-up, and the worker surviving bad requests.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sotto_llm::local::{find_worker, LocalConfig, LocalLlm};
use sotto_llm::{
    CancellationToken, ChatRequest, Chunk, FinishReason, Llm, LlmError, Message, Role, Usage,
};
use sotto_models::ModelStore;
use support::{drain, error_of, question, text_of};

fn smollm2() -> PathBuf {
    ModelStore::open_default()
        .expect("models folder")
        .require("smollm2-135m-instruct")
        .expect("SmolLM2 is installed (cargo xtask models)")
        .main_file()
        .to_path_buf()
}

/// Asks `request` and waits for the whole answer: its text and what the worker read.
async fn ask(llm: &LocalLlm, request: ChatRequest) -> (String, Usage) {
    let (answer, finish) = llm
        .chat(request, CancellationToken::new())
        .collect()
        .await
        .expect("answer");
    (answer, finish.usage.expect("usage"))
}

fn local(model: PathBuf) -> LocalLlm {
    let mut config = LocalConfig::new(model).expect("the worker binary is built");
    config.n_ctx = 2048;
    config.threads = Some(2);
    LocalLlm::new(config)
}

#[tokio::test]
async fn the_local_model_streams_an_answer_token_by_token() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    let chunks = drain(llm.chat(
        question("What is the capital of France?"),
        CancellationToken::new(),
    ))
    .await;
    let text = text_of(&chunks);
    assert!(text.contains("Paris"), "{text:?}");
    let pieces = chunks
        .iter()
        .filter(|c| matches!(c, Ok(Chunk::Text(_))))
        .count();
    assert!(pieces >= 3, "the answer came in {pieces} pieces");
    let Some(Ok(Chunk::Done(finish))) = chunks.last() else {
        panic!("{chunks:?}");
    };
    assert_eq!(finish.provider, "local");
    assert!(matches!(
        finish.reason,
        FinishReason::Stop | FinishReason::Length
    ));
    let usage = finish.usage.expect("usage");
    assert!(usage.prompt_tokens > 10, "{usage:?}");
    assert!(usage.completion_tokens as usize >= pieces, "{usage:?}");
}

#[tokio::test]
async fn cancelling_mid_answer_stops_generation_within_100_ms() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    llm.start().await.expect("worker starts");
    let mut request = question("Tell me a long story about a dragon who learns to sing.");
    request.sampling.max_tokens = 400;
    let cancel = CancellationToken::new();
    let mut answer = llm.chat(request, cancel.clone());
    let mut pieces = 0;
    while pieces < 5 {
        match answer.next().await {
            Some(Ok(Chunk::Text(_))) => pieces += 1,
            other => panic!("before cancelling: {other:?}"),
        }
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let rest = drain(answer).await;
    let stopped_after = cancelled_at.elapsed();
    let Some(Ok(Chunk::Done(finish))) = rest.last() else {
        panic!("{rest:?}");
    };
    assert_eq!(finish.reason, FinishReason::Cancelled);
    assert!(
        stopped_after < Duration::from_millis(100),
        "stopped {stopped_after:?} after cancel"
    );
    let generated = finish.usage.expect("usage").completion_tokens;
    assert!(
        generated < 60,
        "{generated} tokens generated despite the cancel"
    );

    // The worker is free again at once.
    let chunks = drain(llm.chat(question("Say hi."), CancellationToken::new())).await;
    assert!(!text_of(&chunks).is_empty(), "{chunks:?}");
}

#[tokio::test]
async fn a_worker_killed_mid_answer_is_a_clear_error_and_the_next_request_works() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    llm.start().await.expect("worker starts");
    let first_pid = llm.worker_pid().await.expect("pid");
    let mut request = question("Describe the ocean in detail.");
    request.sampling.max_tokens = 300;
    let mut answer = llm.chat(request, CancellationToken::new());
    match answer.next().await {
        Some(Ok(Chunk::Text(_))) => {}
        other => panic!("{other:?}"),
    }
    let killed = Command::new("kill")
        .args(["-9", &first_pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let rest = drain(answer).await;
    let error = error_of(&rest).expect("an error after the kill");
    let LlmError::Worker(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("stopped unexpectedly"), "{message}");
    assert!(!rest.iter().any(|c| matches!(c, Ok(Chunk::Done(_)))));

    let chunks = drain(llm.chat(
        question("What is the capital of France?"),
        CancellationToken::new(),
    ))
    .await;
    assert!(text_of(&chunks).contains("Paris"), "{chunks:?}");
    let second_pid = llm.worker_pid().await.expect("pid");
    assert_ne!(first_pid, second_pid, "a fresh worker answered");
}

#[tokio::test]
async fn a_worker_that_hangs_mid_answer_times_out_is_replaced_and_the_next_request_works() {
    let _serial = support::one_worker_at_a_time().await;
    let mut config = LocalConfig::new(smollm2()).expect("the worker binary is built");
    config.n_ctx = 2048;
    config.threads = Some(2);
    config.token_timeout = Duration::from_secs(1);
    let llm = LocalLlm::new(config);
    llm.start().await.expect("worker starts");
    let first_pid = llm.worker_pid().await.expect("pid");
    let mut request = question("Describe the ocean in detail.");
    request.sampling.max_tokens = 300;
    let mut answer = llm.chat(request, CancellationToken::new());
    match answer.next().await {
        Some(Ok(Chunk::Text(_))) => {}
        other => panic!("{other:?}"),
    }
    // The worker freezes (as a process stuck in a driver or swapped out would).
    let stopped = Command::new("kill")
        .args(["-STOP", &first_pid.to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let frozen_at = Instant::now();
    let rest = drain(answer).await;
    let waited = frozen_at.elapsed();
    let error = error_of(&rest).expect("an error after the freeze");
    assert!(
        matches!(
            error,
            LlmError::Timeout {
                stage: "next token",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(
        error.to_string().contains("did not answer in time"),
        "{error}"
    );

    let chunks = drain(llm.chat(
        question("What is the capital of France?"),
        CancellationToken::new(),
    ))
    .await;
    assert!(text_of(&chunks).contains("Paris"), "{chunks:?}");
    let second_pid = llm.worker_pid().await.expect("pid");
    assert_ne!(first_pid, second_pid, "a fresh worker answered");
    // The frozen one is gone, not left stopped in the background.
    let status = std::fs::read_to_string(format!("/proc/{first_pid}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains("State:\tZ"),
        "the hung worker still exists: {status}"
    );
}

#[tokio::test]
async fn damaged_or_missing_model_files_are_clear_errors() {
    let _serial = support::one_worker_at_a_time().await;
    let dir = tempfile::tempdir().expect("tempdir");

    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"<html>404 Not Found</html>").expect("write");
    let error = local(junk).start().await.expect_err("junk must be refused");
    let message = error.to_string();
    assert!(message.contains("not a usable GGUF model"), "{message}");
    assert!(message.contains("sotto models fetch"), "{message}");

    // A real model cut short, as an interrupted copy leaves it: the header is fine, the
    // tensors are missing.
    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(smollm2()).expect("read model");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let error = local(truncated).start().await.expect_err("truncated model");
    let message = error.to_string();
    assert!(message.contains("sotto models fetch"), "{message}");

    let missing = dir.path().join("missing.gguf");
    let llm = local(missing);
    let chunks = drain(llm.chat(question("Hi"), CancellationToken::new())).await;
    let message = error_of(&chunks).expect("error").to_string();
    assert!(message.contains("is missing"), "{message}");
}

#[tokio::test]
async fn a_follow_up_reuses_the_cached_conversation_prefix() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    let mut request = question("Name a fruit that is yellow.");
    let (first, first_usage) = ask(&llm, request.clone()).await;
    request.messages.push(Message {
        role: Role::Assistant,
        content: first,
    });
    request.messages.push(Message {
        role: Role::User,
        content: "And one that is red?".into(),
    });
    let (_, usage) = ask(&llm, request).await;
    assert!(
        usage.cached_tokens >= first_usage.prompt_tokens,
        "turn 2 re-read the history: {usage:?} after {first_usage:?}"
    );
    assert!(usage.prompt_tokens > usage.cached_tokens);
}

#[tokio::test]
async fn dropping_the_oldest_turn_keeps_the_newer_ones_from_the_cache() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    let turn = |role, content: &str| Message {
        role,
        content: content.into(),
    };
    let mut request = question("Name a fruit that is yellow.");
    request.messages.extend([
        turn(Role::Assistant, "A banana is yellow."),
        turn(
            Role::User,
            "Which planet in our solar system is the largest one of them all?",
        ),
        turn(
            Role::Assistant,
            "Jupiter is the largest planet in our solar system, more than eleven times as wide as the Earth.",
        ),
        turn(Role::User, "What is the capital of France?"),
    ]);
    let (_, full) = ask(&llm, request.clone()).await;
    // The history is full: the oldest turn goes, the newer ones stay.
    request.messages.drain(1..3);
    let (answer, usage) = ask(&llm, request).await;
    assert!(
        usage.prompt_tokens < full.prompt_tokens && usage.prompt_tokens - usage.cached_tokens <= 8,
        "the newer turns were read again: {usage:?} (before: {full:?})"
    );
    assert!(answer.contains("Paris"), "{answer:?}");
}

#[tokio::test]
async fn a_warm_up_reads_the_persona_so_the_first_question_reuses_it() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    llm.start().await.expect("worker");
    let request = question("What is the capital of France?");
    let persona: Vec<Message> = request.messages[..1].to_vec();
    llm.warm_up(persona);
    // The warm-up is fire-and-forget; give it time to reach the worker first (reading a
    // short persona takes well under a second on two cores).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (answer, usage) = ask(&llm, request).await;
    assert!(answer.contains("Paris"), "{answer:?}");
    // The persona and the chat template's start of a user turn came from the cache.
    assert!(
        usage.cached_tokens >= 10 && usage.cached_tokens < usage.prompt_tokens,
        "{usage:?}"
    );
}

#[tokio::test]
async fn reading_ahead_leaves_only_the_rest_of_the_question_to_read() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    llm.start().await.expect("worker");
    let request = question("What is the capital of France?");
    // The words heard while the user was still speaking.
    let mut so_far = request.messages.clone();
    if let Some(last) = so_far.last_mut() {
        last.content = "What is the capital of".into();
    }
    llm.read_ahead(so_far, CancellationToken::new());
    // Fire-and-forget, as the warm-up: give it time to reach the worker before the
    // question does (the worker takes requests in order).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (answer, usage) = ask(&llm, request).await;
    assert!(answer.contains("Paris"), "{answer:?}");
    // Left to read: " France?" and the template's end of the user turn and start of the
    // answer (seven tokens for this model's ChatML).
    assert!(
        usage.prompt_tokens - usage.cached_tokens <= 8,
        "the question was read again: {usage:?}"
    );
}

#[tokio::test]
async fn a_read_ahead_stopped_halfway_leaves_a_cache_the_question_can_use() {
    let _serial = support::one_worker_at_a_time().await;
    let llm = local(smollm2());
    llm.start().await.expect("worker");
    // A long conversation, so the read-ahead (eight tokens a batch) is stopped inside it.
    let mut request = question("What is the capital of France?");
    let history =
        "Tell me about the weather in spring, and the flowers, and the birds. ".repeat(12);
    request.messages.insert(
        1,
        Message {
            role: Role::User,
            content: history,
        },
    );
    request.messages.insert(
        2,
        Message {
            role: Role::Assistant,
            content: "Spring is mild, with flowers and birdsong.".into(),
        },
    );
    let cancel = CancellationToken::new();
    llm.read_ahead(request.messages.clone(), cancel.clone());
    tokio::time::sleep(Duration::from_millis(150)).await;
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answer, usage) = ask(&llm, request).await;
    assert!(answer.contains("Paris"), "{answer:?}");
    // Whatever was read before the stop is reused, and nothing more than was asked.
    assert!(usage.cached_tokens < usage.prompt_tokens, "{usage:?}");
}

/// The worker itself, spoken to line by line.
#[test]
fn the_worker_survives_bad_requests_and_exits_when_stdin_closes() {
    let mut child = Command::new(find_worker().expect("worker"))
        .arg("--model")
        .arg(smollm2())
        .args(["--ctx", "1024", "--threads", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || -> serde_json::Value {
        let line = lines.next().expect("a line").expect("read");
        serde_json::from_str(&line).expect("JSON event")
    };
    assert_eq!(next()["type"], "ready");

    writeln!(stdin, "this is not json").expect("write");
    let event = next();
    assert_eq!(event["type"], "error", "{event}");

    writeln!(stdin, r#"{{"type":"chat","id":"bad"}}"#).expect("write");
    let event = next();
    assert_eq!(event["type"], "error", "{event}");
    assert_eq!(event["id"], "bad", "{event}");

    let chat = serde_json::json!({"type": "chat", "id": "ok",
        "messages": [{"role": "user", "content": "Say hello."}],
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 8, "stop": []});
    writeln!(stdin, "{chat}").expect("write");
    let mut tokens = 0;
    loop {
        let event = next();
        assert_eq!(event["id"], "ok", "{event}");
        match event["type"].as_str() {
            Some("token") => tokens += 1,
            Some("done") => break,
            other => panic!("{other:?}: {event}"),
        }
    }
    assert!(tokens > 0);

    // A chat cancelled while it waits behind another ends at once, with its `done`:
    // Sotto waits for that event (and takes a silent worker for a hung one).
    let long = serde_json::json!({"type": "chat", "id": "long",
        "messages": [{"role": "user", "content": "Count from one to one hundred."}],
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 200, "stop": []});
    let queued = serde_json::json!({"type": "chat", "id": "queued",
        "messages": [{"role": "user", "content": "Say hello."}],
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 8, "stop": []});
    writeln!(stdin, "{long}").expect("write");
    writeln!(stdin, "{queued}").expect("write");
    writeln!(stdin, r#"{{"type":"cancel","id":"queued"}}"#).expect("write");
    let queued_done = loop {
        let event = next();
        match (event["id"].as_str(), event["type"].as_str()) {
            (Some("queued"), Some("done")) => break event,
            (Some("queued"), _) => panic!("the cancelled chat was answered: {event}"),
            (Some("long"), Some("token")) => {}
            _ => panic!("{event}"),
        }
    };
    assert_eq!(queued_done["finish_reason"], "cancelled", "{queued_done}");
    writeln!(stdin, r#"{{"type":"cancel","id":"long"}}"#).expect("write");
    loop {
        let event = next();
        assert_eq!(event["id"], "long", "{event}");
        if event["type"] == "done" {
            break;
        }
    }

    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the worker outlived its stdin");
        std::thread::sleep(Duration::from_millis(20));
    }
}
