#!/usr/bin/env python3
"""Cross-check Clyra's DSSE envelopes with securesystemslib, an independent implementation.

Modes:
  check
      Exit 0 if securesystemslib (the pinned version) and cryptography import.
  verify --envelope ENV.json --public-key KEY.pem
      Verify a Clyra-signed envelope with securesystemslib's dsse.Envelope and SSlibKey.
      securesystemslib only tries keys whose keyid equals the signature's keyid, so the key
      is given Clyra's keyid, computed here independently: SHA-256 of the SPKI DER.
      Prints JSON {"verified": true, "keyid": ..., "payload_type": ..., "payload_sha256": ...};
      exits 1 if verification fails.
  sign --algorithm {ed25519,ecdsa,rsa} --payload-type T --payload-file F
       --out-envelope ENV.json --out-public-key KEY.pem [--high-s]
      Sign with a freshly generated securesystemslib CryptoSigner and write the envelope and
      the public key as SPKI PEM. With --high-s (ecdsa only), re-sign until OpenSSL returns a
      high-S signature, the kind Clyra must accept from Go/OpenSSL/cosign.
"""

import argparse
import hashlib
import importlib.metadata
import json
import sys

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import CryptoSigner, SSlibKey
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"missing python dependency: {e}", file=sys.stderr)
    sys.exit(3)

# Pinned in requirements.txt; the script relies on this version's API.
SECURESYSTEMSLIB_VERSION = "1.6.0"

# Order of the P-256 group.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def spki_pem(public_key):
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def clyra_keyid(public_key):
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify(args):
    with open(args.public_key, "rb") as f:
        public_key = serialization.load_pem_public_key(f.read())
    keyid = clyra_keyid(public_key)
    # Scheme chosen by securesystemslib from the key: ed25519 or ecdsa-sha2-nistp256.
    key = SSlibKey.from_crypto(public_key, keyid=keyid)
    with open(args.envelope, "rb") as f:
        envelope = Envelope.from_dict(json.load(f))
    try:
        accepted = envelope.verify([key], 1)
    except VerificationError as e:
        print(f"verification failed: {e}", file=sys.stderr)
        return 1
    json.dump(
        {
            "verified": True,
            "keyid": keyid,
            "accepted_keyids": sorted(accepted),
            "scheme": key.scheme,
            "payload_type": envelope.payload_type,
            "payload_sha256": hashlib.sha256(envelope.payload).hexdigest(),
        },
        sys.stdout,
    )
    return 0


def is_high_s(der_sig):
    _, s = decode_dss_signature(der_sig)
    return s > P256_N // 2


def sign(args):
    if args.algorithm == "ed25519":
        signer = CryptoSigner.generate_ed25519()
    elif args.algorithm == "ecdsa":
        signer = CryptoSigner.generate_ecdsa()
    else:
        signer = CryptoSigner.generate_rsa(size=3072)  # rsassa-pss-sha256, salt = 32
    with open(args.payload_file, "rb") as f:
        payload = f.read()
    envelope = Envelope(payload, args.payload_type, {})
    for _ in range(128):
        signature = envelope.sign(signer)
        if not args.high_s or is_high_s(bytes.fromhex(signature.signature)):
            break
    else:
        print("no high-S signature in 128 attempts", file=sys.stderr)
        return 1
    with open(args.out_envelope, "w", encoding="utf-8") as f:
        json.dump(envelope.to_dict(), f)
    with open(args.out_public_key, "wb") as f:
        f.write(spki_pem(signer._private_key.public_key()))
    json.dump(
        {
            "sslib_keyid": signer.public_key.keyid,
            "scheme": signer.public_key.scheme,
            "high_s": args.algorithm == "ecdsa"
            and is_high_s(bytes.fromhex(signature.signature)),
        },
        sys.stdout,
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("check")
    v = sub.add_parser("verify")
    v.add_argument("--envelope", required=True)
    v.add_argument("--public-key", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--algorithm", choices=["ed25519", "ecdsa", "rsa"], required=True)
    s.add_argument("--payload-type", required=True)
    s.add_argument("--payload-file", required=True)
    s.add_argument("--out-envelope", required=True)
    s.add_argument("--out-public-key", required=True)
    s.add_argument("--high-s", action="store_true")
    args = parser.parse_args()
    if args.mode == "check":
        found = importlib.metadata.version("securesystemslib")
        if found != SECURESYSTEMSLIB_VERSION:
            print(
                f"securesystemslib {found} installed, tests expect {SECURESYSTEMSLIB_VERSION}",
                file=sys.stderr,
            )
            return 3
        return 0
    if args.mode == "verify":
        return verify(args)
    return sign(args)


if __name__ == "__main__":
    sys.exit(main())
