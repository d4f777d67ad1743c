#!/usr/bin/env python3
"""Encrypted tokens (JWE) with jwcrypto for jwtgate's interop tests: the protocol of jwe_jose.mjs (see
README.md, "JWE protocol"), one JSON object on stdin, one on stdout."""

import json
import sys

from jwcrypto import jwe, jwk

SYMMETRIC = {"A128KW": 128, "A256KW": 256}
DIR_BITS = {"A128GCM": 128, "A256GCM": 256, "A128CBC-HS256": 256, "A256CBC-HS512": 512}

# jwcrypto refuses RSA1_5 by default already; RSA-OAEP and the rest are in its default list.
ALLOWED = [
    "RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "A128KW", "A256KW", "dir",
    "A128GCM", "A256GCM", "A128CBC-HS256", "A256CBC-HS512",
]


def generate(case):
    alg, kid = case["alg"], case["kid"]
    if alg in SYMMETRIC:
        key = jwk.JWK.generate(kty="oct", size=SYMMETRIC[alg])
    elif alg == "dir":
        key = jwk.JWK.generate(kty="oct", size=DIR_BITS[case["enc"]])
    elif alg.startswith("RSA"):
        key = jwk.JWK.generate(kty="RSA", size=2048)
    elif case["crv"] == "X25519":
        key = jwk.JWK.generate(kty="OKP", crv="X25519")
    else:
        key = jwk.JWK.generate(kty="EC", crv=case["crv"])
    extra = {"kid": kid, "alg": alg, "use": "enc"}
    private = {**json.loads(key.export(private_key=True)), **extra}
    public = private if key["kty"] == "oct" else {**json.loads(key.export(private_key=False)), **extra}
    return {"private": private, "public": public}


def encrypt(case):
    key = jwk.JWK(**case["jwk"])
    header = {"alg": case["alg"], "enc": case["enc"], "cty": "JWT"}
    if "kid" in case["jwk"]:
        header["kid"] = case["jwk"]["kid"]
    token = jwe.JWE(case["plaintext"].encode(), protected=json.dumps(header), algs=ALLOWED)
    token.add_recipient(key)
    return {"token": token.serialize(compact=True)}


def decrypt(case):
    key = jwk.JWK(**case["jwk"])
    token = jwe.JWE(algs=ALLOWED)
    token.deserialize(case["token"], key=key)
    return {"plaintext": token.payload.decode()}


OPS = {"generate": generate, "encrypt": encrypt, "decrypt": decrypt}


def main():
    cases = json.load(sys.stdin).get("cases")
    if not isinstance(cases, list):
        sys.exit('jwe_jwcrypto: input must be {"cases": [...]}')
    results = []
    for i, case in enumerate(cases):
        op = OPS.get(case.get("op"))
        if op is None:
            sys.exit(f"jwe_jwcrypto: cases[{i}].op must be generate, encrypt or decrypt")
        try:
            results.append(op(case))
        except Exception as error:  # noqa: BLE001 - each case's failure is its answer
            results.append({"error": f"{type(error).__name__}: {error}"})
    json.dump({"results": results}, sys.stdout)


main()
