"""The offline collection check names what is missing or at the wrong version."""

import check_collections

from tests.paths import REPO


def write_requirements(tmp_path):
    path = tmp_path / "requirements.yml"
    path.write_text(
        "collections:\n  - name: community.docker\n    version: '4.8.5'\n"
        "  - name: ansible.posix\n    version: '2.1.0'\n"
    )
    return str(path)


def test_present_collections_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        check_collections,
        "installed_collections",
        lambda: {"community.docker": "4.8.5", "ansible.posix": "2.1.0"},
    )
    assert check_collections.main(write_requirements(tmp_path)) == 0
    assert "community.docker 4.8.5" in capsys.readouterr().out


def test_missing_and_wrong_versions_are_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(check_collections, "installed_collections", lambda: {"community.docker": "4.0.0"})
    assert check_collections.main(write_requirements(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "community.docker 4.8.5 is required but 4.0.0 is installed" in err
    assert "ansible.posix 2.1.0 is required but it is not installed" in err


def test_this_repository_requirements_are_installed():
    assert check_collections.main(str(REPO / "requirements.yml")) == 0
