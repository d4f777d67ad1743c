//! The registered claims (RFC 7519 §4.1), read strictly from the token's claims set.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::ErrorKind;

/// The registered claims of a validated token, with the claims set they were read from.
///
/// Each was read with its registered type: a claim of another JSON type (including `null`) made the token
/// invalid rather than being taken as absent. NumericDates accept integers and floats; a fraction is rounded
/// toward the stricter side (`exp` down, `nbf` and `iat` up).
///
/// The strings are not copied out of the claims set: each is a span of it, unless the token wrote it with
/// escapes, and then it is kept unescaped.
#[derive(Clone, Default)]
pub struct RegisteredClaims {
    /// The claims set, as the token carried it (decoded from base64url, checked as UTF-8).
    pub(crate) json: String,
    pub(crate) iss: Option<Text>,
    pub(crate) sub: Option<Text>,
    pub(crate) aud: Option<Audiences>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) iat: Option<i64>,
    pub(crate) jti: Option<Text>,
    /// `cnf`, read only for the members jwtgate checks; rare, so boxed.
    pub(crate) cnf: Option<Box<Confirmation>>,
}

/// The `cnf` claim (RFC 7800): the key a sender-constrained token is bound to, as far as jwtgate checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confirmation {
    jkt: Option<String>,
    x5t_s256: Option<String>,
}

impl Confirmation {
    /// `jkt`: the RFC 7638 SHA-256 thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1).
    pub fn jwk_thumbprint(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// `x5t#S256`: the SHA-256 hash of the DER client certificate the token is bound to, base64url (RFC 8705
    /// §3.1).
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.x5t_s256.as_deref()
    }
}

/// The RFC 8705 §3.1 thumbprint of a client certificate: SHA-256 of its DER encoding, base64url without padding,
/// as a certificate-bound token's `cnf` `x5t#S256` holds it.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// `cnf` read from its JSON: an object whose `jkt` and `x5t#S256`, when present, are strings; anything else
/// there, `null` included, is invalid. Other members (`jwk`, `kid`...) are not read: a token bound by them alone is bound
/// to nothing jwtgate can check.
fn confirmation(raw: &str) -> Option<Confirmation> {
    let members: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    let text = |name: &str| match members.get(name) {
        None => Some(None),
        Some(serde_json::Value::String(text)) => Some(Some(text.clone())),
        Some(_) => None,
    };
    Some(Confirmation { jkt: text("jkt")?, x5t_s256: text("x5t#S256")? })
}

impl RegisteredClaims {
    /// `iss`: who issued the token.
    pub fn issuer(&self) -> Option<&str> {
        self.text(self.iss.as_ref())
    }

    /// `sub`: whom the token is about.
    pub fn subject(&self) -> Option<&str> {
        self.text(self.sub.as_ref())
    }

    /// `aud`: the audiences, none when absent. A single string is an audience of one.
    pub fn audience(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + Clone + '_ {
        let texts = match &self.aud {
            None => &[][..],
            Some(Audiences::One(text)) => std::slice::from_ref(text),
            Some(Audiences::Many(texts)) => texts,
        };
        texts.iter().map(|text| text.get(&self.json))
    }

    /// `exp`: when the token expires, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<i64> {
        self.exp
    }

    /// `nbf`: when the token becomes valid, in seconds since the Unix epoch.
    pub fn not_before(&self) -> Option<i64> {
        self.nbf
    }

    /// `iat`: when the token was issued, in seconds since the Unix epoch.
    pub fn issued_at(&self) -> Option<i64> {
        self.iat
    }

    /// `jti`: the token's unique id, which revocation uses.
    pub fn token_id(&self) -> Option<&str> {
        self.text(self.jti.as_ref())
    }

    /// `cnf`: the key the token is bound to, for a sender-constrained token (DPoP, or a TLS client
    /// certificate). A token with `cnf` is refused as a bearer token.
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.cnf.as_deref()
    }

    /// The claims set these were read from: empty for claims that were not read from a token.
    pub(crate) fn json(&self) -> &str {
        &self.json
    }

    fn text<'a>(&'a self, text: Option<&'a Text>) -> Option<&'a str> {
        text.map(|text| text.get(&self.json))
    }
}

impl fmt::Debug for RegisteredClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClaims")
            .field("iss", &self.issuer())
            .field("sub", &self.subject())
            .field("aud", &self.audience().collect::<Vec<_>>())
            .field("exp", &self.exp)
            .field("nbf", &self.nbf)
            .field("iat", &self.iat)
            .field("jti", &self.token_id())
            .field("cnf", &self.cnf)
            .finish()
    }
}

/// Equal when every registered claim is, whatever else the claims sets hold.
impl PartialEq for RegisteredClaims {
    fn eq(&self, other: &Self) -> bool {
        self.issuer() == other.issuer()
            && self.subject() == other.subject()
            && self.audience().eq(other.audience())
            && (self.exp, self.nbf, self.iat) == (other.exp, other.nbf, other.iat)
            && self.token_id() == other.token_id()
            && self.cnf == other.cnf
    }
}

impl Eq for RegisteredClaims {}

/// A registered claim's string: where it lies in the claims set, or, written with escapes, its text.
#[derive(Clone)]
pub(crate) enum Text {
    Span { start: usize, end: usize },
    Unescaped(Box<str>),
}

impl Text {
    /// The text of a string that was not read from a claims set (tests, and claims built by hand).
    #[cfg(test)]
    pub(crate) fn owned(text: &str) -> Self {
        Self::Unescaped(text.into())
    }

    fn get<'a>(&'a self, json: &'a str) -> &'a str {
        match self {
            // The span was taken from this very claims set, on a character boundary, so it is always there.
            Self::Span { start, end } => {
                debug_assert!(json.get(*start..*end).is_some(), "a span of another claims set");
                json.get(*start..*end).unwrap_or_default()
            }
            Self::Unescaped(text) => text,
        }
    }

    /// `text`, read from the claims set `json`: a span of it when `text` lies in it (a string without escapes,
    /// borrowed by serde_json), a copy otherwise.
    fn of(json: &str, text: Cow<'_, str>) -> Self {
        let span = match &text {
            Cow::Borrowed(text) => span_of(json, text),
            Cow::Owned(_) => None,
        };
        match span {
            Some((start, end)) => Self::Span { start, end },
            None => Self::Unescaped(text.into()),
        }
    }
}

/// Where `inner`, a slice that serde_json borrowed from `outer`, lies in it; `None` when it is not a slice of
/// `outer`. Addresses are compared, not text: the same text may appear earlier in the claims set.
fn span_of(outer: &str, inner: &str) -> Option<(usize, usize)> {
    let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
    let end = start.checked_add(inner.len())?;
    let slice = outer.get(start..end)?;
    std::ptr::eq(slice, inner).then_some((start, end))
}

/// `aud`: one string, the common case, or an array of them.
#[derive(Clone)]
pub(crate) enum Audiences {
    One(Text),
    Many(Vec<Text>),
}

/// The claims set as its top-level members, each value still raw JSON: what authority mappings and claim
/// policies read, when they are asked.
pub(crate) struct RawClaims<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawClaims<'a> {
    /// Reads the members of the claims set `json`. It is a `str`, checked as UTF-8 once for the whole: the
    /// raw values are then borrowed without another check each.
    pub(crate) fn parse(json: &'a str) -> Result<Self, ErrorKind> {
        let members = serde_json::from_str::<Members<'a>>(json).map_err(|_| ErrorKind::Malformed)?.0;
        if has_duplicates(&members.iter().map(|(name, _)| name.as_ref()).collect::<Vec<_>>()) {
            // RFC 7519 §4: claim names must be unique. Refusing duplicates means no two readers of the token
            // can disagree about which value counts.
            return Err(ErrorKind::Malformed);
        }
        Ok(Self { members })
    }

    /// The raw value of the top-level member `name`.
    pub(crate) fn member(&self, name: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, value)| *value)
    }
}

/// Whether a name appears twice: pairwise for a few, sorted for many, so that a token of thousands of tiny
/// members costs no more than sorting them.
fn has_duplicates(names: &[&str]) -> bool {
    if names.len() <= 32 {
        names.iter().enumerate().any(|(i, a)| names[..i].contains(a))
    } else {
        let mut names = names.to_vec();
        names.sort_unstable();
        names.windows(2).any(|pair| pair[0] == pair[1])
    }
}

impl RegisteredClaims {
    /// Reads the registered claims from the claims set `json`, checking each one's type and that no member
    /// name appears twice. Other members are skipped, their JSON checked but not kept.
    pub(crate) fn parse(json: String) -> Result<Self, ErrorKind> {
        parse_claims::<IgnoredAny>(json).map(|(_, registered)| registered)
    }
}

/// Deserializes the custom claims `C` from the claims set `json` in one pass, and reads the registered claims
/// on the way: each member's name is read once, and each value once, by `C` (a registered claim's value is
/// also read, from its raw JSON, into its registered type). The registered claims keep `json`.
///
/// Errors: a registered claim of the wrong type is [`ErrorKind::InvalidClaim`] with its name, a member named
/// twice or JSON that is not an object is [`ErrorKind::Malformed`], and claims that `C` refuses are
/// `InvalidClaim { claim: "claims" }`.
pub(crate) fn parse_claims<C: de::DeserializeOwned>(json: String) -> Result<(C, RegisteredClaims), ErrorKind> {
    let (claims, mut registered) = read_claims(&json)?;
    registered.json = json;
    Ok((claims, registered))
}

fn read_claims<C: de::DeserializeOwned>(json: &str) -> Result<(C, RegisteredClaims), ErrorKind> {
    let mut reading = Reading::new(json);
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let claims = C::deserialize(ClaimsDeserializer { inner: &mut deserializer, reading: &mut reading })
        .and_then(|claims| deserializer.end().map(|()| claims));
    match claims {
        // A claims type whose own `Deserialize` swallowed jwtgate's error has not made the claims valid.
        Ok(_) if reading.failed.is_some() => Err(reading.failed.unwrap_or(ErrorKind::Malformed)),
        Ok(claims) => Ok((claims, reading.finish()?)),
        Err(_) if reading.failed.is_some() => Err(reading.failed.unwrap_or(ErrorKind::Malformed)),
        // `C` refused a claims set that is a JSON object.
        Err(error) if error.is_data() && reading.object => Err(ErrorKind::InvalidClaim { claim: "claims" }),
        Err(_) => Err(ErrorKind::Malformed),
    }
}

/// What one pass over the claims set has found so far.
struct Reading<'de> {
    /// The claims set being read, which the registered claims' spans point into.
    json: &'de str,
    registered: RegisteredClaims,
    /// Each member's name, to find one given twice.
    names: NameSet<'de>,
    /// Whether a member other than a registered claim was given twice: refused at the end, as before, so
    /// that what `C` refuses first is still what the caller is told.
    duplicate: bool,
    /// Why the pass stopped, when jwtgate (not `C`, not the JSON syntax) stopped it.
    failed: Option<ErrorKind>,
    /// Whether the claims set is a JSON object: anything else is malformed, whatever `C` would make of it.
    object: bool,
}

impl<'de> Reading<'de> {
    fn new(json: &'de str) -> Self {
        Self {
            json,
            registered: RegisteredClaims::default(),
            names: NameSet::default(),
            duplicate: false,
            failed: None,
            object: false,
        }
    }

    /// Notes a member's name; returns it when it is a registered claim, whose value must be read too.
    fn name(&mut self, name: Name<'de>) -> Result<Option<&'static str>, ErrorKind> {
        let registered = match name.0.as_ref() {
            "iss" => Some("iss"),
            "sub" => Some("sub"),
            "aud" => Some("aud"),
            "exp" => Some("exp"),
            "nbf" => Some("nbf"),
            "iat" => Some("iat"),
            "jti" => Some("jti"),
            "cnf" => Some("cnf"),
            _ => None,
        };
        if registered.is_none() {
            self.duplicate |= !self.names.insert(name);
        } else if !self.names.insert_checked(name) {
            // A registered claim named twice is refused before its second value is read.
            return Err(ErrorKind::Malformed);
        }
        Ok(registered)
    }

    /// Reads the value of the registered claim `claim` from its raw JSON, which serde_json has checked and
    /// which lies in the claims set.
    fn value(&mut self, claim: &'static str, raw: &'de str) -> Result<(), ErrorKind> {
        let invalid = ErrorKind::InvalidClaim { claim };
        let json = self.json;
        let claims = &mut self.registered;
        let string = || match plain_string(raw) {
            Some(text) => Ok(Text::of(json, Cow::Borrowed(text))),
            None => serde_json::from_str::<Name<'de>>(raw).map(|name| Text::of(json, name.0)).map_err(|_| invalid),
        };
        let date = || match raw.parse::<i64>() {
            Ok(secs) => Ok(NumericDate::Int(secs)),
            Err(_) => serde_json::from_str::<NumericDate>(raw).map_err(|_| invalid),
        };
        match claim {
            "iss" => claims.iss = Some(string()?),
            "sub" => claims.sub = Some(string()?),
            "jti" => claims.jti = Some(string()?),
            "aud" => {
                claims.aud = Some(match plain_string(raw) {
                    Some(text) => Audiences::One(Text::of(json, Cow::Borrowed(text))),
                    None => match serde_json::from_str::<Audience<'de>>(raw).map_err(|_| invalid)? {
                        Audience::One(text) => Audiences::One(Text::of(json, text)),
                        Audience::Many(texts) => {
                            Audiences::Many(texts.into_iter().map(|text| Text::of(json, text)).collect())
                        }
                    },
                });
            }
            "exp" => claims.exp = Some(date()?.floor()),
            "nbf" => claims.nbf = Some(date()?.ceil()),
            "cnf" => claims.cnf = Some(Box::new(confirmation(raw).ok_or(invalid)?)),
            _ => claims.iat = Some(date()?.ceil()),
        }
        Ok(())
    }

    /// The registered claims, once every member was read. RFC 7519 §4: claim names must be unique. Refusing
    /// duplicates means no two readers of the token can disagree about which value counts.
    fn finish(self) -> Result<RegisteredClaims, ErrorKind> {
        if self.duplicate || self.names.has_duplicates() { Err(ErrorKind::Malformed) } else { Ok(self.registered) }
    }

    fn fail<E: de::Error>(&mut self, kind: ErrorKind) -> E {
        self.failed = Some(kind);
        E::custom(format_args!("{kind:?}"))
    }
}

/// How many names a [`NameSet`] checks as they come.
const CHECKED_AT_ONCE: usize = 32;

/// The member names of one JSON object, to refuse a name given twice (RFC 7519 §4, RFC 7515 §4).
///
/// The first [`CHECKED_AT_ONCE`] names are checked as they come: a 128-bit filter of fingerprints says "not
/// seen" for nearly every name without a comparison, and only a fingerprint that matches compares strings.
/// Those names are kept on the stack, borrowed from the JSON, unless they were written with escapes. Beyond
/// (rare, and what a hostile token sends), the names are checked once, at the end, by sorting, so that the
/// cost stays n log n whatever the input.
pub(crate) struct NameSet<'de> {
    /// The first names without escapes, as borrowed from the JSON.
    borrowed: [&'de str; CHECKED_AT_ONCE],
    borrowed_len: usize,
    /// The first names written with escapes, which serde_json unescaped into strings of their own.
    unescaped: Vec<String>,
    /// The names beyond the first, checked at the end.
    rest: Vec<Cow<'de, str>>,
    filter: u128,
}

impl Default for NameSet<'_> {
    fn default() -> Self {
        Self { borrowed: [""; CHECKED_AT_ONCE], borrowed_len: 0, unescaped: Vec::new(), rest: Vec::new(), filter: 0 }
    }
}

impl<'de> NameSet<'de> {
    /// Notes `name`; `false` when it was seen already. Beyond the names checked at once it always answers
    /// `true`: ask [`has_duplicates`](Self::has_duplicates) at the end.
    pub(crate) fn insert(&mut self, name: Name<'de>) -> bool {
        self.insert_with(name.0, false)
    }

    /// Notes `name`; `false` when it was seen already, however many names there are.
    pub(crate) fn insert_checked(&mut self, name: Name<'de>) -> bool {
        self.insert_with(name.0, true)
    }

    fn insert_with(&mut self, name: Cow<'de, str>, always: bool) -> bool {
        if self.borrowed_len + self.unescaped.len() == CHECKED_AT_ONCE {
            let seen = always && self.names().any(|other| other == name);
            self.rest.push(name);
            return !seen;
        }
        let bit = 1u128 << fingerprint(&name);
        let seen = self.filter & bit != 0 && self.names().any(|other| other == name);
        self.filter |= bit;
        match name {
            Cow::Borrowed(name) => {
                self.borrowed[self.borrowed_len] = name;
                self.borrowed_len += 1;
            }
            Cow::Owned(name) => self.unescaped.push(name),
        }
        !seen
    }

    /// Whether a name was noted twice, among those [`insert`](Self::insert) did not check at once.
    pub(crate) fn has_duplicates(&self) -> bool {
        !self.rest.is_empty() && has_duplicates(&self.names().collect::<Vec<_>>())
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        let borrowed = self.borrowed[..self.borrowed_len].iter().copied();
        borrowed.chain(self.unescaped.iter().map(String::as_str)).chain(self.rest.iter().map(AsRef::as_ref))
    }
}

/// A name's bit in a [`NameSet`]'s filter, 0 to 127: the top bits of FNV-1a, which depend on every byte.
/// Equal names have equal bits. It only spares string comparisons; two names are the same only when the
/// strings are.
fn fingerprint(name: &str) -> u32 {
    let hash = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    (hash >> 57) as u32
}

/// The text of a JSON string without escapes, the common case, read without a parser; `None` for anything
/// else. `json` is one value serde_json has already checked.
fn plain_string(json: &str) -> Option<&str> {
    let text = json.strip_prefix('"')?.strip_suffix('"')?;
    (!text.contains('\\')).then_some(text)
}

/// The claims set, as `C` sees it: serde_json's deserializer, with every member passing [`Reading`] on its
/// way to `C`.
struct ClaimsDeserializer<'r, 'de> {
    inner: &'r mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
    reading: &'r mut Reading<'de>,
}

impl<'de> Deserializer<'de> for ClaimsDeserializer<'_, 'de> {
    type Error = serde_json::Error;

    /// Whatever `C` asks for, the claims set is a map: `C` reads it as one, or refuses it.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_map(ClaimsVisitor { visitor, reading: self.reading })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct ClaimsVisitor<'r, 'de, V> {
    visitor: V,
    reading: &'r mut Reading<'de>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for ClaimsVisitor<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.reading.object = true;
        self.visitor.visit_map(ClaimsMap { map, reading: self.reading, registered: None })
    }
}

struct ClaimsMap<'r, 'de, A> {
    map: A,
    reading: &'r mut Reading<'de>,
    /// The registered claim whose value comes next, if the last name was one.
    registered: Option<&'static str>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for ClaimsMap<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(name) = self.map.next_key::<Name<'de>>()? else { return Ok(None) };
        let key = match &name.0 {
            Cow::Borrowed(name) => seed.deserialize(de::value::BorrowedStrDeserializer::new(name)),
            Cow::Owned(name) => seed.deserialize(de::value::StrDeserializer::new(name)),
        }?;
        self.registered = self.reading.name(name).map_err(|kind| self.reading.fail::<A::Error>(kind))?;
        Ok(Some(key))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let Some(claim) = self.registered.take() else { return self.map.next_value_seed(seed) };
        let raw = self.map.next_value::<&'de RawValue>()?;
        self.reading.value(claim, raw.get()).map_err(|kind| self.reading.fail::<A::Error>(kind))?;
        seed.deserialize(raw).map_err(de::Error::custom)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// `aud`: a string, or an array of strings, each borrowed from the claims set when it has no escapes.
enum Audience<'de> {
    One(Cow<'de, str>),
    Many(Vec<Cow<'de, str>>),
}

impl<'de> Deserialize<'de> for Audience<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;

        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Audience::One(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience::One(Cow::Owned(v.to_owned())))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut audiences = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(audience) = seq.next_element::<Name<'de>>()? {
                    audiences.push(audience.0);
                }
                Ok(Audience::Many(audiences))
            }
        }

        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// A NumericDate (RFC 7519 §2): an integer or a float number of seconds.
enum NumericDate {
    Int(i64),
    Float(f64),
}

impl NumericDate {
    fn floor(self) -> i64 {
        match self {
            Self::Int(secs) => secs,
            // `as` saturates, so huge values become i64::MAX or MIN instead of wrapping.
            Self::Float(secs) => secs.floor() as i64,
        }
    }

    fn ceil(self) -> i64 {
        match self {
            Self::Int(secs) => secs,
            Self::Float(secs) => secs.ceil() as i64,
        }
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumericDateVisitor;

        impl Visitor<'_> for NumericDateVisitor {
            type Value = NumericDate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(NumericDate::Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(NumericDate::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() { Ok(NumericDate::Float(v)) } else { Err(E::custom("not a finite number")) }
            }
        }

        deserializer.deserialize_any(NumericDateVisitor)
    }
}

/// The top-level members of a JSON object, names unescaped, values raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(name) = map.next_key::<Name<'de>>()? {
                    members.push((name.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A string borrowed from the input when it has no escapes, owned when it does. Unescaping matters: a claim
/// written `"\u0065xp"` is `exp`, and must not slip past the checks under another name.
pub(crate) struct Name<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(json: &str) -> Result<RegisteredClaims, ErrorKind> {
        RegisteredClaims::parse(json.to_owned())
    }

    fn parse_claims<C: de::DeserializeOwned>(json: &str) -> Result<(C, RegisteredClaims), ErrorKind> {
        super::parse_claims(json.to_owned())
    }

    #[test]
    fn cnf_keeps_the_methods_jwtgate_checks() {
        let claims = registered(r#"{"cnf":{"jkt":"abc","x5t#S256":"def","kid":"k"}}"#).unwrap();
        let cnf = claims.confirmation().unwrap();
        assert_eq!((cnf.jwk_thumbprint(), cnf.certificate_thumbprint()), (Some("abc"), Some("def")));
        let other = registered(r#"{"cnf":{"jwk":{"kty":"EC"}}}"#).unwrap();
        assert_eq!(other.confirmation(), Some(&Confirmation::default()), "bound, by nothing jwtgate checks");
        assert_eq!(registered("{}").unwrap().confirmation(), None);
    }

    #[test]
    fn wrong_types_are_invalid_never_absent() {
        for (json, claim) in [
            (r#"{"exp":null}"#, "exp"),
            (r#"{"exp":"1700000000"}"#, "exp"),
            (r#"{"nbf":true}"#, "nbf"),
            (r#"{"iat":[1]}"#, "iat"),
            (r#"{"iss":["a"]}"#, "iss"),
            (r#"{"iss":null}"#, "iss"),
            (r#"{"sub":1}"#, "sub"),
            (r#"{"jti":{}}"#, "jti"),
            (r#"{"aud":1}"#, "aud"),
            (r#"{"aud":null}"#, "aud"),
            (r#"{"aud":["a",1]}"#, "aud"),
            (r#"{"cnf":null}"#, "cnf"),
            (r#"{"cnf":["x"]}"#, "cnf"),
            (r#"{"cnf":{"jkt":null}}"#, "cnf"),
            (r#"{"cnf":{"x5t#S256":1}}"#, "cnf"),
        ] {
            assert_eq!(registered(json), Err(ErrorKind::InvalidClaim { claim }), "{json}");
        }
    }

    #[test]
    fn numeric_dates_accept_floats_rounded_to_the_strict_side() {
        let claims = registered(r#"{"exp":100.9,"nbf":10.1,"iat":5.5}"#).unwrap();
        assert_eq!((claims.exp, claims.nbf, claims.iat), (Some(100), Some(11), Some(6)));
        let claims = registered(r#"{"exp":1e300,"nbf":-1e300}"#).unwrap();
        assert_eq!((claims.exp, claims.nbf), (Some(i64::MAX), Some(i64::MIN)));
        assert_eq!(registered(r#"{"exp":18446744073709551615}"#).unwrap().exp, Some(i64::MAX));
    }

    #[test]
    fn audience_is_a_string_or_an_array_of_strings() {
        assert!(registered(r#"{"aud":"a"}"#).unwrap().audience().eq(["a"]));
        assert!(registered(r#"{"aud":["a","b"]}"#).unwrap().audience().eq(["a", "b"]));
        assert_eq!(registered(r#"{"aud":[]}"#).unwrap().audience().len(), 0);
        assert_eq!(registered("{}").unwrap().audience().len(), 0);
    }

    #[test]
    fn strings_are_spans_of_the_claims_set_unless_written_with_escapes() {
        let json = r#"{"iss":"https://issuer","sub":"s\u00e9b","aud":["a","b\"c"],"jti":"t1","x":"iss"}"#;
        let claims = registered(json).unwrap();
        assert_eq!(claims.issuer(), Some("https://issuer"));
        assert_eq!(claims.subject(), Some("s\u{e9}b"));
        assert!(claims.audience().eq(["a", "b\"c"]));
        assert_eq!(claims.token_id(), Some("t1"));
        assert!(matches!(claims.iss, Some(Text::Span { .. })) && matches!(claims.jti, Some(Text::Span { .. })));
        assert!(matches!(claims.sub, Some(Text::Unescaped(_))));
        assert_eq!(claims.json(), json);
        // A single audience with escapes, and one without.
        assert!(registered(r#"{"aud":"\u0061"}"#).unwrap().audience().eq(["a"]));
        assert!(registered(r#"{"aud":"a"}"#).unwrap().audience().eq(["a"]));
        // A copy of the claims compares equal, and claims with other values do not.
        assert_eq!(claims.clone(), claims);
        assert_ne!(registered(r#"{"sub":"a"}"#).unwrap(), registered(r#"{"sub":"b"}"#).unwrap());
        assert_eq!(registered(r#"{"sub":"a","x":1}"#).unwrap(), registered(r#"{"x":2,"sub":"a"}"#).unwrap());
    }

    #[test]
    fn a_span_is_taken_only_from_a_slice_of_the_claims_set() {
        let json = "{\"sub\":\"abc\"}";
        assert_eq!(span_of(json, &json[8..11]), Some((8, 11)));
        // Equal text elsewhere in memory is no span of it.
        let elsewhere = String::from("abc");
        assert_eq!(span_of(json, &elsewhere), None);
        assert!(matches!(Text::of(json, Cow::Borrowed(&elsewhere)), Text::Unescaped(_)));
    }

    #[test]
    fn escaped_names_are_the_claims_they_spell() {
        let claims = registered(r#"{"\u0065xp":5,"n\u0062f":"x"}"#);
        assert_eq!(claims, Err(ErrorKind::InvalidClaim { claim: "nbf" }));
    }

    #[test]
    fn a_name_set_finds_every_duplicate_at_once_or_at_the_end() {
        let name = |text: String| Name(Cow::Owned(text));
        // Up to 32 names, at once; the filter's false alarms (the same bit) are told apart by the strings.
        let mut set = NameSet::default();
        for i in 0..32 {
            assert!(set.insert(name(format!("claim{i}"))), "claim{i}");
        }
        assert!(!set.has_duplicates());
        let mut set = NameSet::default();
        assert!(set.insert(name("a".into())));
        assert!(!set.insert(name("a".into())), "a name given twice");
        // Beyond 32 names, at the end, by sorting.
        let mut set = NameSet::default();
        for i in 0..40 {
            assert!(set.insert(name(format!("claim{i}"))));
        }
        assert!(!set.has_duplicates());
        assert!(set.insert(name("claim3".into())), "not checked at once past 32 names");
        assert!(set.has_duplicates());
        assert!(!set.insert_checked(name("claim39".into())), "checked on demand past 32 names");
        assert!(set.insert_checked(name("claim40".into())));
    }

    #[test]
    fn duplicate_names_are_malformed() {
        assert_eq!(registered(r#"{"exp":1,"exp":2}"#).err(), Some(ErrorKind::Malformed));
        assert_eq!(registered(r#"{"exp":1,"\u0065xp":2}"#).err(), Some(ErrorKind::Malformed));
        let many: Vec<String> = (0..40).map(|i| format!("\"c{i}\":{i}")).chain(["\"c3\":0".into()]).collect();
        assert_eq!(registered(&format!("{{{}}}", many.join(","))).err(), Some(ErrorKind::Malformed));
        // A registered claim named twice past the first 32 names is refused before its second value is read.
        let many: Vec<String> = (0..40).map(|i| format!("\"c{i}\":{i}")).collect();
        let json = format!("{{{},\"exp\":1,\"exp\":\"x\"}}", many.join(","));
        assert_eq!(registered(&json).err(), Some(ErrorKind::Malformed));
    }

    #[test]
    fn the_claims_set_must_be_an_object() {
        for json in ["[]", "1", "\"x\"", "null", "{", "{} x"] {
            assert_eq!(registered(json).err(), Some(ErrorKind::Malformed), "{json}");
        }
    }

    #[test]
    fn one_pass_gives_the_custom_claims_every_member_and_the_registered_claims() {
        #[derive(Deserialize, PartialEq, Debug)]
        struct Custom {
            sub: String,
            exp: i64,
            roles: Vec<String>,
        }
        let json = r#"{"sub":"u","roles":["a"],"\u0065xp":7,"aud":["x","y"],"other":{"deep":[1,2]}}"#;
        let (custom, registered) = parse_claims::<Custom>(json).unwrap();
        assert_eq!(custom, Custom { sub: "u".into(), exp: 7, roles: vec!["a".into()] });
        assert_eq!((registered.subject(), registered.exp), (Some("u"), Some(7)));
        assert!(registered.audience().eq(["x", "y"]));
        let (value, _) = parse_claims::<serde_json::Value>(json).unwrap();
        assert_eq!(value["exp"], 7);
        assert_eq!(value["other"]["deep"][1], 2);
    }

    #[test]
    fn the_custom_claims_cannot_hide_a_bad_registered_claim() {
        // `C` would take any value, but the registered claim's own type is checked all the same.
        assert_eq!(
            parse_claims::<serde_json::Value>(r#"{"exp":"soon"}"#).err(),
            Some(ErrorKind::InvalidClaim { claim: "exp" })
        );
        #[derive(Deserialize, Debug)]
        #[allow(dead_code, reason = "deserialized only")]
        struct NeedsTenant {
            tenant: String,
        }
        assert_eq!(
            parse_claims::<NeedsTenant>(r#"{"exp":1}"#).err(),
            Some(ErrorKind::InvalidClaim { claim: "claims" })
        );
        assert_eq!(parse_claims::<serde_json::Value>(r#"{"a":1,"b":2,"a":3}"#).err(), Some(ErrorKind::Malformed));
        assert_eq!(parse_claims::<String>(r#""a string""#).err(), Some(ErrorKind::Malformed));
        assert_eq!(parse_claims::<serde_json::Value>(r#"{"a":1} x"#).err(), Some(ErrorKind::Malformed));
    }

    #[test]
    fn a_claims_type_that_swallows_errors_cannot_make_a_bad_claim_pass() {
        /// Reads every member and ignores any it cannot read, as a careless hand-written `Deserialize` might.
        #[derive(Debug)]
        struct Lenient;

        impl<'de> Deserialize<'de> for Lenient {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct LenientVisitor;
                impl<'de> Visitor<'de> for LenientVisitor {
                    type Value = Lenient;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("anything")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lenient, A::Error> {
                        while let Ok(Some(_)) = map.next_key::<IgnoredAny>() {
                            let _ = map.next_value::<IgnoredAny>();
                        }
                        Ok(Lenient)
                    }
                }
                deserializer.deserialize_map(LenientVisitor)
            }
        }

        assert_eq!(
            parse_claims::<Lenient>(r#"{"sub":"x","exp":"never"}"#).err(),
            Some(ErrorKind::InvalidClaim { claim: "exp" })
        );
        assert_eq!(parse_claims::<Lenient>(r#"{"exp":1,"exp":2}"#).err(), Some(ErrorKind::Malformed));
        assert!(parse_claims::<Lenient>(r#"{"sub":"x","exp":1}"#).is_ok());
    }
}
