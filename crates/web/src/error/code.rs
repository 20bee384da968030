//! The stable error codes of the JSON API: the `error` field of every error body.

use serde::Serialize;
use tweestap_domain::password::PasswordProblem;
use tweestap_domain::sms::SmsRefusal;
use utoipa::ToSchema;

/// A stable, machine-readable error code; `message` beside it is for people.
///
/// The documented `ErrorCode` schema is derived from this enum, so a new code is
/// documented as soon as it exists; which operations answer it is written on each
/// operation's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidCredentials,
    InvalidPassword,
    InvalidCode,
    TooManyAttempts,
    Unauthenticated,
    EnrollmentRequired,
    NotFound,
    MethodNotAllowed,
    InvalidToken,
    InvalidEmail,
    EmailTaken,
    SharedMailbox,
    InvalidLink,
    LinkExpired,
    LinkUsed,
    CodeExpired,
    TooManyRequests,
    Forbidden,
    ReasonRequired,
    LastFactorRequired,
    UnsupportedMethod,
    UnsupportedMediaType,
    MalformedJson,
    InvalidRequest,
    PayloadTooLarge,
    PasswordTooShort,
    PasswordTooLong,
    PasswordTooCommon,
    PasswordContextSpecific,
    PhoneNotANumber,
    PhoneTooShort,
    PhoneTooLong,
    PhoneUnknownCountry,
    PhoneInvalid,
    PhoneNotMobile,
    PhoneExtension,
    PhoneUnknownRegion,
    SmsRateLimited,
    SmsCountryNotAllowed,
    SmsUnavailable,
    InvalidClientMetadata,
    ClientInConfig,
    Unavailable,
    Internal,
    /// An administrator action needs a current code first (`POST /admin/step-up`).
    StepUpRequired,
    /// A policy value is refused; `field` names it.
    InvalidPolicy,
    /// Passkeys cannot be used at this server's address (an IP address).
    PasskeyUnavailable,
    /// The passkey answer belongs to no open request (expired, used, or another
    /// session's): ask for new options.
    PasskeyExpired,
    /// The passkey is not registered here (or not to this account).
    PasskeyUnknown,
    /// The passkey's answer did not verify (signature, origin, flags).
    PasskeyInvalid,
    /// The key's signature counter went backwards: it may have been copied.
    PasskeyPossibleClone,
    /// This authenticator is already registered.
    PasskeyAlreadyRegistered,
    /// A name that is empty or longer than 60 characters.
    InvalidName,
}

impl ErrorCode {
    /// Every code, in the order of the enum; a unit test keeps it complete.
    pub const ALL: [ErrorCode; 53] = [
        Self::InvalidCredentials,
        Self::InvalidPassword,
        Self::InvalidCode,
        Self::TooManyAttempts,
        Self::Unauthenticated,
        Self::EnrollmentRequired,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::InvalidToken,
        Self::InvalidEmail,
        Self::EmailTaken,
        Self::SharedMailbox,
        Self::InvalidLink,
        Self::LinkExpired,
        Self::LinkUsed,
        Self::CodeExpired,
        Self::TooManyRequests,
        Self::Forbidden,
        Self::ReasonRequired,
        Self::LastFactorRequired,
        Self::UnsupportedMethod,
        Self::UnsupportedMediaType,
        Self::MalformedJson,
        Self::InvalidRequest,
        Self::PayloadTooLarge,
        Self::PasswordTooShort,
        Self::PasswordTooLong,
        Self::PasswordTooCommon,
        Self::PasswordContextSpecific,
        Self::PhoneNotANumber,
        Self::PhoneTooShort,
        Self::PhoneTooLong,
        Self::PhoneUnknownCountry,
        Self::PhoneInvalid,
        Self::PhoneNotMobile,
        Self::PhoneExtension,
        Self::PhoneUnknownRegion,
        Self::SmsRateLimited,
        Self::SmsCountryNotAllowed,
        Self::SmsUnavailable,
        Self::InvalidClientMetadata,
        Self::ClientInConfig,
        Self::Unavailable,
        Self::Internal,
        Self::StepUpRequired,
        Self::InvalidPolicy,
        Self::PasskeyUnavailable,
        Self::PasskeyExpired,
        Self::PasskeyUnknown,
        Self::PasskeyInvalid,
        Self::PasskeyPossibleClone,
        Self::PasskeyAlreadyRegistered,
        Self::InvalidName,
    ];

    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidPassword => "invalid_password",
            Self::InvalidCode => "invalid_code",
            Self::TooManyAttempts => "too_many_attempts",
            Self::Unauthenticated => "unauthenticated",
            Self::EnrollmentRequired => "enrollment_required",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InvalidToken => "invalid_token",
            Self::InvalidEmail => "invalid_email",
            Self::EmailTaken => "email_taken",
            Self::SharedMailbox => "shared_mailbox",
            Self::InvalidLink => "invalid_link",
            Self::LinkExpired => "link_expired",
            Self::LinkUsed => "link_used",
            Self::CodeExpired => "code_expired",
            Self::TooManyRequests => "too_many_requests",
            Self::Forbidden => "forbidden",
            Self::ReasonRequired => "reason_required",
            Self::LastFactorRequired => "last_factor_required",
            Self::UnsupportedMethod => "unsupported_method",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MalformedJson => "malformed_json",
            Self::InvalidRequest => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::PasswordTooShort => "password_too_short",
            Self::PasswordTooLong => "password_too_long",
            Self::PasswordTooCommon => "password_too_common",
            Self::PasswordContextSpecific => "password_context_specific",
            Self::PhoneNotANumber => "phone_not_a_number",
            Self::PhoneTooShort => "phone_too_short",
            Self::PhoneTooLong => "phone_too_long",
            Self::PhoneUnknownCountry => "phone_unknown_country",
            Self::PhoneInvalid => "phone_invalid",
            Self::PhoneNotMobile => "phone_not_mobile",
            Self::PhoneExtension => "phone_extension",
            Self::PhoneUnknownRegion => "phone_unknown_region",
            Self::SmsRateLimited => "sms_rate_limited",
            Self::SmsCountryNotAllowed => "sms_country_not_allowed",
            Self::SmsUnavailable => "sms_unavailable",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::ClientInConfig => "client_in_config",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::StepUpRequired => "step_up_required",
            Self::InvalidPolicy => "invalid_policy",
            Self::PasskeyUnavailable => "passkey_unavailable",
            Self::PasskeyExpired => "passkey_expired",
            Self::PasskeyUnknown => "passkey_unknown",
            Self::PasskeyInvalid => "passkey_invalid",
            Self::PasskeyPossibleClone => "passkey_possible_clone",
            Self::PasskeyAlreadyRegistered => "passkey_already_registered",
            Self::InvalidName => "invalid_name",
        }
    }

    /// The code of a phone number the domain refused (`PhoneError::code`); an
    /// unknown one (never expected) reads as `phone_invalid`.
    pub(crate) fn of_phone(code: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == code && c.as_str().starts_with("phone_"))
            .unwrap_or(Self::PhoneInvalid)
    }

    pub(crate) fn of_password(p: PasswordProblem) -> Self {
        match p {
            PasswordProblem::TooShort { .. } => Self::PasswordTooShort,
            PasswordProblem::TooLong { .. } => Self::PasswordTooLong,
            PasswordProblem::Common => Self::PasswordTooCommon,
            PasswordProblem::ContextSpecific => Self::PasswordContextSpecific,
        }
    }

    pub(crate) fn of_sms_refusal(r: &SmsRefusal) -> Self {
        match r {
            SmsRefusal::CountryNotAllowed(_) => Self::SmsCountryNotAllowed,
            SmsRefusal::AccountLimit | SmsRefusal::NumberLimit | SmsRefusal::IpLimit => {
                Self::SmsRateLimited
            }
            SmsRefusal::GlobalLimit => Self::SmsUnavailable,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tweestap_domain::sms::PhoneError;
    use utoipa::PartialSchema;

    #[test]
    fn all_lists_every_variant_once_with_its_serde_name() {
        // The schema's enum comes from the derive, i.e. from the variants themselves.
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap();
        let derived: BTreeSet<String> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let listed: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert_eq!(derived, listed.iter().cloned().collect::<BTreeSet<_>>());
        assert_eq!(listed.len(), derived.len(), "no code twice in ALL");
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn the_domains_codes_are_codes_of_the_api() {
        let phone = [
            PhoneError::NotANumber,
            PhoneError::TooShort,
            PhoneError::TooLong,
            PhoneError::UnknownCountry,
            PhoneError::Invalid,
            PhoneError::NotMobile("fixed line"),
            PhoneError::Extension,
            PhoneError::UnknownRegion("XX".into()),
        ];
        for p in phone {
            assert_eq!(ErrorCode::of_phone(p.code()).as_str(), p.code());
        }
        let passwords = [
            PasswordProblem::TooShort { min: 8 },
            PasswordProblem::TooLong { max: 256 },
            PasswordProblem::Common,
            PasswordProblem::ContextSpecific,
        ];
        for p in passwords {
            assert_eq!(ErrorCode::of_password(p).as_str(), p.code());
        }
        let refusals = [
            SmsRefusal::CountryNotAllowed(44),
            SmsRefusal::AccountLimit,
            SmsRefusal::NumberLimit,
            SmsRefusal::IpLimit,
            SmsRefusal::GlobalLimit,
        ];
        for r in refusals {
            assert_eq!(ErrorCode::of_sms_refusal(&r).as_str(), r.code());
        }
    }
}
