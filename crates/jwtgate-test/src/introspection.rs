//! An in-process RFC 7662 introspection endpoint under the test's control: it vouches for the tokens you
//! register, answers `{"active":false}` for any other, counts every call, and can fail as [`Fault`] says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::Fault;

#[derive(Debug, Default)]
struct EndpointState {
    answers: HashMap<String, Value>,
    fault: Fault,
    calls: usize,
    last_authorization: Option<String>,
    last_form: Vec<(String, String)>,
}

/// The endpoint, at [`IntrospectionServer::url`]. It reads the form's `token` and answers what was registered
/// for it with [`answer`](Self::answer) or [`activate`](Self::activate), else `{"active":false}`.
#[derive(Clone, Debug)]
pub struct IntrospectionServer {
    addr: SocketAddr,
    state: Arc<Mutex<EndpointState>>,
}

impl IntrospectionServer {
    /// Serves the endpoint on a free loopback port, until the test's runtime ends.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        Self::start_on(listener)
    }

    /// Serves the endpoint at `addr`, chosen beforehand: for an endpoint that comes up after the server that
    /// calls it.
    pub async fn start_at(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the chosen address");
        Self::start_on(listener)
    }

    fn start_on(listener: tokio::net::TcpListener) -> Self {
        let state = Arc::new(Mutex::new(EndpointState::default()));
        let app = Router::new().route("/introspect", post(introspect)).with_state(state.clone());
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, state }
    }

    fn state(&self) -> MutexGuard<'_, EndpointState> {
        self.state.lock().expect("endpoint state")
    }

    /// `http://<addr>/introspect`.
    pub fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// Answers `claims` with `"active": true` for `token` from now on.
    pub fn activate(&self, token: &str, claims: Value) {
        let mut answer = json!({ "active": true });
        if let (Some(answer), Value::Object(claims)) = (answer.as_object_mut(), claims) {
            answer.extend(claims);
        }
        self.answer(token, answer);
    }

    /// Answers exactly `answer` for `token` from now on, whatever it is: for answers that are not valid.
    pub fn answer(&self, token: &str, answer: Value) {
        self.state().answers.insert(token.to_owned(), answer);
    }

    /// Forgets `token`: from now on it is not active, as after a revocation at the authorization server.
    pub fn revoke(&self, token: &str) {
        self.state().answers.remove(token);
    }

    /// Misbehaves from now on: [`Fault::Status`] answers that status with an empty body, [`Fault::Body`]
    /// answers 200 with that body, [`Fault::Delay`] waits before answering, [`Fault::Html`] answers as
    /// `text/html`.
    pub fn set_fault(&self, fault: Fault) {
        self.state().fault = fault;
    }

    /// The calls taken so far.
    pub fn calls(&self) -> usize {
        self.state().calls
    }

    /// The `Authorization` header of the last call, if it had one.
    pub fn last_authorization(&self) -> Option<String> {
        self.state().last_authorization.clone()
    }

    /// A field of the last call's form, decoded.
    pub fn last_form(&self, name: &str) -> Option<String> {
        self.state().last_form.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone())
    }
}

async fn introspect(State(state): State<Arc<Mutex<EndpointState>>>, headers: HeaderMap, body: String) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let token = form.iter().find(|(name, _)| name == "token").map(|(_, token)| token.clone());
    let fault = {
        let mut locked = state.lock().expect("endpoint state");
        locked.calls += 1;
        locked.last_authorization =
            headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
        locked.last_form = form;
        locked.fault.clone()
    };
    if let Fault::Delay(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    let answer = {
        let locked = state.lock().expect("endpoint state");
        token.and_then(|token| locked.answers.get(&token).cloned()).unwrap_or_else(|| json!({ "active": false }))
    };
    match fault {
        Fault::Status(status) => StatusCode::from_u16(status).expect("status").into_response(),
        Fault::Body(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Fault::Html => ([(header::CONTENT_TYPE, "text/html")], answer.to_string()).into_response(),
        Fault::Huge(len) | Fault::HugeChunked(len) => {
            let padding = "x".repeat(len);
            ([(header::CONTENT_TYPE, "application/json")], json!({ "active": true, "padding": padding }).to_string())
                .into_response()
        }
        Fault::None | Fault::Delay(_) => {
            ([(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response()
        }
    }
}
