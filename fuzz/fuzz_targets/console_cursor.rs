//! The console's paging cursor and list filters, as they come back in a query
//! string.
//!
//! Properties: a cursor round-trips (any text an address could be encodes to a
//! cursor that decodes to it), an accepted cursor is the one encoding of what it decodes to, and names a
//! place an address could be (no control characters, which an address never has);
//! a filter value accepted is the filter's own name for it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tweestap_domain::account::Role;
use tweestap_domain::console::{Cursor, TwoFactorState};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if !text.chars().any(char::is_control) {
        let c = Cursor(text.to_string());
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    for s in [text.as_ref(), std::str::from_utf8(data).unwrap_or_default()] {
        if let Some(d) = Cursor::decode(s) {
            assert_eq!(d.encode(), s, "{s:?} is not the encoding of {d:?}");
            assert!(!d.0.chars().any(char::is_control), "{s:?} names {d:?}");
        }
        if let Some(t) = TwoFactorState::parse(s) {
            assert_eq!(t.as_str(), s);
        }
        if let Ok(r) = s.parse::<Role>() {
            assert_eq!(r.as_str(), s);
        }
    }
});
