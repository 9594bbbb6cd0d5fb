//! The fallback policy with a scripted cloud provider and the real local model: a cloud
//! provider that stalls, fails or is switched off by offline mode hands the question to
//! the local model before the first word; a broken local model hands it to the cloud.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_llm::fallback::{Fallback, Policy};
use sotto_llm::http::OfflineSwitch;
use sotto_llm::local::{LocalConfig, LocalLlm};
use sotto_llm::{CancellationToken, Chunk, Llm, LlmError};
use sotto_models::ModelStore;
use support::formats::{test_http_config, Format, KEY};
use support::server::{End, Reply, ScriptedServer};
use support::{drain, error_of, question, text_of};

fn local_llm(model: std::path::PathBuf) -> Arc<dyn Llm> {
    let mut config = LocalConfig::new(model).expect("the worker binary is built");
    config.n_ctx = 1024;
    config.threads = Some(2);
    Arc::new(LocalLlm::new(config))
}

fn smollm2() -> std::path::PathBuf {
    ModelStore::open_default()
        .expect("models folder")
        .require("smollm2-135m-instruct")
        .expect("SmolLM2 is installed")
        .main_file()
        .to_path_buf()
}

fn fell_back(chunks: &[Result<Chunk, LlmError>]) -> Option<(String, String, String)> {
    chunks.iter().find_map(|c| match c {
        Ok(Chunk::FellBack { from, to, reason }) => {
            Some((from.clone(), to.clone(), reason.clone()))
        }
        _ => None,
    })
}

fn cloud_first(server: &ScriptedServer, offline: &OfflineSwitch, wait: Duration) -> Fallback {
    let cloud = Format::OpenAi.provider(
        &Format::OpenAi.base_url(&server.url),
        Some(KEY),
        test_http_config(),
        offline.clone(),
    );
    Fallback::new(
        Policy::CloudFirst,
        local_llm(smollm2()),
        cloud,
        wait,
        offline.clone(),
    )
}

#[tokio::test]
async fn a_stalled_cloud_stream_falls_back_to_the_local_model() {
    let _serial = support::one_worker_at_a_time().await;
    let script = vec![Reply::Sse {
        chunks: Format::OpenAi
            .opening()
            .into_iter()
            .map(|e| (Duration::ZERO, e))
            .collect(),
        end: End::Stall,
    }];
    let server = ScriptedServer::start(script).await;
    let offline = OfflineSwitch::default();
    let llm = cloud_first(&server, &offline, Duration::from_millis(800));
    let started = Instant::now();
    let chunks = drain(llm.chat(
        question("What is the capital of France?"),
        CancellationToken::new(),
    ))
    .await;
    let (from, to, reason) = fell_back(&chunks).expect("a fallback notice");
    assert_eq!((from.as_str(), to.as_str()), ("OpenAI", "local"));
    assert!(reason.contains("first token"), "{reason}");
    assert!(text_of(&chunks).contains("Paris"), "{chunks:?}");
    let Some(Ok(Chunk::Done(finish))) = chunks.last() else {
        panic!("{chunks:?}");
    };
    assert_eq!(finish.provider, "local");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_failing_cloud_provider_falls_back_but_a_started_answer_does_not() {
    let _serial = support::one_worker_at_a_time().await;
    // 401: no retry, straight to the local model.
    let server = ScriptedServer::start(vec![Reply::status(401, "bad key")]).await;
    let offline = OfflineSwitch::default();
    let llm = cloud_first(&server, &offline, Duration::from_secs(5));
    let chunks = drain(llm.chat(question("Say hello."), CancellationToken::new())).await;
    let (_, _, reason) = fell_back(&chunks).expect("a fallback notice");
    assert!(reason.contains("rejected the API key"), "{reason}");
    assert!(!text_of(&chunks).is_empty());

    // Once the cloud has spoken, a later failure is reported, not papered over with a
    // second, different answer.
    let mut events = Format::OpenAi.opening();
    events.push(Format::OpenAi.text_event("Half an"));
    let script = vec![Reply::Sse {
        chunks: events.into_iter().map(|e| (Duration::ZERO, e)).collect(),
        end: End::BreakOff,
    }];
    let server = ScriptedServer::start(script).await;
    let llm = cloud_first(&server, &offline, Duration::from_secs(5));
    let chunks = drain(llm.chat(question("Say hello."), CancellationToken::new())).await;
    assert!(fell_back(&chunks).is_none(), "{chunks:?}");
    assert_eq!(text_of(&chunks), "Half an");
    assert!(error_of(&chunks).is_some());
}

#[tokio::test]
async fn offline_mode_skips_the_cloud_provider_without_a_request() {
    let _serial = support::one_worker_at_a_time().await;
    let server = ScriptedServer::start(vec![Reply::sse(&Format::OpenAi.answer(&["Cloud"]))]).await;
    let offline = OfflineSwitch::default();
    offline.set(true);
    let llm = cloud_first(&server, &offline, Duration::from_secs(5));
    let chunks = drain(llm.chat(question("Say hello."), CancellationToken::new())).await;
    let (_, to, reason) = fell_back(&chunks).expect("a fallback notice");
    assert_eq!(to, "local");
    assert!(reason.contains("offline"), "{reason}");
    assert!(!text_of(&chunks).contains("Cloud"));
    assert!(
        server.received().is_empty(),
        "the cloud was contacted offline"
    );
}

#[tokio::test]
async fn a_broken_local_model_falls_back_to_the_cloud_unless_offline() {
    let _serial = support::one_worker_at_a_time().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.gguf");
    std::fs::write(&broken, b"not a model").expect("write");
    let server = ScriptedServer::start(vec![Reply::sse(
        &Format::Gemini.answer(&["From", " the cloud."]),
    )])
    .await;
    let offline = OfflineSwitch::default();
    let cloud =
        Format::Gemini.provider(&server.url, Some(KEY), test_http_config(), offline.clone());
    let llm = Fallback::new(
        Policy::LocalFirst,
        local_llm(broken),
        cloud,
        Duration::from_secs(5),
        offline.clone(),
    );
    let chunks = drain(llm.chat(question("Say hello."), CancellationToken::new())).await;
    let (from, to, reason) = fell_back(&chunks).expect("a fallback notice");
    assert_eq!((from.as_str(), to.as_str()), ("local", "Gemini"));
    assert!(reason.contains("not a usable GGUF"), "{reason}");
    assert_eq!(text_of(&chunks), "From the cloud.");

    // Offline: the local model's own error, and still no request.
    offline.set(true);
    let chunks = drain(llm.chat(question("Say hello."), CancellationToken::new())).await;
    let error = error_of(&chunks).expect("an error");
    assert!(matches!(error, LlmError::Worker(_)), "{error:?}");
    assert_eq!(server.received().len(), 1);
}
