//! Each cloud provider against a loopback server that speaks its real streaming format:
//! success, auth failures, rate limits, server errors, broken and stalled streams,
//! cancellation, offline mode and missing keys.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use sotto_llm::http::OfflineSwitch;
use sotto_llm::{CancellationToken, Chunk, FinishReason, LlmError};
use support::formats::{test_http_config, Format, ALL, KEY};
use support::server::{End, Reply, ScriptedServer};
use support::{drain, error_of, question, text_of};

async fn ask(format: Format, script: Vec<Reply>) -> (ScriptedServer, Vec<Result<Chunk, LlmError>>) {
    let server = ScriptedServer::start(script).await;
    let llm = format.provider(
        &format.base_url(&server.url),
        Some(KEY),
        test_http_config(),
        OfflineSwitch::default(),
    );
    let chunks = drain(llm.chat(question("Say hello."), CancellationToken::new())).await;
    (server, chunks)
}

#[tokio::test]
async fn each_provider_streams_text_piece_by_piece_then_finishes_with_usage() {
    for format in ALL {
        let pieces = ["Hello", " there", ", I am", " Sotto."];
        let (server, chunks) = ask(format, vec![Reply::sse(&format.answer(&pieces))]).await;
        assert_eq!(text_of(&chunks), "Hello there, I am Sotto.", "{format:?}");
        let texts = chunks
            .iter()
            .filter(|c| matches!(c, Ok(Chunk::Text(_))))
            .count();
        assert_eq!(
            texts,
            pieces.len(),
            "{format:?}: one chunk per streamed piece"
        );
        let Some(Ok(Chunk::Done(finish))) = chunks.last() else {
            panic!("{format:?}: the answer did not finish: {chunks:?}");
        };
        assert_eq!(finish.reason, FinishReason::Stop, "{format:?}");
        assert_eq!(finish.provider, format.name());
        let usage = finish.usage.expect("usage");
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (12, 4),
            "{format:?}"
        );

        let received = server.received();
        assert_eq!(received.len(), 1, "{format:?}");
        let request = &received[0];
        assert_eq!(request.request_line, format.request_line(), "{format:?}");
        let (header, value) = format.auth_header();
        assert_eq!(request.header(header), Some(value.as_str()), "{format:?}");
        let body = request.body.to_string();
        assert!(body.contains("Say hello."), "{format:?}: {body}");
        assert!(
            body.contains("You are a helpful assistant."),
            "{format:?}: {body}"
        );
        match format {
            Format::OpenAi => {
                assert_eq!(request.body["stream"], true);
                assert_eq!(request.body["messages"][0]["role"], "system");
                assert_eq!(request.body["max_tokens"], 48);
            }
            Format::Anthropic => {
                assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(request.body["stream"], true);
                assert!(request.body["system"]
                    .as_str()
                    .is_some_and(|s| s.contains("helpful assistant")));
                assert_eq!(request.body["messages"][0]["role"], "user");
            }
            Format::Gemini => {
                assert!(request.body["systemInstruction"]["parts"][0]["text"]
                    .as_str()
                    .is_some_and(|s| s.contains("helpful assistant")));
                assert_eq!(request.body["contents"][0]["role"], "user");
                assert_eq!(request.body["generationConfig"]["maxOutputTokens"], 48);
            }
        }
    }
}

#[tokio::test]
async fn a_rejected_key_is_reported_at_once_without_retrying() {
    for format in ALL {
        for status in [401, 403] {
            let (server, chunks) =
                ask(format, vec![Reply::status(status, "invalid x-api-key")]).await;
            let error = error_of(&chunks).expect("an error");
            assert_eq!(
                error,
                LlmError::Unauthorized {
                    provider: format.name().into(),
                    status
                }
            );
            assert!(error.to_string().contains("Check the key in Settings"));
            assert_eq!(
                server.received().len(),
                1,
                "{format:?}: no retry on {status}"
            );
        }
    }
}

#[tokio::test]
async fn a_429_is_retried_after_the_time_the_provider_asks_for() {
    for format in ALL {
        let script = vec![
            Reply::status(429, "slow down").with_header("retry-after", "1"),
            Reply::sse(&format.answer(&["Fine."])),
        ];
        let started = Instant::now();
        let (server, chunks) = ask(format, script).await;
        assert_eq!(text_of(&chunks), "Fine.", "{format:?}: {chunks:?}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{format:?}: retried before Retry-After"
        );
        assert_eq!(server.received().len(), 2);
    }
}

#[tokio::test]
async fn a_429_asking_for_too_long_a_wait_fails_fast_and_says_how_long() {
    for format in ALL {
        let script = vec![Reply::status(429, "quota").with_header("retry-after", "120")];
        let started = Instant::now();
        let (server, chunks) = ask(format, script).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let error = error_of(&chunks).expect("an error");
        assert_eq!(
            error,
            LlmError::RateLimited {
                provider: format.name().into(),
                retry_after: Some(Duration::from_secs(120))
            }
        );
        assert!(error.to_string().contains("wait 120 s"), "{error}");
        assert_eq!(server.received().len(), 1);
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    for format in ALL {
        // One failure, then success: the user never sees the 500.
        let script = vec![
            Reply::status(500, "upstream hiccup"),
            Reply::sse(&format.answer(&["Recovered."])),
        ];
        let (server, chunks) = ask(format, script).await;
        assert_eq!(text_of(&chunks), "Recovered.", "{format:?}");
        assert_eq!(server.received().len(), 2);

        // Persistent failure: the first try and two retries, then the provider's message.
        let script = vec![Reply::status(503, "overloaded"); 3];
        let (server, chunks) = ask(format, script).await;
        let error = error_of(&chunks).expect("an error");
        assert_eq!(
            error,
            LlmError::Server {
                provider: format.name().into(),
                status: 503,
                message: "overloaded".into()
            }
        );
        assert_eq!(server.received().len(), 3, "{format:?}");
    }
}

#[tokio::test]
async fn a_refused_request_is_not_retried_and_quotes_the_provider() {
    for format in ALL {
        let (server, chunks) = ask(format, vec![Reply::status(400, "model not found")]).await;
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(error, LlmError::Refused { status: 400, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("model not found"));
        assert_eq!(server.received().len(), 1);
    }
}

#[tokio::test]
async fn an_event_that_is_not_json_is_a_malformed_stream_error() {
    for format in ALL {
        let mut events = format.opening();
        events.push(format.text_event("Half"));
        events.push("data: {\"choices\": [{\"delta\": \n\n".to_string());
        let (_server, chunks) = ask(format, vec![Reply::sse(&events)]).await;
        assert_eq!(
            text_of(&chunks),
            "Half",
            "{format:?}: text before the damage arrives"
        );
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(error, LlmError::Malformed { .. }),
            "{format:?}: {error:?}"
        );
        assert!(error.to_string().contains("cannot read"), "{error}");
    }
}

#[tokio::test]
async fn a_stream_cut_off_mid_answer_is_an_error_not_a_short_answer() {
    for format in ALL {
        let mut events = format.opening();
        events.push(format.text_event("The answer is"));
        // The connection drops without the final chunk.
        let script = vec![Reply::Sse {
            chunks: events.iter().map(|e| (Duration::ZERO, e.clone())).collect(),
            end: End::BreakOff,
        }];
        let (_server, chunks) = ask(format, script).await;
        assert_eq!(text_of(&chunks), "The answer is");
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(error, LlmError::Connect { .. } | LlmError::Malformed { .. }),
            "{format:?}: {error:?}"
        );
        assert!(!chunks.iter().any(|c| matches!(c, Ok(Chunk::Done(_)))));

        // A cleanly closed stream that never finished the answer is no better.
        let mut events = format.opening();
        events.push(format.text_event("The answer is"));
        events.push("data: {\"partial\": tr".to_string());
        let (_server, chunks) = ask(format, vec![Reply::sse(&events)]).await;
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(error, LlmError::Malformed { .. }),
            "{format:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_before_or_between_tokens() {
    for format in ALL {
        // Headers arrive, then nothing.
        let script = vec![Reply::Sse {
            chunks: format
                .opening()
                .into_iter()
                .map(|e| (Duration::ZERO, e))
                .collect(),
            end: End::Stall,
        }];
        let started = Instant::now();
        let (_server, chunks) = ask(format, script).await;
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(
                error,
                LlmError::Timeout {
                    stage: "first token",
                    ..
                }
            ),
            "{format:?}: {error:?}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_secs(4),
            "{waited:?}"
        );

        // Some words, then silence: the idle limit, shorter than the first-token one.
        let mut events = format.opening();
        events.push(format.text_event("Well,"));
        let script = vec![Reply::Sse {
            chunks: events.into_iter().map(|e| (Duration::ZERO, e)).collect(),
            end: End::Stall,
        }];
        let (_server, chunks) = ask(format, script).await;
        assert_eq!(text_of(&chunks), "Well,");
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(
                error,
                LlmError::Timeout {
                    stage: "next token",
                    ..
                }
            ),
            "{format:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_without_a_retry() {
    for format in ALL {
        let started = Instant::now();
        let (server, chunks) = ask(format, vec![Reply::Silent, Reply::Silent]).await;
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(
                error,
                LlmError::Timeout {
                    stage: "response",
                    ..
                }
            ),
            "{format:?}: {error:?}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_secs(4),
            "{format:?}: {waited:?}"
        );
        assert_eq!(server.received().len(), 1, "{format:?}: asked once");
    }
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_key_never_reaches_the_other_server() {
    for format in ALL {
        let elsewhere = ScriptedServer::start(vec![Reply::sse(&format.answer(&["Hi."]))]).await;
        let target = format!("{}/v1/chat/completions", elsewhere.url);
        let redirect = Reply::Status {
            status: 307,
            headers: vec![("location".into(), target)],
            body: String::new(),
        };
        let (server, chunks) = ask(format, vec![redirect]).await;
        let error = error_of(&chunks).expect("an error");
        assert!(
            matches!(error, LlmError::Refused { status: 307, .. }),
            "{format:?}: {error:?}"
        );
        assert!(error.to_string().contains("redirects"), "{error}");
        assert_eq!(server.received().len(), 1, "{format:?}");
        assert!(
            elsewhere.received().is_empty(),
            "{format:?}: the redirect was followed"
        );
    }
}

#[tokio::test]
async fn cancelling_mid_stream_ends_the_answer_at_once() {
    for format in ALL {
        // A slow stream: one piece every 300 ms.
        let mut chunks: Vec<(Duration, String)> = format
            .opening()
            .into_iter()
            .map(|e| (Duration::ZERO, e))
            .collect();
        for word in ["One", " two", " three", " four", " five", " six"] {
            chunks.push((Duration::from_millis(300), format.text_event(word)));
        }
        let script = vec![Reply::Sse {
            chunks,
            end: End::Complete,
        }];
        let server = ScriptedServer::start(script).await;
        let llm = format.provider(
            &format.base_url(&server.url),
            Some(KEY),
            test_http_config(),
            OfflineSwitch::default(),
        );
        let cancel = CancellationToken::new();
        let mut answer = llm.chat(question("Count."), cancel.clone());
        let first = answer.next().await;
        assert!(matches!(first, Some(Ok(Chunk::Text(_)))), "{first:?}");
        let cancelled_at = Instant::now();
        cancel.cancel();
        let rest = drain(answer).await;
        assert!(cancelled_at.elapsed() < Duration::from_millis(100));
        let Some(Ok(Chunk::Done(finish))) = rest.last() else {
            panic!("{format:?}: {rest:?}");
        };
        assert_eq!(finish.reason, FinishReason::Cancelled);
    }
}

#[tokio::test]
async fn offline_mode_never_contacts_a_cloud_provider() {
    for format in ALL {
        let server = ScriptedServer::start(vec![Reply::sse(&format.answer(&["No."]))]).await;
        let offline = OfflineSwitch::default();
        offline.set(true);
        let llm = format.provider(
            &format.base_url(&server.url),
            Some(KEY),
            test_http_config(),
            offline.clone(),
        );
        let chunks = drain(llm.chat(question("Hi"), CancellationToken::new())).await;
        assert_eq!(
            error_of(&chunks),
            Some(LlmError::Offline {
                provider: format.name().into()
            })
        );
        assert!(server.received().is_empty(), "{format:?} was contacted");

        // Switching offline mode off takes effect on the next request.
        offline.set(false);
        let chunks = drain(llm.chat(question("Hi"), CancellationToken::new())).await;
        assert_eq!(text_of(&chunks), "No.");
        assert_eq!(server.received().len(), 1);
    }
}

#[tokio::test]
async fn a_missing_key_is_asked_for_without_a_request() {
    for format in ALL {
        let server = ScriptedServer::start(vec![]).await;
        let llm = format.provider(
            &format.base_url(&server.url),
            None,
            test_http_config(),
            OfflineSwitch::default(),
        );
        let chunks = drain(llm.chat(question("Hi"), CancellationToken::new())).await;
        let error = error_of(&chunks).expect("an error");
        assert_eq!(
            error,
            LlmError::MissingKey {
                provider: format.name().into()
            }
        );
        assert!(error.to_string().contains("Add it in Settings"));
        assert!(server.received().is_empty());
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connect_error_after_retries() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    for format in ALL {
        let llm = format.provider(
            &format.base_url(&format!("http://127.0.0.1:{port}")),
            Some(KEY),
            test_http_config(),
            OfflineSwitch::default(),
        );
        let chunks = drain(llm.chat(question("Hi"), CancellationToken::new())).await;
        let error = error_of(&chunks).expect("an error");
        assert!(matches!(error, LlmError::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("cannot reach"), "{error}");
    }
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug_output() {
    for format in ALL {
        let script = vec![Reply::status(
            400,
            &format!("Incorrect API key provided: {KEY}"),
        )];
        let (_server, chunks) = ask(format, script).await;
        let error = error_of(&chunks).expect("error");
        let shown = format!("{chunks:?} {error}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("Incorrect API key provided: ***"), "{shown}");
    }
    let key = sotto_llm::http::ApiKey::new(KEY);
    assert_eq!(format!("{key:?}"), "ApiKey(***)");
}
