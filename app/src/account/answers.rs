//! Answers whose shape has varied between servers: lists that come bare or wrapped
//! in an object, and the models a default can be picked from. The bodies themselves
//! are `nightshift_protocol`'s types; only these outer shapes are the app's own.

/// `GET /api/models`, when the server offers it: either a bare list of ids or
/// `{"models": [...]}` whose items are ids or objects with an `id`.
pub fn parse_models(text: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let items = match &value {
        serde_json::Value::Array(items) => items.as_slice(),
        serde_json::Value::Object(map) => match map.get("models") {
            Some(serde_json::Value::Array(items)) => items.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    items
        .iter()
        .filter_map(|item| {
            item.as_str()
                .or_else(|| item.get("id").and_then(|id| id.as_str()))
                .map(str::to_owned)
        })
        .collect()
}

/// A list answer, either a bare array or an object holding it under `field`
/// (`{"invites": [...]}`); servers have used both shapes for collections.
pub fn parse_list<T: serde::de::DeserializeOwned>(
    text: &str,
    field: &str,
) -> Result<Vec<T>, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    match value {
        serde_json::Value::Object(mut map) => match map.remove(field) {
            Some(items) => serde_json::from_value(items),
            None => serde_json::from_value(serde_json::Value::Object(map)),
        },
        other => serde_json::from_value(other),
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::auth::Viewer;

    use super::*;

    #[test]
    fn lists_come_bare_or_wrapped() {
        let bare: Vec<Viewer> = parse_list(r#"[{"user_id":"a","name":"A"}]"#, "viewers").unwrap();
        let wrapped: Vec<Viewer> =
            parse_list(r#"{"viewers":[{"user_id":"a","name":"A"}]}"#, "viewers").unwrap();
        assert_eq!(bare, wrapped);
        assert!(parse_list::<Viewer>(r#"{"other":[]}"#, "viewers").is_err());
    }

    #[test]
    fn models_are_read_from_either_shape() {
        assert_eq!(parse_models(r#"["a","b"]"#), vec!["a", "b"]);
        assert_eq!(
            parse_models(r#"{"models":[{"id":"c"},"d",{"name":"x"}]}"#),
            vec!["c", "d"]
        );
        assert!(parse_models("<html>").is_empty());
    }
}
