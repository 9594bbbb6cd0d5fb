//! `POST /v1/audio/transcriptions` (a WAV upload to text) and `POST /v1/audio/speech`
//! (text to WAV or raw PCM, streamed as each clause is made).

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use sotto_stt::{CancelFlag, Transcript};
use sotto_tts::{CancellationToken, Tts};

use crate::screen::strip_controls;
use crate::{ApiError, AppState, SharedVoice};

/// OpenAI's voice names: a client that only knows them gets Sotto's default voice.
const OPENAI_VOICES: [&str; 11] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
];

/// The rate of `pcm` output, as OpenAI's: 24 kHz, 16-bit little-endian, mono.
const PCM_RATE: u32 = 24_000;

/// Raises a transcription's cancel flag when the request is dropped (the client went
/// away): whisper stops instead of finishing for nobody.
struct CancelOnDrop(CancelFlag);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What a multipart upload carried.
#[derive(Default)]
struct Upload {
    file: Option<(String, Bytes)>,
    response_format: Option<String>,
    prompt: Option<String>,
    word_times: bool,
}

fn multipart_error(e: &MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(&format!(
            "The upload is larger than {} MB: send a shorter recording",
            limit >> 20
        ))
    } else {
        ApiError::bad_request(
            "invalid_multipart",
            &format!("The upload could not be read: {}", e.body_text()),
        )
    }
}

async fn read_upload(mut multipart: Multipart, limit: usize) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    // Clients send the fields in any order: all are read before any is judged.
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e, limit))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or("upload").to_string();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(&e, limit))?;
                upload.file = Some((file_name, bytes));
            }
            "response_format" | "prompt" | "timestamp_granularities[]" => {
                let text = field.text().await.map_err(|e| multipart_error(&e, limit))?;
                match name.as_str() {
                    "response_format" => upload.response_format = Some(text.trim().to_string()),
                    "prompt" => upload.prompt = Some(strip_controls(&text)),
                    _ => upload.word_times |= text.trim() == "word",
                }
            }
            // model, language, temperature, ...: Sotto uses its own model and settings.
            _ => {
                field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(&e, limit))?;
            }
        }
    }
    Ok(upload)
}

/// `POST /v1/audio/transcriptions`.
pub(crate) async fn transcriptions(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let limits = &state.config.limits;
    let multipart = multipart.map_err(|e| {
        ApiError::bad_request(
            "invalid_multipart",
            &format!("Send the audio as multipart/form-data with a `file` field ({e})"),
        )
    })?;
    let upload = read_upload(multipart, limits.max_upload_bytes).await?;
    let format = upload
        .response_format
        .as_deref()
        .unwrap_or("json")
        .to_string();
    if !matches!(
        format.as_str(),
        "json" | "text" | "verbose_json" | "srt" | "vtt"
    ) {
        return Err(ApiError::bad_request(
            "unsupported_format",
            &format!("response_format {format:?} is not one Sotto makes: use json, text, verbose_json, srt or vtt"),
        ));
    }
    let Some((name, bytes)) = upload.file else {
        return Err(ApiError::bad_request(
            "missing_file",
            "No audio: send the recording in a multipart field named `file`",
        ));
    };
    let audio = sotto_audio::wav::read_bytes(&bytes, &name).map_err(|e| {
        ApiError::bad_request(
            "invalid_audio",
            &format!("{e}. Send a WAV file (PCM 8-32 bit or float, any rate, mono or stereo)"),
        )
    })?;
    let frames = audio.samples.len() / usize::from(audio.channels.max(1));
    let seconds = frames as f64 / f64::from(audio.sample_rate);
    if seconds > f64::from(limits.max_audio_seconds) {
        return Err(ApiError::too_large(&format!(
            "The recording is {seconds:.0} s long; Sotto's API transcribes up to {} s at a time: split it",
            limits.max_audio_seconds
        )));
    }
    let samples = sotto_audio::to_mono_16k(&audio).map_err(|e| {
        ApiError::bad_request(
            "invalid_audio",
            &format!("The audio could not be converted: {e}"),
        )
    })?;
    if samples.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_audio",
            "The WAV file holds no audio",
        ));
    }
    let stt = state.engines()?.stt;
    let cancel = CancelOnDrop(CancelFlag::default());
    let flag = cancel.0.clone();
    let prompt = upload.prompt.unwrap_or_default();
    // Word times cost a slower decode (and load the model's aligned copy): only when asked.
    let timed = upload.word_times;
    let transcript = tokio::task::spawn_blocking(move || {
        if timed {
            stt.transcribe_after(&samples, &prompt, &flag)
        } else {
            stt.transcribe_untimed_after(&samples, &prompt, &flag)
        }
    })
    .await
    .map_err(|e| {
        ApiError::engine(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Speech recognition stopped: {e}"),
        )
    })?
    .map_err(|e| {
        ApiError::engine(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Speech recognition failed: {e}"),
        )
    })?;
    drop(cancel);
    Ok(transcript_response(
        &format,
        &transcript,
        seconds,
        upload.word_times,
    ))
}

/// The transcript in the format asked for.
fn transcript_response(format: &str, t: &Transcript, seconds: f64, word_times: bool) -> Response {
    let text_plain = |body: String| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    };
    match format {
        "text" => text_plain(format!("{}\n", t.text)),
        "srt" | "vtt" => text_plain(subtitles(format, t)),
        "verbose_json" => {
            let segments: Vec<_> = t
                .segments
                .iter()
                .enumerate()
                .map(|(id, s)| {
                    json!({
                        "id": id,
                        "seek": 0,
                        "start": s.start_ms as f64 / 1000.0,
                        "end": s.end_ms as f64 / 1000.0,
                        "text": s.text,
                        "tokens": [],
                        "temperature": 0.0,
                        "avg_logprob": 0.0,
                        "compression_ratio": 0.0,
                        "no_speech_prob": 0.0,
                    })
                })
                .collect();
            let mut body = json!({
                "task": "transcribe",
                "language": "english",
                "duration": seconds,
                "text": t.text,
                "segments": segments,
            });
            if word_times {
                body["words"] = t
                    .words
                    .iter()
                    .filter(|w| w.end_ms != sotto_stt::UNTIMED)
                    .map(|w| json!({ "word": w.text, "start": w.start_ms as f64 / 1000.0, "end": w.end_ms as f64 / 1000.0 }))
                    .collect();
            }
            Json(body).into_response()
        }
        _ => Json(json!({
            "text": t.text,
            "usage": { "type": "duration", "seconds": seconds.ceil() as u64 },
        }))
        .into_response(),
    }
}

/// SubRip or WebVTT subtitles of the transcript's segments.
fn subtitles(format: &str, t: &Transcript) -> String {
    let stamp = |ms: u64, sep: char| {
        format!(
            "{:02}:{:02}:{:02}{sep}{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut out = String::new();
    if format == "vtt" {
        out.push_str("WEBVTT\n\n");
    }
    for (i, s) in t.segments.iter().enumerate() {
        let sep = if format == "vtt" { '.' } else { ',' };
        if format == "srt" {
            out.push_str(&format!("{}\n", i + 1));
        }
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            stamp(s.start_ms, sep),
            stamp(s.end_ms, sep),
            s.text.trim()
        ));
    }
    out
}

/// The body of `POST /v1/audio/speech`.
#[derive(Deserialize)]
pub(crate) struct SpeechBody {
    input: String,
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    speed: Option<f32>,
}

/// `POST /v1/audio/speech`.
pub(crate) async fn speech(
    State(state): State<AppState>,
    body: Result<Json<SpeechBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let limits = &state.config.limits;
    let Json(body) = body.map_err(|e| ApiError::from_json(&e, limits.max_json_bytes))?;
    let text = strip_controls(&body.input).trim().to_string();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "empty_input",
            "Nothing to say: `input` is empty",
        ));
    }
    let chars = text.chars().count();
    if chars > limits.max_speech_chars {
        return Err(ApiError::too_large(&format!(
            "`input` is {chars} characters; Sotto speaks up to {} at a time: split it",
            limits.max_speech_chars
        )));
    }
    let format = body.response_format.as_deref().unwrap_or("wav");
    if !matches!(format, "wav" | "pcm") {
        return Err(ApiError::bad_request(
            "unsupported_format",
            &format!(
                "response_format {format:?} is not one Sotto makes: use wav or pcm (24 kHz 16-bit)"
            ),
        ));
    }
    let speed = body.speed.unwrap_or(1.0);
    if !(0.25..=4.0).contains(&speed) {
        return Err(ApiError::bad_request(
            "invalid_speed",
            "`speed` goes from 0.25 to 4.0",
        ));
    }
    let id = voice_id(&state, body.voice.as_deref())?;
    let voice = load_voice(&state, &id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let cancel = state.shutdown.child_token();
    let pcm = format == "pcm";
    tokio::task::spawn_blocking(move || speak(&voice, &text, speed, pcm, &cancel, &tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let content_type = if pcm { "audio/pcm" } else { "audio/wav" };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The voice a request asked for, by Sotto id (OpenAI's names get the default voice).
fn voice_id(state: &AppState, asked: Option<&str>) -> Result<String, ApiError> {
    let engines = state.engines()?;
    let Some(asked) = asked.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(engines.default_voice.clone());
    };
    if OPENAI_VOICES.contains(&asked) {
        return Ok(engines.default_voice.clone());
    }
    let ids = engines.voices.ids();
    if ids.iter().any(|id| id == asked) {
        Ok(asked.to_string())
    } else {
        Err(ApiError::bad_request(
            "unknown_voice",
            &format!(
                "No voice {asked:?} is installed. Installed: {}",
                ids.join(", ")
            ),
        ))
    }
}

async fn load_voice(state: &AppState, id: &str) -> Result<SharedVoice, ApiError> {
    let cached = state
        .loaded
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
        .cloned();
    if let Some(voice) = cached {
        return Ok(voice);
    }
    let voices = state.engines()?.voices;
    let owned = id.to_string();
    let voice = tokio::task::spawn_blocking(move || voices.load(&owned))
        .await
        .map_err(|e| {
            ApiError::engine(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Loading the voice stopped: {e}"),
            )
        })?
        .map_err(|e| {
            ApiError::engine(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The voice {id} could not be loaded: {e}"),
            )
        })?;
    // Two first requests may both have loaded it: every request uses the one kept.
    let kept = Arc::clone(
        state
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(voice))),
    );
    Ok(kept)
}

/// Speaks `text`, sending each clause's audio as 16-bit little-endian bytes (resampled
/// to 24 kHz for `pcm`). Stops when the client goes away or the server stops.
fn speak(
    voice: &Mutex<Box<dyn Tts>>,
    text: &str,
    speed: f32,
    pcm: bool,
    cancel: &CancellationToken,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) {
    // Requests for the same voice take turns here, on blocking threads (never on the
    // runtime's workers).
    let mut voice = voice.lock().unwrap_or_else(PoisonError::into_inner);
    let rate = voice.sample_rate();
    // The length is not known until the end: the sizes say "to the end of the stream".
    if !pcm && tx.blocking_send(Ok(streaming_wav_header(rate))).is_err() {
        return;
    }
    let mut resampler = if pcm && rate != PCM_RATE {
        match sotto_audio::StreamResampler::new(rate, PCM_RATE) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        }
    } else {
        None
    };
    let send = |samples: &[f32]| {
        if tx.blocking_send(Ok(pcm16(samples))).is_err() {
            // Nobody reads any more.
            cancel.cancel();
        }
    };
    let result = voice.synthesize(text, speed, cancel, &mut |chunk| match resampler.as_mut() {
        Some(r) => match r.push(&chunk.samples) {
            Ok(out) => send(&out),
            Err(e) => tracing::warn!("resampling speech: {e}"),
        },
        None => send(&chunk.samples),
    });
    if let Some(Ok(rest)) = resampler.as_mut().map(sotto_audio::StreamResampler::flush) {
        send(&rest);
    }
    if let Err(e) = result {
        // The client sees the stream end early; the log says why.
        tracing::warn!("speech for the API failed: {e}");
        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
    }
}

fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
        .collect()
}

/// A 16-bit mono WAV header whose sizes are unknown (0xFFFFFFFF: to the end of the
/// stream), as streaming servers send it.
fn streaming_wav_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitles_time_each_segment() {
        let t = Transcript {
            text: "Hello there. Bye.".into(),
            segments: vec![
                sotto_stt::Segment {
                    start_ms: 0,
                    end_ms: 1_250,
                    text: " Hello there.".into(),
                },
                sotto_stt::Segment {
                    start_ms: 3_661_001,
                    end_ms: 3_662_000,
                    text: " Bye.".into(),
                },
            ],
            words: Vec::new(),
            elapsed_ms: 0,
            audio_ms: 3_662_000,
        };
        assert_eq!(
            subtitles("srt", &t),
            "1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n2\n01:01:01,001 --> 01:01:02,000\nBye.\n\n"
        );
        assert!(subtitles("vtt", &t).starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\n"));
    }

    #[test]
    fn the_streaming_header_is_a_wav_header() {
        let h = streaming_wav_header(22_050);
        assert_eq!(h.len(), 44);
        assert_eq!(&h[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 22_050);
        assert_eq!(pcm16(&[1.5, -1.0, 0.0]), vec![0xff, 0x7f, 0x01, 0x80, 0, 0]);
    }
}
