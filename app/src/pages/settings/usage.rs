//! The signed-in user's own usage over the last 30 days: tokens, cost, sandbox time
//! and a bar per day.

use leptos::prelude::*;
use nightshift_protocol::usage::UsageScope;

use crate::api;
use crate::components::usage_chart::{UsageChart, UsageNumbers};
use crate::pages::Panel;

const DAY_MS: i64 = 86_400_000;

#[component]
pub fn UsagePanel() -> impl IntoView {
    let report = LocalResource::new(|| async {
        let to = (js_sys::Date::now() as i64).div_euclid(DAY_MS) * DAY_MS + DAY_MS;
        api::usage::report(&UsageScope::Me, to - 30 * DAY_MS, to).await
    });
    view! {
        <Panel title="Your usage (30 days)" test_id="my-usage">
            {move || match report.get() {
                None => view! { <p class="form-note">"Loading…"</p> }.into_any(),
                Some(Err(error)) => view! { <p class="form-error">{error.to_string()}</p> }.into_any(),
                Some(Ok(report)) => view! {
                    <UsageNumbers sums=report.totals/>
                    <UsageChart report=report/>
                }.into_any(),
            }}
        </Panel>
    }
}
