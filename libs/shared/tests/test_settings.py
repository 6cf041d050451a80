from shop.shared.settings import ServiceSettings


def test_deployment_url_defaults_to_the_bind_address(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    assert ServiceSettings().deployment_url == "http://127.0.0.1:9999"
    monkeypatch.setenv("ADVERTISED_URL", "http://payments.shop.svc:9082")
    assert ServiceSettings().deployment_url == "http://payments.shop.svc:9082"


def test_registration_is_not_forced_unless_asked(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "1")
    assert ServiceSettings().restate_register_force is False
    monkeypatch.setenv("RESTATE_REGISTER_FORCE", "true")
    assert ServiceSettings().restate_register_force is True


def test_identity_keys_are_comma_separated(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "1")
    assert ServiceSettings().identity_keys == []
    monkeypatch.setenv("RESTATE_IDENTITY_KEYS", " publickeyv1_a, publickeyv1_b ,")
    assert ServiceSettings().identity_keys == ["publickeyv1_a", "publickeyv1_b"]


def test_a_secret_comes_from_its_file_unless_the_environment_has_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORT", "1")
    (tmp_path / "valkey_password").write_text("from-a-file\n")
    settings = ServiceSettings(_secrets_dir=tmp_path)
    assert settings.valkey_password.get_secret_value() == "from-a-file"
    monkeypatch.setenv("VALKEY_PASSWORD", "from-the-environment")
    settings = ServiceSettings(_secrets_dir=tmp_path)
    assert settings.valkey_password.get_secret_value() == "from-the-environment"
