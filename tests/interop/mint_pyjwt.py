#!/usr/bin/env python3
"""Mint JWTs with PyJWT for jwtgate interop tests.

stdin:  {"cases": [{"alg": "RS256", "key": "main"|"other",
                    "kid": <absent = key's kid | null = omit | "string">,
                    "header": {<extra protected header members>},
                    "claims": {<claims set, verbatim>}}, ...]}
stdout: {"jwks": {"keys": [<public JWK of each "main" key>]},
         "tokens": ["<compact JWS for case 0>", ...]}

Keys are generated fresh on every run, one "main" and one "other" key per
algorithm that appears in the cases. "alg": "none" makes an unsecured JWS
(PyJWT's algorithm="none": empty signature), with no key. Key ids are "<alg>-main" / "<alg>-other".
The protected header is {"alg": <alg>, "typ": "JWT", "kid": <kid>, **header};
header.typ overrides the default typ, and "typ": null omits it (the same as
mint_jose.mjs). header may not contain "alg" or "kid".

Run with the interpreter of tests/interop/.venv (see setup.sh).
"""

import json
import os
import sys

try:
    import jwt
    from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"mint_pyjwt: {exc}; run tests/interop/setup.sh and use tests/interop/.venv/bin/python\n"
    )
    sys.exit(3)

ALGS = [
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384",
    "EdDSA",
]


class InputError(Exception):
    pass


def fail(message, code=2):
    sys.stderr.write(f"mint_pyjwt: {message}\n")
    sys.exit(code)


def validate(data):
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise InputError('input must be a JSON object with a "cases" array')
    for i, case in enumerate(data["cases"]):
        where = f"cases[{i}]"
        if not isinstance(case, dict):
            raise InputError(f"{where} must be an object")
        alg = case.get("alg")
        if alg == "none":
            if not isinstance(case.get("claims"), dict):
                raise InputError(f"{where}.claims must be a JSON object")
            continue
        if not isinstance(alg, str) or alg not in ALGS:
            raise InputError(f"{where}.alg must be one of {' '.join(ALGS)} (got {json.dumps(alg)})")
        if "key" in case and case["key"] not in ("main", "other"):
            raise InputError(f'{where}.key must be "main" or "other"')
        if "kid" in case and case["kid"] is not None and not isinstance(case["kid"], str):
            raise InputError(f"{where}.kid must be a string or null")
        if "header" in case and not isinstance(case["header"], dict):
            raise InputError(f"{where}.header must be an object")
        if "alg" in case.get("header", {}) or "kid" in case.get("header", {}):
            raise InputError(f'{where}.header must not contain "alg" or "kid" (use the case\'s alg/kid fields)')
        if not isinstance(case.get("claims"), dict):
            raise InputError(f"{where}.claims must be a JSON object")


def generate(alg, which):
    """Return (kid, signing key, public JWK dict without kid/alg/use)."""
    kid = f"{alg}-{which}"
    if alg.startswith("HS"):
        secret = os.urandom(64)
        return kid, secret, HMACAlgorithm.to_jwk(secret, as_dict=True)
    if alg[:2] in ("RS", "PS"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid, private, RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        return kid, private, ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    if alg == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
        return kid, private, ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    if alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        return kid, private, OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    raise InputError(f"unsupported alg {alg}")


def main():
    try:
        data = json.loads(sys.stdin.read())
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"stdin is not valid JSON: {exc}")
    try:
        validate(data)
    except InputError as exc:
        fail(str(exc))

    used = [alg for alg in ALGS if any(c["alg"] == alg for c in data["cases"])]
    keys = {alg: {which: generate(alg, which) for which in ("main", "other")} for alg in used}

    jwks_keys = []
    for alg in used:
        kid, _, public_jwk = keys[alg]["main"]
        jwk = dict(public_jwk)
        jwk.pop("key_ops", None)
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        jwks_keys.append(jwk)

    tokens = []
    try:
        for case in data["cases"]:
            if case["alg"] == "none":
                tokens.append(jwt.encode(case["claims"], None, algorithm="none"))
                continue
            kid, signing_key, _ = keys[case["alg"]][case.get("key", "main")]
            headers = {"typ": "JWT"}
            if "kid" not in case:
                headers["kid"] = kid
            elif case["kid"] is not None:
                headers["kid"] = case["kid"]
            headers.update(case.get("header", {}))
            # PyJWT drops "typ" when it is falsy (None), i.e. "typ": null omits it.
            tokens.append(
                jwt.encode(case["claims"], signing_key, algorithm=case["alg"], headers=headers)
            )
    except Exception as exc:  # noqa: BLE001 - report any library error as a failure
        fail(f"{type(exc).__name__}: {exc}", 1)

    sys.stdout.write(json.dumps({"jwks": {"keys": jwks_keys}, "tokens": tokens}) + "\n")


if __name__ == "__main__":
    main()
