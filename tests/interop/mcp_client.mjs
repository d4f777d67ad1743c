#!/usr/bin/env node
// An MCP client on the official TypeScript SDK (@modelcontextprotocol/sdk), for black-box tests of an MCP
// server protected as an OAuth 2.0 resource server (examples/mcp).
//
// Usage: node mcp_client.mjs <mcp-url> <client-id> <client-secret> [scope]
//
// The SDK does the whole chain on its own, as any MCP client would: the first request gets a 401, the
// client reads `resource_metadata` (and `scope`) from the challenge, fetches the protected resource
// metadata (RFC 9728), then the metadata of its first authorization server (RFC 8414, else OpenID
// discovery), gets a token with the client_credentials grant (`ClientCredentialsProvider`,
// client_secret_basic) for the metadata's `resource` (RFC 8707), then initialize, tools/list,
// tools/call whoami, tools/call admin-action.
//
// `scope` is the only scope the SDK's ClientCredentialsProvider ever asks for (its token request sends
// the provider's configured scope, not the challenge's); without it the token request has no scope.
// On a 403 insufficient_scope the SDK fetches a new token once (with that same configured scope) and
// retries; a second identical 403 is an error.
// MCP_EXPECTED_ISSUER (optional): the issuer these credentials belong to; the SDK then refuses to send
// them to another authorization server (without it, the SDK prints a deprecation warning on stderr).
//
// stdout: one JSON line per step, in order:
//   {"step":"token","claims":{...}}                     each time the SDK saves a token (claims of the JWT,
//                                                        never the token itself)
//   {"step":"initialize","server":{...},"protocolVersion":"..."}
//   {"step":"tools/list","tools":["whoami", ...]}
//   {"step":"whoami","text":"..."}
//   {"step":"admin-action","text":"..."}  or  {"step":"admin-action","error":"...","status":403}
//   {"step":"http","log":[{"method","url","rpc","auth","form","status","www_authenticate"}, ...]}
//     every HTTP exchange the SDK made; `auth` is the scheme of the Authorization header sent (never its
//     value), `rpc` the JSON-RPC method of a POST, `form` the token request's grant_type/scope/resource.
// A failure before admin-action prints {"step":"<step>","error":"...","status"?,"oauth_error"?}, then the http log,
// and exits 1. Otherwise the exit status is 0 (also when admin-action is refused).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, clientSecret, scope] = process.argv.slice(2);
if (!url || !clientId || !clientSecret) {
  process.stderr.write('usage: node mcp_client.mjs <mcp-url> <client-id> <client-secret> [scope]\n');
  process.exit(2);
}

const emit = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

// ---------------------------------------------------------------- every HTTP exchange

const log = [];

function describeRequest(input, init = {}) {
  const request = input instanceof Request ? input : undefined;
  const headers = new Headers(init.headers ?? request?.headers);
  const entry = {
    method: (init.method ?? request?.method ?? 'GET').toUpperCase(),
    url: String(request?.url ?? input),
  };
  const authorization = headers.get('authorization');
  entry.auth = authorization ? authorization.split(' ')[0] : null;
  const body = init.body;
  if (typeof body === 'string') {
    try {
      const message = JSON.parse(body);
      entry.rpc = Array.isArray(message) ? message.map((m) => m.method ?? 'response') : (message.method ?? 'response');
      if (entry.rpc === 'tools/call') entry.tool = message.params?.name;
    } catch {
      // not JSON
    }
  } else if (body instanceof URLSearchParams) {
    // A token request: the parameters that say what was asked for (a secret is never logged).
    entry.form = Object.fromEntries(
      [...body].filter(([k]) => ['grant_type', 'scope', 'resource', 'client_id'].includes(k)),
    );
  }
  return entry;
}

async function loggingFetch(input, init) {
  const entry = describeRequest(input, init);
  log.push(entry);
  try {
    const response = await fetch(input, init);
    entry.status = response.status;
    entry.www_authenticate = response.headers.get('www-authenticate') ?? undefined;
    return response;
  } catch (err) {
    entry.error = String(err?.cause?.message ?? err?.message ?? err);
    throw err;
  }
}

// ---------------------------------------------------------------- the client

function claimsOf(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return { opaque: true };
  }
}

const expectedIssuer = process.env.MCP_EXPECTED_ISSUER || undefined;
const authProvider = new ClientCredentialsProvider({
  clientId,
  clientSecret,
  clientName: 'jwtgate-interop-mcp-client',
  ...(scope ? { scope } : {}),
  ...(expectedIssuer ? { expectedIssuer } : {}),
});
const saveTokens = authProvider.saveTokens.bind(authProvider);
authProvider.saveTokens = (tokens) => {
  emit({ step: 'token', scope: tokens.scope, claims: claimsOf(tokens.access_token) });
  return saveTokens(tokens);
};

const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider, fetch: loggingFetch });
const client = new Client({ name: 'jwtgate-interop-mcp-client', version: '1.0.0' });

const failure = (step, err) => ({
  step,
  error: String(err?.message ?? err),
  // An OAuth error from the authorization server (invalid_scope, invalid_client, ...).
  ...(typeof err?.errorCode === 'string' ? { oauth_error: err.errorCode } : {}),
  ...(typeof err?.code === 'number' && err.code >= 100 ? { status: err.code } : {}),
  ...(typeof err?.code === 'number' && err.code < 100 ? { code: err.code } : {}),
});

const textOf = (result) => result.content?.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

async function finish(code) {
  try {
    await transport.terminateSession();
  } catch {
    // recorded in the log
  }
  await client.close().catch(() => {});
  emit({ step: 'http', log });
  process.exit(code);
}

let step = 'initialize';
try {
  await client.connect(transport);
  emit({ step, server: client.getServerVersion(), protocolVersion: transport.protocolVersion });

  step = 'tools/list';
  const { tools } = await client.listTools();
  emit({ step, tools: tools.map((t) => t.name) });

  step = 'whoami';
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  emit({ step, text: textOf(whoami), ...(whoami.isError ? { isError: true } : {}) });
} catch (err) {
  emit(failure(step, err));
  await finish(1);
}

step = 'admin-action';
try {
  const admin = await client.callTool({ name: 'admin-action', arguments: {} });
  emit({ step, text: textOf(admin), ...(admin.isError ? { isError: true } : {}) });
} catch (err) {
  emit(failure(step, err));
}
await finish(0);
