//! The sidebar as a drawer on phone-sized screens: whether it is open, the top bar
//! with the button that opens it, and the backdrop that closes it.
//!
//! Only the stylesheet knows the breakpoint: on a wide window the bar, the backdrop
//! and the drawer's close button are not displayed and the sidebar stands in its
//! column whatever [`Drawer`] says, so the desktop layout needs no state of its own.

use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// Whether the drawer is open; shared through context by the signed-in layout.
#[derive(Debug, Clone, Copy)]
pub struct Drawer {
    open: RwSignal<bool>,
}

impl Drawer {
    /// Provides a closed drawer that closes again whenever the page changes, so
    /// choosing a session (or settings, or a new session) from it shows that page.
    pub fn provide() -> Drawer {
        let drawer = Drawer {
            open: RwSignal::new(false),
        };
        provide_context(drawer);
        let location = use_location();
        Effect::new(move |_| {
            location.pathname.track();
            drawer.close();
        });
        drawer
    }

    pub fn is_open(self) -> bool {
        self.open.get()
    }

    pub fn open(self) {
        self.open.set(true);
    }

    pub fn close(self) {
        self.open.set(false);
    }
}

/// The bar above the page on a narrow screen: the menu button and the brand.
#[component]
pub fn MobileBar() -> impl IntoView {
    let drawer = expect_context::<Drawer>();
    view! {
        <div class="mobile-bar" data-testid="mobile-bar">
            <button
                class="button button--ghost mobile-bar__menu"
                data-testid="open-drawer"
                aria-label="Open the sessions menu"
                aria-expanded=move || drawer.is_open().to_string()
                on:click=move |_| drawer.open()
            >
                <span class="menu-icon" aria-hidden="true"></span>
            </button>
            <span class="brand-mark" aria-hidden="true"></span>
            <span class="brand-name">"Nightshift"</span>
        </div>
    }
}

/// The dimmed page behind the open drawer; a tap on it closes the drawer.
#[component]
pub fn DrawerBackdrop() -> impl IntoView {
    let drawer = expect_context::<Drawer>();
    view! {
        <div class="drawer-backdrop" data-testid="drawer-backdrop" on:click=move |_| drawer.close()></div>
    }
}
