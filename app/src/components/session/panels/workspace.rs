//! The session's workspace answer (`GET /api/sessions/{id}/workspace`), kept fresh:
//! asked once when the page opens, then again with `?renew=<grant>` before the
//! grant expires (see `state::panels::next_workspace_check`), which keeps the same
//! panel origin alive so an open editor never reloads, and refreshes the panels'
//! states while they start. Only while the page is in sight: a hidden page lets the
//! grant run out, so an open but forgotten tab does not keep the session awake.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::gateway::{Panel, PanelKind, ServiceState, Workspace};
use send_wrapper::SendWrapper;
use wasm_bindgen_futures::JsFuture;

use crate::api;
use crate::state::panels::{next_workspace_check, reconnect_delay};

/// How often the page looks again whether it may ask (the session woke).
const WAIT_TO_ASK: Duration = Duration::from_millis(500);

/// After a failed call the next one waits at least this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct WorkspaceState {
    pub workspace: RwSignal<Option<Workspace>>,
    /// Why the last call failed, while the next has not succeeded.
    pub error: RwSignal<Option<String>>,
}

impl WorkspaceState {
    /// Starts asking for `session_id`'s workspace while `may_ask` holds (asking
    /// opens the panels, which wakes an asleep session: the page waits until the
    /// session is awake); stops when the calling component is cleaned up.
    pub fn start(session_id: String, may_ask: Signal<bool>) -> WorkspaceState {
        let state = WorkspaceState {
            workspace: RwSignal::new(None),
            error: RwSignal::new(None),
        };
        let alive = Rc::new(Cell::new(true));
        {
            let alive = SendWrapper::new(alive.clone());
            on_cleanup(move || alive.set(false));
        }
        spawn_local(async move {
            let mut failures = 0u32;
            while alive.get() {
                if !may_ask.get_untracked() || page_hidden() {
                    sleep(WAIT_TO_ASK).await;
                    continue;
                }
                let renew = state
                    .workspace
                    .try_with_untracked(|workspace| workspace.as_ref().map(|w| w.grant.clone()))
                    .flatten();
                let answer = api::get_workspace(&session_id, renew.as_deref()).await;
                if !alive.get() {
                    break;
                }
                let delay = match answer {
                    Ok(workspace) => {
                        failures = 0;
                        let delay = next_workspace_check(&workspace, now_secs());
                        state.workspace.set(Some(workspace));
                        state.error.set(None);
                        delay
                    }
                    // Gone, or never shared with us: asking again will not help.
                    Err(error) if matches!(error.status, 401 | 403 | 404) => {
                        state.error.set(Some(error.to_string()));
                        break;
                    }
                    Err(error) => {
                        failures += 1;
                        state.error.set(Some(error.to_string()));
                        reconnect_delay(failures).max(RETRY_AFTER_FAILURE)
                    }
                };
                sleep(delay).await;
            }
        });
        state
    }

    /// The panel of `kind` in the current answer (tracked).
    pub fn panel(self, kind: PanelKind) -> Option<Panel> {
        self.workspace.with(|workspace| {
            workspace
                .as_ref()
                .and_then(|workspace| workspace.panels.iter().find(|p| p.kind == kind).cloned())
        })
    }

    /// The URL of `kind` once the panel is ready, and from then on as long as the
    /// URL stays the same (a panel briefly "starting" again keeps its content). A
    /// memo: renewal answers the same URL, which changes nothing on the page.
    pub fn ready_url(self, kind: PanelKind) -> Memo<Option<String>> {
        Memo::new(move |previous: Option<&Option<String>>| {
            let panel = self.panel(kind)?;
            let url = panel.url?;
            let kept = previous.is_some_and(|previous| previous.as_deref() == Some(url.as_str()));
            (panel.state == ServiceState::Ready || kept).then_some(url)
        })
    }
}

/// Whether the page is out of sight (a background tab, a minimized window). A hidden
/// page does not renew the panels' grant, so a session left open in a forgotten tab
/// still goes to sleep once the grant runs out; the page asks again when it is seen.
fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|window| window.document())
        .is_some_and(|document| document.hidden())
}

/// Unix seconds by the browser's clock (the server's `expires_at_secs` is compared
/// with it; a few seconds of skew only moves renewal a little).
fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// Resolves after `duration`.
pub async fn sleep(duration: Duration) {
    let millis = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, millis);
        }
    });
    let _ = JsFuture::from(promise).await;
}
