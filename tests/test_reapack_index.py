"""The ReaPack repository: index.xml is generated from the script headers, follows reapack-index's rules, is
up to date, and installs a working set of actions (reference §6)."""

from __future__ import annotations

import posixpath
import shutil
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bare_python import import_with_a_bare_python

from extension import reapack_index as rx
from extension import reaper_payload
from extension.reaper_install import REAPY_SCRIPT, action_id

REPO = rx.REPO


@pytest.fixture(scope="module")
def packages() -> list[rx.Package]:
    return rx.read_packages()


def test_committed_index_is_up_to_date() -> None:
    assert (REPO / "index.xml").read_text(encoding="utf-8") == rx.generate(), (
        "index.xml is stale: run  python -m extension.reapack_index  and commit index.xml"
    )
    assert rx.generate() == rx.generate()  # deterministic


def test_one_package_per_action_and_the_helpers_provided_exactly_once(packages: list[rx.Package]) -> None:
    actions = {f"reaper_scripts/{p.name}" for p in reaper_payload.action_scripts()}
    registered = {s.path for p in packages for s in p.sources if s.main}
    assert registered == actions  # every action is in the Action List, nothing else is
    for action in actions:
        package = next(p for p in packages if p.path == action)
        assert [(s.path, s.main) for s in package.sources] == [(action, True)]
    provided: dict[str, list[str]] = {}
    for package in packages:
        for source in package.sources:
            provided.setdefault(source.path, []).append(package.path)
            assert source.path in rx.repository_files(), source.path
    for helper in reaper_payload.helper_modules():
        path = f"reaper_scripts/{helper.name}"
        assert len(provided.get(path, [])) == 1, path
        header = rx.read_header(helper.read_text(encoding="utf-8"), path)
        assert header == {"noindex": True} or any(p.path == path for p in packages), path
    for library in reaper_payload.library_files():  # whatever the actions import from extension/ and models/
        assert len(provided.get(library, [])) == 1, f"{library} is not provided by exactly one package"
    osc = [s for p in packages for s in p.sources if s.path.endswith("ReaTimbre.ReaperOSC")]
    assert len(osc) == 1 and osc[0].type == "data"


def test_versions_and_headers_are_valid(packages: list[rx.Package]) -> None:
    for package in packages:
        assert package.version[0].isdigit() and all(int(n) <= 65535 for n in package.version.split("."))
        assert package.description.startswith("ReaTimbre: ") and package.author == "ReaTimbre"
    for script in sorted((REPO / "reaper_scripts").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        header_end = text.find("\n\n")
        assert "# @" not in text[header_end:], f"{script.name}: a tag after an empty line is not read by ReaPack"


def test_index_xml_is_what_reapack_reads() -> None:
    root = ET.parse(REPO / "index.xml").getroot()
    assert root.tag == "index" and root.get("version") == "1" and root.get("name") == "ReaTimbre"
    names = [p.get("name") for p in root.iter("reapack")]
    assert names == sorted(names, key=str.lower) and len(names) == len(reaper_payload.action_scripts()) + 1
    for source in root.iter("source"):
        assert source.text and source.text.startswith("https://") and " " not in source.text


def _install_like_reapack(resource: Path) -> list[str]:
    """Put every source where ReaPack would (reapack source.cpp targetPath), copying from the repository."""
    root = ET.parse(REPO / "index.xml").getroot()
    index_name = root.get("name")
    url_prefix = rx.read_config().url_template.split("$path")[0]
    placed = []
    for category in root.iter("category"):
        for package in category.iter("reapack"):
            for source in package.iter("source"):
                repo_path = urllib.parse.unquote(source.text.removeprefix(url_prefix))
                file = source.get("file") or package.get("name")
                if (source.get("type") or package.get("type")) == "data":
                    target = posixpath.join("Data", posixpath.basename(file))
                else:
                    inside = posixpath.normpath(posixpath.join(category.get("name"), file))
                    assert not inside.startswith(".."), "ReaPack stops traversal at the index folder"
                    target = posixpath.join("Scripts", index_name, inside)
                (resource / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(REPO / repo_path, resource / target)
                placed.append(target)
    return placed


def test_actions_installed_by_reapack_import_with_a_bare_python(tmp_path: Path) -> None:
    placed = _install_like_reapack(tmp_path)
    assert "Data/ReaTimbre.ReaperOSC" in placed
    scripts = tmp_path / "Scripts" / "ReaTimbre" / "reaper_scripts"
    result = import_with_a_bare_python(
        scripts, "reatimbre_action, reatimbre_audition, reatimbre_server, extension.coach_steps, models.errors"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "Scripts" / "ReaTimbre" / "extension" / "reaper_ops.py")


# --------------------------------------------------------------------------- the rules catch broken headers
CONF = "--name Test\n--url-template https://example.org/raw/$path\n"
ACTION = "# @description A\n# @version 1.0\n# @author me\nimport os\n"


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    for name, text in {".reapack-index.conf": CONF, **files}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return repo


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"s/a.py": "# @description A\nimport os\n"}, "missing tag @version"),
        ({"s/helper.py": '"""A helper module with no header."""\n'}, "missing tag @version"),
        ({"s/a.py": "# @version 1.99999\n"}, "invalid @version"),
        ({"s/a.py": "# @version v1\n"}, "invalid @version"),
        ({"s/a.py": "# @description A\n\n# @version 1.0\n"}, "tag after an empty line"),
        ({"s/a.py": "# @version 1.0\n# @provides\n#   lib/*.py\n"}, "file not found 'lib/\\*.py'"),
        ({"s/a.py": "# @version 1.0\n# @provides\n#   [main] b.py\n", "s/b.py": ACTION}, "conflicts with"),
        ({"s/a.py": "# @version 1.0\n# @provides\n#   [nomain] h.py\n#   [nomain] h.py\n", "s/h.py": "# @noindex\n"},
         "duplicate file"),
        ({"s/a.py": "# @version 1.0\n# @provides\n#   [win64] h.py\n", "s/h.py": "# @noindex\n"},
         r"option \[win64\]"),
        ({"s/h.py": "# @noindex because\n"}, "cannot have a value"),
        ({"s/a.py": "# @version 1.0\n# @description one\n#   two\n"}, "single line"),
    ],
)  # fmt: skip
def test_broken_headers_are_errors(tmp_path: Path, files: dict[str, str], error: str) -> None:
    repo = _repo(tmp_path, files)
    with pytest.raises(rx.ReaPackIndexError, match=error):
        rx.read_packages(repo)


def test_root_files_ignored_folders_and_globs(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "setup.py": "print('root files are never packages')\n",
            "lib/x.py": "import os\n",
            "lib/sub/y.py": "import os\n",
            "s/a.py": "# @version 1.0\n# @provides\n#   [nomain] ../lib/*.py\n#   [data] pattern.ReaperOSC\n",
            "s/pattern.ReaperOSC": "DEVICE_FX_COUNT 8\n",
        },
    )
    (repo / ".reapack-index.conf").write_text(CONF + "--ignore lib\n")
    [package] = rx.read_packages(repo)
    assert [(s.path, s.file, s.main, s.type) for s in package.sources] == [
        ("s/a.py", None, True, None),
        ("lib/x.py", "../lib/x.py", False, None),  # '*' does not cross '/'
        ("s/pattern.ReaperOSC", "pattern.ReaperOSC", False, "data"),
    ]


def test_the_startup_lines_in_the_docs_name_the_reapack_action() -> None:
    docs = (REPO / "docs" / "reapack.md").read_text(encoding="utf-8")
    assert f'"_{action_id("ReaTimbre/reaper_scripts/" + REAPY_SCRIPT)}"' in docs
