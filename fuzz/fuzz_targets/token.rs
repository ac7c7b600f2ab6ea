//! Token verification: any string verifies or is refused, never panics; a
//! token that verifies re-signs to the same token (the format is
//! canonical); and claims built from the input sign and verify back.
#![no_main]

use std::collections::BTreeMap;

use consent_relay::config::{Secret, SigningConfig};
use consent_relay::token::{self, Claims, Purpose};
use libfuzzer_sys::fuzz_target;

fn signing() -> SigningConfig {
    let mut keys = BTreeMap::new();
    keys.insert("k1".to_owned(), Secret(vec![7u8; 32]));
    keys.insert("old-key_2".to_owned(), Secret(vec![9u8; 48]));
    SigningConfig {
        current: "k1".to_owned(),
        keys,
    }
}

fuzz_target!(|data: &[u8]| {
    let signing = signing();
    let text = String::from_utf8_lossy(data);
    if let Ok(claims) = token::verify(&signing, &text) {
        // Only the current key signs; a token under it must come back equal.
        if text.starts_with("k1.") {
            let again = token::sign(&signing, &claims).expect("verified claims sign");
            assert_eq!(again, text, "a verified token is canonical");
        }
        for p in [Purpose::Unsubscribe, Purpose::Preferences, Purpose::Optin] {
            let r = token::verify_for(&signing, &text, p);
            assert_eq!(r.is_ok(), p == claims.purpose);
        }
    }
    // Claims from the input: purpose, a 22-character subject, a campaign.
    if data.len() >= 23 {
        let purpose = [Purpose::Unsubscribe, Purpose::Preferences, Purpose::Optin]
            [data[0] as usize % 3];
        let subject = String::from_utf8_lossy(&data[1..23]).into_owned();
        let rest = String::from_utf8_lossy(&data[23..]).into_owned();
        let claims = Claims {
            subject_id: subject,
            campaign: (!rest.is_empty()).then_some(rest),
            purpose,
        };
        if let Ok(t) = token::sign(&signing, &claims) {
            assert!(t.len() <= 164, "token longer than documented");
            assert!(
                t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "token not URL-safe"
            );
            assert_eq!(token::verify(&signing, &t).as_ref(), Ok(&claims));
        }
    }
});
