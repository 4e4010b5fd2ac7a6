//! What the sidebar's bulk bar says: the question before deleting and the message
//! after an action, naming how many sessions were done and refused.

use nightshift_protocol::session_list::BulkAction;

/// What a bulk action did, for the bar's message.
pub fn bulk_message(action: BulkAction, done: usize, refused: usize) -> String {
    let verb = match action {
        BulkAction::Archive => "Archived",
        BulkAction::Delete => "Deleted",
    };
    match refused {
        0 => format!("{verb} {done}."),
        _ => format!("{verb} {done}; {refused} could not be (only their owner or an admin can)."),
    }
}

/// The question asked before deleting `count` sessions.
pub fn delete_question(count: usize) -> String {
    let sessions = if count == 1 { "session" } else { "sessions" };
    format!("Delete {count} {sessions}? Their sandboxes, prompts and events are removed for good.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delete_question_names_how_many() {
        assert!(delete_question(1).starts_with("Delete 1 session?"));
        assert!(delete_question(2).starts_with("Delete 2 sessions?"));
    }

    #[test]
    fn the_bar_says_what_was_refused() {
        assert_eq!(bulk_message(BulkAction::Archive, 2, 0), "Archived 2.");
        assert!(bulk_message(BulkAction::Delete, 1, 1).starts_with("Deleted 1; 1 could not"));
    }
}
