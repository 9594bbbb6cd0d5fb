use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::words::{normalise, number, say};
use super::{answer, Exact, PROVIDER};
use crate::{Answer, CancellationToken, ChatRequest, Chunk, Llm, Message, Role, Sampling};

fn ask(question: &str) -> Option<String> {
    answer(&[
        Message::new(Role::System, "You are Sotto."),
        Message::new(Role::User, question),
    ])
}

/// Earlier questions with whatever the assistant said, then `question`.
fn after(earlier: &[&str], question: &str) -> Option<String> {
    let mut messages = vec![Message::new(Role::System, "You are Sotto.")];
    for q in earlier {
        messages.push(Message::new(Role::User, *q));
        messages.push(Message::new(Role::Assistant, "Something was said."));
    }
    messages.push(Message::new(Role::User, question));
    answer(&messages)
}

fn number_of(text: &str) -> Option<f64> {
    let words = normalise(text);
    number(&words, 0)
        .filter(|(_, end)| *end == words.len())
        .map(|(n, _)| n)
}

#[test]
fn numbers_in_digits_and_words() {
    for (text, value) in [
        ("347", 347.0),
        ("3,600", 3600.0),
        ("0.75", 0.75),
        (".5", 0.5),
        ("zero", 0.0),
        ("seven", 7.0),
        ("twenty-five", 25.0),
        ("one hundred and eighty", 180.0),
        ("two hundred twelve", 212.0),
        ("a hundred", 100.0),
        ("a thousand", 1000.0),
        ("five thousand two hundred and eighty", 5280.0),
        ("2 million", 2_000_000.0),
        ("one thousand four hundred forty", 1440.0),
        ("one hundred twenty five", 125.0),
        ("three thousand two hundred and fifty six", 3256.0),
    ] {
        assert_eq!(number_of(text), Some(value), "{text}");
    }
    for not_whole in ["twenty fifteen", "seven 8", "five and six"] {
        assert_eq!(number_of(not_whole), None, "{not_whole}");
    }
    assert_eq!(number_of("a"), None);
}

#[test]
fn numbers_said_back() {
    assert_eq!(say(60.0), ("60".into(), false));
    assert_eq!(say(3600.0), ("3600".into(), false));
    assert_eq!(say(86_400.0), ("86,400".into(), false));
    assert_eq!(say(0.75), ("0.75".into(), false));
    assert_eq!(say(12.5), ("12.5".into(), false));
    assert_eq!(say(10.0 / 3.0), ("3.33".into(), true));
    assert_eq!(say(-5.0), ("minus 5".into(), false));
    // Small numbers keep three significant digits instead of rounding to zero.
    assert_eq!(say(0.001), ("0.001".into(), false));
    assert_eq!(say(1.0 / 1609.344), ("0.000621".into(), true));
    // A decimal that rounds up carries into the whole number.
    assert_eq!(say(2.999_999), ("3".into(), true));
    assert_eq!(say(0.1 + 0.2), ("0.3".into(), false));
}

#[test]
fn arithmetic_is_worked_out() {
    for (question, said) in [
        ("What is 15 times 4?", "15 times 4 is 60."),
        ("What is 100 divided by 8?", "100 divided by 8 is 12.5."),
        ("What is 20 percent of 150?", "20 percent of 150 is 30."),
        ("What's 25% of 60?", "25 percent of 60 is 15."),
        ("What is 347 plus 589?", "347 plus 589 is 936."),
        ("What is 1000 minus 357?", "1000 minus 357 is 643."),
        ("What is 1000 - 357?", "1000 minus 357 is 643."),
        ("what is seven times eight", "7 times 8 is 56."),
        (
            "What is the square root of 144?",
            "The square root of 144 is 12.",
        ),
        ("What is 3 divided by 4?", "3 divided by 4 is 0.75."),
        ("What is 10 divided by 3?", "10 divided by 3 is about 3.33."),
        ("Calculate 2 plus 3 times 4.", "2 plus 3 times 4 is 14."),
        ("Hey Sotto, what is 12 squared?", "12 squared is 144."),
        ("Can you tell me what is 6 x 7?", "6 times 7 is 42."),
        ("What is 5 divided by 0?", "Dividing by zero has no answer."),
        ("How much is 2,500 plus 500?", "2500 plus 500 is 3000."),
        ("What is 1 divided by 1000?", "1 divided by 1000 is 0.001."),
        ("What is 0.001 times 5000?", "0.001 times 5000 is 5."),
        ("Multiply 6 by 7.", "6 times 7 is 42."),
        ("Subtract 3 from 10.", "10 minus 3 is 7."),
    ] {
        assert_eq!(ask(question).as_deref(), Some(said), "{question}");
    }
}

#[test]
fn conversions_are_worked_out() {
    for (question, said) in [
        (
            "How many minutes are in three hours?",
            "3 hours is 180 minutes.",
        ),
        (
            "How many centimetres are in a metre?",
            "A metre is 100 centimetres.",
        ),
        (
            "How many days are in a leap year?",
            "A leap year is 366 days.",
        ),
        (
            "How many seconds are in an hour?",
            "An hour is 3600 seconds.",
        ),
        (
            "How many grams are in a kilogram?",
            "A kilogram is 1000 grams.",
        ),
        ("How many ounces are in a pound?", "A pound is 16 ounces."),
        ("How many hours are in a week?", "A week is 168 hours."),
        (
            "What is zero degrees Celsius in Fahrenheit?",
            "0 degrees Celsius is 32 degrees Fahrenheit.",
        ),
        ("How many feet are in a mile?", "A mile is 5280 feet."),
        ("How many feet is a mile?", "A mile is 5280 feet."),
        ("how many seconds in a day", "A day is 86,400 seconds."),
        (
            "How many minutes are in half an hour?",
            "Half an hour is 30 minutes.",
        ),
        (
            "Convert 5 miles to kilometers.",
            "5 miles is about 8.05 kilometres.",
        ),
        (
            "What is 100 degrees F in Celsius?",
            "100 degrees Fahrenheit is about 37.78 degrees Celsius.",
        ),
        ("How many months are in two years?", "2 years is 24 months."),
        (
            "How many meters are in 1.5 kilometers?",
            "1.5 kilometres is 1500 metres.",
        ),
        ("How many days are in a year?", "A year is 365 days."),
        (
            "How many weeks are in a year?",
            "A year is about 52.14 weeks.",
        ),
        (
            "How many months are in a decade?",
            "A decade is 120 months.",
        ),
        (
            "What is 300 kelvin in Celsius?",
            "300 kelvin is 26.85 degrees Celsius.",
        ),
        (
            "What is minus 1 degrees Celsius in Fahrenheit?",
            "Minus 1 degree Celsius is 30.2 degrees Fahrenheit.",
        ),
    ] {
        assert_eq!(ask(question).as_deref(), Some(said), "{question}");
    }
}

#[test]
fn follow_ups_use_the_previous_question() {
    for (earlier, question, said) in [
        (
            &["What is 12 times 12?"][..],
            "And half of that?",
            "Half of 144 is 72.",
        ),
        (
            &["What is 25 plus 17?"],
            "Now multiply that by 2.",
            "42 times 2 is 84.",
        ),
        (
            &["What is 10 times 10?", "Add 50 to that."],
            "Now divide it by 5.",
            "150 divided by 5 is 30.",
        ),
        (
            &["How many minutes are in an hour?"],
            "And in a day?",
            "A day is 1440 minutes.",
        ),
        (
            &["How many hours are in a day?"],
            "And in minutes?",
            "A day is 1440 minutes.",
        ),
        (
            &["How many hours are in a day?"],
            "And how many minutes is that?",
            "A day is 1440 minutes.",
        ),
        (&["What is 15 plus 6?"], "Double it.", "Twice 21 is 42."),
        (
            &["What is 8 times 5?", "Add 10 to that."],
            "Now subtract 20.",
            "50 minus 20 is 30.",
        ),
        (&["What is 9 times 9?"], "Times 2?", "81 times 2 is 162."),
    ] {
        assert_eq!(
            after(earlier, question).as_deref(),
            Some(said),
            "{question}"
        );
    }
}

#[test]
fn anything_else_is_for_the_model() {
    for question in [
        // Dates, ranges and phone numbers are not sums.
        "What is 9/11?",
        "What is 24/7?",
        "What is 5-10% of 200?",
        "What is 555-1234?",
        // Said back, it would need brackets.
        "Multiply 2 plus 3 by 4.",
        "Divide 10 by 2 plus 3.",
        // A step of a scale is not a temperature.
        "How many degrees Fahrenheit are in a degree Celsius?",
        // Counts the calendar changes.
        "How many leap years are in a century?",
        "How many days are in a century?",
        "How many days are in 4 years?",
        "How many years is 1000 days?",
        "What is the capital of France?",
        "How many people live there?",
        "Tell me a joke.",
        "What is 5?",
        "What is that?",
        "Divide it by 5.",
        "And in a day?",
        "How much is a pound in dollars?",
        "What is 2 plus 2 and why?",
        "How many days are in a month?",
        "How many hours of sleep do I need?",
        "How many minutes is that?",
        "What is a metre?",
        "How many planets are in our solar system?",
        "Good night.",
        "",
    ] {
        assert_eq!(ask(question), None, "{question}");
    }
    // After a sum: a negative number after "what is" is not the last answer minus it,
    // "add that" adds nothing said, and a lone quantity is someone hesitating.
    assert_eq!(
        after(&["What is 2 plus 2?"], "What is minus 5 times 3?").as_deref(),
        Some("Minus 5 times 3 is minus 15.")
    );
    assert_eq!(after(&["What is 12 times 12?"], "Add that."), None);
    assert_eq!(after(&["What is 12 times 12?"], "Subtract it."), None);
    assert_eq!(
        after(&["How many minutes are in an hour?"], "One second."),
        None
    );
    assert_eq!(
        after(&["How many minutes are in an hour?"], "What about a day?").as_deref(),
        Some("A day is 1440 minutes.")
    );
    // Huge numbers are the model's to talk about.
    let huge = format!("What is {} times 2?", "9".repeat(400));
    assert_eq!(ask(&huge), None);
    let huge = format!("How many seconds are in {} centuries?", "9".repeat(30));
    assert_eq!(ask(&huge), None);
    // "That" means nothing after a question the model answered.
    assert_eq!(
        after(&["What is the capital of Japan?"], "Double it."),
        None
    );
    // Only the previous question counts.
    assert_eq!(
        after(
            &["What is 2 times 3?", "Who wrote Hamlet?"],
            "Add 1 to that."
        ),
        None
    );
    // The assistant spoke last: nothing to answer.
    let messages = [
        Message::new(Role::User, "What is 2 plus 2?"),
        Message::new(Role::Assistant, "4."),
    ];
    assert_eq!(answer(&messages), None);
}

/// The model behind: counts its calls and answers "model".
struct Counting(AtomicUsize);

impl Llm for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn is_cloud(&self) -> bool {
        false
    }

    fn chat(&self, _request: ChatRequest, _cancel: CancellationToken) -> Answer {
        self.0.fetch_add(1, Ordering::SeqCst);
        let (tx, answer) = Answer::channel();
        let _ = tx.try_send(Ok(Chunk::Text("model".into())));
        let _ = tx.try_send(Ok(Chunk::Done(crate::Finish {
            reason: crate::FinishReason::Stop,
            usage: None,
            provider: "counting".into(),
        })));
        answer
    }
}

fn request(question: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::new(Role::User, question)],
        sampling: Sampling::default(),
    }
}

#[tokio::test]
async fn sums_never_reach_the_model() {
    let model = Arc::new(Counting(AtomicUsize::new(0)));
    let exact = Exact::new(model.clone());
    let (text, finish) = exact
        .chat(
            request("How many hours are in a week?"),
            CancellationToken::new(),
        )
        .collect()
        .await
        .expect("an answer");
    assert_eq!(text, "A week is 168 hours.");
    assert_eq!(finish.provider, PROVIDER);
    assert_eq!(model.0.load(Ordering::SeqCst), 0);

    let (text, finish) = exact
        .chat(
            request("What should I cook tonight?"),
            CancellationToken::new(),
        )
        .collect()
        .await
        .expect("an answer");
    assert_eq!(
        (text.as_str(), finish.provider.as_str()),
        ("model", "counting")
    );
    assert_eq!(model.0.load(Ordering::SeqCst), 1);
    assert_eq!(exact.name(), "counting");
}

fn at(rfc3339: &str, question: &str) -> Option<String> {
    let now = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("a time");
    super::answer_at(&[Message::new(Role::User, question)], &now)
}

#[test]
fn the_time_and_the_date_come_from_the_clock() {
    let afternoon = "2026-12-08T15:27:00+01:00";
    for (question, said) in [
        ("What time is it?", "It's 3:27 in the afternoon."),
        ("What's the time right now?", "It's 3:27 in the afternoon."),
        (
            "Hey Sotto, do you know what time it is?",
            "It's 3:27 in the afternoon.",
        ),
        ("Tell me the time, please.", "It's 3:27 in the afternoon."),
        ("What day is it today?", "Today is Tuesday."),
        (
            "What's today's date?",
            "Today is Tuesday, the 8th of December 2026.",
        ),
        (
            "What is the date?",
            "Today is Tuesday, the 8th of December 2026.",
        ),
    ] {
        assert_eq!(at(afternoon, question).as_deref(), Some(said), "{question}");
    }
    // The clock's own time zone, as read: 15:27 at +01:00 is said as 3:27.
    assert_eq!(
        at("2026-12-08T09:00:00-05:00", "What time is it?").as_deref(),
        Some("It's 9 o'clock in the morning.")
    );
    assert_eq!(
        at("2026-12-08T12:00:00Z", "What time is it?").as_deref(),
        Some("It's noon.")
    );
    assert_eq!(
        at("2026-12-08T00:05:00Z", "What time is it?").as_deref(),
        Some("It's 12:05 at night.")
    );
    assert_eq!(
        at("2026-01-01T20:15:00Z", "What's the date today?").as_deref(),
        Some("Today is Thursday, the 1st of January 2026.")
    );
    assert_eq!(
        at("2026-03-22T20:15:00Z", "What's the date?").as_deref(),
        Some("Today is Sunday, the 22nd of March 2026.")
    );
    assert_eq!(
        at("2026-03-11T20:15:00Z", "What's the date?").as_deref(),
        Some("Today is Wednesday, the 11th of March 2026.")
    );
    // Another place's time, or a date of something, is not this clock's to say.
    for question in [
        "What time is it in Tokyo?",
        "What is the date of Easter?",
        "What time does the shop close?",
        "Is it time to go?",
    ] {
        assert_eq!(at(afternoon, question), None, "{question}");
    }
}
