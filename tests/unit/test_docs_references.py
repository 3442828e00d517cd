"""Every file path and every ``rallypoint`` flag that README.md and docs/*.md name exists.

What is checked, and where:

* Repository paths (``src/...``, ``tests/...``, ``bench/...``, ``docs/...``) anywhere in the text, code
  blocks included, with an optional ``::name`` (a test or class that must be defined in that file) and
  ``*`` globs. A path must exist in the checkout and must not be git-ignored (an ignored path, such as
  local benchmark output, is not there for a reader of a fresh checkout).
* Module paths relative to ``src/rallypoint`` written as inline code (``federation/links_api.py``,
  ``web/marti/``): the first component must be a directory of the package.
* Relative Markdown links (``[x](operations.md#backups)``): the target file must exist.
* Flags of the ``rallypoint`` command tree, introspected from the real typer app: in every command
  line (``rallypoint ...``, ``.venv/bin/rallypoint ...``, ``python -m rallypoint.cli.main ...``,
  ``./run ...``) in code blocks and inline code, up to the end of that shell command (``|``, ``&&``,
  ``;``, ``#``), so flags of other tools on the same line (pytest, openssl, curl) are not taken for
  ours; in the flag column of tables under a heading that names a ``rallypoint`` command; and in the
  command column of command tables.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from rallypoint.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "rallypoint"
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# Paths a doc tells the reader to create (they are not in a checkout), with the doc that says so.
CREATED_BY_READER = {"bench/.venv-taky": "performance.md: python3 -m venv bench/.venv-taky"}
# configuration.md's Flag column lists the flags of `rallypoint serve` (settings are serve's).
TABLE_COMMANDS = {"configuration.md": ("serve",)}

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE = re.compile(r"(`+)(.+?)\1", re.S)
_REPO_PATH = re.compile(r"(?<![\w./~:@-])((?:src|tests|bench|docs)/[\w./*-]*)((?:::[\w\[\]-]+)?)")
_MODULE_PATH = re.compile(r"^([a-z_][a-z0-9_]*)/((?:[\w-]+/)*[\w-]+\.py|(?:[\w-]+/)+)((?:::[\w\[\]-]+)?)$")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FLAG = re.compile(r"(?<![\w-])(--[A-Za-z0-9][A-Za-z0-9-]*)")
_SHELL_END = re.compile(r"\|\||&&|[|;&()]|(?:^|\s)#")
_PREFIXES = frozenset({"$", "sudo", "exec", "time", "nohup", "env"})


@dataclass(frozen=True)
class Doc:
    """A Markdown file split into what the checks read."""

    name: str
    path: Path
    text: str
    prose: str  # the text with fenced code blocks blanked out (line numbers kept)
    fenced: tuple[tuple[int, str], ...]  # (line number, logical line), backslash continuations joined


def read_doc(path: Path) -> Doc:
    """Split ``path`` into prose and fenced code lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    prose: list[str] = []
    fenced: list[tuple[int, str]] = []
    in_fence = False
    pending, start = "", 0
    for number, line in enumerate(lines, start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            prose.append("")
            continue
        if not in_fence:
            prose.append(line)
            continue
        prose.append("")
        start = start or number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        fenced.append((start, pending + line))
        pending, start = "", 0
    return Doc(path.name, path, "\n".join(lines), "\n".join(prose), tuple(fenced))


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def inline_spans(doc: Doc) -> Iterator[tuple[int, str]]:
    """``(line, content)`` of every inline code span outside fenced blocks."""
    for match in _INLINE.finditer(doc.prose):
        yield _line_of(doc.prose, match.start()), match.group(2)


# Paths ---------------------------------------------------------------------------------------------

def _defines(path: Path, name: str) -> bool:
    name = name.split("[", 1)[0]
    return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", path.read_text(), re.M) is not None


def _created_by_reader(rel: str) -> bool:
    return any(rel.rstrip("/") == made or rel.startswith(made + "/") for made in CREATED_BY_READER)


def _missing(root: Path, rel: str, member: str) -> str | None:
    """Why ``rel`` (below ``root``) is not a valid reference, or None."""
    if "*" in rel:
        return None if any(root.glob(rel)) else "matches no file"
    target = root / rel
    if not target.exists():
        return "does not exist"
    if member and not (target.is_file() and all(_defines(target, m) for m in member.strip(":").split("::"))):
        return f"defines no {member.strip(':')}"
    return None


def path_problems(doc: Doc) -> list[str]:
    """Repository paths, package module paths and relative links of ``doc`` that do not exist."""
    problems: list[str] = []
    seen: set[str] = set()
    for match in _REPO_PATH.finditer(doc.text):
        rel, member = match.group(1).rstrip(".,:;"), match.group(2)
        if _created_by_reader(rel) or (rel + member) in seen:
            continue
        seen.add(rel + member)
        if (why := _missing(ROOT, rel, member)) is not None:
            problems.append(f"{doc.name}:{_line_of(doc.text, match.start())}: {rel}{member} {why}")
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    for line, span in inline_spans(doc):
        module = _MODULE_PATH.match(span.strip())
        if module is None or module.group(1) not in packages:
            continue
        rel = f"{module.group(1)}/{module.group(2)}"
        if (why := _missing(PACKAGE, rel, module.group(3))) is not None:
            problems.append(f"{doc.name}:{line}: {span.strip()} (src/rallypoint/{rel}) {why}")
    problems += sibling_problems(doc, packages)
    for match in _LINK.finditer(doc.prose):
        target = match.group(1).split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue
        if not (doc.path.parent / target).exists():
            problems.append(f"{doc.name}:{_line_of(doc.prose, match.start())}: link target {target} does not exist")
    return problems


def sibling_problems(doc: Doc, packages: set[str]) -> list[str]:
    """Bare ``name.py`` in a table row whose first cell starts with a module path: relative to its directory.

    That is how the module tables write several files of one package
    (``| `federation/service.py`, `link.py` | ... |``, ``| `web/api/` | ...; `links.py`: ... |``).
    """
    problems = []
    for _, _, _, rows in tables(doc):
        for row in rows:
            first = _INLINE.search(row[0][1]) if row else None
            module = _MODULE_PATH.match(first.group(2).strip()) if first else None
            if module is None or module.group(1) not in packages:
                continue
            rel = f"{module.group(1)}/{module.group(2)}"
            base = PACKAGE / (rel if rel.endswith("/") else rel.rsplit("/", 1)[0])
            for line, cell in row:
                for span in _INLINE.findall(cell):
                    name = span[1].strip()
                    if re.fullmatch(r"[\w-]+\.py", name) and not (base / name).is_file():
                        where = base.relative_to(ROOT)
                        problems.append(f"{doc.name}:{line}: {name} is not in {where}/ (the row's package)")
    return problems


def ignored(paths: list[str]) -> set[str]:
    """The ``paths`` git ignores (none when this is not a git checkout)."""
    if not paths or not (ROOT / ".git").exists() or shutil.which("git") is None:
        return set()
    result = subprocess.run(["git", "check-ignore", "--stdin"], cwd=ROOT, input="\n".join(paths),
                            capture_output=True, text=True, check=False)
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def repo_paths(doc: Doc) -> list[tuple[int, str]]:
    """``(line, path)`` of every existing repository path ``doc`` names (globs left out)."""
    out = []
    for match in _REPO_PATH.finditer(doc.text):
        rel = match.group(1).rstrip(".,:;")
        if "*" not in rel and not _created_by_reader(rel) and (ROOT / rel).exists():
            out.append((_line_of(doc.text, match.start()), rel))
    return out


# Flags ---------------------------------------------------------------------------------------------

# The command tree is typer's (click's API, typer's own copy of click): read it by its attributes.
Command = Any


def is_group(command: Command) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def options_of(command: Command) -> set[str]:
    """Every option string ``command`` accepts, ``--help`` included."""
    ctx = command.context_class(command, info_name=command.name)
    names: set[str] = set()
    for param in command.get_params(ctx):
        if param.param_type_name == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def resolve(root: Command, words: list[str]) -> tuple[Command, list[str], list[str]]:
    """Descend the command tree along ``words``: the command reached, its path, the words left."""
    command, path = root, []
    while words and is_group(command) and words[0] in command.commands:
        command = command.commands[words[0]]
        path.append(words.pop(0))
    return command, path, words


def invocations(line: str) -> Iterator[list[str]]:
    """The words after ``rallypoint`` (or an equivalent) in each shell command of ``line`` that runs it.

    Only the command word counts (after environment assignments, ``sudo``, ``exec``, a ``$`` prompt):
    ``rallypoint`` as another program's argument (``--server rallypoint``) is not an invocation.
    """
    for segment in _SHELL_END.split(line):
        words = segment.split()
        while words and (words[0] in _PREFIXES or re.match(r"^[A-Z_][A-Z0-9_]*=", words[0])):
            words.pop(0)
        if not words:
            continue
        head, rest = words[0], words[1:]
        if head == "rallypoint" or head.endswith("/rallypoint"):
            yield rest
        elif re.search(r"python[0-9.]*$", head) and rest[:2] == ["-m", "rallypoint.cli.main"]:
            yield rest[2:]
        elif head == "./run" and rest[:1] == ["demo"]:
            yield ["serve", *rest[1:]]
        elif head == "./run" and rest[:1] != ["test"]:  # ./run test hands its arguments to pytest
            yield rest


def check_command_line(root: Command, words: list[str]) -> list[str]:
    """Problems with one ``rallypoint`` invocation: an unknown command, or flags it does not have."""
    command, path, rest = resolve(root, list(words))
    flags = [f for word in rest for f in _FLAG.findall(word)]
    if not flags:
        return []
    name = " ".join(["rallypoint", *path])
    if is_group(command) and rest and not rest[0].startswith("-"):
        return [f"{name} has no command {rest[0]!r}"]
    known = options_of(command)
    return [f"{name} has no flag {flag}" for flag in flags if flag not in known]


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def tables(doc: Doc) -> Iterator[tuple[int, str, list[str], list[list[tuple[int, str]]]]]:
    """``(line, heading, header cells, rows of (line, cell))`` for each table in the prose."""
    heading = ""
    lines = doc.prose.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line
        if line.lstrip().startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            header, rows = _cells(line), []
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                rows.append([(j + 1, cell) for cell in _cells(lines[j])])
                j += 1
            yield i + 1, heading, header, rows
            i = j
            continue
        i += 1


def heading_commands(root: Command, doc: Doc, heading: str) -> list[Command]:
    """The ``rallypoint`` commands a heading names in inline code (``history export`` counts too)."""
    found = []
    for match in _INLINE.finditer(heading):
        words = match.group(2).split()
        if words[:1] == ["rallypoint"]:
            words = words[1:]
        command, path, rest = resolve(root, words)
        if path and not rest:
            found.append(command)
    if not found and doc.name in TABLE_COMMANDS:
        found.append(resolve(root, list(TABLE_COMMANDS[doc.name]))[0])
    return found


def flag_problems(root: Command, doc: Doc) -> list[str]:
    """Flags of ``doc`` that the ``rallypoint`` command they are given to does not have."""
    problems = []
    lines = [*doc.fenced, *inline_spans(doc)]
    for number, line in lines:
        for words in invocations(" ".join(line.split())):
            problems += [f"{doc.name}:{number}: {p}" for p in check_command_line(root, words)]
    for number, heading, header, rows in tables(doc):
        flag_columns = [k for k, cell in enumerate(header) if "flag" in cell.lower()]
        if header and header[0].strip("`").lower() == "command":
            for row in rows:
                for cell_line, span in ((n, s) for n, c in row[:1] for s in _INLINE.findall(c)):
                    problems += [f"{doc.name}:{cell_line}: {p}"
                                 for p in check_command_line(root, span[1].split())]
        if not flag_columns:
            continue
        commands = heading_commands(root, doc, heading)
        if not commands:
            problems.append(f"{doc.name}:{number}: a table of flags under no `rallypoint` command heading")
            continue
        # A group heading (`rallypoint user`) covers the flags of its subcommands.
        known = set().union(*(
            options_of(c) if not is_group(c) else set().union(*map(options_of, c.commands.values()))
            for c in commands
        ))
        for row in rows:
            for cell_line, cell in (row[k] for k in flag_columns if k < len(row)):
                for flag in _FLAG.findall(cell):
                    if flag not in known:
                        names = ", ".join(c.name or "" for c in commands)
                        problems.append(f"{doc.name}:{cell_line}: {names} has no flag {flag}")
    return problems


# Tests ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli() -> Command:
    return typer.main.get_command(app)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_path_the_docs_name_exists(path: Path) -> None:
    doc = read_doc(path)
    problems = path_problems(doc)
    named = repo_paths(doc)
    hidden = ignored([rel for _, rel in named])
    problems += [f"{doc.name}:{line}: {rel} is git-ignored (not in a checkout)" for line, rel in named if rel in hidden]
    assert problems == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_rallypoint_flag_the_docs_name_exists(path: Path, cli: Command) -> None:
    assert flag_problems(cli, read_doc(path)) == []


def _doc(tmp_path: Path, text: str) -> Doc:
    path = tmp_path / "x.md"
    path.write_text(text)
    return read_doc(path)


def test_the_checks_catch_wrong_flags_paths_and_commands(tmp_path: Path, cli: Command) -> None:
    doc = _doc(tmp_path, "\n".join([
        "```sh",
        "rallypoint serve --api-port 1 --no-such-flag \\",
        "    --data-dir DIR",
        "./run demo --cot-prt 8087",
        "rallypoint frobnicate --x",
        "```",
        "Run `rallypoint cert issue NAME --outt DIR` and read `web/api/links.py`, `src/rallypoint/nope.py`,",
        "`tests/unit/test_docs_references.py::test_missing`, [gone](gone.md).",
        "",
        "## `rallypoint bench`",
        "",
        "| Flag | Meaning |",
        "|---|---|",
        "| `--clients` | fine |",
        "| `--clientz` | wrong |",
        "",
        "| Module | What |",
        "|---|---|",
        "| `federation/service.py`, `link.py` | fine |",
        "| `web/api/` | routes; `links.py`: `GET /api/links` |",
    ]))
    assert flag_problems(cli, doc) == [
        "x.md:2: rallypoint serve has no flag --no-such-flag",
        "x.md:4: rallypoint serve has no flag --cot-prt",
        "x.md:5: rallypoint has no command 'frobnicate'",
        "x.md:7: rallypoint cert issue has no flag --outt",
        "x.md:15: bench has no flag --clientz",
    ]
    assert path_problems(doc) == [
        "x.md:7: src/rallypoint/nope.py does not exist",
        "x.md:8: tests/unit/test_docs_references.py::test_missing defines no test_missing",
        "x.md:7: web/api/links.py (src/rallypoint/web/api/links.py) does not exist",
        "x.md:20: links.py is not in src/rallypoint/web/api/ (the row's package)",
        "x.md:8: link target gone.md does not exist",
    ]


def test_flags_of_other_tools_are_not_taken_for_ours(tmp_path: Path, cli: Command) -> None:
    doc = _doc(tmp_path, "\n".join([
        "```sh",
        ".venv/bin/pytest -q -x -n 0 --timeout 60 tests/unit",
        "./run test --lf -x",
        "openssl s_client --connect host:8089 | rallypoint serve --demo",
        "rallypoint serve --demo && curl --cacert ca.pem https://127.0.0.1:8443/  # --not-ours",
        "```",
        "`rallypoint ready` logs the ports; `systemctl --now enable rallypoint`.",
    ]))
    assert flag_problems(cli, doc) == []


def test_an_ignored_path_is_reported() -> None:
    assert ignored(["bench/results/", "bench/compare.py"]) == {"bench/results/"}
