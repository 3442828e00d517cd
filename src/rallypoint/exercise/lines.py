"""Where each key and array element of a TOML document starts: ``tomllib`` keeps no line numbers.

:func:`index_lines` walks the text once (after ``tomllib`` accepted it, so the walk may be lenient)
and maps paths such as ``("units", 3, "motion", "waypoints", 1)`` to 1-based line numbers: table
headers, ``key = value`` lines, keys inside inline tables and the elements of arrays, including
arrays and inline tables spread over several lines. :func:`line_of` answers for the longest known
prefix of a path, so a problem deep inside a value still names the closest line.
"""

from __future__ import annotations

Path = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.array_tables: dict[Path, int] = {}

    # -- characters ---------------------------------------------------------------------------

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n

    def skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.advance()
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    # -- keys and headers ---------------------------------------------------------------------

    def key(self) -> list[str]:
        """A dotted key up to (not including) ``=`` or ``]``."""
        parts: list[str] = []
        while self.pos < len(self.text):
            self.skip_space(newlines=False)
            ch = self.peek()
            if ch in ('"', "'"):
                start = self.pos + 1
                self.string()
                parts.append(self.text[start : self.pos - 1])
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE:
                    self.advance()
                if self.pos == start:
                    break
                parts.append(self.text[start : self.pos])
            self.skip_space(newlines=False)
            if self.peek() != ".":
                break
            self.advance()
        return parts

    def header(self, table: Path) -> Path:
        array = self.peek(2) == "[["
        self.advance(2 if array else 1)
        parts = self.key()
        self.advance(2 if array else 1)
        path: list[str | int] = []
        for part in parts:
            path.append(part)
            if tuple(path) in self.array_tables and (not array or len(path) < len(parts)):
                path.append(self.array_tables[tuple(path)])
        if array:
            index = self.array_tables.get(tuple(path), -1) + 1
            self.array_tables[tuple(path)] = index
            path.append(index)
        self.lines.setdefault(tuple(path), self.line)
        return tuple(path)

    # -- values -------------------------------------------------------------------------------

    def string(self) -> None:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            self.advance(3)
            end = self.text.find(quote * 3, self.pos)
            end = len(self.text) if end < 0 else end
            while self.text[end + 3 : end + 4] == quote:  # up to two quotes may close the content
                end += 1
            self.advance(end + 3 - self.pos)
            return
        self.advance()
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and quote == '"':
                self.advance(2)
            elif ch == quote or ch == "\n":
                self.advance()
                return
            else:
                self.advance()

    def value(self, path: Path) -> None:
        ch = self.peek()
        if ch in ('"', "'"):
            self.string()
        elif ch == "[":
            self.array(path)
        elif ch == "{":
            self.inline_table(path)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    def array(self, path: Path) -> None:
        self.advance()
        index = 0
        while self.pos < len(self.text):
            self.skip_space(newlines=True)
            if self.peek() in ("]", ""):
                self.advance()
                return
            self.lines.setdefault((*path, index), self.line)
            self.value((*path, index))
            index += 1
            self.skip_space(newlines=True)
            if self.peek() == ",":
                self.advance()

    def inline_table(self, path: Path) -> None:
        self.advance()
        while self.pos < len(self.text):
            self.skip_space(newlines=True)
            if self.peek() in ("}", ""):
                self.advance()
                return
            self.assignment(path)
            self.skip_space(newlines=True)
            if self.peek() == ",":
                self.advance()

    def assignment(self, table: Path) -> None:
        parts = self.key()
        full = (*table, *parts)
        self.lines.setdefault(full, self.line)
        self.skip_space(newlines=False)
        if self.peek() == "=":
            self.advance()
        self.skip_space(newlines=False)
        self.value(full)

    def document(self) -> None:
        table: Path = ()
        while self.pos < len(self.text):
            self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                return
            before = self.pos
            if self.peek() == "[":
                table = self.header(table)
            else:
                self.assignment(table)
            if self.pos == before:  # never loop on text the walk does not understand
                self.advance()


def index_lines(text: str) -> dict[Path, int]:
    """Path → line number (1-based) of every header, key and array element in ``text``."""
    walker = _Walker(text)
    walker.document()
    return walker.lines


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of ``path``, else of its longest known prefix, else 1."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return 1
