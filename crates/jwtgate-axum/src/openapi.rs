//! OpenAPI documents with [utoipa](https://docs.rs/utoipa): the Bearer JWT security scheme, and the security
//! requirement of the routes a guard protects, with the scopes its policy asks for.
//!
//! ```
//! use jwtgate_axum::openapi::{BearerRequired, protect};
//! use jwtgate_axum::{Guard, guard};
//! use jwtgate_core::Policy;
//! use utoipa::OpenApi;
//!
//! guard! {
//!     struct OrdersReader = Policy::scope("orders:read");
//! }
//!
//! /// Lists the orders.
//! #[utoipa::path(get, path = "/orders", responses((status = 200, description = "The orders")))]
//! async fn orders() {}
//!
//! #[derive(OpenApi)]
//! #[openapi(paths(orders), modifiers(&BearerRequired))]
//! struct ApiDoc;
//!
//! let mut doc = ApiDoc::openapi();
//! protect(&mut doc, "/orders", OrdersReader::policy());
//! let json = serde_json::to_value(&doc).unwrap();
//! assert_eq!(json["components"]["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
//! assert_eq!(json["paths"]["/orders"]["get"]["security"][0]["bearer"][0], "orders:read");
//! ```

use jwtgate_core::Policy;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

/// The name under which the scheme is registered, and which security requirements name.
pub const SCHEME: &str = "bearer";

/// Registers the Bearer JWT security scheme under [`SCHEME`]. Use it as a utoipa modifier:
/// `#[openapi(modifiers(&BearerSecurity))]`. Routes then name it through [`protect`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("A JSON Web Token in `Authorization: Bearer <token>` (RFC 6750)"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Registers the scheme, as [`BearerSecurity`] does, and requires it for every operation of the document: for
/// an API behind a `JwtAuthLayer` in required mode.
#[derive(Clone, Copy, Debug, Default)]
pub struct BearerRequired;

impl utoipa::Modify for BearerRequired {
    fn modify(&self, openapi: &mut OpenApi) {
        BearerSecurity.modify(openapi);
        openapi.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
    }
}

/// Marks every operation of `path` as requiring a token that satisfies `policy`. Each operation gets one
/// security requirement naming [`SCHEME`] per alternative of the policy's `any`s, with the scopes that
/// alternative needs ([`Policy::scope_alternatives`]); OpenAPI reads them as "one of these". An alternative
/// that asks for roles or claims only has no scopes, since OpenAPI cannot express those. Registers the
/// scheme too, if it is missing. A path the document does not have is left alone.
pub fn protect(openapi: &mut OpenApi, path: &str, policy: &Policy) {
    BearerSecurity.modify_if_missing(openapi);
    let requirements: Vec<SecurityRequirement> = policy
        .scope_alternatives()
        .into_iter()
        .map(|scopes| SecurityRequirement::new(SCHEME, scopes.into_iter().map(str::to_owned).collect::<Vec<_>>()))
        .collect();
    let Some(item) = openapi.paths.paths.get_mut(path) else { return };
    let operations: [&mut Option<Operation>; 8] = [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ];
    for operation in operations.into_iter().flatten() {
        operation.security = Some(requirements.clone());
    }
}

impl BearerSecurity {
    fn modify_if_missing(self, openapi: &mut OpenApi) {
        let registered =
            openapi.components.as_ref().is_some_and(|components| components.security_schemes.contains_key(SCHEME));
        if !registered {
            utoipa::Modify::modify(&self, openapi);
        }
    }
}
