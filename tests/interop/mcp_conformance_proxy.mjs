#!/usr/bin/env node
// A loopback HTTP proxy that adds a bearer token to every request, so that the MCP conformance suite
// (@modelcontextprotocol/conformance, whose server scenarios send no Authorization header) can test an
// MCP server protected by jwtgate.
//
// Usage: node mcp_conformance_proxy.mjs [--rewrite-host] <target-url> <token>
//    or: MCP_PROXY_TARGET=<target-url> MCP_PROXY_TOKEN=<token> node mcp_conformance_proxy.mjs
//
// - Listens on 127.0.0.1, on PORT (default 0: any free port), and prints one line on stdout when ready:
//     listening http://127.0.0.1:<port><path of target-url>
//   (e.g. listening http://127.0.0.1:41234/mcp); everything else goes to stderr (one line per request).
// - Forwards every request (any method, any path, the query included) to the target's origin, unchanged
//   but for `Authorization: Bearer <token>`, added when the request has no Authorization header.
// - The Host header is passed through as the client sent it (127.0.0.1:<proxy port>), so the server's
//   Host check (DNS-rebinding defence) still sees what the client sent; with --rewrite-host (or
//   MCP_PROXY_REWRITE_HOST=1) it is replaced by the target's host:port.
// - Responses are streamed as they arrive, chunk by chunk: server-sent events pass through unbuffered.
//   Hop-by-hop headers are dropped both ways. An unreachable target is a 502.
// Exits on SIGTERM/SIGINT.
import { createServer, request as httpRequest } from 'node:http';

const args = process.argv.slice(2);
let rewriteHost = process.env.MCP_PROXY_REWRITE_HOST === '1';
const positional = [];
for (const arg of args) {
  if (arg === '--rewrite-host') rewriteHost = true;
  else positional.push(arg);
}
const targetArg = positional[0] ?? process.env.MCP_PROXY_TARGET;
const token = positional[1] ?? process.env.MCP_PROXY_TOKEN;
const target = targetArg ? URL.parse(targetArg) : null;
if (!target || target.protocol !== 'http:' || !token) {
  process.stderr.write('usage: node mcp_conformance_proxy.mjs [--rewrite-host] <http-target-url> <token>\n'
    + '   or: MCP_PROXY_TARGET=<http-target-url> MCP_PROXY_TOKEN=<token> node mcp_conformance_proxy.mjs\n');
  process.exit(2);
}
const port = Number.parseInt(process.env.PORT ?? '0', 10);

// RFC 9110 section 7.6.1, plus the ones Node sets itself.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
]);

function forwardable(headers) {
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name) && !named.has(name)));
}

const server = createServer((req, res) => {
  const headers = forwardable(req.headers);
  if (!headers.authorization) headers.authorization = `Bearer ${token}`;
  if (rewriteHost || !headers.host) headers.host = target.host;

  const upstream = httpRequest({
    hostname: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || 80,
    method: req.method,
    path: req.url,
    headers,
  });
  upstream.setNoDelay(true);

  upstream.on('response', (answer) => {
    process.stderr.write(`${req.method} ${req.url} -> ${answer.statusCode} ${answer.headers['content-type'] ?? ''}\n`);
    res.writeHead(answer.statusCode, answer.statusMessage, forwardable(answer.headers));
    // Headers go out now, before any body: an SSE stream's client sees the response at once.
    res.flushHeaders();
    answer.on('data', (chunk) => res.write(chunk));
    answer.on('end', () => res.end());
    answer.on('error', () => res.destroy());
  });
  upstream.on('error', (err) => {
    process.stderr.write(`${req.method} ${req.url} -> upstream error: ${err.message}\n`);
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}\n`);
    } else {
      res.destroy();
    }
  });
  // The client went away (an SSE stream closed, a request aborted): so does the upstream request.
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
});
server.on('connection', (socket) => socket.setNoDelay(true));

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.on('error', (err) => {
  process.stderr.write(`proxy error: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}${target.pathname}\n`);
});
