//! The two names a message goes by, as a person types them to find it: the
//! queue id the relay gave it (a ULID, in `250 2.0.0 queued as ...`) and
//! the Message-ID its author gave it (RFC 5322 3.6.4, the header field the
//! recipient's mail client shows). Each is read into the one form the
//! store looks it up by; anything else is refused with the reason. Pure.

/// Longest Message-ID accepted: a header line's limit (RFC 5322 2.1.1).
const MESSAGE_ID_MAX: usize = 998;

/// A queue id as the relay writes it (26 characters of Crockford base32,
/// upper case), from any case, surrounding white space trimmed.
pub fn queue_id(value: &str) -> Result<String, &'static str> {
    let v = value.trim();
    if v.is_empty() {
        return Err(
            "is empty (give the queue id of the 250 reply, e.g. 01J8ZK5V3M6Q8R2T4W6Y8A0C2E)",
        );
    }
    ulid::Ulid::from_string(v)
        .map(|u| u.to_string())
        .map_err(|_| "is not a queue id (26 letters and digits, as in the reply `250 2.0.0 queued as 01J8...`)")
}

/// A Message-ID without its angle brackets (`abc@example.com`), from the
/// header's value with or without them, surrounding white space trimmed.
pub fn message_id(value: &str) -> Result<String, &'static str> {
    let v = value.trim();
    let bare = match v.strip_prefix('<') {
        Some(rest) => rest
            .strip_suffix('>')
            .ok_or("opens with < but does not end with >")?,
        None => v,
    };
    if bare.is_empty() {
        return Err("is empty (give the Message-ID header's value, e.g. <abc@example.com>)");
    }
    if bare.len() > MESSAGE_ID_MAX {
        return Err("is longer than a header line (998 characters)");
    }
    if bare
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err("holds white space or angle brackets inside (give one Message-ID)");
    }
    Ok(bare.to_owned())
}

/// The spellings a stored Message-ID header of `bare` may have: as
/// RFC 5322 writes it (`<id>`), and without the brackets (as a sloppy
/// client may send it).
pub fn stored_forms(bare: &str) -> [String; 2] {
    [format!("<{bare}>"), bare.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_are_read_in_any_case_and_trimmed() {
        let id = "01J8ZK5V3M6Q8R2T4W6Y8A0C2E";
        assert_eq!(queue_id(id).unwrap(), id);
        assert_eq!(queue_id(&format!("  {}\n", id.to_lowercase())).unwrap(), id);
        for bad in ["", "   ", "m1", "01J8ZK5V3M6Q8R2T4W6Y8A0C2E0", "<a@b>"] {
            assert!(queue_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_ids_lose_their_brackets_and_white_space() {
        assert_eq!(message_id("<abc@example.com>").unwrap(), "abc@example.com");
        assert_eq!(
            message_id(" abc@example.com \t").unwrap(),
            "abc@example.com"
        );
        assert_eq!(
            message_id("\t<abc@example.com>  ").unwrap(),
            "abc@example.com"
        );
        for bad in [
            "",
            " ",
            "<>",
            "<abc@example.com",
            "a b@example.com",
            "<a@b> <c@d>",
            "a<b",
        ] {
            assert!(message_id(bad).is_err(), "{bad:?}");
        }
        assert!(message_id(&"x".repeat(999)).is_err());
    }

    #[test]
    fn stored_forms_are_with_and_without_brackets() {
        assert_eq!(stored_forms("a@b"), ["<a@b>".to_owned(), "a@b".to_owned()]);
    }
}
