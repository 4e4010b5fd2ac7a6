//! `/admin/usage`: the team's spend over a chosen period (the last 7, 30 or 90
//! days): its totals, a bar per day, and a line per member, most expensive first.
//! Only admins get the page; the server refuses everyone else's calls anyway.

use leptos::prelude::*;
use nightshift_protocol::usage::{UsageScope, format_usd};

use crate::api;
use crate::auth::Auth;
use crate::components::usage_chart::{UsageChart, UsageNumbers};
use crate::format;
use crate::state::usage_chart::duration_text;

const DAY_MS: i64 = 86_400_000;

#[component]
pub fn AdminUsagePage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let days = RwSignal::new(30_i64);
    let report = LocalResource::new(move || {
        let days = days.get();
        async move {
            let to = (js_sys::Date::now() as i64).div_euclid(DAY_MS) * DAY_MS + DAY_MS;
            api::usage::report(&UsageScope::Team, to - days * DAY_MS, to).await
        }
    });
    view! {
        <Show
            when=move || auth.is_admin()
            fallback=|| view! {
                <super::AdminsOnly why="Only team admins can see the team's usage. Your own is in Settings."/>
            }
        >
            <section class="page" data-testid="admin-usage-page">
                <header class="page__header">
                    <h1>"Usage"</h1>
                    <select
                        class="input input--short"
                        data-testid="usage-period"
                        prop:value=move || days.get().to_string()
                        on:change=move |event| {
                            if let Ok(chosen) = event_target_value(&event).parse::<i64>() {
                                days.set(chosen.clamp(1, 366));
                            }
                        }
                    >
                        <option value="7">"Last 7 days"</option>
                        <option value="30">"Last 30 days"</option>
                        <option value="90">"Last 90 days"</option>
                    </select>
                </header>
                <div class="page__body">
                    {move || match report.get() {
                        None => view! { <p class="form-note">"Loading…"</p> }.into_any(),
                        Some(Err(error)) => view! { <p class="form-error">{error.to_string()}</p> }.into_any(),
                        Some(Ok(report)) => {
                            let users = report.users.clone();
                            view! {
                                <UsageNumbers sums=report.totals/>
                                <UsageChart report=report/>
                                <table class="table" data-testid="usage-users">
                                    <thead><tr>
                                        <th>"Member"</th><th>"Cost"</th><th>"Input"</th>
                                        <th>"Output"</th><th>"Turns"</th><th>"Sandbox"</th>
                                    </tr></thead>
                                    <tbody>
                                        {users.into_iter().map(|line| view! {
                                            <tr data-testid="usage-user" data-user=line.id.clone()>
                                                <td>{line.name.clone()}</td>
                                                <td data-testid="usage-user-cost">{format_usd(line.sums.cost_micro_usd)}</td>
                                                <td>{format::token_count(line.sums.input_tokens)}</td>
                                                <td>{format::token_count(line.sums.output_tokens)}</td>
                                                <td>{line.sums.turns.to_string()}</td>
                                                <td>{duration_text(line.sums.sandbox_ms)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }
                    }}
                </div>
            </section>
        </Show>
    }
}
