#!/usr/bin/env node
// Encrypted tokens (JWE) with `jose` for jwtgate's interop tests. See README.md, "JWE protocol".
//
// stdin:  {"cases": [{"op": "generate", "alg": "ECDH-ES", "enc": "A256GCM", "crv": "P-256", "kid": "k"}
//                  | {"op": "encrypt", "jwk": {...public or oct...}, "alg": ..., "enc": ..., "plaintext": "..."}
//                  | {"op": "decrypt", "jwk": {...private or oct...}, "token": "..."}, ...]}
// stdout: {"results": [{"private": {...}, "public": {...}} | {"token": "..."} | {"plaintext": "..."}
//                    | {"error": "..."}, ...]}
//
// "generate" makes a fresh key for alg (and enc, for dir; crv for ECDH-ES), with kid, alg and use: enc. The
// private JWK of a shared secret is its oct JWK, and "public" is the same. "encrypt" writes a compact JWE
// whose header is {alg, enc, kid, cty: "JWT"}. A failure of one case is its "error"; the script fails only
// for bad input.
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, generateSecret, importJWK } from 'jose';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const SYMMETRIC = new Set(['A128KW', 'A256KW', 'dir']);

async function generate({ alg, enc, crv, kid }) {
  if (SYMMETRIC.has(alg)) {
    const secret = await generateSecret(alg === 'dir' ? enc : alg, { extractable: true });
    const jwk = { ...(await exportJWK(secret)), kid, alg, use: 'enc' };
    return { private: jwk, public: jwk };
  }
  const options = { extractable: true };
  if (alg.startsWith('ECDH-ES')) options.crv = crv;
  const { publicKey, privateKey } = await generateKeyPair(alg, options);
  const extra = { kid, alg, use: 'enc' };
  return { private: { ...(await exportJWK(privateKey)), ...extra }, public: { ...(await exportJWK(publicKey)), ...extra } };
}

async function encrypt({ jwk, alg, enc, plaintext }) {
  const key = await importJWK(jwk, alg);
  const header = { alg, enc, cty: 'JWT' };
  if (jwk.kid) header.kid = jwk.kid;
  return { token: await new CompactEncrypt(new TextEncoder().encode(plaintext)).setProtectedHeader(header).encrypt(key) };
}

async function decrypt({ jwk, token }) {
  const key = await importJWK(jwk, jwk.alg);
  const { plaintext } = await compactDecrypt(token, key);
  return { plaintext: new TextDecoder().decode(plaintext) };
}

const OPS = { generate, encrypt, decrypt };

const input = JSON.parse(await readStdin());
if (!Array.isArray(input.cases)) {
  process.stderr.write('jwe_jose: input must be {"cases": [...]}\n');
  process.exit(2);
}
const results = [];
for (const [i, c] of input.cases.entries()) {
  const op = OPS[c.op];
  if (!op) {
    process.stderr.write(`jwe_jose: cases[${i}].op must be generate, encrypt or decrypt\n`);
    process.exit(2);
  }
  try {
    results.push(await op(c));
  } catch (error) {
    results.push({ error: `${error.code ?? error.name}: ${error.message}` });
  }
}
process.stdout.write(JSON.stringify({ results }));
