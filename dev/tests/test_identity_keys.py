import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop.dev import identity_keys
from shop.dev.stack import Ports, Stack


def test_public_key_string_is_what_the_restate_server_logs() -> None:
    # restate-server 1.7.12 loading this key logs kid "publickeyv1_FAe4...".
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    assert (
        identity_keys.public_key_string(key)
        == "publickeyv1_FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF"
    )


def test_base58_keeps_leading_zero_bytes() -> None:
    assert identity_keys.base58(b"\0\0\x01") == "112"
    assert identity_keys.base58(b"") == ""


def test_generate_writes_a_private_key_and_prints_the_public_one(tmp_path, capsys) -> None:
    path = tmp_path / "keys" / "restate-identity.pem"
    assert identity_keys.main(["generate", str(path)]) == 0
    printed = capsys.readouterr().out.strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = identity_keys.public_key_string(identity_keys.load(path))
    assert printed == f"RESTATE_IDENTITY_KEYS={public}"
    assert identity_keys.main(["public", str(path)]) == 0
    assert capsys.readouterr().out.strip() == public


def test_generate_never_overwrites_a_key(tmp_path) -> None:
    path = tmp_path / "restate-identity.pem"
    path.write_text("precious")
    with pytest.raises(SystemExit) as exited:
        identity_keys.main(["generate", str(path)])
    assert exited.value.code == 2
    assert path.read_text() == "precious"


def test_the_stack_makes_its_pair_once_and_wires_both_ends(tmp_path) -> None:
    stack = Stack(state=tmp_path, ports=Ports.free())
    env = stack.shared_env()
    assert env["SHOP_DEV_MODE"] == "true"
    assert env["RESTATE_IDENTITY_KEYS"].startswith("publickeyv1_")
    pem = stack.identity_key_file.read_bytes()
    restate_env = stack.programs()["restate"][1]
    key_file = restate_env["RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"]
    assert key_file == str(stack.identity_key_file)
    again = Stack(state=tmp_path, ports=Ports.free())  # a restart keeps the pair
    assert again.shared_env()["RESTATE_IDENTITY_KEYS"] == env["RESTATE_IDENTITY_KEYS"]
    assert stack.identity_key_file.read_bytes() == pem
