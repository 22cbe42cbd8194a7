"""The config_files module, run through ansible-core on this machine's real filesystem: what a role's
re-run relies on (nothing changes when nothing differs), check mode, validation that keeps the old
file, and refusals that name the path."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from tests.ansible_module import run_ansible_module


def run(tmp_path: Path, files: list[dict], check: bool = False, diff: bool = False) -> dict:
    extra_env = {"ANSIBLE_DIFF_ALWAYS": "1"} if diff else None
    return run_ansible_module(tmp_path, "config_files", json.dumps({"files": files}), check, extra_env)


def layout(root: Path) -> list[dict]:
    return [
        {"path": str(root), "state": "directory", "mode": "0750"},
        {"path": str(root / "app.conf"), "content": "port = 8000\n", "mode": "0640", "group": "nogroup"},
        {"path": str(root / "app.service"), "content": "[Service]\n", "mode": "0644"},
    ]


def mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def test_writes_every_entry_then_changes_nothing(tmp_path):
    root = tmp_path / "etc"
    first = run(tmp_path, layout(root))
    assert first["changed"] is True and first["changed_paths"] == [e["path"] for e in layout(root)]
    assert first["existed"] == []
    assert (root / "app.conf").read_text() == "port = 8000\n"
    assert (mode(root), mode(root / "app.conf"), mode(root / "app.service")) == ("0750", "0640", "0644")
    assert (root / "app.conf").stat().st_gid != 0  # nogroup
    again = run(tmp_path, layout(root))
    assert again["changed"] is False and again["changed_paths"] == []
    assert again["existed"] == [e["path"] for e in layout(root)]
    assert sorted(os.listdir(root)) == ["app.conf", "app.service"]  # no candidate left behind
    conf = root / "app.conf"
    assert again["checksums"][str(conf)] == hashlib.sha256(conf.read_bytes()).hexdigest()
    assert set(again["checksums"]) == {str(conf), str(root / "app.service")}


def test_a_directory_gets_its_missing_parents(tmp_path):
    deep = tmp_path / "opt" / "releases" / "v1"
    done = run(tmp_path, [{"path": str(deep), "state": "directory", "mode": "0700"}])
    assert done["changed"] is True and mode(deep) == "0700" and mode(deep.parent) == "0755"


def test_only_what_differs_changes(tmp_path):
    root = tmp_path / "etc"
    run(tmp_path, layout(root))
    (root / "app.service").chmod(0o600)
    (root / "app.conf").write_text("port = 9000\n")
    done = run(tmp_path, layout(root), diff=True)
    assert done["changed_paths"] == [str(root / "app.conf"), str(root / "app.service")]
    assert (root / "app.conf").read_text() == "port = 8000\n" and mode(root / "app.service") == "0644"
    content, attributes = done["diff"]
    assert (content["before"], content["after"]) == ("port = 9000\n", "port = 8000\n")
    assert (attributes["before"]["mode"], attributes["after"]["mode"]) == ("0600", "0644")


def test_check_mode_reports_and_writes_nothing(tmp_path):
    root = tmp_path / "etc"
    files = [*layout(root), {"path": str(root / "x"), "content": "", "mode": "0600", "owner": "no-such-user"}]
    done = run(tmp_path, files, check=True)
    assert done["changed"] is True and len(done["changed_paths"]) == 4
    assert not root.exists()


def test_a_candidate_that_fails_validation_leaves_the_old_file(tmp_path):
    root = tmp_path / "etc"
    run(tmp_path, layout(root))
    files = layout(root)
    files[1] = {**files[1], "mode": "0600"}
    files[2] = {**files[2], "content": "broken\n", "validate": "grep -q Service %s"}
    done = run(tmp_path, files)
    assert done["failed"] is True
    assert str(root / "app.service") in done["msg"] and "failed to validate" in done["msg"]
    assert (root / "app.service").read_text() == "[Service]\n"
    assert sorted(os.listdir(root)) == ["app.conf", "app.service"]
    # The entry before it was applied and is reported as such.
    assert done["changed_paths"] == [str(root / "app.conf")] and mode(root / "app.conf") == "0600"


def test_validation_sees_the_candidate_under_the_targets_name(tmp_path):
    """Checkers that judge a file by its name (systemd-analyze verify) see the real name, outside the
    target's directory, and the content and mode about to be installed."""
    root = tmp_path / "etc"
    check = 'sh -c \'test "$(basename "$1")" = app.service && test "$(dirname "$1")" != ' + str(root)
    check += ' && grep -qx ok "$1" && test "$(stat -c %%a "$1")" = 640\' validate %s'
    files = [
        *layout(root)[:1],
        {"path": str(root / "app.service"), "content": "ok\n", "mode": "0640", "validate": check},
    ]
    done = run(tmp_path, files)
    assert done["changed"] is True, done.get("msg")
    assert (root / "app.service").read_text() == "ok\n"


def test_refuses_to_replace_another_kind_of_entry(tmp_path):
    root = tmp_path / "etc"
    root.mkdir()
    (root / "app.conf").mkdir()
    done = run(tmp_path, layout(root))
    assert done["failed"] is True
    assert done["msg"].startswith(f"{root / 'app.conf'} exists as directory, not a file")


def test_refuses_unknown_owners_and_bad_modes_by_path(tmp_path):
    target = tmp_path / "a"
    no_user = run(tmp_path, [{"path": str(target), "content": "", "mode": "0644", "owner": "no-such-user"}])
    assert no_user["failed"] is True and no_user["msg"] == f"{target}: no user 'no-such-user' on this host"
    bad_mode = run(tmp_path, [{"path": str(target), "content": "", "mode": "644x"}])
    assert bad_mode["failed"] is True and "is not an octal mode" in bad_mode["msg"]
    assert not target.exists()


def test_an_unknown_owner_in_any_entry_changes_nothing(tmp_path):
    root = tmp_path / "etc"
    files = [
        *layout(root),
        {"path": str(root / "x"), "content": "", "mode": "0600", "group": "no-such-group"},
    ]
    done = run(tmp_path, files)
    assert done["failed"] is True and done["msg"] == f"{root / 'x'}: no group 'no-such-group' on this host"
    assert done["changed_paths"] == [] and not root.exists()


def test_a_missing_directory_is_named_and_earlier_entries_reported(tmp_path):
    root = tmp_path / "etc"
    files = [layout(root)[0], {"path": str(tmp_path / "nowhere" / "a"), "content": "", "mode": "0644"}]
    done = run(tmp_path, files)
    assert done["failed"] is True
    assert done["msg"] == f"{tmp_path / 'nowhere' / 'a'}: No such file or directory"
    assert done["changed_paths"] == [str(root)] and root.is_dir()


def test_a_file_needs_content_and_a_directory_takes_none(tmp_path):
    no_content = run(tmp_path, [{"path": str(tmp_path / "a"), "mode": "0644"}])
    assert no_content["failed"] is True and "a file needs its content" in no_content["msg"]
    dir_content = run(
        tmp_path, [{"path": str(tmp_path / "d"), "state": "directory", "mode": "0755", "content": "x"}]
    )
    assert dir_content["failed"] is True and "a directory takes no content" in dir_content["msg"]


def read_back(tmp_path: Path, files: list[dict]) -> dict:
    """What the roles pass as `known`: host_facts' answers for the entries' paths."""
    paths = [entry["path"] for entry in files]
    answer = run_ansible_module(tmp_path, "host_facts", json.dumps({"paths": paths, "checksums": paths}))
    return {"paths": answer["paths"], "checksums": answer["checksums"]}


def run_known(tmp_path: Path, files: list[dict], known: dict) -> dict:
    return run_ansible_module(tmp_path, "config_files", json.dumps({"files": files, "known": known}))


def test_known_state_is_confirmed_on_the_controller_as_the_module_would_report_it(tmp_path):
    root = tmp_path / "etc"
    run(tmp_path, layout(root))
    module_says = run(tmp_path, layout(root))  # the module itself, on the host, nothing to change
    confirmed = run_known(tmp_path, layout(root), read_back(tmp_path, layout(root)))
    assert confirmed["confirmed_on_controller"] is True and confirmed["changed"] is False
    for key in ("changed_paths", "existed", "checksums"):
        assert confirmed[key] == module_says[key]
    assert "confirmed_on_controller" not in module_says


def test_any_difference_from_the_known_state_runs_the_module(tmp_path):
    root = tmp_path / "etc"
    conf, unit = root / "app.conf", root / "app.service"
    stale = read_back(tmp_path, layout(root))  # before anything was written: every entry absent
    first = run_known(tmp_path, layout(root), stale)
    assert "confirmed_on_controller" not in first
    assert first["changed_paths"] == [entry["path"] for entry in layout(root)]
    conf.chmod(0o600)
    unit.write_text("[Unit]\n")
    fixed = run_known(tmp_path, layout(root), read_back(tmp_path, layout(root)))
    assert "confirmed_on_controller" not in fixed and fixed["changed_paths"] == [str(conf), str(unit)]
    assert mode(conf) == "0640" and unit.read_text() == "[Service]\n"
    os.chown(conf, 0, 0)  # the group differs from the declared nogroup
    regrouped = run_known(tmp_path, layout(root), read_back(tmp_path, layout(root)))
    assert regrouped["changed_paths"] == [str(conf)] and conf.stat().st_gid != 0
