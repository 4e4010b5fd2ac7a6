//! The session page's panels as plain data: which of Chat, VS Code, Browser and
//! Terminal are shown and how wide each is ([`PanelLayout`], remembered per user),
//! the terminal's tabs ([`TerminalTabs`]), when to ask `/workspace` again
//! ([`next_workspace_check`]) and how long to wait before reconnecting a panel's
//! socket ([`reconnect_delay`]).
//!
//! No Leptos or DOM here: the components keep these values in signals, the browser's
//! `localStorage` keeps the layout's JSON.

use std::time::Duration;

use nightshift_protocol::gateway::{Panel, ServiceState, Workspace};
use serde::{Deserialize, Serialize};

/// One panel of the session page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelId {
    Chat,
    Vscode,
    Browser,
    Terminal,
}

impl PanelId {
    /// Every panel, in the order they stand on the page.
    pub const ALL: [PanelId; 4] = [
        PanelId::Chat,
        PanelId::Vscode,
        PanelId::Browser,
        PanelId::Terminal,
    ];

    /// The name tests and styles use (`data-panel`).
    pub fn as_str(self) -> &'static str {
        match self {
            PanelId::Chat => "chat",
            PanelId::Vscode => "vscode",
            PanelId::Browser => "browser",
            PanelId::Terminal => "terminal",
        }
    }

    /// What the panel's tab and toggle say.
    pub fn label(self) -> &'static str {
        match self {
            PanelId::Chat => "Chat",
            PanelId::Vscode => "VS Code",
            PanelId::Browser => "Browser",
            PanelId::Terminal => "Terminal",
        }
    }

    fn index(self) -> usize {
        match self {
            PanelId::Chat => 0,
            PanelId::Vscode => 1,
            PanelId::Browser => 2,
            PanelId::Terminal => 3,
        }
    }
}

/// The smallest share of the row a shown panel keeps when its neighbour is dragged
/// over it, so no panel can be squeezed to nothing.
const MIN_WEIGHT: f64 = 0.08;

/// Which panels a wide window shows side by side, their relative widths, and which
/// one a narrow window (tabs) shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelLayout {
    /// Shown on a wide window, in [`PanelId::ALL`] order; never empty.
    shown: Vec<PanelId>,
    /// Relative widths, indexed like [`PanelId::ALL`]; only the shown ones matter.
    weights: [f64; 4],
    /// The tab a narrow window shows.
    active: PanelId,
}

impl Default for PanelLayout {
    /// Everything side by side, the chat a little wider than the others.
    fn default() -> Self {
        PanelLayout {
            shown: PanelId::ALL.to_vec(),
            weights: [1.4, 1.0, 1.0, 1.0],
            active: PanelId::Chat,
        }
    }
}

impl PanelLayout {
    /// The `localStorage` key of `user_id`'s layout.
    pub fn storage_key(user_id: &str) -> String {
        format!("nightshift.panels.{user_id}")
    }

    /// A stored layout, or the default when there is none or it does not parse
    /// (an older shape, or edited by hand): a broken entry never breaks the page.
    pub fn from_stored(stored: Option<&str>) -> PanelLayout {
        stored
            .and_then(|text| serde_json::from_str::<PanelLayout>(text).ok())
            .map(PanelLayout::normalized)
            .unwrap_or_default()
    }

    /// The JSON kept in `localStorage`.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn normalized(mut self) -> PanelLayout {
        self.shown.sort_by_key(|panel| panel.index());
        self.shown.dedup();
        if self.shown.is_empty() {
            self.shown.push(PanelId::Chat);
        }
        for weight in &mut self.weights {
            if !weight.is_finite() || *weight < MIN_WEIGHT {
                *weight = 1.0;
            }
        }
        self
    }

    pub fn shown(&self) -> &[PanelId] {
        &self.shown
    }

    pub fn is_shown(&self, panel: PanelId) -> bool {
        self.shown.contains(&panel)
    }

    pub fn active(&self) -> PanelId {
        self.active
    }

    /// The panel's share of the wide row, as a CSS `flex-grow`.
    pub fn weight(&self, panel: PanelId) -> f64 {
        self.weights[panel.index()]
    }

    /// Shows or hides `panel` on a wide window; the last shown panel stays.
    pub fn toggle(&mut self, panel: PanelId) {
        if self.is_shown(panel) {
            if self.shown.len() > 1 {
                self.shown.retain(|shown| *shown != panel);
            }
        } else {
            self.shown.push(panel);
            self.shown.sort_by_key(|panel| panel.index());
        }
    }

    /// Makes `panel` the narrow window's tab (and shows it on a wide one).
    pub fn activate(&mut self, panel: PanelId) {
        self.active = panel;
        if !self.is_shown(panel) {
            self.toggle(panel);
        }
    }

    /// The shown panel right of `panel`, which the splitter after `panel` divides
    /// from it.
    pub fn next_shown(&self, panel: PanelId) -> Option<PanelId> {
        let at = self.shown.iter().position(|shown| *shown == panel)?;
        self.shown.get(at + 1).copied()
    }

    /// Moves the splitter between `left` and `right` by `fraction` of the two
    /// panels' combined width (positive: to the right). Each keeps at least
    /// [`MIN_WEIGHT`]; the pair's total stays the same.
    pub fn drag(&mut self, left: PanelId, right: PanelId, fraction: f64) {
        if !fraction.is_finite() {
            return;
        }
        let (l, r) = (left.index(), right.index());
        let total = self.weights[l] + self.weights[r];
        let new_left = (self.weights[l] + fraction * total).clamp(MIN_WEIGHT, total - MIN_WEIGHT);
        self.weights[l] = new_left;
        self.weights[r] = total - new_left;
    }
}

/// The terminal panel's tabs: shell names the gateway accepts (`t1`, `t2`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalTabs {
    tabs: Vec<String>,
    active: String,
    next: u32,
}

/// At most this many tabs, below the gateway's own cap (`--max-tabs 8`), so a new
/// tab is not refused after the user closed and reopened a few.
pub const MAX_TERMINAL_TABS: usize = 6;

impl Default for TerminalTabs {
    fn default() -> Self {
        TerminalTabs {
            tabs: vec!["t1".to_owned()],
            active: "t1".to_owned(),
            next: 2,
        }
    }
}

impl TerminalTabs {
    pub fn tabs(&self) -> &[String] {
        &self.tabs
    }

    pub fn active(&self) -> &str {
        &self.active
    }

    pub fn can_add(&self) -> bool {
        self.tabs.len() < MAX_TERMINAL_TABS
    }

    /// Opens a new tab and makes it the active one; `None` at the cap.
    pub fn add(&mut self) -> Option<String> {
        if !self.can_add() {
            return None;
        }
        let name = format!("t{}", self.next);
        self.next += 1;
        self.tabs.push(name.clone());
        self.active = name.clone();
        Some(name)
    }

    pub fn select(&mut self, name: &str) {
        if self.tabs.iter().any(|tab| tab == name) {
            self.active = name.to_owned();
        }
    }
}

/// How often `/workspace` is asked again while a panel is still starting, to show
/// it ready soon after it is.
const STARTING_POLL: Duration = Duration::from_secs(2);
/// The longest wait between two renewals, so a long grant still refreshes the
/// panels' states now and then.
const LONGEST_RENEWAL: Duration = Duration::from_secs(60);

/// How long to wait before asking `/workspace?renew=` again: halfway through the
/// grant's remaining life, so one failed renewal still leaves time for another
/// before the origin stops answering (sooner while a panel is starting; never
/// sooner than a second).
pub fn next_workspace_check(workspace: &Workspace, now_secs: u64) -> Duration {
    let remaining = workspace.expires_at_secs.saturating_sub(now_secs);
    let renewal = Duration::from_millis(remaining.saturating_mul(1000) / 2)
        .clamp(Duration::from_secs(1), LONGEST_RENEWAL);
    let starting = workspace
        .panels
        .iter()
        .any(|panel| panel.url.is_some() && panel.state == ServiceState::Starting);
    if starting {
        renewal.min(STARTING_POLL)
    } else {
        renewal
    }
}

/// The wait before the `attempt`-th reconnection (from 0) of a panel's socket:
/// doubling from a quarter second, at most eight seconds.
pub fn reconnect_delay(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1u64 << attempt.min(5))).min(Duration::from_secs(8))
}

/// What a panel's header says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelStatus {
    Starting,
    Ready,
    Reconnecting,
    Unavailable,
}

impl PanelStatus {
    /// The wire-like name tests read (`data-state`) and the header shows.
    pub fn as_str(self) -> &'static str {
        match self {
            PanelStatus::Starting => "starting",
            PanelStatus::Ready => "ready",
            PanelStatus::Reconnecting => "reconnecting",
            PanelStatus::Unavailable => "unavailable",
        }
    }
}

/// The state of a panel's own connection (the terminal's and the desktop's
/// sockets), as far as the app has got with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Not connected yet (or waiting for the panel to be ready).
    Connecting,
    Open,
    /// Lost, and trying again.
    Reconnecting,
}

/// A panel's status from the workspace answer (`None` while it is being asked)
/// and, for panels with a socket, that socket's state; with the reason to show.
pub fn panel_status(
    panel: Option<&Panel>,
    connection: Option<Connection>,
) -> (PanelStatus, Option<String>) {
    let Some(panel) = panel else {
        return (
            PanelStatus::Starting,
            Some("asking the server for the workspace".to_owned()),
        );
    };
    if panel.url.is_none() || panel.state == ServiceState::Unavailable {
        return (PanelStatus::Unavailable, panel.reason.clone());
    }
    match (panel.state, connection) {
        (_, Some(Connection::Reconnecting)) => (PanelStatus::Reconnecting, None),
        (ServiceState::Starting, connection) if connection != Some(Connection::Open) => {
            (PanelStatus::Starting, panel.reason.clone())
        }
        (_, Some(Connection::Connecting)) => (PanelStatus::Starting, Some("connecting".to_owned())),
        _ => (PanelStatus::Ready, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_protocol::gateway::PanelKind;

    #[test]
    fn a_panel_status_puts_the_server_first_then_the_socket() {
        let panel = |state, url: Option<&str>, reason: Option<&str>| Panel {
            kind: PanelKind::Terminal,
            url: url.map(str::to_owned),
            view_only: false,
            state,
            reason: reason.map(str::to_owned),
        };
        assert_eq!(panel_status(None, None).0, PanelStatus::Starting);
        let refused = panel(
            ServiceState::Unavailable,
            None,
            Some("viewers have no terminal"),
        );
        assert_eq!(
            panel_status(Some(&refused), Some(Connection::Open)),
            (
                PanelStatus::Unavailable,
                Some("viewers have no terminal".to_owned())
            )
        );
        let starting = panel(ServiceState::Starting, Some("ws://x/"), Some("booting"));
        assert_eq!(
            panel_status(Some(&starting), Some(Connection::Connecting)),
            (PanelStatus::Starting, Some("booting".to_owned()))
        );
        assert_eq!(
            panel_status(Some(&starting), Some(Connection::Open)).0,
            PanelStatus::Ready
        );
        let ready = panel(ServiceState::Ready, Some("ws://x/"), None);
        assert_eq!(panel_status(Some(&ready), None).0, PanelStatus::Ready);
        assert_eq!(
            panel_status(Some(&ready), Some(Connection::Connecting)).0,
            PanelStatus::Starting
        );
        assert_eq!(
            panel_status(Some(&ready), Some(Connection::Reconnecting)).0,
            PanelStatus::Reconnecting
        );
    }

    #[test]
    fn a_stored_layout_round_trips_and_a_broken_one_falls_back_to_the_default() {
        let mut layout = PanelLayout::default();
        layout.toggle(PanelId::Vscode);
        layout.drag(PanelId::Chat, PanelId::Browser, 0.1);
        let stored = layout.to_stored();
        assert_eq!(PanelLayout::from_stored(Some(&stored)), layout);
        assert_eq!(
            PanelLayout::from_stored(Some("{not json")),
            PanelLayout::default()
        );
        assert_eq!(PanelLayout::from_stored(None), PanelLayout::default());
        let empty = r#"{"shown":[],"weights":[0,-1,1,1],"active":"terminal"}"#;
        let repaired = PanelLayout::from_stored(Some(empty));
        assert_eq!(repaired.shown(), &[PanelId::Chat]);
        assert_eq!(repaired.weight(PanelId::Chat), 1.0);
        assert_eq!(PanelLayout::storage_key("u1"), "nightshift.panels.u1");
    }

    #[test]
    fn the_last_shown_panel_cannot_be_hidden_and_activating_shows_a_panel() {
        let mut layout = PanelLayout::default();
        for panel in [PanelId::Chat, PanelId::Vscode, PanelId::Browser] {
            layout.toggle(panel);
        }
        assert_eq!(layout.shown(), &[PanelId::Terminal]);
        layout.toggle(PanelId::Terminal);
        assert_eq!(layout.shown(), &[PanelId::Terminal]);
        layout.activate(PanelId::Chat);
        assert_eq!(layout.shown(), &[PanelId::Chat, PanelId::Terminal]);
        assert_eq!(layout.active(), PanelId::Chat);
        assert_eq!(layout.next_shown(PanelId::Chat), Some(PanelId::Terminal));
        assert_eq!(layout.next_shown(PanelId::Terminal), None);
    }

    #[test]
    fn dragging_a_splitter_moves_width_between_its_two_panels_only() {
        let mut layout = PanelLayout::default();
        let before = layout.weight(PanelId::Chat) + layout.weight(PanelId::Vscode);
        layout.drag(PanelId::Chat, PanelId::Vscode, 0.25);
        let after = layout.weight(PanelId::Chat) + layout.weight(PanelId::Vscode);
        assert!((before - after).abs() < 1e-9);
        assert!(layout.weight(PanelId::Chat) > 1.4);
        assert_eq!(layout.weight(PanelId::Browser), 1.0);
        // Dragged past the end, the neighbour keeps its minimum.
        layout.drag(PanelId::Chat, PanelId::Vscode, 5.0);
        assert!((layout.weight(PanelId::Vscode) - MIN_WEIGHT).abs() < 1e-9);
        layout.drag(PanelId::Chat, PanelId::Vscode, f64::NAN);
        assert!((layout.weight(PanelId::Vscode) - MIN_WEIGHT).abs() < 1e-9);
    }

    #[test]
    fn terminal_tabs_get_fresh_names_up_to_the_cap() {
        let mut tabs = TerminalTabs::default();
        assert_eq!(tabs.active(), "t1");
        assert_eq!(tabs.add().as_deref(), Some("t2"));
        assert_eq!(tabs.active(), "t2");
        tabs.select("t1");
        assert_eq!(tabs.active(), "t1");
        tabs.select("nope");
        assert_eq!(tabs.active(), "t1");
        while tabs.add().is_some() {}
        assert_eq!(tabs.tabs().len(), MAX_TERMINAL_TABS);
        assert!(!tabs.can_add());
    }

    fn workspace(expires_at_secs: u64, state: ServiceState) -> Workspace {
        Workspace {
            origin: "http://x.ws.localhost:8787".into(),
            role: "owner".into(),
            grant: "0123abcd".into(),
            expires_at_secs,
            origin_expires_at_secs: expires_at_secs + 3600,
            panels: vec![Panel {
                kind: PanelKind::Vscode,
                url: Some("http://x.ws.localhost:8787/vscode/".into()),
                view_only: false,
                state,
                reason: None,
            }],
        }
    }

    #[test]
    fn renewal_comes_halfway_through_the_grant_and_sooner_while_starting() {
        assert_eq!(
            next_workspace_check(&workspace(1300, ServiceState::Ready), 1000),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_workspace_check(&workspace(1010, ServiceState::Ready), 1000),
            Duration::from_secs(5)
        );
        assert_eq!(
            next_workspace_check(&workspace(1300, ServiceState::Starting), 1000),
            Duration::from_secs(2)
        );
        // Past expiry (a slow renewal): ask again at once, but not in a busy loop.
        assert_eq!(
            next_workspace_check(&workspace(900, ServiceState::Ready), 1000),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn reconnecting_backs_off_to_a_ceiling() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(250));
        assert_eq!(reconnect_delay(1), Duration::from_millis(500));
        assert_eq!(reconnect_delay(10), Duration::from_secs(8));
        assert_eq!(reconnect_delay(u32::MAX), Duration::from_secs(8));
    }
}
