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

/// One unit.
#[derive(Debug, PartialEq)]
pub(crate) struct Unit {
    /// Said of one ("minute").
    pub singular: &'static str,
    /// Said of several ("minutes").
    pub plural: &'static str,
    /// What it measures.
    pub dimension: Dimension,
    /// Its size in the dimension's base unit (second, metre, gram, litre); temperatures
    /// convert by formula instead.
    pub size: f64,
    /// Other words for it (abbreviations, American spellings), each one word or two.
    pub aliases: &'static [&'static str],
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
    }
}

use Dimension::{Length, Mass, Temperature, Time, Volume};

/// Every unit Sotto converts. Months are a twelfth of a year: they convert only to and
/// from years ([`convertible`]), where the count is exact.
pub(crate) static UNITS: &[Unit] = &[
    unit("second", "seconds", Time, 1.0, &["sec", "secs"]),
    unit("minute", "minutes", Time, 60.0, &["min", "mins"]),
    unit("hour", "hours", Time, 3_600.0, &["hr", "hrs"]),
    unit("day", "days", Time, DAY, &[]),
    unit("week", "weeks", Time, 7.0 * DAY, &[]),
    unit("fortnight", "fortnights", Time, 14.0 * DAY, &[]),
    unit("month", "months", Time, YEAR / 12.0, &[]),
    unit("year", "years", Time, YEAR, &[]),
    unit("leap year", "leap years", Time, 366.0 * DAY, &[]),
    unit("decade", "decades", Time, 10.0 * YEAR, &[]),
    unit("century", "centuries", Time, 100.0 * YEAR, &[]),
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
    unit(
        "degree Celsius",
        "degrees Celsius",
        Temperature,
        0.0,
        &["celsius", "centigrade", "c"],
    ),
    unit(
        "degree Fahrenheit",
        "degrees Fahrenheit",
        Temperature,
        0.0,
        &["fahrenheit", "f"],
    ),
    unit("kelvin", "kelvin", Temperature, 0.0, &["kelvins", "k"]),
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
    let names = |u: &'static Unit| {
        [u.singular, u.plural]
            .into_iter()
            .chain(u.aliases.iter().copied())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    // Two words first: "leap year" is not "leap" then "year".
    for (name, len) in [(two, 2), (word(start).map(str::to_string), 1)] {
        let Some(name) = name else { continue };
        if let Some(u) = UNITS.iter().find(|u| names(u).contains(&name)) {
            // One-letter names only for temperatures after "degrees" ("100 degrees f"):
            // a lone "c" or "g" is too easily something else.
            if u.dimension != Temperature && name.len() == 1 {
                continue;
            }
            if u.dimension == Temperature && name.len() == 1 && !degrees {
                continue;
            }
            return Some((u, start + len));
        }
    }
    // "degrees" alone is not a unit.
    None
}

/// Whether a quantity of `from` can be said in `to`: the same dimension, and a month only
/// with a month or a year (a month has no fixed number of days).
pub(crate) fn convertible(from: &Unit, to: &Unit) -> bool {
    let month = |u: &Unit| u.singular == "month";
    let year = |u: &Unit| u.singular == "year";
    from.dimension == to.dimension
        && (!(month(from) || month(to)) || ((month(from) || year(from)) && (month(to) || year(to))))
}

/// `amount` of `from` in `to` (which [`convertible`] allows).
pub(crate) fn convert(amount: f64, from: &Unit, to: &Unit) -> f64 {
    if from.dimension != Temperature {
        return amount * from.size / to.size;
    }
    let kelvin = match from.singular {
        "degree Celsius" => amount + 273.15,
        "degree Fahrenheit" => (amount - 32.0) * 5.0 / 9.0 + 273.15,
        _ => amount,
    };
    match to.singular {
        "degree Celsius" => kelvin - 273.15,
        "degree Fahrenheit" => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
        _ => kelvin,
    }
}
