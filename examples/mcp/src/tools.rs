//! The MCP server's three tools, on rmcp.

use jwtgate::service::Authenticated;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

/// The tools. Each call comes with the HTTP request that carried it (`http::request::Parts`), whose
/// extensions hold what `JwtAuthLayer` put there: the validated principal.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Tools {
    pub(crate) fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Who is calling: the access token's subject, scopes and client")]
    async fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> Result<CallToolResult, ErrorData> {
        // `JwtAuthLayer` runs before every call, so a tool never runs without it; say so if it ever did.
        let principal = parts
            .extensions
            .get::<Authenticated>()
            .map(Authenticated::principal)
            .ok_or_else(|| ErrorData::internal_error("no authenticated principal", None))?;
        let text = format!(
            "sub: {}\nscopes: {}\nclient_id: {}",
            principal.subject().unwrap_or("(none)"),
            principal.scopes().join(" "),
            principal.claim::<String>("client_id").unwrap_or_else(|| "(none)".to_owned()),
        );
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    #[tool(name = "admin-action", description = "An administrative action; it needs the scopes MCP_TOOL_SCOPES names")]
    async fn admin_action(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("admin action done")]))
    }

    #[tool(description = "Returns a simple text, for the MCP conformance suite")]
    async fn test_simple_text(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("This is a simple text response for testing.")]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("jwtgate-example-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions("An MCP server protected by jwtgate: whoami shows the caller's token.")
    }
}
