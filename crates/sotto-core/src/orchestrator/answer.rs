//! The answer: the language model asked (early, ahead, or on the final transcript), its
//! stream split into pieces for the voice and kept short by the guard.

use super::*;

impl Orchestrator {
    /// What the language model is sent for `text`: the persona, the latest turns, `text`.
    pub(super) fn messages_for(&self, text: &str) -> Vec<Message> {
        let mut messages = vec![self.persona()];
        let keep = self.settings.history_turns * 2;
        let skip = self.context.len().saturating_sub(keep);
        messages.extend(self.context[skip..].iter().cloned());
        messages.push(Message {
            role: Role::User,
            content: text.to_string(),
        });
        let room = self.settings.sampling.max_tokens as usize;
        let budget = self.settings.context_tokens.saturating_sub(room);
        sotto_llm::context::fit(&messages, budget)
    }

    /// Asks the language model for `messages`; its chunks come back tagged `tag`.
    pub(super) fn ask_llm(&self, tag: u64, messages: Vec<Message>, cancel: CancellationToken) {
        // The answer needs the model now; a read-ahead would only hold it up.
        self.stop_reading_ahead();
        let request = ChatRequest {
            messages,
            sampling: self.settings.sampling.clone(),
        };
        let mut answer = self.llm.chat(request, cancel);
        let tx = self.stages.llm_tx.clone();
        tokio::spawn(async move {
            while let Some(chunk) = answer.next().await {
                if tx.send((tag, Some(chunk))).is_err() {
                    return;
                }
            }
            let _ = tx.send((tag, None));
        });
    }

    /// The user went quiet and said `text`: starts its answer now, kept back until the
    /// final transcript (see [`early`]). Not while an answer is under way, nor for words
    /// that sound broken off in hands-free (the turn will wait for more).
    pub(super) fn start_early(&mut self, id: u64, text: &str) {
        if self.state != AssistantState::Listening
            || self.answering()
            || self.held.is_some()
            || text.trim().is_empty()
            || (self.settings.mode.is_hands_free() && crate::unfinished::sounds_unfinished(text))
        {
            return;
        }
        if self
            .early
            .as_ref()
            .is_some_and(|e| e.id == id && early::same_words(&e.text, text))
        {
            return;
        }
        self.drop_early();
        let cancel = CancellationToken::new();
        self.ask_llm(id | EARLY_BIT, self.messages_for(text), cancel.clone());
        tracing::debug!("turn {id}: answering {text:?} early");
        self.early = Some(Early {
            id,
            text: text.to_string(),
            cancel,
            buffered: Vec::new(),
            adopted: false,
            started_ms: self.now_ms(),
        });
    }

    /// The user is still speaking and has said `text` so far: the language model reads
    /// the question's start now, so that when it is asked only the rest is left to read.
    /// Only while nothing else wants the model (no answer, early or not, under way) and
    /// not once stopped in this stretch of speech ([`Orchestrator::stop_reading_ahead`]:
    /// a partial that comes back just after the user paused must not start it again).
    pub(super) fn read_ahead(&mut self, text: &str) {
        if self.state != AssistantState::Listening
            || self.answering()
            || self.early.is_some()
            || self.held.is_some()
            || text.trim().is_empty()
            || self
                .reading_ahead
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
        {
            return;
        }
        let cancel = self
            .reading_ahead
            .get_or_insert_with(CancellationToken::new)
            .clone();
        self.llm.read_ahead(self.messages_for(text), cancel);
    }

    /// Stops reading ahead until the user speaks again (what was read stays in the
    /// model's cache): they paused or stopped, and the recogniser's decode of what they
    /// said wants the cores, or the model is asked for an answer.
    pub(super) fn stop_reading_ahead(&self) {
        if let Some(cancel) = &self.reading_ahead {
            cancel.cancel();
        }
    }

    /// Forgets the early answer; stops it unless it became the turn's (the turn stops it).
    pub(super) fn drop_early(&mut self) -> bool {
        match self.early.take() {
            Some(early) if !early.adopted => {
                early.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Answers `text` in turn `id`: instant-answer check, then the language model.
    pub(super) fn answer(&mut self, id: u64, text: String) {
        if self.current(id).is_none() {
            self.turn = Some(self.fresh_turn(id, text.clone()));
        }
        self.set_state(AssistantState::CheckingCache, id);
        let messages = self.messages_for(&text);
        // Instant answers: a question that means one of the intents is answered from
        // audio made ahead of time, without the language model.
        let instant = self.instant.as_mut().and_then(|i| i.answer(&text));
        // Hit or miss, the decision is made now: a miss's check is not the LLM's time.
        let at = self.now_ms();
        let answer_words = self.settings.answer_words;
        let Some(turn) = self.current(id) else { return };
        turn.guard = AnswerGuard::for_question(&text, answer_words);
        turn.user_text.clone_from(&text);
        turn.timings.cache_decision_ms = Some(at);
        if let Some((answer, audio)) = instant {
            self.drop_early();
            let Some(turn) = self.current(id) else { return };
            turn.provider = Some("instant".into());
            turn.llm_done = true;
            turn.pieces_sent = 1;
            let cancel = turn.cancel.clone();
            let _ = self.stages.mouth.send(Say::Audio {
                turn: id,
                text: answer.clone(),
                samples: audio.samples,
                sample_rate: audio.sample_rate,
                cancel,
            });
            let _ = self.stages.mouth.send(Say::End { turn: id });
            self.emit(Event::LlmTextChunk {
                turn_id: id,
                text: answer,
            });
            return;
        }
        // The answer started early on these very words is this turn's: what it streamed
        // so far is let through now.
        if let Some(mut early) = self.early.take_if(|e| e.answers(id, &text)) {
            let buffered = std::mem::take(&mut early.buffered);
            let Some(turn) = self.current(id) else { return };
            turn.llm_cancel = early.cancel.clone();
            turn.timings.llm_start_ms = Some(early.started_ms);
            turn.timings.early_start = Some(true);
            early.adopted = true;
            self.early = Some(early);
            self.set_state(AssistantState::RoutingToLlm, id);
            for item in buffered {
                self.on_llm(id, item);
            }
            return;
        }
        let restarted = self.drop_early();
        let now = self.now_ms();
        let Some(turn) = self.current(id) else { return };
        if restarted {
            tracing::debug!("turn {id}: the final transcript differs; answering it instead");
            turn.timings.early_start = Some(false);
        }
        turn.timings.llm_start_ms = Some(now);
        turn.llm_cancel = turn.cancel.child_token();
        let cancel = turn.llm_cancel.clone();
        self.set_state(AssistantState::RoutingToLlm, id);
        self.ask_llm(id, messages, cancel);
    }

    /// A chunk of an early answer: kept back until the final transcript decides, the
    /// turn's own once it did, dropped when it was cancelled.
    pub(super) fn on_early_llm(&mut self, id: u64, chunk: LlmItem) {
        match self.early.as_mut() {
            Some(early) if early.id == id && !early.adopted => early.buffered.push(chunk),
            Some(early) if early.id == id => self.on_llm(id, chunk),
            _ => {}
        }
    }

    pub(super) fn on_llm(&mut self, id: u64, chunk: Option<Result<Chunk, LlmError>>) {
        if id & EARLY_BIT != 0 {
            self.on_early_llm(id & !EARLY_BIT, chunk);
            return;
        }
        self.progress();
        let now = self.now_ms();
        let Some(turn) = self.current(id) else { return };
        let mut pieces = Vec::new();
        let mut finished = false;
        let mut failure = None;
        let mut streamed = None;
        match chunk {
            Some(Ok(Chunk::Text(text))) => {
                turn.timings.first_token_ms.get_or_insert(now);
                turn.answer.push_str(&text);
                pieces = turn.guard.admit(turn.splitter.push(&text));
                streamed = Some(text);
            }
            Some(Ok(Chunk::FellBack { to, reason, .. })) => {
                tracing::info!("answering with {to}: {reason}");
                turn.provider = Some(to);
            }
            Some(Ok(Chunk::Done(finish))) => {
                turn.provider = Some(finish.provider);
                let at_limit = finish.reason == FinishReason::Length;
                pieces = turn.guard.finish(turn.splitter.finish(), at_limit);
                finished = true;
            }
            Some(Err(e)) => {
                failure = Some(e);
                pieces = turn.guard.admit(turn.splitter.finish());
                finished = true;
            }
            None => finished = !turn.llm_done,
        }
        if let (Some(cut), false) = (turn.guard.cut(), finished || turn.llm_done) {
            // The rest is not said: the model stops now, and the voice gets no more.
            tracing::info!("turn {id}: {}; the rest is not said", cut.describe());
            turn.llm_cancel.cancel();
            finished = true;
        }
        if let Some(text) = streamed {
            self.emit(Event::LlmTextChunk { turn_id: id, text });
        }
        let Some(turn) = self.turn.as_mut().filter(|t| t.id == id) else {
            return;
        };
        let cancel = turn.cancel.clone();
        let mut first_piece = false;
        for text in pieces {
            if turn.pieces_sent == 0 {
                turn.timings.first_sentence_ms = Some(now);
                first_piece = true;
            }
            turn.pieces_sent += 1;
            let _ = self.stages.mouth.send(Say::Piece {
                turn: id,
                text,
                cancel: cancel.clone(),
            });
        }
        if finished && !turn.llm_done {
            turn.llm_done = true;
            let _ = self.stages.mouth.send(Say::End { turn: id });
        }
        let nothing_to_say = finished && turn.pieces_sent == 0;
        if failure.is_some() {
            turn.failed = true;
        }
        if let Some(e) = &failure {
            self.error(Some(id), ErrorKind::Llm, e.to_string());
        }
        if first_piece && self.state == AssistantState::RoutingToLlm {
            self.set_state(AssistantState::GeneratingSpeech, id);
        }
        if nothing_to_say {
            let outcome = if failure.is_some() {
                TurnOutcome::Failed
            } else {
                TurnOutcome::Answered
            };
            self.finish(outcome);
        }
    }
}
