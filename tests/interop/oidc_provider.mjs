#!/usr/bin/env node
// A real OpenID Provider (oidc-provider) for jwtgate integration tests.
//
// Usage: PORT=0 node oidc_provider.mjs <state-dir>
//
// stdout is a line protocol (all other output goes to stderr):
//   listening http://127.0.0.1:<port>   once, when ready (issuer = that URL)
//   jwks-fetch                          each time the JWKS endpoint (/jwks) is requested
//   one answer line per stdin command:
//     access-token [<resource>]  -> access-token <jwt>   (client_credentials, scope read,
//                                                          resource default https://api.example)
//     id-token                   -> id-token <jwt>       (authorization code flow as "alice")
//     client-token <client-id> <resource> [<scope>...]
//                                -> client-token <jwt>   (client_credentials as that client, for
//                                                          that resource, with those scopes)
//     dpop-token [<resource>]    -> dpop-token <jwt>     (client_credentials with a DPoP proof made by the
//                                                          npm `dpop` package with this process's ES256 key:
//                                                          the token is DPoP-bound, `cnf.jkt`)
//     dpop-proof <htm> <htu> <access-token>
//                                -> dpop-proof <jws>     (a proof of that key, with `ath`, by `dpop`)
//     dpop-proof-other <htm> <htu> <access-token>
//                                -> dpop-proof <jws>     (the same, with a fresh key the token is not bound to)
//     opaque-token [<resource>]  -> opaque-token <token> (client_credentials, scope read, an opaque access
//                                                          token; resource default https://api.example/opaque)
//     revoke <token>             -> revoked              (the token revoked at the revocation endpoint,
//                                                          RFC 7009, by test-client)
//     rotate                     -> rotated <new-kid>
//     retire                     -> retired
//     ping                       -> pong
//     anything failing           -> error <message>
//
// As the authorization server of an MCP server (examples/mcp, tests/interop/mcp_client.mjs):
//   - resource indicators (RFC 8707) may be https URLs, or http URLs on a loopback host
//     (127.0.0.1, localhost, [::1]), e.g. http://127.0.0.1:<port>/mcp; any other http one is
//     refused with invalid_target;
//   - every resource accepts the scopes read, mcp:read and mcp:write (the token gets the requested
//     ones, as a space-separated `scope` claim), in RS256 JWT access tokens (typ at+jwt) whose `aud`
//     is the resource indicator;
//   - two more confidential clients, client_credentials only, client_secret_basic, each limited by
//     its `scope` metadata (asking for more is invalid_scope, asking for none gives a token with no
//     scope):
//       mcp-writer / mcp-writer-secret   may get mcp:read mcp:write
//       mcp-reader / mcp-reader-secret   may get mcp:read
//     For client_credentials, the access token's `sub` and `client_id` are both the client id.
//   - discovery: oidc-provider serves the same metadata at /.well-known/oauth-authorization-server
//     (RFC 8414) and /.well-known/openid-configuration.
// As the authorization server of opaque tokens (RFC 7662):
//   - a resource indicator whose path starts with /opaque gets opaque access tokens, not JWTs;
//   - the introspection endpoint is <issuer>/token/introspection; only the confidential client
//     api-introspector / api-introspector-secret (client_secret_basic, the resource server) may introspect;
//   - the revocation endpoint (RFC 7009) is <issuer>/token/revocation.
// Signing keys persist in <state-dir>/keys.json ({"keys": [<private RS256 JWKs>]}, the first
// one signs). Exits on SIGTERM/SIGINT or when stdin closes.
import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

// Keep stdout protocol-clean: anything logged through console goes to stderr.
for (const method of ['log', 'info', 'debug', 'warn', 'trace']) {
  // eslint-disable-next-line no-console
  console[method] = (...args) => console.error(...args);
}
const emit = (line) => process.stdout.write(`${line.replace(/[\r\n]+/g, ' ')}\n`);

const { default: Provider, errors } = await import('oidc-provider');
const DPoP = await import('dpop');

const CLIENT_ID = 'test-client';
const CLIENT_SECRET = 'test-secret';
// Client-credentials clients for an MCP server, each limited to its scopes.
const MCP_CLIENTS = {
  'mcp-writer': { secret: 'mcp-writer-secret', scope: 'mcp:read mcp:write' },
  'mcp-reader': { secret: 'mcp-reader-secret', scope: 'mcp:read' },
};
// The scopes every resource server accepts.
const RESOURCE_SCOPES = 'read mcp:read mcp:write';
// The resource server's own client, which introspects opaque tokens.
const INTROSPECTOR = { id: 'api-introspector', secret: 'api-introspector-secret' };
const OPAQUE_RESOURCE = 'https://api.example/opaque';
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const REDIRECT_URI = 'http://127.0.0.1/cb';
const DEFAULT_RESOURCE = 'https://api.example';
const JWKS_PATH = '/jwks';

const stateDirArg = process.argv[2];
if (!stateDirArg) {
  process.stderr.write('usage: PORT=0 node oidc_provider.mjs <state-dir>\n');
  process.exit(2);
}
const stateDir = resolve(stateDirArg);
const keysFile = join(stateDir, 'keys.json');
const port = Number.parseInt(process.env.PORT ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid PORT ${process.env.PORT}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- keys

function newRsaKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(8).toString('base64url'), alg: 'RS256', use: 'sig' };
}

function saveKeys(keys) {
  mkdirSync(stateDir, { recursive: true });
  const tmp = `${keysFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, keysFile);
}

function loadKeys() {
  if (existsSync(keysFile)) {
    const { keys } = JSON.parse(readFileSync(keysFile, 'utf8'));
    if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${keysFile} has no keys`);
    return keys;
  }
  const keys = [newRsaKey()];
  saveKeys(keys);
  return keys;
}

let keys = loadKeys();

// ---------------------------------------------------------------- provider

let issuer; // set once the server listens
// Stable per state dir, so cookies survive a rotate (provider re-creation).
const cookieKey = createHash('sha256').update(`oidc-cookie:${stateDir}`).digest('base64url');

function buildProvider() {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
    }, ...Object.entries(MCP_CLIENTS).map(([clientId, { secret, scope }]) => ({
      client_id: clientId,
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // Only these of the `scopes` below may be requested (else invalid_scope).
      scope,
    })), {
      client_id: INTROSPECTOR.id,
      client_secret: INTROSPECTOR.secret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys },
    cookies: { keys: [cookieKey] },
    routes: { jwks: JWKS_PATH },
    scopes: ['openid', 'offline_access', 'read', 'mcp:read', 'mcp:write'],
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: 3600,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
    },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      // DPoP (RFC 9449): a token request with a proof gets a DPoP-bound access token.
      dPoP: { enabled: true },
      // RFC 7662: only the resource server's client may ask.
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client) => client.clientId === INTROSPECTOR.id,
      },
      // RFC 7009: a client revokes its own tokens.
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        // client_credentials without a resource parameter gets https://api.example;
        // otherwise (e.g. the authorization endpoint) no default resource.
        defaultResource: async (ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          if (ctx.oidc?.params?.grant_type === 'client_credentials') return DEFAULT_RESOURCE;
          return undefined;
        },
        useGrantedResource: async () => true,
        // Any https resource, and any http one on a loopback host (an MCP server under test), is a
        // resource server taking RS256 JWT access tokens.
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          const url = URL.parse(resourceIndicator);
          const loopbackHttp = url?.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
          if (url?.protocol !== 'https:' && !loopbackHttp) {
            throw new errors.InvalidTarget('only https, or http on a loopback host, resource indicators are supported');
          }
          if (url.pathname.startsWith('/opaque')) {
            return { scope: RESOURCE_SCOPES, audience: resourceIndicator, accessTokenTTL: 3600, accessTokenFormat: 'opaque' };
          }
          return {
            scope: RESOURCE_SCOPES,
            audience: resourceIndicator,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err?.stack ?? err}\n`));
  return provider;
}

let handler = () => {};
const server = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (path === JWKS_PATH) emit('jwks-fetch');
  handler(req, res);
});

function installProvider() {
  handler = buildProvider().callback();
}

// ---------------------------------------------------------------- self-driven flows

class CookieJar {
  #cookies = new Map(); // `${name};${path}` -> { name, value, path }

  store(response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name};${path}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter(({ path }) => pathname === path || pathname.startsWith(path.endsWith('/') ? path : `${path}/`))
      .sort((a, b) => b.path.length - a.path.length)
      .map(({ name, value }) => `${name}=${value}`)
      .join('; ');
  }
}

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const basicAuth = basic(CLIENT_ID, CLIENT_SECRET);

async function tokenRequest(params, authorization = basicAuth) {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`token endpoint ${response.status}: ${body.error ?? ''} ${body.error_description ?? ''}`.trim());
  }
  return body;
}

async function accessToken(resource = DEFAULT_RESOURCE) {
  const body = await tokenRequest({ grant_type: 'client_credentials', resource, scope: 'read' });
  if (!body.access_token) throw new Error('no access_token in token response');
  return body.access_token;
}

async function revoke(token) {
  const response = await fetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
  if (!response.ok) throw new Error(`revocation endpoint ${response.status}`);
}

// The DPoP client's key pair, made by the `dpop` package at the first use.
let dpopKey;
const dpopKeyPair = async () => {
  dpopKey ??= await DPoP.generateKeyPair('ES256');
  return dpopKey;
};

async function dpopToken(resource = DEFAULT_RESOURCE) {
  const keypair = await dpopKeyPair();
  const params = { grant_type: 'client_credentials', resource, scope: 'read' };
  let nonce;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const proof = await DPoP.generateProof(keypair, `${issuer}/token`, 'POST', nonce);
    const response = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
      body: new URLSearchParams(params),
    });
    const body = await response.json().catch(() => ({}));
    if (body.error === 'use_dpop_nonce' && response.headers.get('dpop-nonce') && nonce === undefined) {
      nonce = response.headers.get('dpop-nonce');
      continue;
    }
    if (!response.ok) throw new Error(`token endpoint ${response.status}: ${body.error ?? ''}`.trim());
    if (body.token_type !== 'DPoP') throw new Error(`token_type ${body.token_type}, not DPoP`);
    return body.access_token;
  }
  throw new Error('the token endpoint asked for a nonce twice');
}

async function dpopProof(keypair, htm, htu, accessToken) {
  return DPoP.generateProof(keypair, htu, htm, undefined, accessToken);
}

async function clientToken(clientId, resource, scopes) {
  const client = MCP_CLIENTS[clientId];
  if (!client) throw new Error(`unknown client ${JSON.stringify(clientId)}`);
  const params = { grant_type: 'client_credentials', resource };
  if (scopes.length) params.scope = scopes.join(' ');
  const body = await tokenRequest(params, basic(clientId, client.secret));
  if (!body.access_token) throw new Error('no access_token in token response');
  return body.access_token;
}

async function idToken() {
  const jar = new CookieJar();
  const request = async (url, init = {}) => {
    const headers = { ...init.headers };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(response);
    return response;
  };

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(12).toString('base64url');
  const authUrl = new URL(`${issuer}/auth`);
  authUrl.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT_URI,
    state,
    nonce: randomBytes(12).toString('base64url'),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  let url = authUrl.href;
  for (let step = 0; step < 20; step += 1) {
    const response = await request(url);
    await response.arrayBuffer();
    if (response.status < 300 || response.status >= 400) {
      throw new Error(`unexpected ${response.status} from ${new URL(url).pathname}`);
    }
    const next = new URL(response.headers.get('location'), url);
    if (next.href.startsWith(REDIRECT_URI)) {
      const error = next.searchParams.get('error');
      if (error) throw new Error(`authorization error: ${error} ${next.searchParams.get('error_description') ?? ''}`.trim());
      if (next.searchParams.get('state') !== state) throw new Error('state mismatch');
      const body = await tokenRequest({
        grant_type: 'authorization_code',
        code: next.searchParams.get('code'),
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
      });
      if (!body.id_token) throw new Error('no id_token in token response');
      return body.id_token;
    }
    const match = next.pathname.match(/^\/interaction\/([^/]+)$/);
    if (match) {
      // Ask the dev interaction which prompt it shows, then submit it.
      const page = await request(next.href);
      const html = await page.text();
      const prompt = html.match(/name="prompt" value="(\w+)"/)?.[1];
      const form = prompt === 'login'
        ? { prompt: 'login', login: 'alice', password: 'alice' }
        : { prompt: 'consent' };
      if (prompt !== 'login' && prompt !== 'consent') throw new Error(`unknown interaction prompt at ${next.pathname}`);
      const submitted = await request(next.href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form),
      });
      await submitted.arrayBuffer();
      if (submitted.status < 300 || submitted.status >= 400) {
        throw new Error(`interaction ${prompt} submit returned ${submitted.status}`);
      }
      url = new URL(submitted.headers.get('location'), next).href;
    } else {
      url = next.href;
    }
  }
  throw new Error('too many redirects in authorization code flow');
}

// ---------------------------------------------------------------- commands

async function runCommand(line) {
  const [command, ...args] = line.trim().split(/\s+/);
  switch (command) {
    case 'access-token':
      if (args.length > 1) throw new Error('usage: access-token [<resource>]');
      return `access-token ${await accessToken(args[0])}`;
    case 'id-token':
      return `id-token ${await idToken()}`;
    case 'opaque-token':
      if (args.length > 1) throw new Error('usage: opaque-token [<resource>]');
      return `opaque-token ${await accessToken(args[0] ?? OPAQUE_RESOURCE)}`;
    case 'revoke':
      if (args.length !== 1) throw new Error('usage: revoke <token>');
      await revoke(args[0]);
      return 'revoked';
    case 'client-token':
      if (args.length < 2) throw new Error('usage: client-token <client-id> <resource> [<scope>...]');
      return `client-token ${await clientToken(args[0], args[1], args.slice(2))}`;
    case 'dpop-token':
      if (args.length > 1) throw new Error('usage: dpop-token [<resource>]');
      return `dpop-token ${await dpopToken(args[0])}`;
    case 'dpop-proof':
    case 'dpop-proof-other': {
      if (args.length !== 3) throw new Error(`usage: ${command} <htm> <htu> <access-token>`);
      const keypair = command === 'dpop-proof' ? await dpopKeyPair() : await DPoP.generateKeyPair('ES256');
      return `dpop-proof ${await dpopProof(keypair, args[0], args[1], args[2])}`;
    }
    case 'rotate': {
      const key = newRsaKey();
      const next = [key, ...keys];
      saveKeys(next);
      keys = next;
      installProvider();
      return `rotated ${key.kid}`;
    }
    case 'ping':
      // Everything printed before this answer (jwks-fetch lines included) has been read once it arrives.
      return 'pong';
    case 'retire': {
      const next = keys.slice(0, 1);
      saveKeys(next);
      keys = next;
      installProvider();
      return 'retired';
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}`);
  }
}

function shutdown(code = 0) {
  server.close();
  server.closeAllConnections?.();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));

server.on('error', (err) => {
  process.stderr.write(`server error: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', async () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  try {
    installProvider();
  } catch (err) {
    process.stderr.write(`failed to start provider: ${err.stack ?? err}\n`);
    process.exit(1);
  }
  emit(`listening ${issuer}`);

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      emit(await runCommand(line));
    } catch (err) {
      emit(`error ${err?.message ?? err}`);
    }
  }
  shutdown(0);
});
