//! Fitting a conversation into a model's context window: the system prompt and the newest
//! turns stay, the oldest turns go.

use crate::{Message, Role};

/// A cautious token estimate: English runs about four characters a token; counting three
/// leaves room for names, numbers and other languages. Each message also costs the
/// template's role markers.
pub fn estimate_tokens(message: &Message) -> usize {
    message.content.len().div_ceil(3) + 8
}

/// The messages to send so that their estimate fits `budget` tokens: every system message,
/// then as many of the newest turns as fit (the last one always), starting with a user turn.
pub fn fit(messages: &[Message], budget: usize) -> Vec<Message> {
    let system: Vec<&Message> = messages.iter().filter(|m| m.role == Role::System).collect();
    let turns: Vec<&Message> = messages.iter().filter(|m| m.role != Role::System).collect();
    let mut used: usize = system.iter().map(|m| estimate_tokens(m)).sum();
    let mut first = turns.len();
    while first > 0 {
        let cost = estimate_tokens(turns[first - 1]);
        if first < turns.len() && used + cost > budget {
            break;
        }
        used += cost;
        first -= 1;
    }
    // A conversation that starts with the assistant confuses templates and some APIs.
    while first + 1 < turns.len() && turns[first].role != Role::User {
        first += 1;
    }
    system
        .into_iter()
        .chain(turns[first..].iter().copied())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(turns: usize) -> Vec<Message> {
        let mut messages = vec![Message::new(Role::System, "Be brief.")];
        for i in 0..turns {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            messages.push(Message::new(role, format!("turn {i} ").repeat(10)));
        }
        messages
    }

    #[test]
    fn everything_fits_a_large_budget() {
        assert_eq!(fit(&chat(6), 10_000), chat(6));
    }

    #[test]
    fn the_oldest_turns_go_first_and_the_kept_part_starts_with_the_user() {
        let all = chat(9);
        let kept = fit(&all, 100);
        assert_eq!(kept[0].role, Role::System);
        assert_eq!(kept[1].role, Role::User);
        assert_eq!(kept.last(), all.last());
        let cost: usize = kept.iter().map(estimate_tokens).sum();
        assert!(cost <= 100, "{cost}");
        assert!(kept.len() < all.len());
    }

    #[test]
    fn the_last_turn_stays_even_when_nothing_fits() {
        let all = chat(3);
        let kept = fit(&all, 1);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1], all[3]);
    }
}
