//! Spend shown: the sums of a report (tokens, cost, sandbox time) and its days as
//! an SVG bar chart drawn from `state::usage_chart`'s geometry (no chart library).

use leptos::prelude::*;
use nightshift_protocol::usage::{UsageReport, UsageSums, format_usd};

use crate::state::usage_chart::{Measure, bars, duration_text};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// The numbers of `sums`, each in its own cell (tests read them by test id).
#[component]
pub fn UsageNumbers(sums: UsageSums) -> impl IntoView {
    view! {
        <dl class="usage-numbers" data-testid="usage-numbers">
            <div><dt>"Cost"</dt><dd data-testid="usage-cost">{format_usd(sums.cost_micro_usd)}</dd></div>
            <div><dt>"Input tokens"</dt><dd data-testid="usage-input">{sums.input_tokens.to_string()}</dd></div>
            <div><dt>"Output tokens"</dt><dd data-testid="usage-output">{sums.output_tokens.to_string()}</dd></div>
            <div><dt>"Turns"</dt><dd data-testid="usage-turns">{sums.turns.to_string()}</dd></div>
            <div><dt>"Sandbox time"</dt><dd data-testid="usage-sandbox">{duration_text(sums.sandbox_ms)}</dd></div>
        </dl>
    }
}

/// The report's days as bars of cost (or of tokens when nothing was priced).
#[component]
pub fn UsageChart(report: UsageReport) -> impl IntoView {
    let measure = if report.totals.cost_micro_usd > 0 {
        Measure::Cost
    } else {
        Measure::Tokens
    };
    let bars = bars(
        &report.buckets,
        report.from,
        report.to,
        measure,
        WIDTH,
        HEIGHT,
    );
    let title = match measure {
        Measure::Cost => "Cost per day (UTC)",
        Measure::Tokens => "Tokens per day (UTC)",
    };
    view! {
        <figure class="usage-chart">
            <svg
                data-testid="usage-chart"
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=title
            >
                {bars.into_iter().map(|bar| view! {
                    <rect
                        class="usage-chart__bar"
                        data-value=bar.value.to_string()
                        x=format!("{:.2}", bar.x)
                        y=format!("{:.2}", bar.y)
                        width=format!("{:.2}", bar.width)
                        height=format!("{:.2}", bar.height)
                    >
                        <title>{bar.label}</title>
                    </rect>
                }).collect_view()}
            </svg>
            <figcaption>{title}</figcaption>
        </figure>
    }
}
