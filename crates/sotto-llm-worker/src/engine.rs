//! One llama.cpp context answering chats, token by token, reusing the KV cache of the
//! prompt prefix it has already read.

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use sotto_llm_protocol::{ChatRequest, Event, FinishReason, Usage, WorkerTimings};

use crate::text::{Step, TextStream};

/// Prompt tokens decoded per batch unless the request asks for fewer
/// ([`ChatRequest::prompt_batch`]): small enough that a cancel between batches is quick.
const PROMPT_CHUNK: usize = 128;

/// What the generation loop asks its caller between tokens.
pub trait Control {
    /// True when the answer `id` should stop now.
    fn cancelled(&mut self, id: &str) -> bool;
    /// Sends an event to Sotto.
    fn send(&mut self, event: &Event);
}

/// A model with its context and the tokens its KV cache holds (sequence 0).
pub struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: LlamaChatTemplate,
    cached: Vec<LlamaToken>,
}

impl<'m> Engine<'m> {
    /// An engine over `ctx`, formatting chats with `template`.
    pub fn new(model: &'m LlamaModel, ctx: LlamaContext<'m>, template: LlamaChatTemplate) -> Self {
        Engine {
            model,
            ctx,
            template,
            cached: Vec::new(),
        }
    }

    /// Answers `request`, streaming tokens through `control`; always ends with `done` or
    /// `error` for the request's id.
    pub fn answer(&mut self, request: &ChatRequest, control: &mut dyn Control) {
        let event = match self.generate(request, control) {
            Ok(done) => done,
            Err(message) => {
                // The cache may hold a half-read prompt: forget it.
                self.ctx.clear_kv_cache();
                self.cached.clear();
                Event::Error {
                    id: Some(request.id.clone()),
                    message,
                }
            }
        };
        control.send(&event);
    }

    fn prompt_tokens(&self, request: &ChatRequest) -> Result<Vec<LlamaToken>, String> {
        if request.messages.is_empty() {
            return Err("the chat has no messages".into());
        }
        let messages = request
            .messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.as_str().into(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "a message contains a NUL character".to_string())?;
        let prompt = self
            .model
            .apply_chat_template(&self.template, &messages, true)
            .map_err(|e| format!("the model's chat template failed: {e}"))?;
        Ok(self.model.vocab().tokenize(prompt.as_bytes(), true, true))
    }

    fn generate(
        &mut self,
        request: &ChatRequest,
        control: &mut dyn Control,
    ) -> Result<Event, String> {
        let started = Instant::now();
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let tokens = self.prompt_tokens(request)?;
        let n_ctx = self.ctx.n_ctx() as usize;
        if tokens.len() + 1 >= n_ctx {
            return Err(format!(
                "the conversation is {} tokens, more than the model's context window of {n_ctx}; \
                 shorten the history",
                tokens.len()
            ));
        }

        // Keep the cached prefix this prompt shares; at least the last prompt token is
        // decoded again, because its logits are where the answer starts.
        let reused = if request.reuse_prefix {
            self.reuse(&tokens)?
        } else {
            0
        };
        self.ctx
            .kv_cache_seq_rm(0, Some(reused as u32), None)
            .map_err(|e| format!("cannot trim the KV cache: {e}"))?;
        self.cached.truncate(reused);

        let mut batch = LlamaBatch::new(PROMPT_CHUNK, 1);
        let mut usage = Usage {
            prompt_tokens: tokens.len() as u32,
            cached_tokens: reused as u32,
            completion_tokens: 0,
        };
        let mut timings = WorkerTimings::default();
        let done = |reason, usage, mut timings: WorkerTimings| {
            timings.total_ms = ms(started);
            Ok(Event::Done {
                id: request.id.clone(),
                finish_reason: reason,
                usage,
                timings,
            })
        };

        let chunk_len = request
            .prompt_batch
            .map_or(PROMPT_CHUNK, |n| (n as usize).clamp(1, PROMPT_CHUNK));
        for chunk in tokens[reused..].chunks(chunk_len) {
            if control.cancelled(&request.id) {
                timings.prompt_ms = ms(started);
                return done(FinishReason::Cancelled, usage, timings);
            }
            batch.clear();
            for (i, &token) in chunk.iter().enumerate() {
                let pos = self.cached.len() + i;
                let last = pos + 1 == tokens.len();
                batch
                    .add(token, pos as i32, &[0], last)
                    .map_err(|e| format!("cannot build a batch: {e}"))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("llama.cpp could not read the prompt: {e}"))?;
            self.cached.extend_from_slice(chunk);
        }
        timings.prompt_ms = ms(started);

        let mut sampler = sampler(request);
        let mut text = TextStream::new(&request.sampling.stop);
        let vocab = self.model.vocab();
        let mut logits_at = batch.n_tokens() - 1;
        let mut first_token_at: Option<Instant> = None;
        let mut reason = FinishReason::Length;
        let max_tokens = request.sampling.max_tokens as usize;
        while (usage.completion_tokens as usize) < max_tokens {
            if control.cancelled(&request.id) {
                reason = FinishReason::Cancelled;
                break;
            }
            if self.cached.len() + 1 >= n_ctx {
                break; // The context window is full: FinishReason::Length.
            }
            let token = sampler.sample(&self.ctx, logits_at);
            if vocab.is_eog(token) {
                reason = FinishReason::Stop;
                break;
            }
            usage.completion_tokens += 1;
            let piece = vocab.token_to_piece(token, false, None);
            let step = text.push(&piece);
            let (piece_text, stopped) = match step {
                Step::Text(t) => (t, false),
                Step::Stopped(t) => (t, true),
            };
            if !piece_text.is_empty() {
                if first_token_at.is_none() {
                    first_token_at = Some(Instant::now());
                    timings.first_token_ms = ms(started);
                }
                control.send(&Event::Token {
                    id: request.id.clone(),
                    text: piece_text,
                });
            }
            if stopped {
                reason = FinishReason::Stop;
                break;
            }
            batch.clear();
            batch
                .add(token, self.cached.len() as i32, &[0], true)
                .map_err(|e| format!("cannot build a batch: {e}"))?;
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("llama.cpp failed while generating: {e}"))?;
            self.cached.push(token);
            logits_at = 0;
        }
        if reason != FinishReason::Cancelled {
            let rest = text.finish();
            if !rest.is_empty() {
                control.send(&Event::Token {
                    id: request.id.clone(),
                    text: rest,
                });
            }
        }
        if let Some(first) = first_token_at {
            let secs = first.elapsed().as_secs_f64();
            let after_first = usage.completion_tokens.saturating_sub(1);
            if secs > 0.0 && after_first > 0 {
                timings.tokens_per_s = f64::from(after_first) / secs;
            }
        }
        done(reason, usage, timings)
    }
}

impl Engine<'_> {
    /// Makes the cache hold as much of `tokens`' start as it can; returns how many tokens
    /// it holds (fewer than `tokens`: the last one is always decoded again).
    ///
    /// First the common prefix. Then, when the history dropped its oldest turn (the chat
    /// keeps the last few turns), the newer turns are still in the cache further on: that
    /// span is moved down over the dropped one (RoPE positions shifted, as llama.cpp's own
    /// context shift does) instead of reading the whole history again on every question
    /// once the history is full. The moved turns were read with the dropped turn before
    /// them: an approximation llama.cpp's context shift makes too, for a prompt read in a
    /// fraction of the time (the real-model test in `sotto-llm/tests/local_worker.rs`
    /// checks the answer after a move is still right; its effect on answer quality over
    /// long conversations is not measured yet).
    fn reuse(&mut self, tokens: &[LlamaToken]) -> Result<usize, String> {
        let limit = tokens.len().saturating_sub(1);
        let prefix = common_prefix(&self.cached, tokens).min(limit);
        let Some((from, len)) = moved_span(&self.cached, &tokens[..limit], prefix) else {
            return Ok(prefix);
        };
        let error = |e| format!("cannot move the KV cache: {e}");
        self.ctx
            .kv_cache_seq_rm(0, Some((from + len) as u32), None)
            .map_err(error)?;
        self.ctx
            .kv_cache_seq_rm(0, Some(prefix as u32), Some(from as u32))
            .map_err(error)?;
        let shift = i32::try_from(from - prefix).map_err(|e| format!("cannot shift by {e}"))?;
        self.ctx
            .kv_cache_seq_add(0, Some(from as u32), Some((from + len) as u32), -shift)
            .map_err(error)?;
        self.cached.truncate(from + len);
        self.cached.drain(prefix..from);
        Ok(prefix + len)
    }
}

/// The least number of tokens worth moving in the cache rather than reading again.
const MIN_MOVED: usize = 16;

/// Where in `cached` (after `prefix`) the longest run of `wanted[prefix..]` starts, and
/// its length, when it is worth moving.
fn moved_span(
    cached: &[LlamaToken],
    wanted: &[LlamaToken],
    prefix: usize,
) -> Option<(usize, usize)> {
    let rest = wanted.get(prefix..).filter(|r| !r.is_empty())?;
    (prefix + 1..cached.len())
        .filter(|&from| cached[from] == rest[0])
        .map(|from| (from, common_prefix(&cached[from..], rest)))
        .max_by_key(|&(_, len)| len)
        .filter(|&(_, len)| len >= MIN_MOVED)
}

/// The sampler chain a request asks for: greedy at temperature 0.
fn sampler(request: &ChatRequest) -> LlamaSampler {
    let s = &request.sampling;
    if s.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    let seed = s.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    });
    LlamaSampler::chain_simple([
        LlamaSampler::top_k(40),
        LlamaSampler::top_p(s.top_p.clamp(0.01, 1.0), 1),
        LlamaSampler::temp(s.temperature),
        LlamaSampler::dist(seed),
    ])
}

/// How many leading tokens `a` and `b` share.
fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&i| LlamaToken::new(i)).collect()
    }

    #[test]
    fn a_dropped_turn_moves_the_newer_ones_down() {
        // system 1 2, turn A 10..13, turn B 20..39; the new prompt drops turn A.
        let b: Vec<i32> = (20..40).collect();
        let cached = t(&[[1, 2].as_slice(), &[10, 11, 12, 13], &b].concat());
        let wanted = t(&[[1, 2].as_slice(), &b, &[50, 51]].concat());
        assert_eq!(moved_span(&cached, &wanted, 2), Some((6, 20)));
    }

    #[test]
    fn a_short_match_is_read_again() {
        let cached = t(&[1, 2, 10, 11, 20, 21, 22]);
        let wanted = t(&[1, 2, 20, 21, 22, 50]);
        assert_eq!(moved_span(&cached, &wanted, 2), None);
        assert_eq!(moved_span(&cached, &t(&[1, 2]), 2), None);
    }
}
