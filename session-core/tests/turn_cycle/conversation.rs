//! The session's copy of the agent's conversation over real SQLite: written from an
//! index on (a re-run turn replaces its first attempt), read back in pages after the
//! store is reopened, refused without a write when it would leave a gap or is too
//! large, and gone when the session is deleted.

use nightshift_protocol::conversation::{
    ConversationEntry, ConversationItem, MAX_CONVERSATION_ENTRY_BYTES,
    MAX_CONVERSATION_WRITE_ENTRIES,
};
use nightshift_session::store::ConversationRefusal;

use crate::harness::Session;

fn user(turn: &str, text: &str) -> ConversationEntry {
    ConversationEntry {
        message_id: turn.into(),
        item: ConversationItem::User { text: text.into() },
    }
}

fn reply(turn: &str, text: &str) -> ConversationEntry {
    ConversationEntry {
        message_id: turn.into(),
        item: ConversationItem::Assistant {
            text: text.into(),
            tool_calls: Vec::new(),
        },
    }
}

#[test]
fn writes_replace_from_their_index_and_survive_a_reopen() {
    let session = Session::new();
    let store = session.open();
    assert_eq!(store.conversation_len().unwrap(), 0);
    let first = [user("t1", "hello"), reply("t1", "hi"), user("t2", "half")];
    assert_eq!(store.write_conversation(0, &first).unwrap(), Ok(3));
    // Turn t2 runs again from its start: its cut-short attempt is replaced.
    let again = [user("t2", "half"), reply("t2", "whole")];
    assert_eq!(store.write_conversation(2, &again).unwrap(), Ok(4));

    let reopened = session.open();
    let page = reopened.read_conversation(0).unwrap();
    assert_eq!(page.stored, 4);
    assert_eq!(page.next, None);
    assert_eq!(
        page.entries,
        [
            user("t1", "hello"),
            reply("t1", "hi"),
            user("t2", "half"),
            reply("t2", "whole")
        ]
    );
    assert_eq!(
        reopened.read_conversation(3).unwrap().entries,
        [reply("t2", "whole")]
    );
    assert!(reopened.read_conversation(9).unwrap().entries.is_empty());
}

#[test]
fn bad_writes_change_nothing() {
    let session = Session::new();
    let store = session.open();
    store
        .write_conversation(0, &[user("t1", "a")])
        .unwrap()
        .unwrap();
    assert_eq!(
        store.write_conversation(2, &[user("t2", "b")]).unwrap(),
        Err(ConversationRefusal::Gap { stored: 1 })
    );
    let many = vec![user("t2", "b"); MAX_CONVERSATION_WRITE_ENTRIES + 1];
    assert_eq!(
        store.write_conversation(1, &many).unwrap(),
        Err(ConversationRefusal::TooManyInWrite)
    );
    // A write whose last entry is too large writes none of it.
    let huge = reply("t2", &"x".repeat(MAX_CONVERSATION_ENTRY_BYTES));
    assert_eq!(
        store
            .write_conversation(0, &[user("t9", "c"), huge])
            .unwrap(),
        Err(ConversationRefusal::EntryTooLarge)
    );
    assert_eq!(
        store.read_conversation(0).unwrap().entries,
        [user("t1", "a")]
    );
}

#[test]
fn large_conversations_come_back_in_pages() {
    let session = Session::new();
    let store = session.open();
    // 12 entries of ~512 KiB: more than one 4 MiB page.
    let big = "y".repeat(512 * 1024);
    let entries: Vec<ConversationEntry> = (0..12).map(|i| reply(&format!("t{i}"), &big)).collect();
    store.write_conversation(0, &entries).unwrap().unwrap();
    let mut read = Vec::new();
    let mut from = Some(0);
    let mut pages = 0;
    while let Some(at) = from {
        let page = store.read_conversation(at).unwrap();
        assert!(!page.entries.is_empty());
        read.extend(page.entries);
        from = page.next;
        pages += 1;
    }
    assert!(pages > 1, "one page held {} entries", read.len());
    assert_eq!(read, entries);
}

#[test]
fn deleting_the_session_forgets_it() {
    let session = Session::new();
    let store = session.open();
    store
        .write_conversation(0, &[user("t1", "secret plan")])
        .unwrap()
        .unwrap();
    store.wipe(2).unwrap();
    assert_eq!(store.conversation_len().unwrap(), 0);
}
