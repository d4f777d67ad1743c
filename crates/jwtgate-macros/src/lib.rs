//! `#[require(...)]`: policy guards as attributes on axum handlers and tonic service methods.
//!
//! Use it through the `jwtgate` facade, which re-exports it:
//!
//! ```
//! use axum::Json;
//! use jwtgate::require;
//! use serde_json::Value;
//!
//! #[require(role = "admin")]
//! async fn delete_user() -> &'static str { "deleted" }
//!
//! #[require(any(role = "admin", all(scope = "orders:write", claim(tenant = "acme"))))]
//! async fn create_order(Json(order): Json<Value>) -> Json<Value> { Json(order) }
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/users/{id}", axum::routing::delete(delete_user))
//!     .route("/orders", axum::routing::post(create_order));
//! ```
//!
//! On an axum handler the attribute adds a `Require<_>` guard extractor as the first argument, so the
//! policy is checked before any other extractor reads the request; the return type and the body are left
//! as they are, so it composes with `#[debug_handler]` and other attributes. On a tonic method (one with a
//! `self` receiver and a `Request<T>` parameter) it checks the request's principal before the body runs,
//! returning `Status::permission_denied` or `Status::unauthenticated`.
//!
//! The policy language: `role = "..."`, `scope = "..."`, `permission = "..."`, `claim(name = value)`,
//! `claim(name)` (present), `any(...)`, `all(...)`, `not(...)`, and step-up (RFC 9470): `acr = "..."` or
//! `acr = ["...", "..."]` (one of them), and `max_auth_age = 300` (seconds since `auth_time`). Several
//! policies separated by commas must all hold. Claim names that are not identifiers are written as strings:
//! `claim("cognito:groups")`.
//!
//! ```
//! use jwtgate::require;
//!
//! // A token without `acr` = `urn:example:mfa`, or signed in more than 5 minutes ago, gets 401
//! // `insufficient_user_authentication` with `acr_values` and `max_age`, not 403.
//! #[require(scope = "payments:write", acr = "urn:example:mfa", max_auth_age = 300)]
//! async fn pay() -> &'static str { "paid" }
//! # let _: axum::Router = axum::Router::new().route("/pay", axum::routing::post(pay));
//! ```

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, FnArg, Ident, ItemFn, Lit, LitStr, Pat, Stmt, Token, parenthesized, parse_macro_input, parse_quote};

/// Requires a policy before an axum handler or a tonic method runs. See the crate documentation.
#[proc_macro_attribute]
pub fn require(attr: TokenStream, item: TokenStream) -> TokenStream {
    let policy = parse_macro_input!(attr as TopLevel).0;
    let function = parse_macro_input!(item as ItemFn);
    match expand(&policy, function) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// One expression of the policy language.
enum PolicyExpr {
    Authority { kind: Ident, value: LitStr },
    ClaimEquals { name: LitStr, value: Lit },
    ClaimPresent { name: LitStr },
    Acr(Vec<LitStr>),
    MaxAuthAge(u64),
    Any(Vec<PolicyExpr>),
    All(Vec<PolicyExpr>),
    Not(Box<PolicyExpr>),
}

const KEYS: [&str; 9] = ["role", "scope", "permission", "claim", "acr", "max_auth_age", "any", "all", "not"];

impl Parse for PolicyExpr {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        match key.to_string().as_str() {
            "role" | "scope" | "permission" => {
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse().map_err(|err| {
                    syn::Error::new(err.span(), format!("`{key}` takes a string, as in `{key} = \"...\"`"))
                })?;
                Ok(Self::Authority { kind: key, value })
            }
            "acr" => {
                input.parse::<Token![=]>()?;
                const VALUE: &str = "`acr` takes a string or a list of strings, as in `acr = \"urn:example:mfa\"`";
                let values = if input.peek(syn::token::Bracket) {
                    let content;
                    syn::bracketed!(content in input);
                    Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
                        .map_err(|err| syn::Error::new(err.span(), VALUE))?
                        .into_iter()
                        .collect()
                } else {
                    vec![input.parse::<LitStr>().map_err(|err| syn::Error::new(err.span(), VALUE))?]
                };
                if values.is_empty() {
                    return Err(syn::Error::new(key.span(), "`acr` needs at least one value"));
                }
                Ok(Self::Acr(values))
            }
            "max_auth_age" => {
                input.parse::<Token![=]>()?;
                const VALUE: &str = "`max_auth_age` takes whole seconds, as in `max_auth_age = 300`";
                let seconds: syn::LitInt = input.parse().map_err(|err| syn::Error::new(err.span(), VALUE))?;
                Ok(Self::MaxAuthAge(seconds.base10_parse().map_err(|err| syn::Error::new(err.span(), VALUE))?))
            }
            "claim" => {
                let content;
                parenthesized!(content in input);
                let name = if content.peek(LitStr) {
                    content.parse::<LitStr>()?
                } else {
                    let ident: Ident = content.parse()?;
                    LitStr::new(&ident.to_string(), ident.span())
                };
                let policy = if content.peek(Token![=]) {
                    content.parse::<Token![=]>()?;
                    const VALUE: &str = "a claim value is a string, integer, float or bool literal";
                    let value: Lit = content.parse().map_err(|err| syn::Error::new(err.span(), VALUE))?;
                    if !matches!(value, Lit::Str(_) | Lit::Int(_) | Lit::Bool(_) | Lit::Float(_)) {
                        return Err(syn::Error::new(value.span(), VALUE));
                    }
                    Self::ClaimEquals { name, value }
                } else {
                    Self::ClaimPresent { name }
                };
                if !content.is_empty() {
                    return Err(content.error("expected `claim(name)` or `claim(name = value)`"));
                }
                Ok(policy)
            }
            "any" | "all" => {
                let content;
                parenthesized!(content in input);
                let items = Punctuated::<PolicyExpr, Token![,]>::parse_terminated(&content)?.into_iter().collect();
                Ok(if key == "any" { Self::Any(items) } else { Self::All(items) })
            }
            "not" => {
                let content;
                parenthesized!(content in input);
                let inner: PolicyExpr = content.parse()?;
                if !content.is_empty() {
                    return Err(content.error("`not` takes one policy"));
                }
                Ok(Self::Not(Box::new(inner)))
            }
            other => {
                let hint = KEYS
                    .iter()
                    .find(|known| distance(other, known) <= 2)
                    .map(|known| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                Err(syn::Error::new(
                    key.span(),
                    format!("unknown policy `{other}`{hint}; expected one of {}", KEYS.join(", ")),
                ))
            }
        }
    }
}

/// The attribute's arguments: one or more policies, which must all hold.
struct TopLevel(PolicyExpr);

impl Parse for TopLevel {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "expected a policy, such as `#[require(role = \"admin\")]`",
            ));
        }
        let mut items: Vec<PolicyExpr> =
            Punctuated::<PolicyExpr, Token![,]>::parse_terminated(input)?.into_iter().collect();
        Ok(Self(if items.len() == 1 { items.remove(0) } else { PolicyExpr::All(items) }))
    }
}

impl ToTokens for PolicyExpr {
    fn to_tokens(&self, tokens: &mut TokenStream2) {
        let policy = quote!(::jwtgate::Policy);
        tokens.extend(match self {
            Self::Authority { kind, value } => quote!(#policy::#kind(#value)),
            Self::ClaimEquals { name, value } => quote!(#policy::claim_eq(#name, #value)),
            Self::ClaimPresent { name } => quote!(#policy::claim_present(#name)),
            Self::Acr(values) => quote!(#policy::acr([#(#values),*])),
            Self::MaxAuthAge(seconds) => quote!(#policy::max_auth_age(::std::time::Duration::from_secs(#seconds))),
            Self::Any(items) => quote!(#policy::any([#(#items),*])),
            Self::All(items) => quote!(#policy::all([#(#items),*])),
            Self::Not(inner) => quote!(#policy::not(#inner)),
        });
    }
}

/// The policy, built once, as a `&'static Policy` expression.
fn static_policy(policy: &PolicyExpr) -> TokenStream2 {
    quote! {{
        static POLICY: ::std::sync::LazyLock<::jwtgate::Policy> = ::std::sync::LazyLock::new(|| #policy);
        &*POLICY
    }}
}

fn expand(policy: &PolicyExpr, mut function: ItemFn) -> syn::Result<TokenStream2> {
    let receiver = function.sig.inputs.iter().any(|arg| matches!(arg, FnArg::Receiver(_)));
    if receiver {
        return expand_method(policy, function);
    }
    let guard = format_ident!("__JwtgateRequire_{}", function.sig.ident);
    let vis = &function.vis;
    let policy = static_policy(policy);
    function.sig.inputs.insert(0, parse_quote!(_: ::jwtgate::Require<#guard>));
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #guard;

        impl ::jwtgate::Guard for #guard {
            fn policy() -> &'static ::jwtgate::Policy {
                #policy
            }
        }

        #function
    })
}

/// A tonic method: check the request's principal first thing in the body.
fn expand_method(policy: &PolicyExpr, mut function: ItemFn) -> syn::Result<TokenStream2> {
    let request = function
        .sig
        .inputs
        .iter()
        .find_map(|arg| match arg {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Some(ident.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .ok_or_else(|| {
            syn::Error::new_spanned(&function.sig, "#[require] on a method needs a `request: Request<T>` parameter")
        })?;
    let policy = static_policy(policy);
    let check: Stmt = parse_quote! {
        if let ::std::result::Result::Err(status) = ::jwtgate::tonic::authorize(#request.extensions(), #policy) {
            return ::std::result::Result::Err(status);
        }
    };
    if function.sig.asyncness.is_some() {
        function.block.stmts.insert(0, check);
        return Ok(function.into_token_stream());
    }
    // `#[tonic::async_trait]` has already turned the method into `Box::pin(async move { .. })`.
    match async_body(&mut function) {
        Some(stmts) => {
            stmts.insert(0, check);
            Ok(function.into_token_stream())
        }
        None => Err(syn::Error::new_spanned(
            &function.sig,
            "#[require] on a method needs an `async fn` (or one that `#[tonic::async_trait]` has rewritten)",
        )),
    }
}

/// The statements of the `async` block in a body of the form `Box::pin(async move { .. })`.
fn async_body(function: &mut ItemFn) -> Option<&mut Vec<Stmt>> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = function.block.stmts.last_mut() else { return None };
    match call.args.first_mut() {
        Some(Expr::Async(block)) => Some(&mut block.block.stmts),
        _ => None,
    }
}

/// The edit distance between two short words, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}
