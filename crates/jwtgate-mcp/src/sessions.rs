//! Sessions bound to the principal that opened them.

use std::sync::Arc;

use http::{HeaderValue, Method, Response};
use jwtgate_core::Principal;
use quick_cache::sync::Cache;

use crate::SESSION_HEADER;

/// Who opened a session: the token's issuer and subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    issuer: Option<String>,
    subject: String,
}

impl Owner {
    /// The owner `principal` would be; `None` for a principal without a subject, which can own nothing.
    pub(crate) fn of(principal: &Principal) -> Option<Self> {
        let subject = principal.subject()?.to_owned();
        Some(Self { issuer: principal.claim::<String>("iss"), subject })
    }
}

/// The owners of the sessions the server opened, by session id, bounded.
pub(crate) struct Sessions {
    owners: Cache<HeaderValue, Arc<Owner>>,
}

impl Sessions {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { owners: Cache::new(capacity.max(1)) }
    }

    /// Whether the session `id` was opened by `owner`. An unknown session, or one forgotten to make room,
    /// is nobody's.
    pub(crate) fn is_owned_by(&self, id: &HeaderValue, owner: Option<&Owner>) -> bool {
        match (self.owners.get(id), owner) {
            (Some(known), Some(owner)) => *known == *owner,
            _ => false,
        }
    }

    /// Learns from the server's answer: a session it opened belongs to `owner`, and a session it ended
    /// belongs to no one any more.
    pub(crate) fn after<B>(
        &self,
        method: &Method,
        session: Option<&HeaderValue>,
        response: &Response<B>,
        owner: Option<Owner>,
    ) {
        if !response.status().is_success() {
            return;
        }
        match (session, response.headers().get(SESSION_HEADER)) {
            (None, Some(opened)) => {
                if let Some(owner) = owner {
                    self.owners.insert(opened.clone(), Arc::new(owner));
                }
            }
            (Some(id), _) if method == Method::DELETE => {
                self.owners.remove(id);
            }
            _ => {}
        }
    }
}
