//! The voice: pieces synthesized and played, the turn ended when all is heard or when
//! the user interrupts.

use super::*;

impl Orchestrator {
    pub(super) fn on_spoken(&mut self, spoken: Spoken) {
        self.progress();
        match spoken {
            Spoken::FirstAudio { turn, at } => {
                let at = self.ms(at);
                if let Some(t) = self.current(turn) {
                    t.timings.first_audio_ms = Some(at);
                    self.set_state(AssistantState::Speaking, turn);
                }
            }
            Spoken::Queued {
                turn,
                text,
                start,
                end,
                audio,
            } => {
                self.last_sound = Some(tokio::time::Instant::now());
                if let Some(t) = self.current(turn) {
                    t.pieces.push((text, start, end));
                    if let Some(piece) = audio {
                        append_audio(&mut t.audio.output, piece);
                    }
                }
            }
            Spoken::Done { turn, end } => {
                if let Some(t) = self.current(turn) {
                    t.playback_end = Some(end);
                    // A short answer may have played out before this report came.
                    self.end_if_played();
                }
            }
            Spoken::Failed { turn, error } => {
                if self.current(turn).is_some() {
                    self.error(Some(turn), ErrorKind::Voice, error.to_string());
                    self.interrupt_as(TurnOutcome::Failed, true);
                }
            }
        }
    }

    /// The player ran out of audio: the sound stopped now (for the echo guard), and the
    /// answer may be over.
    pub(super) fn on_drained(&mut self) {
        self.progress();
        self.last_sound = Some(tokio::time::Instant::now());
        self.end_if_played();
    }

    /// Ends the turn once everything of its answer has been played.
    pub(super) fn end_if_played(&mut self) {
        let played = self.player.played_samples();
        let done = self
            .turn
            .as_ref()
            .and_then(|t| t.playback_end)
            .is_some_and(|end| played >= end);
        if done {
            let now = self.now_ms();
            let outcome = match self.turn.as_ref() {
                Some(t) if t.failed => TurnOutcome::Failed,
                _ => TurnOutcome::Answered,
            };
            if let Some(t) = self.turn.as_mut() {
                t.timings.playback_end_ms = Some(now);
            }
            self.finish(outcome);
        }
    }

    /// Barge-in: silence now, drop what is queued, keep what was heard. The caller sets
    /// the next state (listening).
    pub(super) fn interrupt(&mut self) {
        self.interrupt_as(TurnOutcome::Interrupted, false);
    }

    pub(super) fn interrupt_as(&mut self, outcome: TurnOutcome, rest: bool) {
        let Some(turn) = self.turn.as_mut() else {
            return;
        };
        turn.cancel.cancel();
        if self.state == AssistantState::AnalyzingSpeech {
            // The final being decoded is for a question no longer asked.
            self.stages.stt.send(SttJob::Reset);
        }
        self.player.stop();
        self.last_sound = Some(tokio::time::Instant::now());
        let now = self.now_ms();
        if let Some(t) = self.turn.as_mut() {
            if t.timings.first_audio_ms.is_some() {
                t.timings.playback_end_ms = Some(now);
            }
        }
        self.end_turn(outcome, rest);
    }

    /// Ends the current turn and goes to the resting state.
    pub(super) fn finish(&mut self, outcome: TurnOutcome) {
        self.end_turn(outcome, true);
    }

    /// Whether speech over the voice may pause and interrupt it now.
    pub(super) fn voice_barge_in(&self) -> bool {
        self.settings.barge_in_while_speaking && self.echo_ready
    }

    /// Plays on after a pause for speech that did not last (nothing when not paused).
    pub(super) fn play_on(&mut self) {
        if self.resume_at.take().is_some() {
            self.player.resume();
            self.emit_voice_paused(false);
        }
    }

    pub(super) fn emit_voice_paused(&self, paused: bool) {
        let turn_id = self.turn.as_ref().map_or(0, |t| t.id);
        self.emit(Event::VoicePaused { turn_id, paused });
    }

    /// Ends the current turn: history, `turn_finished`, and (if `rest`) the resting state.
    pub(super) fn end_turn(&mut self, outcome: TurnOutcome, rest: bool) {
        self.held = None;
        // A turn never ends with the voice held: the next answer must be heard.
        if self.resume_at.take().is_some() {
            self.player.resume();
        }
        self.utterance_audio = None;
        self.stale_finals = 0;
        let Some(turn) = self.turn.take() else { return };
        turn.cancel.cancel();
        // An answer that started early is not a child of the turn's token.
        turn.llm_cancel.cancel();
        self.drop_early();
        let heard = match outcome {
            TurnOutcome::Answered => turn
                .pieces
                .iter()
                .map(|(text, _, _)| text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => played_text(&turn.pieces, self.player.played_samples()),
        };
        if !turn.user_text.is_empty() && !heard.is_empty() {
            self.context.push(Message {
                role: Role::User,
                content: turn.user_text.clone(),
            });
            self.context.push(Message {
                role: Role::Assistant,
                content: heard.clone(),
            });
            // Only the latest turns are ever sent.
            let keep = self.settings.history_turns * 2;
            let older = self.context.len().saturating_sub(keep);
            self.context.drain(..older);
        }
        let timings = turn.timings.with_v2v();
        if let (Some(memory), false) = (self.memory.as_mut(), turn.user_text.is_empty()) {
            let record = TurnRecord {
                at_unix_ms: sotto_store::unix_ms(),
                outcome,
                user_text: turn.user_text.clone(),
                heard_text: heard.clone(),
                answer_text: turn.answer.clone(),
                provider: turn.provider.clone(),
                timings,
            };
            if let Err(e) = memory.remember(&record, turn.audio) {
                self.error(Some(turn.id), ErrorKind::Storage, e.to_string());
            }
        }
        self.emit(Event::TurnFinished {
            turn_id: turn.id,
            outcome,
            user_text: turn.user_text,
            heard_text: heard,
            provider: turn.provider,
            timings,
        });
        // What the turn freed goes back to the system while the assistant waits.
        crate::heap::release_free_memory();
        if rest {
            self.rest(turn.id);
        }
    }
}

/// Adds a spoken piece to the turn's recorded answer (pieces come from one voice, so one
/// rate; a piece at another rate is left out rather than played back at the wrong speed).
fn append_audio(output: &mut Option<AudioBuffer>, piece: AudioBuffer) {
    match output {
        Some(all) if all.sample_rate == piece.sample_rate => {
            all.samples.extend_from_slice(&piece.samples)
        }
        Some(_) => {}
        None => *output = Some(piece),
    }
}
