//! The time and the date, from the computer's clock: a language model cannot know them,
//! and a small one says a time with the same confidence as a sum.

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Weekday};

/// What a question about the clock asks.
enum Asked {
    Time,
    /// The day of the week.
    Day,
    /// The day of the week and the date.
    Date,
}

/// The question's words (from `start`), when they ask the time or the date and nothing
/// more.
fn asked(words: &[String], start: usize) -> Option<Asked> {
    let mut rest: Vec<&str> = words.get(start..)?.iter().map(String::as_str).collect();
    // "... right now", "... today", "... please": nothing that changes the question.
    while let Some(last) = rest.last() {
        if matches!(*last, "now" | "today" | "please" | "right") {
            rest.pop();
        } else {
            break;
        }
    }
    const TIME: &[&[&str]] = &[
        &["what", "time", "is", "it"],
        &["what", "time", "it", "is"],
        &["what", "is", "the", "time"],
        &["the", "time"],
    ];
    const DAY: &[&[&str]] = &[
        &["what", "day", "is", "it"],
        &["what", "day", "it", "is"],
        &["what", "day", "is"],
        &["what", "day", "of", "the", "week", "is", "it"],
        &["what", "is", "the", "day"],
    ];
    const DATE: &[&[&str]] = &[
        &["what", "is", "the", "date"],
        &["what", "date", "is", "it"],
        &["what", "date", "it", "is"],
        &["what", "is", "today", "is", "date"],
        &["the", "date"],
    ];
    let is = |forms: &[&[&str]]| forms.contains(&rest.as_slice());
    if is(TIME) {
        Some(Asked::Time)
    } else if is(DAY) {
        Some(Asked::Day)
    } else if is(DATE) {
        Some(Asked::Date)
    } else {
        None
    }
}

/// The answer to a question about the clock, at `now`; `None` for any other question.
pub(crate) fn reply(words: &[String], start: usize, now: &DateTime<FixedOffset>) -> Option<String> {
    Some(match asked(words, start)? {
        Asked::Time => time(now),
        Asked::Day => format!("Today is {}.", weekday(now.weekday())),
        Asked::Date => format!(
            "Today is {}, the {} of {} {}.",
            weekday(now.weekday()),
            ordinal(now.day()),
            month(now.month()),
            now.year()
        ),
    })
}

/// "It's 3:27 in the afternoon.", "It's 9 o'clock in the morning.", "It's noon."
fn time(now: &DateTime<FixedOffset>) -> String {
    let (hour, minute) = (now.hour(), now.minute());
    match (hour, minute) {
        (12, 0) => return "It's noon.".into(),
        (0, 0) => return "It's midnight.".into(),
        _ => {}
    }
    let part = match hour {
        5..=11 => "in the morning",
        12..=16 => "in the afternoon",
        17..=20 => "in the evening",
        _ => "at night",
    };
    let on_clock = match hour % 12 {
        0 => 12,
        h => h,
    };
    if minute == 0 {
        format!("It's {on_clock} o'clock {part}.")
    } else {
        format!("It's {on_clock}:{minute:02} {part}.")
    }
}

fn weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn month(month: u32) -> &'static str {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    month
        .checked_sub(1)
        .and_then(|i| MONTHS.get(i as usize))
        .copied()
        .unwrap_or("")
}

/// "1st", "2nd", "3rd", "11th", "22nd".
fn ordinal(day: u32) -> String {
    let suffix = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{day}{suffix}")
}
