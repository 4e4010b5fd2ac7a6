//! The panels' layout on the page: the bar that shows, hides or picks panels, the
//! splitters between shown panels, and the layout's persistence per user.

use leptos::ev::{KeyboardEvent, PointerEvent};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::auth::Auth;
use crate::state::panels::{PanelId, PanelLayout};

/// The narrow-window breakpoint; the same as the stylesheet's `max-width: 720px`.
const NARROW: &str = "(max-width: 720px)";
/// How far one arrow key press moves a splitter, as a share of its two panels.
const KEY_STEP: f64 = 0.05;

/// The layout in a signal, written back to `localStorage` under the signed-in
/// user's key whenever it changes.
#[derive(Debug, Clone, Copy)]
pub struct LayoutStore {
    pub layout: RwSignal<PanelLayout>,
}

impl LayoutStore {
    pub fn start() -> LayoutStore {
        let key = use_context::<Auth>()
            .and_then(|auth| untrack(|| auth.me()))
            .map(|me| PanelLayout::storage_key(&me.user.id))
            .unwrap_or_else(|| PanelLayout::storage_key("anonymous"));
        let storage = web_sys::window().and_then(|window| window.local_storage().ok().flatten());
        let stored = storage
            .as_ref()
            .and_then(|storage| storage.get_item(&key).ok().flatten());
        let layout = RwSignal::new(PanelLayout::from_stored(stored.as_deref()));
        Effect::new(move |_| {
            let text = layout.with(PanelLayout::to_stored);
            if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten())
            {
                let _ = storage.set_item(&key, &text);
            }
        });
        LayoutStore { layout }
    }
}

fn narrow_window() -> bool {
    web_sys::window()
        .and_then(|window| window.match_media(NARROW).ok().flatten())
        .is_some_and(|query| query.matches())
}

/// One button per panel: on a wide window it shows or hides the panel, on a narrow
/// one it is the panel's tab.
#[component]
pub fn PanelBar(layout: LayoutStore) -> impl IntoView {
    let buttons = PanelId::ALL
        .into_iter()
        .map(|panel| {
            let shown = move || layout.layout.with(|layout| layout.is_shown(panel));
            let active = move || layout.layout.with(|layout| layout.active() == panel);
            let click = move |_| {
                let narrow = narrow_window();
                layout.layout.update(|layout| {
                    if narrow {
                        layout.activate(panel);
                    } else {
                        layout.toggle(panel);
                    }
                });
            };
            view! {
                <button
                    class="panel-bar__button"
                    class:panel-bar__button--shown=shown
                    class:panel-bar__button--active=active
                    role="tab"
                    aria-pressed=move || shown().to_string()
                    aria-selected=move || active().to_string()
                    data-testid="panel-tab"
                    data-panel=panel.as_str()
                    on:click=click
                >
                    {panel.label()}
                </button>
            }
        })
        .collect_view();
    view! {
        <div class="panel-bar" role="tablist" aria-label="Panels" data-testid="panel-bar">
            {buttons}
        </div>
    }
}

/// The draggable line after `left`, dividing it from the next shown panel. Shown
/// only when there is such a panel (and not on a narrow window, by CSS).
#[component]
pub fn Splitter(
    layout: LayoutStore,
    left: PanelId,
    dragging: RwSignal<bool>,
    alone: Memo<Option<PanelId>>,
) -> impl IntoView {
    let right = move || {
        if alone.get().is_some() {
            return None;
        }
        layout.layout.with(|layout| {
            layout
                .is_shown(left)
                .then(|| layout.next_shown(left))
                .flatten()
        })
    };
    // The pointer's x and the two panels' combined width when the drag began, and
    // the share already applied, so each move applies only what is new.
    let drag = StoredValue::new(None::<(f64, f64, f64)>);
    let on_down = move |event: PointerEvent| {
        let Some(target) = event
            .current_target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        let width = |element: Option<web_sys::Element>| {
            element.map_or(0.0, |element| element.get_bounding_client_rect().width())
        };
        let Some(right_panel) = right() else { return };
        let parent = target.parent_element();
        let pane = |panel: PanelId| {
            parent.as_ref().and_then(|parent| {
                parent
                    .query_selector(&format!(":scope > [data-panel={}]", panel.as_str()))
                    .ok()
                    .flatten()
            })
        };
        let combined = width(pane(left)) + width(pane(right_panel));
        if combined <= 0.0 {
            return;
        }
        let _ = target.set_pointer_capture(event.pointer_id());
        drag.set_value(Some((f64::from(event.client_x()), combined, 0.0)));
        dragging.set(true);
        event.prevent_default();
    };
    let on_move = move |event: PointerEvent| {
        let (Some((start, combined, applied)), Some(right_panel)) = (drag.get_value(), right())
        else {
            return;
        };
        let share = (f64::from(event.client_x()) - start) / combined;
        layout
            .layout
            .update(|layout| layout.drag(left, right_panel, share - applied));
        drag.set_value(Some((start, combined, share)));
    };
    let on_up = move |_: PointerEvent| {
        drag.set_value(None);
        dragging.set(false);
    };
    let on_key = move |event: KeyboardEvent| {
        let step = match event.key().as_str() {
            "ArrowLeft" => -KEY_STEP,
            "ArrowRight" => KEY_STEP,
            _ => return,
        };
        if let Some(right_panel) = right() {
            layout
                .layout
                .update(|layout| layout.drag(left, right_panel, step));
            event.prevent_default();
        }
    };
    view! {
        <Show when=move || right().is_some()>
            <div
                class="splitter"
                role="separator"
                aria-orientation="vertical"
                aria-label=format!("Resize {}", left.label())
                tabindex="0"
                data-testid="splitter"
                data-panel=left.as_str()
                on:pointerdown=on_down
                on:pointermove=on_move
                on:pointerup=on_up
                on:pointercancel=on_up
                on:keydown=on_key
            ></div>
        </Show>
    }
}
