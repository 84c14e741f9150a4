"""Configuration errors name the file and the key; settings refuse a database URL they cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from followup.config.loader import ConfigError, load_ministries
from followup.config.settings import Settings


def test_the_shipped_ministries_cover_the_default_bodies():
    codes = [m.code for m in load_ministries()]
    assert codes == ["interior", "health", "education", "labour", "defence", "nsc", "justice", "foreign", "prosecutor"]
    interior = load_ministries()[0]
    assert "МВД" in interior.aliases and interior.names.en == "Ministry of Internal Affairs"


@pytest.mark.parametrize(
    ("yaml_text", "words"),
    [
        ("ministries:\n  - code: interior\n    names: {kk: a, en: c}\n", "ministries[0].names.ru: Field required"),
        ("ministries:\n  - code: Interior\n    names: {kk: a, ru: b, en: c}\n", "ministries[0].code"),
        ("ministries:\n  - code: a\n    names: {kk: a, ru: b, en: c}\n  - code: a\n    names: {kk: d, ru: e, en: f}\n", "ministries[1].code: 'a' already used"),
        ("ministries:\n  - code: a\n    names: {kk: a, ru: МВД, en: c}\n  - code: b\n    names: {kk: d, ru: e, en: f}\n    aliases: [мвд]\n", "ministries[1].aliases[0]: 'мвд' also names ministry 'a'"),
        ("ministries: [\n", "not valid YAML"),
        ("ministries:\n  - code: a\n    names: {kk: a, ru: b, en: c}\n    colour: red\n", "ministries[0].colour: Extra inputs"),
    ],
)
def test_a_typo_in_ministries_yaml_names_file_and_key(tmp_path: Path, yaml_text: str, words: str):
    path = tmp_path / "ministries.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_ministries(path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_a_missing_config_file_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="nowhere.yaml: file not found"):
        load_ministries(tmp_path / "nowhere.yaml")


def test_the_default_registry_is_a_sqlite_file_under_the_working_directory(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("FOLLOWUP_DATABASE_URL", raising=False)
    assert Settings().database_url == f"sqlite:///{tmp_path / 'var' / 'followup.db'}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/followup", "postgresql+psycopg://postgres@127.0.0.1:5432/followup"),
        ("postgresql+psycopg://u:secret@db/f", "postgresql+psycopg://u:secret@db/f"),
    ],
)
def test_postgresql_urls_use_the_installed_driver(url, expected, monkeypatch):
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", url)
    assert Settings().database_url == expected


@pytest.mark.parametrize("url", ["mysql://root@localhost/f", "not a url"])
def test_an_unsupported_database_url_is_refused_with_the_reason(url, monkeypatch):
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", url)
    with pytest.raises(ValidationError, match="FOLLOWUP_DATABASE_URL"):
        Settings()
