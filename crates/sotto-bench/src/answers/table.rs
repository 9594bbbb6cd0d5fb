//! The answers bench's tables: per model and persona, by kind of question, and the
//! answers that were wrong or unfit.

use super::{Graded, Row};

/// Prints the bench's tables in Markdown, as docs/BENCHMARKS.md quotes them.
pub(super) fn print_table(rows: &[Row], threads: usize) {
    println!("\n### Spoken answers: right and fit to be heard ({threads} generation threads)\n");
    println!(
        "| model | persona | temp | right | voice-fit | stopped by the guard | answered exactly | \
         words p50 | longest spoken | first token p50 | first token p95 | first piece p50 | \
         first piece p95 | tokens/s p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {:.0} | {:.0} s | {:.0} ms \
             | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} |",
            r.model,
            short(&r.persona),
            r.temperature,
            r.right_share * 100.0,
            r.fit_share * 100.0,
            r.cut_share * 100.0,
            r.exact_share * 100.0,
            r.words_p50,
            r.spoken_s_max,
            r.first_token_ms_p50,
            r.first_token_ms_p95,
            r.first_piece_ms_p50,
            r.first_piece_ms_p95,
            r.tokens_per_s_p50
        );
    }
    println!("\n#### Right by kind of question\n");
    if let Some(first) = rows.first() {
        let kinds: Vec<&str> = first.by_kind.iter().map(|(k, _)| k.as_str()).collect();
        println!("| model | persona | {} |", kinds.join(" | "));
        println!("|---|---|{}", "---|".repeat(kinds.len()));
        for r in rows {
            let cells: Vec<String> = r
                .by_kind
                .iter()
                .map(|(_, s)| format!("{:.0} %", s * 100.0))
                .collect();
            println!(
                "| {} | {} | {} |",
                r.model,
                short(&r.persona),
                cells.join(" | ")
            );
        }
    }
    for r in rows {
        let wrong: Vec<&Graded> = r
            .answers
            .iter()
            .filter(|a| !a.right || a.unfit.is_some())
            .collect();
        if wrong.is_empty() {
            continue;
        }
        println!(
            "\n#### {} / {}: wrong or unfit\n",
            r.model,
            short(&r.persona)
        );
        for a in wrong {
            println!(
                "- `{}`{}{}: {}",
                a.id,
                if a.right { "" } else { " wrong" },
                a.unfit.map_or(String::new(), |u| format!(" {u:?}")),
                a.answer.replace('\n', " ")
            );
        }
    }
}

/// A persona's name for a table: a `text:` persona by its first words.
fn short(persona: &str) -> String {
    match persona.strip_prefix("text:") {
        Some(text) => {
            let words: Vec<&str> = text.split_whitespace().take(6).collect();
            format!("\"{} ...\"", words.join(" "))
        }
        None => persona.to_string(),
    }
}
