//! `GET /v1/assistant`: the live assistant over a WebSocket. Each client gets the same
//! typed events as the window (`sotto_core::Event`, one JSON text frame each) and may send
//! the window's commands. Several clients may watch at once; the window and every client
//! drive one assistant, which runs one voice turn at a time: a turn asked for while
//! another is under way is refused as busy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sotto_core::{AssistantState, Command, Event};
use tokio::sync::broadcast;

use crate::guard::RateLimiter;
use crate::screen::{self, strip_controls};
use crate::{ApiError, AppState};

/// How long a turn asked for through the API counts as under way before the assistant's
/// own events say so: a second request in that moment is busy too.
const CLAIM: Duration = Duration::from_secs(2);

/// The largest message a client may send, bytes (a typed question and its JSON).
const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// How long one message may wait for a client that does not read: then it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The live assistant the API drives: the app's own, or `sotto serve --assistant`'s.
///
/// Whoever runs the assistant hands every event it emits to [`LiveAssistant::publish`]
/// (the app does so next to forwarding it to the window; [`LiveAssistant::follow`] does
/// it for an owner with nothing else to do with them) and gives the way to send it a
/// command. The relay outlives any one assistant: when the app restarts its assistant
/// with new settings, clients stay connected.
pub struct LiveAssistant {
    /// Every client's copy of the events.
    events: broadcast::Sender<Event>,
    /// What the assistant is doing now, and the last time the API started a turn.
    state: Mutex<Now>,
    /// Hands a command to the assistant.
    commands: Box<dyn Fn(Command) + Send + Sync>,
}

/// What [`LiveAssistant`] knows of the assistant.
struct Now {
    /// Its state, from its last `state_changed` event.
    state: AssistantState,
    /// When a client last started a turn (busy until the events catch up, at most
    /// [`CLAIM`]).
    claimed: Option<Instant>,
    /// Hands-free: the assistant rests in `LISTENING`, so only answering is a turn.
    hands_free: bool,
}

impl Now {
    /// Whether a turn is under way at `at`.
    fn busy(&self, at: Instant) -> bool {
        let claimed = self
            .claimed
            .is_some_and(|then| at.saturating_duration_since(then) < CLAIM);
        let listening = self.state == AssistantState::Listening && !self.hands_free;
        claimed || listening || self.state.is_answering()
    }
}

impl LiveAssistant {
    /// A relay that hands commands to `commands`.
    pub fn new(commands: impl Fn(Command) + Send + Sync + 'static) -> LiveAssistant {
        LiveAssistant {
            events: broadcast::channel(1024).0,
            state: Mutex::new(Now {
                state: AssistantState::Idle,
                claimed: None,
                hands_free: false,
            }),
            commands: Box::new(commands),
        }
    }

    /// Passes one of the assistant's events on to every connected client.
    pub fn publish(&self, event: &Event) {
        if let Event::StateChanged { state, .. } = event {
            let mut now = self.now();
            now.state = *state;
            if state.is_answering() || (*state == AssistantState::Listening && !now.hands_free) {
                // The turn's own events have caught up.
                now.claimed = None;
            }
        }
        // No client connected is not an error.
        let _ = self.events.send(event.clone());
    }

    /// Publishes every event from `events` (an assistant's) until they end; for an owner
    /// that has nothing else to do with them (the app forwards them to its window too).
    pub fn follow(
        self: &Arc<Self>,
        mut events: broadcast::Receiver<Event>,
    ) -> tokio::task::JoinHandle<()> {
        let relay = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => relay.publish(&event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("the API's clients missed {n} events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    /// A new assistant took over (started, or restarted with new settings): it rests,
    /// with no turn under way; `hands_free` says whether it rests in `LISTENING` (hands-free)
    /// or `IDLE`.
    pub fn reset(&self, hands_free: bool) {
        let mut now = self.now();
        now.state = if hands_free {
            AssistantState::Listening
        } else {
            AssistantState::Idle
        };
        now.claimed = None;
        now.hands_free = hands_free;
    }

    /// What the assistant is doing now.
    pub fn state(&self) -> AssistantState {
        self.now().state
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.events.receiver_count()
    }

    fn now(&self) -> std::sync::MutexGuard<'_, Now> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands `command` to the assistant, unless it would start a turn (`start_listening`,
    /// `send_text`) while another is under way.
    pub fn send(&self, command: Command) -> Result<(), Busy> {
        self.send_at(command, Instant::now())
    }

    fn send_at(&self, command: Command, at: Instant) -> Result<(), Busy> {
        let starts_turn = matches!(command, Command::StartListening | Command::SendText(_));
        if starts_turn {
            let mut now = self.now();
            if now.busy(at) {
                return Err(Busy);
            }
            now.claimed = Some(at);
        }
        (self.commands)(command);
        Ok(())
    }
}

/// A turn was asked for while another is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The assistant is in a turn already (one voice turn at a time): wait for its turn_finished event, or send interrupt")]
pub struct Busy;

/// What a client may send: the window's commands, with the same names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientCommand {
    /// Start listening (the talk key went down).
    StartListening,
    /// Stop listening: the user is done speaking.
    StopListening,
    /// Stop the answer now.
    Interrupt,
    /// A typed question.
    SendText {
        /// The question.
        text: String,
    },
    /// Forget the conversation so far: the next question starts afresh.
    NewConversation,
}

/// What the API itself says on the socket, besides the assistant's events (whose `type`
/// names these never share).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Notice {
    /// The first message: the assistant's state as the client connects.
    Hello {
        /// What the assistant is doing.
        state: AssistantState,
        /// The API's version.
        version: &'static str,
    },
    /// A command was not passed on.
    Refused {
        /// Why, for programs: `busy`, `bad_command`, `screened`, `rate_limited`.
        code: &'static str,
        /// Why, for a person.
        message: String,
    },
    /// A warning about a command that was passed on (text the screen flagged, let through).
    Warning {
        /// What was found.
        message: String,
    },
    /// The client read too slowly and this many events were dropped for it.
    Missed {
        /// How many.
        events: u64,
    },
}

/// A refused command.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: &str) -> Refusal {
        Refusal {
            code,
            message: message.to_string(),
        }
    }
}

/// `GET /v1/assistant`: upgrades to the live assistant's WebSocket.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    if state.live.is_none() {
        return ApiError::not_found(
            "No live assistant here: `sotto serve --assistant` runs one (the app's API always has it)",
        )
        .into_response();
    }
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(socket, state, peer))
}

/// One client, from its hello to its close (or the server's shutdown).
async fn session(mut socket: WebSocket, state: AppState, peer: std::net::SocketAddr) {
    let Some(live) = state.live.clone() else {
        return;
    };
    let mut events = live.events.subscribe();
    tracing::info!(
        "a client ({peer}) watches the assistant ({} now)",
        live.clients()
    );
    // Each client's commands have a bucket of their own, apart from the token's requests:
    // a flood of requests, or another client's, never takes its controls away.
    let rate = RateLimiter::new(
        state.config.limits.requests_per_second,
        state.config.limits.burst,
    );
    // Whether this client holds the talk key: let go for it if it leaves.
    let mut holding = false;
    let hello = Notice::Hello {
        state: live.state(),
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut open = send_json(&mut socket, &hello).await.is_ok();
    while open {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                let close = CloseFrame {
                    code: axum::extract::ws::close_code::AWAY,
                    reason: Utf8Bytes::from_static("Sotto's API is stopping"),
                };
                let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(close)))).await;
                open = false;
            }
            event = events.recv() => {
                open = match event {
                    Ok(event) => send_json(&mut socket, &event).await.is_ok(),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        send_json(&mut socket, &Notice::Missed { events: n }).await.is_ok()
                    }
                    Err(broadcast::error::RecvError::Closed) => false,
                };
            }
            message = socket.recv() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    // Pings are answered for us; binary frames mean nothing here.
                    Some(Ok(Message::Binary(_))) => {
                        let refused = Refusal::new("bad_command", "Commands are JSON text frames, such as {\"type\":\"interrupt\"}");
                        open = refuse(&mut socket, refused).await.is_ok();
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let reply = match command(&state, &live, &rate, peer, text.as_str()) {
                    Ok((sent, warning)) => {
                        match sent {
                            Command::StartListening => holding = true,
                            Command::StopListening | Command::Interrupt => holding = false,
                            _ => {}
                        }
                        match warning {
                            Some(message) => send_json(&mut socket, &Notice::Warning { message }).await,
                            None => Ok(()),
                        }
                    }
                    Err(refused) => refuse(&mut socket, refused).await,
                };
                open = reply.is_ok();
            }
        }
    }
    if holding && live.state() == AssistantState::Listening {
        // The client went away with the key down: the question ends here.
        let _ = live.send(Command::StopListening);
    }
    tracing::info!("a client ({peer}) stopped watching the assistant");
}

/// Reads, checks and passes on one client command; returns what was sent, and a warning
/// when screened text was let through.
fn command(
    state: &AppState,
    live: &LiveAssistant,
    rate: &RateLimiter,
    peer: std::net::SocketAddr,
    text: &str,
) -> Result<(Command, Option<String>), Refusal> {
    let now = Instant::now();
    let parsed: ClientCommand = serde_json::from_str(text).map_err(|e| Refusal {
        code: "bad_command",
        message: format!(
            "Not a command ({e}). Send one of {{\"type\":\"start_listening\"}}, \"stop_listening\", \"interrupt\", \"new_conversation\", or {{\"type\":\"send_text\",\"text\":\"...\"}}"
        ),
    })?;
    // Stopping is never rate limited: it is how a client takes back control.
    let stops = matches!(
        parsed,
        ClientCommand::StopListening | ClientCommand::Interrupt
    );
    if !stops {
        if let Err(wait) = rate.admit("", now) {
            return Err(Refusal {
                code: "rate_limited",
                message: format!(
                    "Too many commands: try again in {} ms",
                    wait.as_millis().max(1)
                ),
            });
        }
    }
    let mut warning = None;
    let command = match parsed {
        ClientCommand::StartListening => Command::StartListening,
        ClientCommand::StopListening => Command::StopListening,
        ClientCommand::Interrupt => Command::Interrupt,
        ClientCommand::NewConversation => Command::NewConversation,
        ClientCommand::SendText { text } => {
            let text = strip_controls(&text);
            let limit = state.config.limits.max_speech_chars;
            if text.trim().is_empty() {
                return Err(Refusal::new("bad_command", "send_text needs some text"));
            }
            if text.chars().count() > limit {
                return Err(Refusal {
                    code: "too_long",
                    message: format!("The text is longer than {limit} characters"),
                });
            }
            let found = screen::check(&text, state.config.screen, &peer.to_string()).map_err(
                |message| Refusal {
                    code: "screened",
                    message,
                },
            )?;
            warning = found.map(|why| format!("screened: the text {why}"));
            Command::SendText(text)
        }
    };
    live.send_at(command.clone(), now).map_err(|busy| Refusal {
        code: "busy",
        message: busy.to_string(),
    })?;
    Ok((command, warning))
}

async fn refuse(socket: &mut WebSocket, refused: Refusal) -> Result<(), axum::Error> {
    let notice = Notice::Refused {
        code: refused.code,
        message: refused.message,
    };
    send_json(socket, &notice).await
}

/// Sends `value` as one JSON text frame; an error (or a client that has not read for
/// [`SEND_TIMEOUT`]) ends the session.
async fn send_json(socket: &mut WebSocket, value: &impl Serialize) -> Result<(), axum::Error> {
    match serde_json::to_string(value) {
        Ok(json) => {
            match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(json.into()))).await
            {
                Ok(sent) => sent,
                Err(_) => Err(axum::Error::new("the client stopped reading")),
            }
        }
        Err(e) => {
            // Events are plain data: this cannot happen, but is not worth a dead socket.
            tracing::warn!("cannot write an event as JSON: {e}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> (LiveAssistant, Arc<Mutex<Vec<Command>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&sent);
        let live = LiveAssistant::new(move |c| {
            if let Ok(mut log) = log.lock() {
                log.push(c);
            }
        });
        (live, sent)
    }

    fn state_changed(state: AssistantState) -> Event {
        Event::StateChanged {
            state,
            turn_id: 1,
            at_ms: 0.0,
        }
    }

    #[test]
    fn one_turn_at_a_time_until_the_assistant_is_idle_again() {
        let (live, sent) = recording();
        let t0 = Instant::now();
        assert!(live.send_at(Command::StartListening, t0).is_ok());
        // Before the assistant's own events arrive, a second start is busy already.
        let busy = live.send_at(Command::SendText("hi".into()), t0);
        assert_eq!(busy, Err(Busy));
        live.publish(&state_changed(AssistantState::Listening));
        live.publish(&state_changed(AssistantState::Speaking));
        assert!(live.send_at(Command::StartListening, t0).is_err());
        // Interrupting and stopping are never refused.
        assert!(live.send_at(Command::Interrupt, t0).is_ok());
        assert!(live.send_at(Command::StopListening, t0).is_ok());
        live.publish(&state_changed(AssistantState::Idle));
        assert!(live.send_at(Command::SendText("next".into()), t0).is_ok());
        live.publish(&state_changed(AssistantState::AnalyzingSpeech));
        live.publish(&state_changed(AssistantState::Idle));
        let log = sent.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(
            log,
            vec![
                Command::StartListening,
                Command::Interrupt,
                Command::StopListening,
                Command::SendText("next".into())
            ]
        );
    }

    #[test]
    fn hands_free_rests_listening_and_only_an_answer_is_a_turn() {
        let (live, _sent) = recording();
        live.reset(true);
        let t0 = Instant::now();
        live.publish(&state_changed(AssistantState::Listening));
        assert!(live.send_at(Command::SendText("hi".into()), t0).is_ok());
        live.publish(&state_changed(AssistantState::RoutingToLlm));
        assert!(live.send_at(Command::SendText("again".into()), t0).is_err());
        live.publish(&state_changed(AssistantState::Listening));
        assert!(live.send_at(Command::SendText("again".into()), t0).is_ok());
    }

    #[test]
    fn a_new_assistant_ends_the_old_ones_turn() {
        // Restarted with new settings in the middle of a turn: nothing is under way in
        // the new one, whose first state event may never come (it starts at rest).
        let (live, _sent) = recording();
        let t0 = Instant::now();
        live.publish(&state_changed(AssistantState::Speaking));
        assert!(live.send_at(Command::StartListening, t0).is_err());
        live.reset(false);
        assert_eq!(live.state(), AssistantState::Idle);
        assert!(live.send_at(Command::StartListening, t0).is_ok());
        // Hands-free rests listening.
        live.reset(true);
        assert_eq!(live.state(), AssistantState::Listening);
        assert!(live.send_at(Command::SendText("hi".into()), t0).is_ok());
    }

    #[test]
    fn a_turn_the_assistant_never_started_does_not_block_for_ever() {
        // The app drops commands while its assistant restarts: the claim expires.
        let (live, _sent) = recording();
        let t0 = Instant::now();
        assert!(live.send_at(Command::StartListening, t0).is_ok());
        assert!(live
            .send_at(Command::StartListening, t0 + CLAIM / 2)
            .is_err());
        assert!(live.send_at(Command::StartListening, t0 + CLAIM).is_ok());
    }

    #[test]
    fn commands_have_the_windows_names() {
        let parse = |s: &str| serde_json::from_str::<ClientCommand>(s).ok();
        assert_eq!(
            parse(r#"{"type":"start_listening"}"#),
            Some(ClientCommand::StartListening)
        );
        assert_eq!(
            parse(r#"{"type":"send_text","text":"hi"}"#),
            Some(ClientCommand::SendText { text: "hi".into() })
        );
        assert_eq!(parse(r#"{"type":"shutdown"}"#), None);
        // The API's own notices never take an event's name.
        let hello = serde_json::to_value(Notice::Hello {
            state: AssistantState::Idle,
            version: "0",
        })
        .ok();
        assert_eq!(
            hello,
            Some(serde_json::json!({"type": "hello", "state": "IDLE", "version": "0"}))
        );
        for notice in ["hello", "refused", "warning", "missed"] {
            let event = serde_json::from_value::<Event>(serde_json::json!({ "type": notice }));
            let unknown = event
                .err()
                .is_some_and(|e| e.to_string().contains("unknown variant"));
            assert!(unknown, "{notice} is an event's name");
        }
    }
}
