"""Restate request-identity keys: the Restate server signs every request it sends to a service
with an Ed25519 private key (PEM file), and each service accepts only requests signed by one of
the public keys in `RESTATE_IDENTITY_KEYS`, written `publickeyv1_<base58 of the raw key>`.

    python -m shop.dev.identity_keys generate PATH   # new pair: private key to PATH (0600),
                                                     # prints RESTATE_IDENTITY_KEYS=publickeyv1_...
    python -m shop.dev.identity_keys public PATH     # prints the publickeyv1_ string of a PEM key

The dev stack keeps its pair in its state folder (`.stack/restate-identity.pem`). A key made
with `openssl genpkey -algorithm ed25519 -out restate-identity.pem` works as well; `public`
gives its string, and the Restate server logs the same string (`kid`) when it loads the key.
"""

import argparse
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PREFIX = "publickeyv1_"
ENV_VAR = "RESTATE_IDENTITY_KEYS"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # Bitcoin alphabet


def base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_BASE58[rest])
    zeros = len(data) - len(data.lstrip(b"\0"))  # each leading zero byte is a leading '1'
    return "1" * zeros + "".join(reversed(digits))


def public_key_string(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return PREFIX + base58(raw)


def load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key (Restate signs with Ed25519)")
    return key


def write_new(path: Path) -> Ed25519PrivateKey:
    """A new private key in PEM (PKCS#8) at path, readable by its owner only; never overwrites."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def ensure(path: Path) -> str:
    """The public key string of the pair at path, generating the pair on first use."""
    try:
        return public_key_string(load(path))
    except FileNotFoundError:
        try:
            return public_key_string(write_new(path))
        except FileExistsError:  # another process made it first
            return public_key_string(load(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shop.dev.identity_keys",
        description="Restate request-identity keys: the server signs with the private key "
        "(worker.invoker.request-identity-private-key-pem-file, env "
        "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE); services accept "
        f"the public key in {ENV_VAR}.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser(
        "generate", help="write a new private key (PEM, mode 0600) and print its public key"
    )
    generate.add_argument("path", type=Path, help="where to write the private key; must not exist")
    public = commands.add_parser("public", help="print the public key of a PEM private key")
    public.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        key = write_new(args.path) if args.command == "generate" else load(args.path)
    except FileExistsError:
        parser.exit(2, f"{args.path} exists; not overwriting a key (remove it first)\n")
    except (OSError, ValueError) as e:
        parser.exit(2, f"{e}\n")
    if args.command == "public":
        print(public_key_string(key))
        return 0
    print(f"# private key written to {args.path}: give it to the Restate server", file=sys.stderr)
    print(f"{ENV_VAR}={public_key_string(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
