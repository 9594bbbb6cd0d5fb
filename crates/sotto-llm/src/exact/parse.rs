//! What a question asks when it is arithmetic or a unit conversion, and the sentence that
//! answers it. A question is taken only when every one of its words is understood;
//! anything else is left to the language model.

use chrono::{DateTime, FixedOffset};

use super::units::{convert, convertible, unit_at, Unit};
use super::words::{normalise, number, say};

/// What the previous question leaves for the next one ("half of that", "and in a day?").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Context {
    /// The previous answer's number.
    value: Option<f64>,
    /// The unit the previous question asked for ("how many minutes ...").
    asked_in: Option<&'static Unit>,
    /// The quantity the previous question converted ("... in three hours").
    asked_of: Option<(Quantity, &'static Unit)>,
}

/// An answer worked out exactly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// The sentence to say.
    pub text: String,
    /// What it leaves for a follow-up.
    pub context: Context,
}

/// The answer to `question` when it is arithmetic, a conversion (with `before`, what the
/// previous question left) or the time or date (at `now`); `None` for anything else.
pub(crate) fn reply(question: &str, before: Context, now: &DateTime<FixedOffset>) -> Option<Reply> {
    let words = normalise(question);
    // A sum or a conversion is said in a few words; a long question is for the model.
    if words.len() > MAX_WORDS {
        return None;
    }
    let start = skip_fillers(&words);
    if let Some(text) = super::clock::reply(&words, start, now) {
        return Some(Reply {
            text,
            context: Context::default(),
        });
    }
    let mut p = Parser {
        w: &words,
        i: start,
        before,
        joined: words[..start].iter().any(|w| w == "and"),
        led: false,
    };
    if let Some(reply) = p.units() {
        return Some(reply);
    }
    p.i = start;
    p.arithmetic()
}

/// Questions longer than this are never taken.
const MAX_WORDS: usize = 40;

/// Results are said only below this size (larger ones are the model's to talk about).
const MAX_VALUE: f64 = 1e15;

/// Words said before a question that do not change it.
fn skip_fillers(words: &[String]) -> usize {
    const PHRASES: &[&[&str]] = &[
        &["can", "you", "tell", "me"],
        &["could", "you", "tell", "me"],
        &["tell", "me"],
        &["do", "you", "know"],
        &["i", "want", "to", "know"],
        &["can", "you"],
        &["could", "you"],
        &["hey"],
        &["sotto"],
        &["ok"],
        &["okay"],
        &["so"],
        &["um"],
        &["uh"],
        &["well"],
        &["please"],
        &["and"],
        &["now"],
        &["then"],
        &["alright"],
    ];
    let mut i = 0;
    'again: loop {
        for phrase in PHRASES {
            if starts_with(words, i, phrase) {
                i += phrase.len();
                continue 'again;
            }
        }
        return i;
    }
}

fn starts_with(words: &[String], at: usize, phrase: &[&str]) -> bool {
    words
        .get(at..at + phrase.len())
        .is_some_and(|w| w.iter().zip(phrase).all(|(a, b)| a == b))
}

/// An arithmetic expression as it was said.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    /// The previous answer, as "that" or "it" named it.
    Prev(f64),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    /// `p` percent of `of`.
    Percent(Box<Expr>, Box<Expr>),
    Sqrt(Box<Expr>),
    Square(Box<Expr>),
    Cube(Box<Expr>),
    Half(Box<Expr>),
    Double(Box<Expr>),
    Triple(Box<Expr>),
}

/// Why an expression has no number.
enum Undefined {
    DivideByZero,
    RootOfNegative,
}

impl Expr {
    fn value(&self) -> Result<f64, Undefined> {
        use Expr::*;
        Ok(match self {
            Num(n) | Prev(n) => *n,
            Add(a, b) => a.value()? + b.value()?,
            Sub(a, b) => a.value()? - b.value()?,
            Mul(a, b) => a.value()? * b.value()?,
            Div(a, b) => {
                let d = b.value()?;
                if d == 0.0 {
                    return Err(Undefined::DivideByZero);
                }
                a.value()? / d
            }
            Percent(p, of) => p.value()? / 100.0 * of.value()?,
            Sqrt(x) => {
                let v = x.value()?;
                if v < 0.0 {
                    return Err(Undefined::RootOfNegative);
                }
                v.sqrt()
            }
            Square(x) => x.value()?.powi(2),
            Cube(x) => x.value()?.powi(3),
            Half(x) => x.value()? / 2.0,
            Double(x) => x.value()? * 2.0,
            Triple(x) => x.value()? * 3.0,
        })
    }

    /// The expression in words, the way the answer repeats it.
    fn said(&self) -> String {
        use Expr::*;
        match self {
            Num(n) | Prev(n) => say(*n).0,
            Add(a, b) => format!("{} plus {}", a.said(), b.said()),
            Sub(a, b) => format!("{} minus {}", a.said(), b.said()),
            Mul(a, b) => format!("{} times {}", a.said(), b.said()),
            Div(a, b) => format!("{} divided by {}", a.said(), b.said()),
            Percent(p, of) => format!("{} percent of {}", p.said(), of.said()),
            Sqrt(x) => format!("the square root of {}", x.said()),
            Square(x) => format!("{} squared", x.said()),
            Cube(x) => format!("{} cubed", x.said()),
            Half(x) => format!("half of {}", x.said()),
            Double(x) => format!("twice {}", x.said()),
            Triple(x) => format!("three times {}", x.said()),
        }
    }
}

/// Makes an operation of two expressions (`Expr::Add`, ...).
type Binary = fn(Box<Expr>, Box<Expr>) -> Expr;

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// A quantity of a unit as the question said it: "an hour", "half a day", "3 miles".
#[derive(Debug, Clone, Copy, PartialEq)]
struct Quantity {
    amount: f64,
    /// The article when one stood for the number ("a", "an", "half a").
    article: Option<&'static str>,
}

impl Quantity {
    fn said(&self, unit: &Unit) -> String {
        match self.article {
            Some(article) => format!("{article} {}", unit.singular),
            None => amount_of(self.amount, unit),
        }
    }
}

/// "1 mile", "3 hours", "about 8.05 kilometres".
fn amount_of(amount: f64, unit: &Unit) -> String {
    let said = say(amount);
    let name = if said.0 == "1" || said.0 == "minus 1" {
        unit.singular
    } else {
        unit.plural
    };
    format!("{} {name}", with_about(said))
}

/// A number [`say`] made, with "about" when it was rounded: "12.5", "about 3.33".
fn with_about((number, approximate): (String, bool)) -> String {
    if approximate {
        format!("about {number}")
    } else {
        number
    }
}

/// `text` as a sentence: a capital first and a full stop.
fn sentence(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

/// A recursive-descent reader of one question's words.
struct Parser<'a> {
    /// The question's words ([`normalise`]d).
    w: &'a [String],
    /// The next word to read.
    i: usize,
    /// What the previous question left.
    before: Context,
    /// The question began with "and" ("And in a day?"): it goes on from the last one.
    joined: bool,
    /// "What is", "calculate", ... was read: an expression follows, not an instruction
    /// about the previous answer ("What is minus 5" is not "the last answer minus 5").
    led: bool,
}

impl Parser<'_> {
    fn eat(&mut self, word: &str) -> bool {
        self.eat_all(&[word])
    }

    /// Takes all of `phrase` or nothing.
    fn eat_all(&mut self, phrase: &[&str]) -> bool {
        let found = starts_with(self.w, self.i, phrase);
        if found {
            self.i += phrase.len();
        }
        found
    }

    /// The end of the question, allowing a polite word after it.
    fn done(&mut self) -> bool {
        while self.eat("please") || self.eat("now") || self.eat("again") {}
        self.i == self.w.len()
    }

    fn number(&mut self) -> Option<f64> {
        let (n, next) = number(self.w, self.i)?;
        self.i = next;
        Some(n)
    }

    /// A number, negative after "minus" ("minus 5" where a number or quantity starts).
    fn signed_number(&mut self) -> Option<f64> {
        let negative = self.eat("minus");
        let n = self.number()?;
        Some(if negative { -n } else { n })
    }

    /// "that", "it": the previous answer's number, when there is one.
    fn pronoun(&mut self) -> Option<f64> {
        let value = self.before.value?;
        let found = self.eat("that")
            || self.eat("it")
            || self.eat("this")
            || self.eat_all(&["the", "result"])
            || self.eat_all(&["the", "answer"]);
        found.then_some(value)
    }

    // ------------------------------------------------------------ conversions

    fn quantity(&mut self) -> Option<Quantity> {
        let at = self.i;
        // "a hundred" is a number, not an article.
        let article_here = number(self.w, self.i).is_none();
        for (phrase, amount, article) in [
            (&["half", "an"][..], 0.5, "half an"),
            (&["half", "a"][..], 0.5, "half a"),
            (&["an"][..], 1.0, "an"),
            (&["a"][..], 1.0, "a"),
        ] {
            if article_here && self.eat_all(phrase) {
                return Some(Quantity {
                    amount,
                    article: Some(article),
                });
            }
        }
        self.i = at;
        let mut amount = self.signed_number()?;
        if self.eat_all(&["and", "a", "half"]) {
            amount += 0.5;
        }
        Some(Quantity {
            amount,
            article: None,
        })
    }

    fn unit(&mut self) -> Option<&'static Unit> {
        let (unit, next) = unit_at(self.w, self.i)?;
        self.i = next;
        Some(unit)
    }

    fn units(&mut self) -> Option<Reply> {
        let start = self.i;
        if let Some(reply) = self.how_many() {
            return Some(reply);
        }
        self.i = start;
        if let Some(reply) = self.conversion() {
            return Some(reply);
        }
        self.i = start;
        self.units_follow_up()
    }

    /// "How many seconds are in an hour?", "How many feet is a mile?"
    fn how_many(&mut self) -> Option<Reply> {
        if !self.eat_all(&["how", "many"]) {
            return None;
        }
        let target = self.unit()?;
        let _ = self.eat("are") || self.eat("is") || self.eat("make") || self.eat("makes");
        // "How many minutes is that?": the quantity the previous question asked about.
        if let Some((quantity, from)) = self.before.asked_of {
            let at = self.i;
            if (self.eat("that") || self.eat("it")) && self.done() {
                return answer_how_many(&quantity, from, target);
            }
            self.i = at;
        }
        let _ = self.eat("there");
        let _ = self.eat("in");
        let quantity = self.quantity()?;
        let from = self.unit()?;
        self.done().then_some(())?;
        answer_how_many(&quantity, from, target)
    }

    /// "What is zero degrees Celsius in Fahrenheit?", "Convert 5 miles to kilometres."
    fn conversion(&mut self) -> Option<Reply> {
        let _ = self.eat_all(&["what", "is"])
            || self.eat_all(&["how", "much", "is"])
            || self.eat("convert");
        let quantity = self.quantity()?;
        let from = self.unit()?;
        let _ = self.eat("in") || self.eat("to") || self.eat("into");
        let target = self.unit()?;
        self.done().then_some(())?;
        answer_how_many(&quantity, from, target)
    }

    /// After a conversion: "And in a day?" (the same unit asked of another quantity) or
    /// "And in seconds?" (the same quantity in another unit).
    fn units_follow_up(&mut self) -> Option<Reply> {
        // Said as a follow-up ("And in a day?", "What about a week?"): a lone "One
        // second." is someone pausing, not a question.
        let about = self.eat_all(&["what", "about"]) || self.eat_all(&["how", "about"]);
        let inside = self.eat("in");
        if !(about || inside || self.joined) {
            return None;
        }
        let start = self.i;
        if let Some(target) = self.before.asked_in {
            if let Some(quantity) = self.quantity() {
                if let Some(from) = self.unit() {
                    if self.done() {
                        return answer_how_many(&quantity, from, target);
                    }
                }
            }
        }
        self.i = start;
        let (quantity, from) = self.before.asked_of?;
        let target = self.unit()?;
        self.done().then_some(())?;
        answer_how_many(&quantity, from, target)
    }

    // ------------------------------------------------------------ arithmetic

    fn arithmetic(&mut self) -> Option<Reply> {
        self.led = self.eat_all(&["what", "is"])
            || self.eat_all(&["how", "much", "is"])
            || self.eat("calculate")
            || self.eat("compute")
            || self.eat_all(&["work", "out"]);
        let body = self.i;
        let expr = match self.command() {
            Some(e) if self.done() => e,
            _ => {
                self.i = body;
                let e = self.expr()?;
                self.done().then_some(())?;
                e
            }
        };
        // A number alone is not a sum ("What is 5?"); "what is that" is not one either.
        if matches!(expr, Expr::Num(_) | Expr::Prev(_)) {
            return None;
        }
        Some(match expr.value() {
            Ok(value) if value.is_finite() && value.abs() < MAX_VALUE => Reply {
                text: sentence(format!("{} is {}", expr.said(), with_about(say(value)))),
                context: Context {
                    value: Some(value),
                    ..Context::default()
                },
            },
            Ok(_) => return None,
            Err(Undefined::DivideByZero) => Reply {
                text: "Dividing by zero has no answer.".into(),
                context: Context::default(),
            },
            Err(Undefined::RootOfNegative) => Reply {
                text: "A negative number has no real square root.".into(),
                context: Context::default(),
            },
        })
    }

    /// An instruction about a number: "Multiply that by 2", "Add 50 to that", "Divide it
    /// by 5", "Double it", "Times 3" (the previous answer when none is said).
    fn command(&mut self) -> Option<Expr> {
        let previous = |p: &Self| p.before.value.map(Expr::Prev);
        // Both sides of "multiply A by B" are single terms: "multiply 2 plus 3 by 4" has
        // no way to be said back unambiguously, so it is the model's.
        for (verb, make) in [("multiply", Expr::Mul as Binary), ("divide", Expr::Div)] {
            if self.eat(verb) {
                let a = if self.w.get(self.i).is_some_and(|w| w == "by") {
                    previous(self)?
                } else {
                    self.term()?
                };
                self.eat("by").then_some(())?;
                return Some(make(boxed(a), boxed(self.term()?)));
            }
        }
        if self.eat("add") {
            let a = self.term()?;
            if self.eat("to") {
                return Some(Expr::Add(boxed(self.expr()?), boxed(a)));
            }
            if self.eat("and") {
                return Some(Expr::Add(boxed(a), boxed(self.expr()?)));
            }
            // "Add 5" adds to the previous answer; "add that" adds nothing said.
            if matches!(a, Expr::Prev(_)) {
                return None;
            }
            return Some(Expr::Add(boxed(previous(self)?), boxed(a)));
        }
        if self.eat("subtract") || self.eat_all(&["take", "away"]) {
            let a = self.term()?;
            if self.eat("from") {
                return Some(Expr::Sub(boxed(self.expr()?), boxed(a)));
            }
            if matches!(a, Expr::Prev(_)) {
                return None;
            }
            return Some(Expr::Sub(boxed(previous(self)?), boxed(a)));
        }
        if self.eat("take") {
            let a = self.term()?;
            let _ = self.eat("away");
            self.eat("from").then_some(())?;
            return Some(Expr::Sub(boxed(self.expr()?), boxed(a)));
        }
        for (verb, make) in [
            ("double", Expr::Double as fn(Box<Expr>) -> Expr),
            ("triple", Expr::Triple),
            ("halve", Expr::Half),
            ("half", Expr::Half),
            ("square", Expr::Square),
        ] {
            if self.w.get(self.i + 1).is_some_and(|w| w == "root") {
                break; // "square root of": an expression, not an instruction.
            }
            if self.eat(verb) {
                let _ = self.eat("of");
                let x = match self.factor() {
                    Some(x) => x,
                    None => previous(self)?,
                };
                return Some(make(boxed(x)));
            }
        }
        // An operator first: the previous answer is its left side ("Times 3"); not
        // after "what is" ("What is minus 5 ..." is a number of its own).
        if self.led {
            return None;
        }
        let left = previous(self)?;
        let at = self.i;
        if let Some(op) = self.multiplicative().or_else(|| self.additive()) {
            let right = self.term()?;
            return Some(op(boxed(left), boxed(right)));
        }
        self.i = at;
        None
    }

    fn expr(&mut self) -> Option<Expr> {
        let mut left = self.term()?;
        while let Some(op) = self.additive() {
            left = op(boxed(left), boxed(self.term()?));
        }
        Some(left)
    }

    fn additive(&mut self) -> Option<Binary> {
        if self.eat("plus") {
            Some(Expr::Add)
        } else if self.eat("minus") || self.eat("less") {
            Some(Expr::Sub)
        } else {
            None
        }
    }

    fn multiplicative(&mut self) -> Option<Binary> {
        if self.eat("times") || self.eat("x") || self.eat_all(&["multiplied", "by"]) {
            Some(Expr::Mul)
        } else if self.eat_all(&["divided", "by"]) || self.eat("over") {
            Some(Expr::Div)
        } else {
            None
        }
    }

    fn term(&mut self) -> Option<Expr> {
        let mut left = self.factor()?;
        while let Some(op) = self.multiplicative() {
            left = op(boxed(left), boxed(self.factor()?));
        }
        Some(left)
    }

    fn factor(&mut self) -> Option<Expr> {
        let x = self.atom()?;
        if self.eat("squared") {
            return Some(Expr::Square(boxed(x)));
        }
        if self.eat("cubed") {
            return Some(Expr::Cube(boxed(x)));
        }
        Some(x)
    }

    fn atom(&mut self) -> Option<Expr> {
        if self.eat_all(&["the", "square", "root", "of"]) || self.eat_all(&["square", "root", "of"])
        {
            return Some(Expr::Sqrt(boxed(self.factor()?)));
        }
        if self.eat_all(&["half", "of"]) || self.eat("half") {
            return Some(Expr::Half(boxed(self.factor()?)));
        }
        if self.eat("double") || self.eat("twice") {
            return Some(Expr::Double(boxed(self.factor()?)));
        }
        if let Some(v) = self.pronoun() {
            return Some(Expr::Prev(v));
        }
        let n = self.signed_number()?;
        if self.eat("percent") {
            self.eat("of").then_some(())?;
            return Some(Expr::Percent(boxed(Expr::Num(n)), boxed(self.factor()?)));
        }
        Some(Expr::Num(n))
    }
}

/// "An hour is 3600 seconds.", "0 degrees Celsius is 32 degrees Fahrenheit."
fn answer_how_many(
    quantity: &Quantity,
    from: &'static Unit,
    target: &'static Unit,
) -> Option<Reply> {
    convertible(from, target, quantity.amount).then_some(())?;
    // "How many degrees Fahrenheit in a degree Celsius?" asks about a step of the scale,
    // not a temperature: the model's to explain.
    if from.scale.is_some() && quantity.article.is_some() {
        return None;
    }
    let result = convert(quantity.amount, from, target);
    if !result.is_finite() || result.abs() >= MAX_VALUE {
        return None;
    }
    Some(Reply {
        text: sentence(format!(
            "{} is {}",
            quantity.said(from),
            amount_of(result, target)
        )),
        context: Context {
            value: Some(result),
            asked_in: Some(target),
            asked_of: Some((*quantity, from)),
        },
    })
}
