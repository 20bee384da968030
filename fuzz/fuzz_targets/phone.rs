//! Phone numbers as people type them (and as stored, E.164).
//!
//! Properties: an accepted number is E.164 (`+`, at most 15 digits, starting with
//! its calling code); it re-formats to itself: read back from storage, or typed again
//! in its E.164 form from any region, it is the same number; its masked form shows
//! the calling code, the first and the last two digits and no other; a stored form
//! that reads back is exactly what was stored.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tweestap_domain::sms::PhoneNumber;

const REGIONS: [&str; 12] = [
    "BE", "NL", "LU", "FR", "DE", "GB", "US", "IN", "BR", "JP", "AU", "ZA",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(typed) = std::str::from_utf8(rest) else {
        return;
    };
    let region = REGIONS[usize::from(first) % REGIONS.len()];

    // As stored: only what this type writes reads back, and then exactly.
    if let Ok(n) = PhoneNumber::from_e164(typed) {
        assert_eq!(n.e164(), typed);
    }

    let Ok(n) = PhoneNumber::parse(typed, region) else {
        return;
    };
    let e164 = n.e164();
    let digits = e164.strip_prefix('+').expect("E.164 starts with +");
    assert!(
        !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()),
        "{typed:?} -> {e164:?}"
    );
    let code = n.calling_code().to_string();
    assert!(digits.starts_with(&code), "{e164} has calling code {code}");

    // Re-formats to itself.
    assert_eq!(
        PhoneNumber::from_e164(e164).as_ref(),
        Ok(&n),
        "{typed:?} read back"
    );
    for other in REGIONS {
        assert_eq!(
            PhoneNumber::parse(e164, other).as_ref(),
            Ok(&n),
            "{typed:?} -> {e164} typed again in {other}"
        );
    }
    let json = serde_json::to_string(&n).expect("serialises");
    assert_eq!(
        serde_json::from_str::<PhoneNumber>(&json).ok().as_ref(),
        Some(&n)
    );

    // Masked: +<code> <first digit>•••<last two>.
    let masked = n.masked();
    let national = masked
        .strip_prefix(&format!("+{code} "))
        .unwrap_or_else(|| panic!("{masked:?} starts with +{code}"));
    let shown: String = national.chars().filter(char::is_ascii_digit).collect();
    let hidden = national.chars().filter(|&c| c == '•').count();
    let national_digits = &digits[code.len()..];
    assert_eq!(
        shown.len() + hidden,
        national_digits.len(),
        "{masked:?} of {e164}"
    );
    assert!(shown.len() <= 3, "{masked:?} shows too much of {e164}");
    if national_digits.len() >= 3 {
        assert_eq!(shown.len(), 3, "{masked:?}");
        assert!(
            shown.starts_with(&national_digits[..1]),
            "{masked:?} of {e164}"
        );
        assert!(
            shown.ends_with(&national_digits[national_digits.len() - 2..]),
            "{masked:?} of {e164}"
        );
    }
    assert!(!format!("{n:?}").contains(national_digits) || national_digits.len() <= 3);
});
