#!/usr/bin/env node
// Drives examples/cookie-session in Debian's Chromium (headless, through playwright-core) as a user would.
//
// Usage: node browser_session.mjs <app-base-url> <access-ttl-seconds>
// The app's base URL must use the host name `localhost`. The forged form is served from localhost on another
// port: the same site (so SameSite=Strict cookies still come along) but another origin, so only the CSRF
// defence can stop it. Prints one line per check ("ok <what>") and exits 0, or prints "FAIL <what>: <why>" and
// exits 1.
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const [base, ttlArg] = process.argv.slice(2);
if (!base || !ttlArg) {
  process.stderr.write('usage: node browser_session.mjs <app-base-url> <access-ttl-seconds>\n');
  process.exit(2);
}
const ttl = Number(ttlArg);

let reported = false;
function check(condition, what, detail = '') {
  if (!condition) {
    process.stdout.write(`FAIL ${what}${detail ? `: ${detail}` : ''}\n`);
    reported = true;
    throw new Error(what);
  }
  process.stdout.write(`ok ${what}\n`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Another site: a page whose form posts to the app as soon as it loads.
const attacker = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<!doctype html><form id="f" method="POST" action="${base}/notes"></form>
<script>document.getElementById('f').submit()</script>`);
});
await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
const attackerUrl = `http://localhost:${attacker.address().port}/`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
});
let failed = false;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const refreshes = [];
  page.on('response', (response) => {
    if (new URL(response.url()).pathname === '/refresh') refreshes.push(response.status());
  });
  const api = (path, method = 'GET') => page.evaluate(async ([p, m]) => {
    const response = await window.api(p, { method: m });
    return { status: response.status, body: await response.text() };
  }, [path, method]);

  // 1. Login.
  await page.goto(base);
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', 'alice-demo-password');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Signed in as alice.');
  check(true, 'login works');
  refreshes.length = 0; // the page's first call, before login, tried a refresh without a session

  // 2. The tokens are out of JavaScript's reach.
  const cookies = await context.cookies();
  const byName = Object.fromEntries(cookies.map((cookie) => [cookie.name, cookie]));
  const access = cookies.find((cookie) => cookie.name.endsWith('access_token'));
  const refresh = cookies.find((cookie) => cookie.name.endsWith('refresh_token'));
  check(access && refresh, 'the browser holds the access and refresh cookies', Object.keys(byName).join(','));
  check([access, refresh].every((c) => c.httpOnly && c.secure && c.sameSite === 'Strict'),
    'they are HttpOnly, Secure and SameSite=Strict', JSON.stringify([access, refresh]));
  const visible = await page.evaluate(() => document.cookie);
  check(!visible.includes(access.value) && !visible.includes(refresh.value) && !/access_token|refresh_token/.test(visible),
    'document.cookie does not show the tokens', visible);

  // 3. The page can call /me.
  let me = await api('/me');
  check(me.status === 200 && JSON.parse(me.body).sub === 'alice', 'the page calls /me', `${me.status} ${me.body}`);
  check(refreshes.length === 0, 'no refresh while the access token is fresh');

  // 4. After the access token expires, the page refreshes transparently.
  await sleep((ttl + 1.5) * 1000);
  me = await api('/me');
  check(me.status === 200 && JSON.parse(me.body).sub === 'alice', 'after expiry /me still answers', `${me.status}`);
  check(refreshes.length === 1 && refreshes[0] === 200, 'through exactly one refresh', JSON.stringify(refreshes));
  const rotated = (await context.cookies()).find((cookie) => cookie.name.endsWith('refresh_token'));
  check(rotated.value !== refresh.value, 'the refresh token was rotated');

  // 5. A cross-site form POST is refused, and changes nothing.
  const forged = await context.newPage();
  const forgedResponse = forged.waitForResponse((response) => response.url() === `${base}/notes`);
  await forged.goto(attackerUrl);
  const forgedAnswer = await forgedResponse;
  const forgedBody = await forgedAnswer.text();
  check(forgedAnswer.status() === 403 && JSON.parse(forgedBody).error === 'csrf_rejected',
    'a cross-site form POST is refused', `${forgedAnswer.status()} ${forgedBody}`);
  let notes = await api('/notes');
  check(notes.status === 200 && JSON.parse(notes.body).length === 0, 'and added no note', notes.body);
  const own = await api('/notes', 'POST');
  notes = await api('/notes');
  check(own.status === 201 && JSON.parse(notes.body).length === 1, 'while the page itself can add one', notes.body);

  // 6. Logout ends everything. A fresh access token first, so that logout itself needs no refresh.
  me = await api('/me');
  check(me.status === 200, 'signed in before logout', String(me.status));
  const refreshesBefore = refreshes.length;
  const beforeLogout = await context.cookies();
  await page.click('#logout');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Signed out.');
  check(refreshes.length === refreshesBefore, 'logout needed no refresh', JSON.stringify(refreshes));
  const left = (await context.cookies()).filter((cookie) => /access_token|refresh_token|csrf_token/.test(cookie.name));
  check(left.length === 0, 'logout clears the cookies', left.map((cookie) => cookie.name).join(','));
  me = await api('/me');
  check(me.status === 401, 'and /me answers 401', String(me.status));
  // Even with the old cookies put back, the session is over on the server: the access token is revoked
  // (checked while it is still far from its expiry), then the refresh family.
  await context.addCookies(beforeLogout);
  const oldAccess = await page.evaluate(async () => {
    const response = await fetch('/me');
    return { status: response.status, body: await response.text() };
  });
  check(oldAccess.status === 401 && JSON.parse(oldAccess.body).error_description === 'the token has been revoked',
    'the old access token is revoked', `${oldAccess.status} ${oldAccess.body}`);
  const replayed = await page.evaluate(async () => {
    const response = await fetch('/refresh', { method: 'POST' });
    return { status: response.status, body: await response.text() };
  });
  check(replayed.status === 401 && JSON.parse(replayed.body).error === 'invalid_grant',
    'the old refresh token is revoked', `${replayed.status} ${replayed.body}`);
} catch (err) {
  failed = true;
  if (!reported) process.stdout.write(`FAIL ${String(err.stack ?? err).replace(/\n/g, ' | ')}\n`);
} finally {
  await browser.close();
  attacker.close();
}
process.exit(failed ? 1 : 0);
