//! Phone numbers: what a person typed, parsed and normalised to E.164 with the
//! `phonenumber` crate (Google's libphonenumber metadata), refused when it cannot
//! receive SMS, and masked for pages and logs.

use phonenumber::metadata::DATABASE;
use phonenumber::Type;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest input looked at; real numbers, even generously spaced, are far shorter.
const MAX_INPUT_CHARS: usize = 40;

/// Why a phone number is refused. The `Display` texts are for logs; pages map
/// [`PhoneError::code`] to their own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("not a phone number")]
    NotANumber,
    #[error("the phone number is too short")]
    TooShort,
    #[error("the phone number is too long")]
    TooLong,
    #[error("unknown country calling code")]
    UnknownCountry,
    #[error("no phone number is in use in this form")]
    Invalid,
    #[error("this number cannot receive SMS (it is a {0} number)")]
    NotMobile(&'static str),
    #[error("extensions cannot receive SMS")]
    Extension,
    #[error("unknown default region {0:?} (use a two-letter code such as BE)")]
    UnknownRegion(String),
}

impl PhoneError {
    /// A stable code for the API and for picking a message on a page.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotANumber => "phone_not_a_number",
            Self::TooShort => "phone_too_short",
            Self::TooLong => "phone_too_long",
            Self::UnknownCountry => "phone_unknown_country",
            Self::Invalid => "phone_invalid",
            Self::NotMobile(_) => "phone_not_mobile",
            Self::Extension => "phone_extension",
            Self::UnknownRegion(_) => "phone_unknown_region",
        }
    }
}

/// Whether `region` is a two-letter region the phone number metadata knows ("BE").
/// Asked of the list of region codes, not of the metadata: loading that compiles
/// all its patterns (about 150 ms and 5 MB), which the configuration check made
/// every start pay; now the first phone number does. A test keeps both in step.
pub fn is_known_region(region: &str) -> bool {
    region
        .trim()
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .is_ok()
}

fn region_id(region: &str) -> Option<phonenumber::country::Id> {
    let r = region.trim().to_ascii_uppercase();
    let id: phonenumber::country::Id = r.parse().ok()?;
    DATABASE.by_id(id.as_ref()).map(|_| id)
}

/// A mobile phone number in E.164 form (`+32470123456`).
///
/// Its `Debug` shows only the masked form, so a number logged by accident is not
/// a number leaked; [`PhoneNumber::e164`] gives the whole number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    calling_code: u16,
    /// The international format ("+32 470 12 34 56"), for masking.
    international: String,
    region: Option<String>,
}

impl PhoneNumber {
    /// Parses what a person typed: "0470 12 34 56" in the default region, or an
    /// international number ("+31 6 12345678", "0031 6 12345678" from Belgium).
    /// Refuses what cannot receive SMS where the metadata can tell (fixed lines,
    /// free-phone, premium rate, …); a number that may be either fixed or mobile
    /// (as in the USA) is accepted.
    pub fn parse(input: &str, default_region: &str) -> Result<Self, PhoneError> {
        let region = region_id(default_region)
            .ok_or_else(|| PhoneError::UnknownRegion(default_region.to_owned()))?;
        let n = parse_lenient(input, Some(region))?;
        if n.extension().is_some() {
            return Err(PhoneError::Extension);
        }
        if !n.is_valid() {
            return Err(why_invalid(&n));
        }
        match n.number_type(&DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            Type::Unknown => return Err(PhoneError::Invalid),
            other => return Err(PhoneError::NotMobile(type_name(other))),
        }
        Ok(Self::from_parsed(&n))
    }

    /// Reads back a number this type wrote (from storage). Only the form is checked,
    /// not the type: the metadata may have changed since the number was accepted.
    pub fn from_e164(e164: &str) -> Result<Self, PhoneError> {
        let digits = e164.strip_prefix('+').ok_or(PhoneError::NotANumber)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::NotANumber);
        }
        if digits.len() > 15 {
            return Err(PhoneError::TooLong);
        }
        let n = parse_lenient(e164, None)?;
        let parsed = Self::from_parsed(&n);
        if parsed.e164 != e164 {
            return Err(PhoneError::NotANumber);
        }
        Ok(parsed)
    }

    fn from_parsed(n: &phonenumber::PhoneNumber) -> Self {
        use phonenumber::Mode;
        Self {
            e164: n.format().mode(Mode::E164).to_string(),
            calling_code: n.code().value(),
            international: n.format().mode(Mode::International).to_string(),
            region: n.country().id().map(|id| id.as_ref().to_owned()),
        }
    }

    /// `+32470123456`: what gateways are given and what is stored.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The country calling code: 32 for Belgium, 31 for the Netherlands.
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }

    /// The region the number belongs to ("BE"), where the metadata tells.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// For pages, the audit log and logs: the country code, the first digit and the
    /// last two digits stay, e.g. `+32 4•• •• •• 56`.
    pub fn masked(&self) -> String {
        let prefix = format!("+{} ", self.calling_code);
        let national = self
            .international
            .strip_prefix(&prefix)
            .unwrap_or(&self.e164[prefix.len() - 1..]);
        let total = national.chars().filter(char::is_ascii_digit).count();
        let mut seen = 0;
        let mut out = prefix;
        for c in national.chars() {
            if c.is_ascii_digit() {
                seen += 1;
                out.push(if seen == 1 || seen + 2 > total {
                    c
                } else {
                    '•'
                });
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.e164)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_e164(&s).map_err(serde::de::Error::custom)
    }
}

/// Input checks of our own, then the library's parser, with its errors in ours.
fn parse_lenient(
    input: &str,
    region: Option<phonenumber::country::Id>,
) -> Result<phonenumber::PhoneNumber, PhoneError> {
    let input = input.trim();
    if input.is_empty() || input.chars().count() > MAX_INPUT_CHARS {
        return Err(if input.is_empty() {
            PhoneError::NotANumber
        } else {
            PhoneError::TooLong
        });
    }
    // Digits and the usual punctuation only: no letters (vanity numbers, "ext."),
    // no ';' or other RFC 3966 parameters.
    let allowed = |c: char| c.is_ascii_digit() || " +-./()\u{a0}".contains(c);
    if !input.chars().all(allowed) || input.chars().skip(1).any(|c| c == '+') {
        return Err(PhoneError::NotANumber);
    }
    let digits = input.chars().filter(char::is_ascii_digit).count();
    if digits == 0 {
        return Err(PhoneError::NotANumber);
    }
    let n = phonenumber::parse(region, input).map_err(parse_error(digits))?;
    match region {
        Some(region) => in_its_own_country(n, input, region),
        None => Ok(n),
    }
}

/// The library strips the *default region's* national prefix even from a number that
/// names another country: "+49 170 …" read in the USA lost its "1" (national prefix
/// there) and became "+49 70 …", another number. A number with another country's
/// code is therefore read again under that country's own rules: from its digits after
/// the `+` or the region's international prefix ("00", "011"), without a region.
fn in_its_own_country(
    n: phonenumber::PhoneNumber,
    input: &str,
    region: phonenumber::country::Id,
) -> Result<phonenumber::PhoneNumber, PhoneError> {
    let Some(meta) = DATABASE.by_id(region.as_ref()) else {
        return Ok(n);
    };
    if n.code().value() == meta.country_code() {
        return Ok(n);
    }
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    let after_idd = meta
        .international_prefix()
        .and_then(|re| re.find(&digits))
        .filter(|m| m.start() == 0)
        .map_or(digits.as_str(), |m| &digits[m.end()..]);
    let count = after_idd.len();
    phonenumber::parse(None, format!("+{after_idd}")).map_err(parse_error(count))
}

/// The library's parse errors in ours (`digits`: how many digits were typed).
fn parse_error(digits: usize) -> impl Fn(phonenumber::ParseError) -> PhoneError {
    move |e| match e {
        phonenumber::ParseError::NoNumber => {
            if digits < 6 {
                PhoneError::TooShort
            } else {
                PhoneError::NotANumber
            }
        }
        phonenumber::ParseError::InvalidCountryCode => PhoneError::UnknownCountry,
        phonenumber::ParseError::TooShortAfterIdd | phonenumber::ParseError::TooShortNsn => {
            PhoneError::TooShort
        }
        phonenumber::ParseError::TooLong => PhoneError::TooLong,
        phonenumber::ParseError::MalformedInteger(_) => PhoneError::NotANumber,
    }
}

/// Why a number the metadata does not know is wrong: too short or too long for a
/// mobile number of its country, or digits in a range nobody uses.
fn why_invalid(n: &phonenumber::PhoneNumber) -> PhoneError {
    let Some(meta) = n.metadata(&DATABASE) else {
        return if DATABASE.by_code(&n.code().value()).is_none() {
            PhoneError::UnknownCountry
        } else {
            PhoneError::Invalid
        };
    };
    let d = meta.descriptors();
    let mut lengths: Vec<u16> = match d.mobile() {
        Some(m) if !m.possible_length().is_empty() => m.possible_length().to_vec(),
        _ => [Type::FixedLine, Type::FixedLineOrMobile, Type::Voip]
            .into_iter()
            .filter_map(|t| d.get(t))
            .flat_map(|x| x.possible_length().iter().copied())
            .collect(),
    };
    lengths.sort_unstable();
    let len = n.national().to_string().len() as u16;
    match (lengths.first(), lengths.last()) {
        (Some(&min), _) if len < min => PhoneError::TooShort,
        (_, Some(&max)) if len > max => PhoneError::TooLong,
        _ => PhoneError::Invalid,
    }
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::FixedLine => "fixed-line",
        Type::TollFree => "free-phone",
        Type::PremiumRate => "premium-rate",
        Type::SharedCost => "shared-cost",
        Type::PersonalNumber => "personal",
        Type::Voip => "VoIP",
        Type::Pager => "pager",
        Type::Uan => "company",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short-code",
        Type::StandardRate => "standard-rate",
        Type::Carrier => "carrier",
        Type::NoInternational => "national-only",
        Type::Mobile | Type::FixedLineOrMobile | Type::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(input: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(input, "BE")
    }

    #[test]
    fn belgian_mobile_numbers_normalise_to_e164() {
        for input in [
            "0470 12 34 56",
            "0470123456",
            "0470/12.34.56",
            "+32 470 12 34 56",
            "+32470123456",
            "0032 470 12 34 56",
            "  (0470) 12-34-56 ",
        ] {
            let n = be(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(n.e164(), "+32470123456", "{input:?}");
            assert_eq!(n.calling_code(), 32);
            assert_eq!(n.region(), Some("BE"));
        }
    }

    #[test]
    fn an_international_number_keeps_its_country() {
        let n = be("+31 6 12345678").unwrap();
        assert_eq!(n.e164(), "+31612345678");
        assert_eq!(n.calling_code(), 31);
        assert_eq!(n.region(), Some("NL"));
        let n = be("0031 6 12345678").unwrap();
        assert_eq!(n.e164(), "+31612345678");
        let n = PhoneNumber::parse("06 12345678", "nl").unwrap();
        assert_eq!(n.e164(), "+31612345678");
    }

    #[test]
    fn numbers_that_may_be_mobile_are_accepted() {
        // In the USA fixed and mobile numbers look alike.
        let n = be("+1 201 555 0123").unwrap();
        assert_eq!(n.e164(), "+12015550123");
        assert_eq!(n.calling_code(), 1);
    }

    #[test]
    fn numbers_that_cannot_receive_sms_are_refused() {
        assert_eq!(be("02 511 11 11"), Err(PhoneError::NotMobile("fixed-line")));
        assert_eq!(be("09 265 21 11"), Err(PhoneError::NotMobile("fixed-line")));
        assert_eq!(
            be("+31 20 123 4567"),
            Err(PhoneError::NotMobile("fixed-line"))
        );
        assert_eq!(be("0800 12 345"), Err(PhoneError::NotMobile("free-phone")));
        assert_eq!(
            be("0900 12 345"),
            Err(PhoneError::NotMobile("premium-rate"))
        );
        assert_eq!(be("+31 85 123 4567"), Err(PhoneError::NotMobile("VoIP")));
        assert_eq!(
            be("+44 70 1234 5678"),
            Err(PhoneError::NotMobile("personal"))
        );
        assert_eq!(be("078 15 15 15"), Err(PhoneError::NotMobile("company")));
        assert_eq!(be("02 511 11 11").unwrap_err().code(), "phone_not_mobile");
    }

    #[test]
    fn non_numbers_are_refused() {
        for input in [
            "",
            "   ",
            "hello",
            "0470 CALL ME",
            "+32 470 12 34 56;ext=1",
            "+32+470123456",
            "0470 12 34 56 ext. 12",
            "tel:+32470123456",
            "--",
        ] {
            assert_eq!(be(input), Err(PhoneError::NotANumber), "{input:?}");
        }
    }

    #[test]
    fn too_short_and_too_long_are_named() {
        assert_eq!(be("04"), Err(PhoneError::TooShort));
        assert_eq!(be("0470 12"), Err(PhoneError::TooShort));
        assert_eq!(be("0470 12 34 5"), Err(PhoneError::TooShort));
        assert_eq!(be("0470 12 34 567"), Err(PhoneError::TooLong));
        assert_eq!(be("+31 6 1234567"), Err(PhoneError::TooShort));
        assert_eq!(be("+32 4"), Err(PhoneError::TooShort));
        assert_eq!(be("0470 12 34 56 78 90"), Err(PhoneError::TooLong));
        assert_eq!(be("+32 470 12 34 56 78 90 12 34"), Err(PhoneError::TooLong));
        assert_eq!(be(&"1".repeat(41)), Err(PhoneError::TooLong));
    }

    #[test]
    fn unknown_codes_and_unused_ranges_are_refused() {
        assert_eq!(be("+999 470 12 34 56"), Err(PhoneError::UnknownCountry));
        // A Belgian number of the right length in a range no operator uses.
        assert!(be("0170 12 34 56").is_err());
        assert_eq!(
            PhoneNumber::parse("0470 12 34 56", "XX"),
            Err(PhoneError::UnknownRegion("XX".into()))
        );
        assert!(is_known_region("BE"));
        assert!(is_known_region("nl"));
        assert!(!is_known_region("XX"));
        assert!(!is_known_region(""));
    }

    #[test]
    fn the_region_codes_are_those_of_the_metadata() {
        let letters = || (b'A'..=b'Z').map(char::from);
        for a in letters() {
            for b in letters() {
                let code = format!("{a}{b}");
                assert_eq!(is_known_region(&code), region_id(&code).is_some(), "{code}");
            }
        }
    }

    /// Found by fuzzing (fuzz target phone): an international number whose national
    /// part starts with the default region's national prefix lost it ("1" in the USA,
    /// "8" in Russia), so the number typed was not the number kept (or was refused).
    #[test]
    fn an_international_number_keeps_its_digits_whatever_the_region() {
        for (region, typed, e164) in [
            ("US", "+49 170 22970229", "+4917022970229"),
            ("US", "011 49 170 22970229", "+4917022970229"),
            ("US", "+86 138 0013 8000", "+8613800138000"),
            ("US", "+20 100 123 4567", "+201001234567"),
            ("RU", "+81 80 1234 5678", "+818012345678"),
            ("RU", "810 81 80 1234 5678", "+818012345678"),
        ] {
            let n = PhoneNumber::parse(typed, region)
                .unwrap_or_else(|e| panic!("{typed:?} in {region}: {e}"));
            assert_eq!(n.e164(), e164, "{typed:?} in {region}");
            let again = PhoneNumber::parse(e164, "DE").unwrap();
            assert_eq!(again, n, "{typed:?}");
        }
        // The region's own numbers still drop their national prefix.
        assert_eq!(
            PhoneNumber::parse("1 201 555 0123", "US").unwrap().e164(),
            "+12015550123"
        );
        assert_eq!(be("0470 12 34 56").unwrap().e164(), "+32470123456");
    }

    #[test]
    fn the_masked_form_keeps_code_first_and_last_two_digits() {
        assert_eq!(be("0470 12 34 56").unwrap().masked(), "+32 4•• •• •• 56");
        assert_eq!(be("+31 6 12345678").unwrap().masked(), "+31 6 ••••••78");
        let n = be("0470123456").unwrap();
        let debug = format!("{n:?}");
        assert!(!debug.contains("470123456"), "{debug}");
        assert!(debug.contains("•• 56"), "{debug}");
    }

    #[test]
    fn stored_numbers_read_back() {
        let n = be("0470 12 34 56").unwrap();
        let back = PhoneNumber::from_e164(n.e164()).unwrap();
        assert_eq!(back, n);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"+32470123456\"");
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), n);
        for bad in [
            "32470123456",
            "+32 470 12 34 56",
            "+",
            "+32abc",
            "+1234567890123456",
        ] {
            assert!(PhoneNumber::from_e164(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<PhoneNumber>("\"0470123456\"").is_err());
    }
}
