//! The units a question may convert between: time, length, mass, volume and temperature,
//! each with the words a speaker uses for it and its size in the dimension's base unit.

/// What a unit measures: only units of one dimension convert into each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dimension {
    Time,
    Length,
    Mass,
    Volume,
    Temperature,
}

/// A temperature scale: temperatures convert by formula, not by size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Celsius,
    Fahrenheit,
    Kelvin,
}

/// How a unit of time counts. Fixed lengths convert freely; a year is 365 days only when
/// one year (or less) is meant (four years hold a leap day), and months, decades and
/// centuries count exactly only in years and months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
    /// Seconds to fortnights, and every unit that is not time.
    Fixed,
    /// 365 days, or 12 months.
    Year,
    /// 366 days.
    LeapYear,
    /// A decade or a century: so many years.
    Years,
    /// A twelfth of a year.
    Month,
}

/// One unit.
#[derive(Debug, PartialEq)]
pub(crate) struct Unit {
    /// Said of one ("minute").
    pub singular: &'static str,
    /// Said of several ("minutes").
    pub plural: &'static str,
    /// What it measures.
    pub dimension: Dimension,
    /// Its size in the dimension's base unit (second, metre, gram, litre); unused for
    /// temperatures.
    pub size: f64,
    /// Other words for it (abbreviations, American spellings), each one word or two,
    /// in lower case.
    pub aliases: &'static [&'static str],
    /// The scale, for a temperature.
    pub scale: Option<Scale>,
    /// How it counts, for time.
    pub span: Span,
}

const DAY: f64 = 86_400.0;
const YEAR: f64 = 365.0 * DAY;

const fn unit(
    singular: &'static str,
    plural: &'static str,
    dimension: Dimension,
    size: f64,
    aliases: &'static [&'static str],
) -> Unit {
    Unit {
        singular,
        plural,
        dimension,
        size,
        aliases,
        scale: None,
        span: Span::Fixed,
    }
}

const fn calendar(singular: &'static str, plural: &'static str, size: f64, span: Span) -> Unit {
    Unit {
        span,
        ..unit(singular, plural, Time, size, &[])
    }
}

const fn temperature(
    singular: &'static str,
    plural: &'static str,
    scale: Scale,
    aliases: &'static [&'static str],
) -> Unit {
    Unit {
        scale: Some(scale),
        ..unit(singular, plural, Temperature, 0.0, aliases)
    }
}

use Dimension::{Length, Mass, Temperature, Time, Volume};

/// Every unit Sotto converts.
pub(crate) static UNITS: &[Unit] = &[
    unit("second", "seconds", Time, 1.0, &["sec", "secs"]),
    unit("minute", "minutes", Time, 60.0, &["min", "mins"]),
    unit("hour", "hours", Time, 3_600.0, &["hr", "hrs"]),
    unit("day", "days", Time, DAY, &[]),
    unit("week", "weeks", Time, 7.0 * DAY, &[]),
    unit("fortnight", "fortnights", Time, 14.0 * DAY, &[]),
    calendar("month", "months", YEAR / 12.0, Span::Month),
    calendar("year", "years", YEAR, Span::Year),
    calendar("leap year", "leap years", 366.0 * DAY, Span::LeapYear),
    calendar("decade", "decades", 10.0 * YEAR, Span::Years),
    calendar("century", "centuries", 100.0 * YEAR, Span::Years),
    unit(
        "millimetre",
        "millimetres",
        Length,
        0.001,
        &["millimeter", "millimeters", "mm"],
    ),
    unit(
        "centimetre",
        "centimetres",
        Length,
        0.01,
        &["centimeter", "centimeters", "cm"],
    ),
    unit("metre", "metres", Length, 1.0, &["meter", "meters"]),
    unit(
        "kilometre",
        "kilometres",
        Length,
        1_000.0,
        &["kilometer", "kilometers", "km"],
    ),
    unit("inch", "inches", Length, 0.0254, &[]),
    unit("foot", "feet", Length, 0.3048, &["ft"]),
    unit("yard", "yards", Length, 0.9144, &["yd", "yds"]),
    unit("mile", "miles", Length, 1_609.344, &[]),
    unit("milligram", "milligrams", Mass, 0.001, &["mg"]),
    unit("gram", "grams", Mass, 1.0, &["g"]),
    unit(
        "kilogram",
        "kilograms",
        Mass,
        1_000.0,
        &["kilo", "kilos", "kg", "kgs"],
    ),
    unit(
        "tonne",
        "tonnes",
        Mass,
        1_000_000.0,
        &["metric ton", "metric tons"],
    ),
    unit("ounce", "ounces", Mass, 28.349_523_125, &["oz"]),
    unit("pound", "pounds", Mass, 453.592_37, &["lb", "lbs"]),
    unit("stone", "stone", Mass, 6_350.293_18, &["stones"]),
    unit(
        "millilitre",
        "millilitres",
        Volume,
        0.001,
        &["milliliter", "milliliters", "ml"],
    ),
    unit(
        "centilitre",
        "centilitres",
        Volume,
        0.01,
        &["centiliter", "centiliters", "cl"],
    ),
    unit("litre", "litres", Volume, 1.0, &["liter", "liters"]),
    temperature(
        "degree Celsius",
        "degrees Celsius",
        Scale::Celsius,
        &["celsius", "centigrade", "c"],
    ),
    temperature(
        "degree Fahrenheit",
        "degrees Fahrenheit",
        Scale::Fahrenheit,
        &["fahrenheit", "f"],
    ),
    temperature("kelvin", "kelvin", Scale::Kelvin, &["kelvins", "k"]),
];

/// The unit named at `words[at..]` (one word or two; "degrees" before a temperature is
/// part of its name) and the index after it.
pub(crate) fn unit_at(words: &[String], at: usize) -> Option<(&'static Unit, usize)> {
    let word = |i: usize| words.get(i).map(String::as_str);
    let degrees = matches!(word(at), Some("degree" | "degrees"));
    let start = if degrees { at + 1 } else { at };
    let two = match (word(start), word(start + 1)) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        _ => None,
    };
    let named = |u: &Unit, name: &str| {
        u.singular.eq_ignore_ascii_case(name)
            || u.plural.eq_ignore_ascii_case(name)
            || u.aliases.contains(&name)
    };
    // Two words first: "leap year" is not "leap" then "year".
    for (name, len) in [(two, 2), (word(start).map(str::to_string), 1)] {
        let Some(name) = name else { continue };
        if let Some(u) = UNITS.iter().find(|u| named(u, &name)) {
            // One-letter names only for temperatures after "degrees" ("100 degrees f"):
            // a lone "c" or "g" is too easily something else.
            if name.len() == 1 && (u.scale.is_none() || !degrees) {
                continue;
            }
            return Some((u, start + len));
        }
    }
    // "degrees" alone is not a unit.
    None
}

/// Whether `amount` of `from` can be said exactly in `to`: the same dimension, and for
/// time a count that does not depend on the calendar ([`Span`]).
pub(crate) fn convertible(from: &Unit, to: &Unit, amount: f64) -> bool {
    if from.dimension != to.dimension {
        return false;
    }
    use Span::{Fixed, LeapYear, Month, Year, Years};
    match (from.span, to.span) {
        (Fixed, Fixed) | (LeapYear, LeapYear) => true,
        (Year | Years | Month, Year | Years | Month) => true,
        // A year in days: one at most (more hold leap days).
        (Year | LeapYear, Fixed) => amount <= 1.0,
        (Fixed, Year | LeapYear) => convert(amount, from, to) <= 1.0,
        _ => false,
    }
}

/// `amount` of `from` in `to` (which [`convertible`] allows).
pub(crate) fn convert(amount: f64, from: &Unit, to: &Unit) -> f64 {
    let (Some(from_scale), Some(to_scale)) = (from.scale, to.scale) else {
        return amount * from.size / to.size;
    };
    let kelvin = match from_scale {
        Scale::Celsius => amount + 273.15,
        Scale::Fahrenheit => (amount - 32.0) * 5.0 / 9.0 + 273.15,
        Scale::Kelvin => amount,
    };
    match to_scale {
        Scale::Celsius => kelvin - 273.15,
        Scale::Fahrenheit => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
        Scale::Kelvin => kelvin,
    }
}
