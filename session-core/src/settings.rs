//! A session's agent settings (agent, model, permission mode), which apply from the
//! next turn on, and what a settings request changes about them.
//!
//! [`settings_change`] decides; the caller saves the new settings and records the
//! [`AgentSettings::updated_event`] it returns. The title is not an agent setting
//! (see [`crate::title`]) and never makes a `session_updated` event.

use nightshift_protocol::api::{AgentKind, PermissionMode, UpdateSessionRequest};
use nightshift_protocol::events::EventBody;

/// The settings the next turn runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSettings {
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
}

impl AgentSettings {
    /// The `session_updated` event that announces these settings.
    pub fn updated_event(&self) -> EventBody {
        EventBody::SessionUpdated {
            agent: self.agent,
            model: self.model.clone(),
            permission_mode: self.permission_mode,
        }
    }
}

/// The settings after `request`, or `None` when it changes none of them. A field the
/// request leaves out keeps its value; a model can be set but not cleared.
pub fn settings_change(
    current: &AgentSettings,
    request: &UpdateSessionRequest,
) -> Option<AgentSettings> {
    let next = AgentSettings {
        agent: request.agent.unwrap_or(current.agent),
        model: request.model.clone().or_else(|| current.model.clone()),
        permission_mode: request.permission_mode.unwrap_or(current.permission_mode),
    };
    (next != *current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> AgentSettings {
        AgentSettings {
            agent: AgentKind::Builtin,
            model: Some("small".to_owned()),
            permission_mode: PermissionMode::Ask,
        }
    }

    #[test]
    fn an_empty_request_changes_nothing() {
        assert_eq!(
            settings_change(&current(), &UpdateSessionRequest::default()),
            None
        );
    }

    #[test]
    fn a_title_alone_is_no_settings_change() {
        let request = UpdateSessionRequest {
            title: Some("Renamed".to_owned()),
            ..UpdateSessionRequest::default()
        };
        assert_eq!(settings_change(&current(), &request), None);
    }

    #[test]
    fn asking_for_the_settings_already_in_force_changes_nothing() {
        let request = UpdateSessionRequest {
            agent: Some(AgentKind::Builtin),
            model: Some("small".to_owned()),
            permission_mode: Some(PermissionMode::Ask),
            title: None,
        };
        assert_eq!(settings_change(&current(), &request), None);
    }

    #[test]
    fn each_setting_changes_alone_and_the_others_stay() {
        let agent = UpdateSessionRequest {
            agent: Some(AgentKind::Opencode),
            ..UpdateSessionRequest::default()
        };
        assert_eq!(
            settings_change(&current(), &agent),
            Some(AgentSettings {
                agent: AgentKind::Opencode,
                ..current()
            })
        );
        let model = UpdateSessionRequest {
            model: Some("large".to_owned()),
            ..UpdateSessionRequest::default()
        };
        assert_eq!(
            settings_change(&current(), &model),
            Some(AgentSettings {
                model: Some("large".to_owned()),
                ..current()
            })
        );
        let permission_mode = UpdateSessionRequest {
            permission_mode: Some(PermissionMode::Allow),
            ..UpdateSessionRequest::default()
        };
        assert_eq!(
            settings_change(&current(), &permission_mode),
            Some(AgentSettings {
                permission_mode: PermissionMode::Allow,
                ..current()
            })
        );
    }

    #[test]
    fn a_model_is_set_on_a_session_without_one_but_never_cleared() {
        let without = AgentSettings {
            model: None,
            ..current()
        };
        let request = UpdateSessionRequest {
            model: Some("large".to_owned()),
            ..UpdateSessionRequest::default()
        };
        assert_eq!(
            settings_change(&without, &request).and_then(|s| s.model),
            Some("large".to_owned())
        );
        assert_eq!(
            settings_change(&current(), &UpdateSessionRequest::default()),
            None
        );
    }

    #[test]
    fn the_change_is_announced_with_every_setting() {
        let settings = AgentSettings {
            agent: AgentKind::Opencode,
            model: None,
            permission_mode: PermissionMode::Allow,
        };
        assert_eq!(
            settings.updated_event(),
            EventBody::SessionUpdated {
                agent: AgentKind::Opencode,
                model: None,
                permission_mode: PermissionMode::Allow,
            }
        );
    }
}
