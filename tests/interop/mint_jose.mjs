#!/usr/bin/env node
// Mint JWTs with `jose` for jwtgate interop tests.
//
// stdin:  {"cases": [{"alg": "RS256", "key": "main"|"other",
//                     "kid": <absent = key's kid | null = omit | "string">,
//                     "header": {<extra protected header members>},
//                     "claims": {<claims set, verbatim>}}, ...]}
// stdout: {"jwks": {"keys": [<public JWK of each "main" key>]},
//          "tokens": ["<compact JWS for case 0>", ...]}
//
// Keys are generated fresh on every run, one "main" and one "other" key per
// algorithm that appears in the cases. "alg": "none" makes an unsecured JWS
// (jose's UnsecuredJWT: header {"alg":"none"}, empty signature), with no key. Key ids are "<alg>-main" / "<alg>-other".
// The protected header is {"alg": <alg>, "typ": "JWT", "kid": <kid>, ...header};
// header.typ overrides the default typ, and "typ": null omits it (the same as
// mint_pyjwt.py). header may not contain "alg" or "kid".
import { CompactSign, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';

const ALGS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384',
  'EdDSA',
];

class InputError extends Error {}

function fail(message, code = 2) {
  process.stderr.write(`mint_jose: ${message}\n`);
  process.exit(code);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const isPlainObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

function validate(input) {
  if (!isPlainObject(input) || !Array.isArray(input.cases)) {
    throw new InputError('input must be a JSON object with a "cases" array');
  }
  input.cases.forEach((c, i) => {
    const where = `cases[${i}]`;
    if (!isPlainObject(c)) throw new InputError(`${where} must be an object`);
    if (c.alg === 'none') {
      if (!isPlainObject(c.claims)) throw new InputError(`${where}.claims must be a JSON object`);
      return;
    }
    if (!ALGS.includes(c.alg)) {
      throw new InputError(`${where}.alg must be one of ${ALGS.join(' ')} (got ${JSON.stringify(c.alg)})`);
    }
    if (c.key !== undefined && c.key !== 'main' && c.key !== 'other') {
      throw new InputError(`${where}.key must be "main" or "other"`);
    }
    if (c.kid !== undefined && c.kid !== null && typeof c.kid !== 'string') {
      throw new InputError(`${where}.kid must be a string or null`);
    }
    if (c.header !== undefined && !isPlainObject(c.header)) {
      throw new InputError(`${where}.header must be an object`);
    }
    if (c.header && ('alg' in c.header || 'kid' in c.header)) {
      throw new InputError(`${where}.header must not contain "alg" or "kid" (use the case's alg/kid fields)`);
    }
    if (!isPlainObject(c.claims)) throw new InputError(`${where}.claims must be a JSON object`);
  });
}

async function generate(alg, which) {
  const kid = `${alg}-${which}`;
  if (alg.startsWith('HS')) {
    const secret = crypto.getRandomValues(new Uint8Array(64));
    const jwk = await exportJWK(secret);
    return { kid, signingKey: secret, publicJwk: { kty: 'oct', k: jwk.k } };
  }
  const options = { extractable: true };
  if (alg === 'EdDSA') options.crv = 'Ed25519';
  if (/^(RS|PS)/.test(alg)) options.modulusLength = 2048;
  const { privateKey, publicKey } = await generateKeyPair(alg, options);
  return { kid, signingKey: privateKey, publicJwk: await exportJWK(publicKey) };
}

async function main() {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch (err) {
    fail(`stdin is not valid JSON: ${err.message}`);
  }
  try {
    validate(input);
  } catch (err) {
    fail(err.message);
  }

  const used = ALGS.filter((alg) => input.cases.some((c) => c.alg === alg));
  const keys = {};
  for (const alg of used) {
    keys[alg] = { main: await generate(alg, 'main'), other: await generate(alg, 'other') };
  }

  const jwks = {
    keys: used.map((alg) => {
      const { kid, publicJwk } = keys[alg].main;
      return { ...publicJwk, kid, alg, use: 'sig' };
    }),
  };

  const encoder = new TextEncoder();
  const tokens = [];
  for (const c of input.cases) {
    if (c.alg === 'none') {
      tokens.push(new UnsecuredJWT(c.claims).encode());
      continue;
    }
    const key = keys[c.alg][c.key ?? 'main'];
    const header = { alg: c.alg, typ: 'JWT' };
    if (c.kid === undefined) header.kid = key.kid;
    else if (c.kid !== null) header.kid = c.kid;
    Object.assign(header, c.header ?? {});
    if (!header.typ) delete header.typ; // mirrors PyJWT: a falsy typ is omitted
    const jws = await new CompactSign(encoder.encode(JSON.stringify(c.claims)))
      .setProtectedHeader(header)
      .sign(key.signingKey);
    tokens.push(jws);
  }

  process.stdout.write(`${JSON.stringify({ jwks, tokens })}\n`);
}

main().catch((err) => fail(`${err.name || 'Error'}: ${err.message}`, 1));
