//! What the ears and the recogniser report: the utterance opened, paused, resumed and
//! closed, partial and final transcripts, and the turn they start.

use super::*;

impl Orchestrator {
    pub(super) fn on_heard(&mut self, heard: Heard) {
        if matches!(heard, Heard::Started | Heard::Resumed | Heard::NoSpeech) {
            // The user is saying more: the early answer is to words they went on from.
            self.drop_early();
        }
        match heard {
            // New speech: the question's start may be read ahead again.
            Heard::Started | Heard::Resumed => {
                self.stop_reading_ahead();
                self.reading_ahead = None;
            }
            // The recogniser decodes what was said now (or the utterance is over): the
            // cores are its until the user speaks again.
            Heard::Paused | Heard::Utterance { .. } | Heard::NoSpeech | Heard::Lost(_) => {
                self.stop_reading_ahead();
            }
            _ => {}
        }
        match heard {
            Heard::Started
                if self.settings.mode.is_hands_free()
                    && self.held.is_none()
                    && self.state == AssistantState::AnalyzingSpeech
                    && self.utterance_audio.is_some() =>
            {
                // Speech again before the transcript of the last utterance is even in:
                // the user had not finished. One turn, decoded together.
                self.stale_finals += 1;
                self.held = Some(Held {
                    audio: self.utterance_audio.take().unwrap_or_default(),
                    text: String::new(),
                    until: tokio::time::Instant::now(),
                    resumed: true,
                    give_up: false,
                });
                self.set_state(AssistantState::Listening, self.state_turn);
            }
            Heard::Started if self.held.is_some() => {
                // The rest of a broken-off sentence: the same turn goes on.
                if let Some(held) = self.held.as_mut() {
                    held.resumed = true;
                }
                self.stages.stt.send(SttJob::Reset);
            }
            Heard::Utterance { audio, ended_at } if self.held.is_some() => {
                let (Some(held), Some(id)) = (self.held.take(), self.turn.as_ref().map(|t| t.id))
                else {
                    return;
                };
                let mut all = held.audio;
                all.extend_from_slice(&audio);
                let speech_end = self.ms(ended_at);
                if let Some(turn) = self.turn.as_mut() {
                    turn.timings.speech_end_ms = Some(speech_end);
                    if let Some(input) = turn.audio.input.as_mut() {
                        input.samples.clone_from(&all);
                    }
                }
                self.utterance_audio = Some(all.clone());
                self.set_state(AssistantState::AnalyzingSpeech, id);
                self.stages.stt.send(SttJob::Final(id, all));
            }
            Heard::NoSpeech if self.held.as_ref().is_some_and(|h| h.resumed) => {
                // What started again was too short to be speech: the sentence ends here.
                self.stages.stt.send(SttJob::Reset);
                self.release_held();
            }
            Heard::NoSpeech if self.held.is_some() => {
                // A click or a breath while waiting for the rest: go on waiting.
                self.stages.stt.send(SttJob::Reset);
            }
            Heard::Started => {
                if self.answering() {
                    let echo_possible = self.player.queued_samples() > 0
                        || self.last_sound.is_some_and(|t| t.elapsed() < ECHO_TAIL);
                    if echo_possible && !self.voice_barge_in() {
                        // Probably our own voice: not a new turn.
                        let _ = self.stages.ears.send(EarsControl::Cancel);
                        return;
                    }
                    self.interrupt();
                }
                self.stages.stt.send(SttJob::Reset);
                self.listen();
            }
            Heard::Audio(samples) => self.stages.stt.send(SttJob::Audio(samples)),
            Heard::Paused => self.stages.stt.send(SttJob::Paused),
            Heard::Resumed => self.stages.stt.send(SttJob::Resumed),
            Heard::Utterance { audio, ended_at } => {
                if self.answering() {
                    // Push-to-talk during an answer already interrupted it; a leftover.
                    self.interrupt();
                }
                let id = self.new_turn();
                let mut turn = self.fresh_turn(id, String::new());
                turn.timings.speech_end_ms = Some(self.ms(ended_at));
                if self.memory.as_ref().is_some_and(Memory::wants_audio) {
                    turn.audio.input = Some(AudioBuffer {
                        samples: audio.clone(),
                        channels: 1,
                        sample_rate: 16_000,
                    });
                }
                self.turn = Some(turn);
                self.set_state(AssistantState::AnalyzingSpeech, id);
                if self.settings.mode.is_hands_free() {
                    self.utterance_audio = Some(audio.clone());
                }
                self.stages.stt.send(SttJob::Final(id, audio));
            }
            Heard::NoSpeech if self.answering() => {
                // A click, an "mm-hm", or a syllable of the assistant's own voice,
                // during the answer: it goes on (listening is not opened over it). No
                // audio of it reached the recogniser, and the turn's own final may
                // still be decoding: the recogniser is left alone.
                self.play_on();
            }
            Heard::Onset => {
                if self.answering()
                    && self.voice_barge_in()
                    && self.state == AssistantState::Speaking
                    && self.resume_at.is_none()
                {
                    // Someone may be taking the turn: the voice holds (the queue is kept)
                    // until the speech lasts and interrupts, or proves short.
                    self.player.pause();
                    self.resume_at = Some(tokio::time::Instant::now() + HOLD_FOR_SPEECH);
                    self.emit_voice_paused(true);
                }
            }
            Heard::NoSpeech => {
                self.stages.stt.send(SttJob::Reset);
                let id = self.new_turn();
                self.emit(Event::TurnFinished {
                    turn_id: id,
                    outcome: TurnOutcome::NoSpeech,
                    user_text: String::new(),
                    heard_text: String::new(),
                    provider: None,
                    timings: Timings::default(),
                });
                self.rest(id);
            }
            Heard::Lost(message) => {
                // Listening waits for the microphone; the assistant goes on (typed
                // questions, the answer under way).
                self.mic_lost = Some(message.clone());
                // The rest of a held sentence cannot come now.
                self.release_held();
                let turn_id = self.turn.as_ref().map(|t| t.id);
                self.error(turn_id, ErrorKind::Microphone, message);
                if !self.answering() {
                    self.set_state(AssistantState::Idle, self.state_turn);
                }
            }
            Heard::LimitReached(limit_ms) => {
                let secs = limit_ms / 1000;
                let turn_id = self.turn.as_ref().map_or(self.upcoming, |t| t.id);
                self.error(
                    Some(turn_id),
                    ErrorKind::Limit,
                    format!(
                        "Listening stops after {secs} s: what you said until then is answered."
                    ),
                );
            }
            Heard::Restored(device) => {
                let was_lost = self.mic_lost.take().is_some();
                tracing::info!("the microphone \"{device}\" works again");
                self.emit(Event::Recovered {
                    kind: ErrorKind::Microphone,
                    message: format!("The microphone \"{device}\" works again."),
                });
                if was_lost && !self.answering() && self.state == AssistantState::Idle {
                    self.rest(self.state_turn);
                }
            }
            Heard::EchoReady => {
                tracing::info!("the echo canceller has learned the room: voice barge-in is on");
                self.echo_ready = true;
            }
            Heard::EchoStopped(reason) => {
                // The assistant hears its own voice again: speech over it must not
                // interrupt it any more (the echo guard is back).
                self.settings.barge_in_while_speaking = false;
                self.play_on();
                let turn_id = self.turn.as_ref().map(|t| t.id);
                self.error(
                    turn_id,
                    ErrorKind::Microphone,
                    format!(
                        "Echo cancellation stopped ({reason}): until Sotto restarts, talking over an answer does not interrupt it. Use the hotkey or the Interrupt button."
                    ),
                );
            }
            Heard::Ended => {
                self.source_ended = true;
                self.release_held();
                if !self.answering() {
                    self.set_state(AssistantState::Idle, self.state_turn);
                }
            }
        }
    }

    pub(super) fn fresh_turn(&self, id: u64, user_text: String) -> Turn {
        Turn {
            id,
            user_text,
            answer: String::new(),
            splitter: SentenceSplitter::new(self.settings.split),
            guard: AnswerGuard::new(self.settings.answer_words),
            llm_cancel: CancellationToken::new(),
            cancel: CancellationToken::new(),
            timings: Timings::default(),
            provider: None,
            pieces: Vec::new(),
            pieces_sent: 0,
            llm_done: false,
            playback_end: None,
            failed: false,
            audio: TurnAudio::default(),
        }
    }

    pub(super) fn current(&mut self, id: u64) -> Option<&mut Turn> {
        self.turn.as_mut().filter(|t| t.id == id)
    }

    pub(super) fn on_stt(&mut self, reply: SttReply) {
        self.progress();
        match reply {
            SttReply::Partial { text, repeated, .. } if self.held.is_some() => {
                // The rest of a held sentence: shown after its first part, in its turn
                // (once: a decode at a pause may repeat the partial before it).
                let (Some(held), Some(turn)) = (self.held.as_ref(), self.turn.as_ref()) else {
                    return;
                };
                if repeated {
                    return;
                }
                let first = held.text.trim().trim_end_matches(['.', '?', '!', ',']);
                let text = format!("{first} {text}").trim().to_string();
                self.emit(Event::TranscriptPartial {
                    turn_id: turn.id,
                    text,
                });
            }
            SttReply::Partial {
                text,
                at_pause,
                repeated,
            } => {
                // A partial made just before the user stopped may arrive just after; it
                // never comes after the final (the recogniser answers in order).
                if matches!(
                    self.state,
                    AssistantState::Listening | AssistantState::AnalyzingSpeech
                ) {
                    let turn_id = match (&self.turn, self.state) {
                        (Some(turn), AssistantState::AnalyzingSpeech) => turn.id,
                        _ => self.upcoming,
                    };
                    if at_pause {
                        self.start_early(turn_id, &text);
                    } else {
                        self.read_ahead(&text);
                    }
                    if !repeated {
                        self.emit(Event::TranscriptPartial { turn_id, text });
                    }
                }
            }
            SttReply::Final(id, result) => {
                if self.current(id).is_none() {
                    return;
                }
                if self.stale_finals > 0 {
                    // The first part of a turn the user went on with: the whole is being
                    // decoded; this part is kept in case the rest turns out to be nothing.
                    self.stale_finals -= 1;
                    if let (Some(held), Ok(t)) = (self.held.as_mut(), &result) {
                        held.text.clone_from(&t.text);
                    }
                    if self.stale_finals == 0 && self.held.as_ref().is_some_and(|h| h.give_up) {
                        self.release_held();
                    }
                    return;
                }
                let at = self.now_ms();
                match result {
                    Ok(Transcript { text, .. }) if !text.trim().is_empty() => {
                        if let Some(turn) = self.current(id) {
                            turn.timings.stt_final_ms = Some(at);
                        }
                        let audio = self.utterance_audio.take();
                        if let Some(audio) = audio.filter(|_| {
                            self.settings.mode.is_hands_free()
                                && !self.source_ended
                                && crate::unfinished::sounds_unfinished(&text)
                        }) {
                            // "Can you tell me ...": wait for the rest before answering.
                            tracing::debug!("{text:?} sounds unfinished: waiting for more");
                            self.drop_early();
                            self.held = Some(Held {
                                audio,
                                text: text.clone(),
                                until: tokio::time::Instant::now() + UNFINISHED_WAIT,
                                resumed: false,
                                give_up: false,
                            });
                            self.emit(Event::TranscriptPartial { turn_id: id, text });
                            self.set_state(AssistantState::Listening, id);
                            return;
                        }
                        self.emit(Event::TranscriptFinal {
                            turn_id: id,
                            text: text.clone(),
                        });
                        self.answer(id, text);
                    }
                    Ok(_) => {
                        self.finish(TurnOutcome::NoSpeech);
                    }
                    Err(e) => {
                        self.error(Some(id), ErrorKind::SpeechToText, e.to_string());
                        self.finish(TurnOutcome::Failed);
                    }
                }
            }
        }
    }

    /// Answers the held broken-off sentence as it is: no more came. While its first part
    /// is still being decoded, waits for that.
    pub(super) fn release_held(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        if held.text.trim().is_empty() && self.stale_finals > 0 {
            held.resumed = true;
            held.give_up = true;
            self.held = Some(held);
            return;
        }
        let Some(id) = self.turn.as_ref().map(|t| t.id) else {
            return;
        };
        if held.text.trim().is_empty() {
            self.finish(TurnOutcome::NoSpeech);
            return;
        }
        self.emit(Event::TranscriptFinal {
            turn_id: id,
            text: held.text.clone(),
        });
        self.answer(id, held.text);
    }
}
