//! Prices per model and what a turn costs under them.
//!
//! The built-in table holds the common OpenAI and Anthropic models at their list
//! prices, as read from the providers' pricing pages on [`BUILTIN_PRICES_READ_ON`];
//! an admin's override (or a price for a custom endpoint's model) wins over it. A
//! model is matched exactly, else by the longest listed id that prefixes it followed
//! by `-` (so `claude-sonnet-4-5-20250929` is priced as `claude-sonnet-4-5`). A model
//! with no price costs nothing: token caps still hold for it.

use nightshift_protocol::agent::TokenUsage;
use nightshift_protocol::usage::ModelPrice;

/// When the built-in prices were read from OpenAI's and Anthropic's pricing pages.
pub const BUILTIN_PRICES_READ_ON: &str = "2025-10-01";

/// `(model, input, output, cache read, cache write)` in USD per million tokens.
/// OpenAI bills no cache writes (cached input is read at a discount); Anthropic
/// bills writes (5-minute cache) at 1.25x input and reads at 0.1x.
const BUILTIN: &[(&str, f64, f64, f64, f64)] = &[
    ("claude-opus-4-1", 15.0, 75.0, 1.5, 18.75),
    ("claude-opus-4", 15.0, 75.0, 1.5, 18.75),
    ("claude-sonnet-4-5", 3.0, 15.0, 0.3, 3.75),
    ("claude-sonnet-4", 3.0, 15.0, 0.3, 3.75),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.3, 3.75),
    ("claude-haiku-4-5", 1.0, 5.0, 0.1, 1.25),
    ("claude-3-5-haiku", 0.8, 4.0, 0.08, 1.0),
    ("gpt-5", 1.25, 10.0, 0.125, 1.25),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    ("gpt-5-nano", 0.05, 0.4, 0.005, 0.05),
    ("gpt-4.1", 2.0, 8.0, 0.5, 2.0),
    ("gpt-4.1-mini", 0.4, 1.6, 0.1, 0.4),
    ("gpt-4.1-nano", 0.1, 0.4, 0.025, 0.1),
    ("gpt-4o", 2.5, 10.0, 1.25, 2.5),
    ("gpt-4o-mini", 0.15, 0.6, 0.075, 0.15),
    ("o3", 2.0, 8.0, 0.5, 2.0),
    ("o4-mini", 1.1, 4.4, 0.275, 1.1),
];

/// The built-in prices as wire values (for the admin page).
pub fn builtin_prices() -> Vec<ModelPrice> {
    BUILTIN
        .iter()
        .map(|&(model, input, output, read, write)| ModelPrice {
            model: model.to_owned(),
            input_usd_per_mtok: input,
            output_usd_per_mtok: output,
            cache_read_usd_per_mtok: Some(read),
            cache_write_usd_per_mtok: Some(write),
        })
        .collect()
}

/// Whether an admin's price is one to store: a model id and finite, non-negative
/// prices no higher than 10,000 USD per million tokens.
pub fn valid_price(price: &ModelPrice) -> bool {
    let ok = |usd: f64| usd.is_finite() && (0.0..=10_000.0).contains(&usd);
    let model = price.model.trim();
    !model.is_empty()
        && model.len() <= 200
        && model == price.model
        && ok(price.input_usd_per_mtok)
        && ok(price.output_usd_per_mtok)
        && price.cache_read_usd_per_mtok.is_none_or(ok)
        && price.cache_write_usd_per_mtok.is_none_or(ok)
}

/// The price of `model`: the overrides first, then the built-in table.
pub fn price_for(model: &str, overrides: &[ModelPrice]) -> Option<ModelPrice> {
    if let Some(price) = best_match(model, overrides.iter().map(|p| (p.model.as_str(), p))) {
        return Some(price.clone());
    }
    let builtin = builtin_prices();
    best_match(model, builtin.iter().map(|p| (p.model.as_str(), p))).cloned()
}

fn best_match<'a, T>(model: &str, prices: impl Iterator<Item = (&'a str, T)>) -> Option<T> {
    let mut best: Option<(usize, T)> = None;
    for (id, price) in prices {
        if id == model {
            return Some(price);
        }
        let prefixes = model
            .strip_prefix(id)
            .is_some_and(|rest| rest.starts_with('-'));
        if prefixes && best.as_ref().is_none_or(|(len, _)| id.len() > *len) {
            best = Some((id.len(), price));
        }
    }
    best.map(|(_, price)| price)
}

/// What `usage` costs at `price`, in micro-USD (rounded to the nearest). Cache reads
/// and writes are counted in `input_tokens` and priced apart from the rest.
pub fn cost_micro_usd(usage: &TokenUsage, price: &ModelPrice) -> u64 {
    let cached = usage
        .cache_read_tokens
        .saturating_add(usage.cache_write_tokens);
    let plain_input = usage.input_tokens.saturating_sub(cached);
    // USD per million tokens is micro-USD per token.
    let micro = plain_input as f64 * price.input_usd_per_mtok
        + usage.output_tokens as f64 * price.output_usd_per_mtok
        + usage.cache_read_tokens as f64
            * price
                .cache_read_usd_per_mtok
                .unwrap_or(price.input_usd_per_mtok)
        + usage.cache_write_tokens as f64
            * price
                .cache_write_usd_per_mtok
                .unwrap_or(price.input_usd_per_mtok);
    micro.round().max(0.0) as u64
}

/// What `usage` of `model` costs under the overrides and the built-in table
/// (0 for a model with no price).
pub fn turn_cost(model: &str, usage: &TokenUsage, overrides: &[ModelPrice]) -> u64 {
    price_for(model, overrides).map_or(0, |price| cost_micro_usd(usage, &price))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            ..TokenUsage::default()
        }
    }

    fn price(model: &str, input: f64, output: f64) -> ModelPrice {
        ModelPrice {
            model: model.to_owned(),
            input_usd_per_mtok: input,
            output_usd_per_mtok: output,
            cache_read_usd_per_mtok: None,
            cache_write_usd_per_mtok: None,
        }
    }

    #[test]
    fn a_million_tokens_cost_the_listed_price() {
        // Sonnet: $3 in, $15 out per million.
        assert_eq!(
            turn_cost("claude-sonnet-4-5", &usage(1_000_000, 0), &[]),
            3_000_000
        );
        assert_eq!(
            turn_cost("claude-sonnet-4-5", &usage(0, 1_000_000), &[]),
            15_000_000
        );
        assert_eq!(turn_cost("gpt-4o-mini", &usage(1000, 500), &[]), 450);
    }

    #[test]
    fn dated_ids_take_the_longest_listed_prefix() {
        assert_eq!(
            price_for("claude-sonnet-4-5-20250929", &[]).unwrap().model,
            "claude-sonnet-4-5"
        );
        assert_eq!(
            price_for("gpt-4.1-mini-2025-04-14", &[]).unwrap().model,
            "gpt-4.1-mini"
        );
        // A prefix must end at a dash: "gpt-5x" is not "gpt-5".
        assert_eq!(price_for("gpt-5x", &[]), None);
    }

    #[test]
    fn an_override_wins_and_prices_a_custom_model() {
        let overrides = [price("gpt-4o", 1.0, 1.0), price("local-llama", 0.5, 0.5)];
        assert_eq!(turn_cost("gpt-4o", &usage(1000, 1000), &overrides), 2000);
        assert_eq!(
            turn_cost("local-llama", &usage(2000, 2000), &overrides),
            2000
        );
    }

    #[test]
    fn an_unknown_model_costs_nothing() {
        assert_eq!(turn_cost("my-model", &usage(10_000, 10_000), &[]), 0);
    }

    #[test]
    fn cache_reads_and_writes_are_priced_apart_from_plain_input() {
        let sonnet = price_for("claude-sonnet-4-5", &[]).unwrap();
        let cached = TokenUsage {
            input_tokens: 1_000_000,
            output_tokens: 0,
            cache_read_tokens: 600_000,
            cache_write_tokens: 200_000,
        };
        // 200k plain at $3, 600k read at $0.30, 200k written at $3.75.
        assert_eq!(
            cost_micro_usd(&cached, &sonnet),
            600_000 + 180_000 + 750_000
        );
        // Without cache prices, cached input costs the input price.
        assert_eq!(cost_micro_usd(&cached, &price("x", 1.0, 0.0)), 1_000_000);
    }

    #[test]
    fn bad_prices_are_refused() {
        assert!(valid_price(&price("m", 1.0, 2.0)));
        assert!(!valid_price(&price("", 1.0, 2.0)));
        assert!(!valid_price(&price(" m", 1.0, 2.0)));
        assert!(!valid_price(&price("m", -1.0, 2.0)));
        assert!(!valid_price(&price("m", f64::NAN, 2.0)));
        assert!(!valid_price(&price("m", 1.0, 20_000.0)));
    }

    #[test]
    fn every_builtin_price_is_valid_and_listed_once() {
        let prices = builtin_prices();
        for price in &prices {
            assert!(valid_price(price), "{price:?}");
            assert_eq!(prices.iter().filter(|p| p.model == price.model).count(), 1);
        }
    }
}
