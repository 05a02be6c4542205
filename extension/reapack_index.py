"""Generate ReaTimbre's ReaPack repository index (``index.xml``) from the ``# @…`` headers of its scripts.

Standard library only. ``python -m extension.reapack_index`` rewrites ``index.xml`` in the repository root;
``--check`` only reports whether it is up to date (exit 1 if not). The rules follow cfillion's reapack-index
(its scanner, provides and conflict checks) for what ReaTimbre uses, and fail loudly on anything else:

* packages: every file under a folder (not the root) whose extension ReaPack knows, unless a path in
  ``.reapack-index.conf``'s ``--ignore`` covers it; its category is its folder, its name the file name;
* the header is read from the top of the file up to the first empty line (a tag after it would be lost);
  ``@version`` is required (digits first, numeric segments ≤ 65535), ``@description``/``@author`` are single
  lines, ``@noindex`` skips the file, ``@provides`` lists ``[options] pattern [> target]`` lines relative to the
  package's folder (``.`` is the package file, ``*`` does not cross ``/``);
* every pattern must match a file of the repository (``git ls-files``), no package may install the same file
  twice, and no two packages may install the same file.

The output depends only on the headers, the repository's file list and ``.reapack-index.conf`` (name, URL
template, ignores), so it is deterministic: no time stamps, no commit ids.
"""

from __future__ import annotations

import argparse
import fnmatch
import posixpath
import re
import shlex
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from models.atomic_files import write_text

REPO = Path(__file__).resolve().parent.parent
CONFIG = ".reapack-index.conf"
OUTPUT = "index.xml"
PACKAGE_TYPES = {
    "lua": "script", "eel": "script", "py": "script", "ext": "extension", "jsfx": "effect", "data": "data",
    "theme": "theme", "reaperlangpack": "langpack", "www": "webinterface", "rpp": "projecttpl",
    "rtracktemplate": "tracktpl", "txt": "midinotenames", "reaperautoitem": "autoitem", "reaperkeymap": "keymap",
}  # fmt: skip
"""File extension -> ReaPack package type (reapack-index ``index.rb``)."""
SUPPORTED_TYPES = frozenset({"script", "data"})
SINGLE_LINE_TAGS = frozenset({"version", "description", "author"})
BOOLEAN_TAGS = frozenset({"noindex", "metapackage"})
KNOWN_TAGS = SINGLE_LINE_TAGS | BOOLEAN_TAGS | {"about", "changelog", "provides"}
_TAG = re.compile(r"#(?P<indent>\s*)@(?P<key>\w+)(?:\s+(?P<value>.*))?\Z")
_PROVIDES = re.compile(r"(?:\[(?P<options>[^\]]*)\]\s*)?(?P<pattern>.+?)(?:\s+>\s+(?P<target>.+))?\Z")


class ReaPackIndexError(Exception):
    """A header or repository rule is broken; the message names the file."""


@dataclass
class Source:
    """One file a package installs."""

    path: str
    """Repository-relative path of the file to download."""
    file: str | None
    """The ``file`` attribute: where it goes, relative to the package's category (None: the package file)."""
    main: bool
    type: str | None

    def target(self, category: str, package_type: str) -> str:
        """Where ReaPack puts it, relative to the resource path's type folder (``Scripts/<index>/`` …)."""
        kind = self.type or package_type
        name = self.file if self.file is not None else posixpath.basename(self.path)
        if kind == "data":
            return "Data/" + posixpath.basename(name)
        return f"{kind}:" + posixpath.normpath(posixpath.join(category, name))


@dataclass
class Package:
    path: str
    type: str
    description: str
    version: str
    author: str
    sources: list[Source] = field(default_factory=list)

    @property
    def category(self) -> str:
        return posixpath.dirname(self.path)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass
class Config:
    name: str
    url_template: str
    ignore: list[str]


def read_config(repo: Path = REPO) -> Config:
    """``--name``, ``--url-template`` and ``--ignore`` from ``.reapack-index.conf`` (reapack-index's own file)."""
    path = repo / CONFIG
    try:
        words = shlex.split(path.read_text(encoding="utf-8"), comments=True)
    except OSError as exc:
        raise ReaPackIndexError(f"cannot read {path}: {exc.strerror or exc}") from exc
    values: dict[str, list[str]] = {"--name": [], "--url-template": [], "--ignore": []}
    i = 0
    while i < len(words):
        word = words[i]
        key, _, inline = word.partition("=")
        if key not in values:
            raise ReaPackIndexError(f"{CONFIG}: unsupported option {word!r}")
        if inline:
            values[key].append(inline)
        elif i + 1 < len(words):
            values[key].append(words[i + 1])
            i += 1
        else:
            raise ReaPackIndexError(f"{CONFIG}: {key} needs a value")
        i += 1
    if len(values["--name"]) != 1 or len(values["--url-template"]) != 1:
        raise ReaPackIndexError(f"{CONFIG}: needs exactly one --name and one --url-template")
    return Config(values["--name"][0], values["--url-template"][0], [p.strip("/") for p in values["--ignore"]])


def repository_files(repo: Path = REPO) -> list[str]:
    """The repository's files (``git ls-files``; outside a git checkout, every file but caches)."""
    try:
        result = subprocess.run(["git", "-C", str(repo), "ls-files", "-z"], capture_output=True, check=True, timeout=60)
        return sorted(p for p in result.stdout.decode("utf-8").split("\0") if p)
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}
        return sorted(
            p.relative_to(repo).as_posix()
            for p in repo.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(repo).parts)
        )


def package_candidates(files: list[str], config: Config) -> list[str]:
    """Files reapack-index would treat as packages: in a folder, with a known extension, not ignored."""
    out = []
    for path in files:
        extension = path.rsplit(".", 1)[-1].lower() if "." in posixpath.basename(path) else ""
        if "/" in path and extension in PACKAGE_TYPES:
            if not any((path + "/").startswith(prefix + "/") for prefix in config.ignore):
                out.append(path)
    return out


def read_header(text: str, path: str) -> dict[str, str | bool]:
    """The ``# @tag value`` header at the top of a file, as reapack-index's parser reads it: up to the first
    empty line; a multi-line value continues on ``#`` lines indented deeper than its tag."""
    tags: dict[str, str | bool] = {}
    last: str | None = None
    last_indent = ""
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            later = [n for n, rest in enumerate(lines[number:], number + 1) if _TAG.match(rest.rstrip())]
            if later:
                raise ReaPackIndexError(f"{path}: line {later[0]}: a tag after an empty line is not read by ReaPack")
            break
        stripped = line.rstrip()
        match = _TAG.match(stripped)
        if match:
            key = match["key"].lower()
            if key in tags:
                raise ReaPackIndexError(f"{path}: line {number}: tag @{key} given twice")
            tags[key] = match["value"].strip() if match["value"] else True
            last, last_indent = key, match["indent"]
            continue
        body = stripped[1:] if stripped.startswith("#") else None
        if last is not None and body is not None and body.startswith(last_indent + " ") and body.strip():
            previous = tags[last]
            tags[last] = (previous + "\n" if isinstance(previous, str) else "") + body.strip()
            continue
        last = None
    return tags


def _check_tags(tags: dict[str, str | bool], path: str) -> None:
    for key, value in tags.items():
        if key not in KNOWN_TAGS:
            raise ReaPackIndexError(f"{path}: unknown tag @{key}")
        if key in BOOLEAN_TAGS and value is not True:
            raise ReaPackIndexError(f"{path}: tag @{key} cannot have a value")
        if key in SINGLE_LINE_TAGS and (not isinstance(value, str) or "\n" in value):
            raise ReaPackIndexError(f"{path}: tag @{key} must be a single line with a value")
    version = tags.get("version")
    if not isinstance(version, str):
        raise ReaPackIndexError(f"{path}: missing tag @version (or @noindex for a file that is not a package)")
    if not re.match(r"\d", version) or any(int(n) > 65535 for n in re.findall(r"\d+", version)):
        raise ReaPackIndexError(f"{path}: invalid @version {version!r}")


def _parse_provides(package: Package, value: str, files: list[str]) -> list[Source]:
    sources = []
    for line in value.splitlines():
        match = _PROVIDES.match(line.strip())
        if match is None:
            raise ReaPackIndexError(f"{package.path}: cannot read @provides line {line!r}")
        main: bool | None = None
        kind = None
        for option in (match["options"] or "").lower().split():
            if option in ("main", "nomain"):
                main = option == "main"
            elif option in SUPPORTED_TYPES:
                kind = option
            else:
                raise ReaPackIndexError(f"{package.path}: @provides option [{option}] is not supported here")
        if match["target"]:
            raise ReaPackIndexError(f"{package.path}: @provides targets ('> …') are not supported here")
        pattern = package.name if match["pattern"] == "." else match["pattern"]
        expanded = posixpath.normpath(posixpath.join("/" + package.category, pattern)).lstrip("/")
        if pattern.startswith("/"):
            expanded = pattern.lstrip("/")
        if expanded == package.path:
            matched = [package.path]
        else:
            matched = [f for f in files if fnmatch.fnmatchcase(f, expanded) and f.count("/") == expanded.count("/")]
        if not matched:
            raise ReaPackIndexError(f"{package.path}: file not found '{match['pattern']}'")
        for path in matched:
            is_self = path == package.path
            relative = None if is_self else posixpath.relpath(path, package.category or ".")
            sources.append(Source(path, relative, bool(main) if main is not None else is_self, kind))
    return sources


def read_package(path: str, text: str, files: list[str]) -> Package | None:
    """The package a file declares, or None for ``@noindex``."""
    tags = read_header(text, path)
    if "noindex" in tags:
        if tags["noindex"] is not True:
            raise ReaPackIndexError(f"{path}: tag @noindex cannot have a value")
        if set(tags) != {"noindex"}:
            raise ReaPackIndexError(f"{path}: a @noindex file should carry no other tags")
        return None
    _check_tags(tags, path)
    kind = PACKAGE_TYPES[path.rsplit(".", 1)[-1].lower()]
    if kind not in SUPPORTED_TYPES:
        raise ReaPackIndexError(f"{path}: package type {kind} is not supported here")
    description = tags.get("description")
    package = Package(path, kind, description if isinstance(description, str) else "", str(tags["version"]), "")
    author = tags.get("author")
    package.author = author if isinstance(author, str) else ""
    provides = tags.get("provides")
    provided = _parse_provides(package, provides, files) if isinstance(provides, str) else []
    if not tags.get("metapackage") and not any(s.path == path for s in provided):
        provided.insert(0, Source(path, None, True, None))
    package.sources = provided
    return package


def check_conflicts(packages: list[Package]) -> None:
    """No package installs a file twice; no two packages install the same file."""
    owner: dict[str, str] = {}
    for package in packages:
        seen: set[str] = set()
        for source in package.sources:
            target = source.target(package.category, package.type)
            if target in seen:
                raise ReaPackIndexError(f"{package.path}: duplicate file '{source.path}'")
            seen.add(target)
            if target in owner:
                raise ReaPackIndexError(f"'{package.path}' conflicts with '{owner[target]}' over '{source.path}'")
            owner[target] = package.path


def read_packages(repo: Path = REPO, config: Config | None = None) -> list[Package]:
    """Every package of the repository, checked, sorted as reapack-index sorts them."""
    config = config or read_config(repo)
    files = repository_files(repo)
    packages = []
    for path in package_candidates(files, config):
        text = (repo / path).read_text(encoding="utf-8", errors="replace")
        package = read_package(path, text, files)
        if package is not None:
            packages.append(package)
    check_conflicts(packages)
    return sorted(packages, key=lambda p: (p.category.lower(), p.name.lower()))


def source_url(template: str, path: str) -> str:
    return template.replace("$path", urllib.parse.quote(path, safe="/-._~!$&'()*+,;=:@"))


def render(packages: list[Package], config: Config) -> str:
    """The index.xml text."""
    out = ['<?xml version="1.0" encoding="utf-8"?>', f'<index version="1" name={quoteattr(config.name)}>']
    categories = sorted({p.category for p in packages}, key=str.lower)
    for category in categories:
        out.append(f"  <category name={quoteattr(category)}>")
        for package in (p for p in packages if p.category == category):
            out.append(
                f"    <reapack name={quoteattr(package.name)} type={quoteattr(package.type)} "
                f"desc={quoteattr(package.description)}>"
            )
            out.append(f"      <version name={quoteattr(package.version)} author={quoteattr(package.author)}>")
            for source in package.sources:
                attributes = ""
                if source.main:
                    attributes += ' main="main"'
                if source.type:
                    attributes += f" type={quoteattr(source.type)}"
                if source.file is not None:
                    attributes += f" file={quoteattr(source.file)}"
                url = escape(source_url(config.url_template, source.path))
                out.append(f"        <source{attributes}>{url}</source>")
            out.append("      </version>")
            out.append("    </reapack>")
        out.append("  </category>")
    out.append("</index>")
    return "\n".join(out) + "\n"


def generate(repo: Path = REPO) -> str:
    config = read_config(repo)
    return render(read_packages(repo, config), config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if index.xml is not up to date")
    args = parser.parse_args(argv)
    try:
        text = generate()
    except ReaPackIndexError as exc:
        print(f"reapack_index: {exc}", file=sys.stderr)
        return 1
    target = REPO / OUTPUT
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:
        if current != text:
            print(f"{OUTPUT} is out of date: run python -m extension.reapack_index", file=sys.stderr)
            return 1
        return 0
    if current != text:
        write_text(target, text, newline="\n")
        print(f"wrote {OUTPUT}")
    else:
        print(f"{OUTPUT} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
