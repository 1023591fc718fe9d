"""docs/troubleshooting.md explains every error the packages raise, and only those.

Every call in ``packages/*/src`` (all modules, however deep) that builds an exception with a
message written in the code is an error a user can meet: ``raise TypeError(f"...")``, an
error built by a helper and raised elsewhere, an exception class's own
``super().__init__("...")``, a message kept in a module constant (or imported from another
module), a note added with ``add_note("...")``, a ``warnings.warn("...")``. Its *opening*
is the first words of the message, a formatted value standing for any text; the page shows
the messages as users see them, each in a ```` ```text ```` block:

- each opening must be found in one of the page's text blocks: an error added to the code
  fails here until the page explains it;
- each text block must show the opening of an error the code still raises: an error
  removed or reworded fails here until its section goes or changes.

A message with fewer than three words of its own fails too: it cannot explain itself.
``INTERNAL`` lists the few messages no user can see, and why.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "troubleshooting.md"
#: Stands for a formatted value (``{name!r}``) in a message's text.
ANY = "\x00"
#: Words an opening has at first; more where two messages open alike.
OPENING_WORDS = 8
TEXT_BLOCK = re.compile(r"^```text\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)

#: Openings of messages no user sees -> why.
INTERNAL = {
    "this context was entered already": "an invariant of the holder task: entered once",
    "this context was never entered": "an invariant of the holder task: exit after enter",
    "this context is not open": "caught: the stack raises its own 'is closed' message",
    "this context was closed": "caught: the stack raises its own 'is closed' message",
    "the bridge could not run this call": "a marker compared by identity, never raised",
}


@dataclass(frozen=True)
class Message:
    where: str
    text: str  # the message, ANY for each formatted value


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the packages' sources."""
    found = {}
    for path in sorted(ROOT.glob("packages/*/src/**/*.py")):
        src = next(p for p in path.parents if p.name == "src")
        parts = path.relative_to(src).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


class Source:
    """The parsed modules, their string constants and the exception classes they define."""

    def __init__(self) -> None:
        self.files = modules()
        self.trees = {name: ast.parse(path.read_text()) for name, path in self.files.items()}
        self.packages = {name for name, path in self.files.items() if path.name == "__init__.py"}
        self.exceptions = {
            name
            for name, value in vars(builtins).items()
            if isinstance(value, type) and issubclass(value, BaseException)
        }
        bases = {
            node.name: {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
            for tree in self.trees.values()
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
        }
        grown = True
        while grown:
            new = {name for name, of in bases.items() if of & self.exceptions}
            grown = not new <= self.exceptions
            self.exceptions |= new

    def constant(self, module: str, name: str, seen: int = 0) -> str | None:
        """The text of module-level string constant ``name`` as ``module`` sees it."""
        tree = self.trees.get(module)
        if tree is None or seen > 5:
            return None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets
            ):
                return self.text(module, node.value)
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        package = module if module in self.packages else module.rpartition(".")[0]
                        source = _absolute(package, node.module, node.level)
                        return self.constant(source, alias.name, seen + 1)
        return None

    def text(self, module: str, node: ast.expr) -> str | None:
        """A message's text, ANY for each formatted value; None if not written in the code."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(
                part.value if isinstance(part, ast.Constant) else ANY for part in node.values
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.text(module, node.left), self.text(module, node.right)
            return None if left is None or right is None else left + right
        if isinstance(node, ast.Name):
            return self.constant(module, node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            # ``_loops.MESSAGE``: a constant of a module imported under a name
            imported = self.imported_module(module, node.value.id)
            return None if imported is None else self.constant(imported, node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            # ``MESSAGE.format(test=...)``: its fields are formatted values
            template = self.text(module, node.func.value)
            return None if template is None else re.sub(r"\{[^{}]*\}", ANY, template)
        return None

    def imported_module(self, module: str, name: str) -> str | None:
        """The module that ``module`` imports as ``name`` (``from pkg import mod as name``)."""
        tree = self.trees.get(module)
        if tree is None:
            return None
        package = module if module in self.packages else module.rpartition(".")[0]
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        dotted = f"{_absolute(package, node.module, node.level)}.{alias.name}"
                        return dotted if dotted in self.trees else None
        return None

    def messages(self) -> list[Message]:
        found = []
        for module, tree in self.trees.items():
            for node in ast.walk(tree):
                for call in _message_calls(node, self.exceptions):
                    text = self.text(module, call.args[0]) if call.args else None
                    if text is not None:
                        found.append(Message(f"{module}:{call.lineno}", text))
        return found


def _absolute(package: str, imported: str, level: int) -> str:
    """The module ``from {'.' * level}{imported} import ...`` names, in ``package``."""
    if not level:
        return imported
    parts = package.split(".")
    return ".".join([*parts[: len(parts) - level + 1], imported])


def _message_calls(node: ast.AST, exceptions: set[str]) -> list[ast.Call]:
    """The calls under ``node`` that give an exception, a note or a warning its message."""
    if isinstance(node, ast.ClassDef):
        # An exception class that writes its own message: super().__init__("...")
        if node.name not in exceptions:
            return []
        return [
            call
            for call in ast.walk(node)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "__init__"
            and ast.unparse(call.func.value) == "super()"
        ]
    if not isinstance(node, ast.Call):
        return []
    name = ast.unparse(node.func).rsplit(".", 1)[-1]
    return [node] if name in exceptions or name in {"add_note", "warn", "fail"} else []


def opening(text: str, words: int) -> str:
    """The first ``words`` words of a message, whitespace made single spaces."""
    return " ".join(text.split()[:words])


def openings(messages: list[Message]) -> dict[str, list[Message]]:
    """Opening -> the messages that open so. Two different messages never share one: the
    openings grow a word at a time until they differ (or a message ends)."""
    words = dict.fromkeys({m.text for m in messages}, OPENING_WORDS)
    while True:
        by_opening: dict[str, set[str]] = {}
        for text, count in words.items():
            by_opening.setdefault(opening(text, count), set()).add(text)
        shared = [texts for texts in by_opening.values() if len(texts) > 1]
        longer = [t for texts in shared for t in texts if words[t] < len(t.split())]
        if not longer:
            break
        for text in longer:
            words[text] += 1
    found: dict[str, list[Message]] = {}
    for message in messages:
        found.setdefault(opening(message.text, words[message.text]), []).append(message)
    return found


def pattern(text: str) -> re.Pattern[str]:
    """What a text block shows of a message that opens with ``text``: its words, in order,
    with any text where the code formats a value."""
    return re.compile(".+?".join(re.escape(part) for part in text.split(ANY)), re.DOTALL)


def page_blocks() -> list[str]:
    return [" ".join(m["body"].split()) for m in TEXT_BLOCK.finditer(PAGE.read_text())]


MESSAGES = Source().messages()
OPENINGS = openings(MESSAGES)
DOCUMENTED = {text: where for text, where in OPENINGS.items() if text not in INTERNAL}


def test_the_source_has_errors_to_document() -> None:
    """The walk finds what it must: errors of both packages, helpers, constants, classes."""
    where = {m.where.split(":")[0] for m in MESSAGES}
    for module in ("fda_core._config", "fda_sync._bridge", "fda_core._graph.resolution"):
        assert any(w == module or w.startswith(f"{module}.") for w in where), module
    texts = " ".join(m.text for m in MESSAGES)
    for expected in ("No FastAPI app configured", "Call start() first", "re-raising"):
        assert expected in texts
    assert len(DOCUMENTED) > 40


def test_every_error_explains_itself() -> None:
    """Three words of its own at least, whatever values it formats."""
    terse = [
        f"{m.where}: {m.text!r}" for m in MESSAGES if len(m.text.replace(ANY, " ").split()) < 3
    ]
    assert not terse


def test_internal_messages_are_still_in_the_code() -> None:
    assert set(INTERNAL) <= set(OPENINGS)


def test_the_page_shows_every_error_the_code_raises() -> None:
    blocks = page_blocks()
    missing = [
        f"{text.replace(ANY, '…')!r} ({', '.join(m.where for m in messages)})"
        for text, messages in DOCUMENTED.items()
        if not any(pattern(text).search(block) for block in blocks)
    ]
    assert not missing, "not on docs/troubleshooting.md:\n" + "\n".join(missing)


def test_the_page_shows_no_error_the_code_does_not_raise() -> None:
    stale = [
        block
        for block in page_blocks()
        if not any(pattern(text).search(block) for text in DOCUMENTED)
    ]
    assert not stale, "text blocks of docs/troubleshooting.md that match no error:\n" + "\n".join(
        stale
    )


def test_openings_are_distinct_and_found_in_the_messages_they_open() -> None:
    for text, messages in OPENINGS.items():
        assert len({m.text for m in messages}) == 1 or all(
            len(m.text.split()) == len(text.split()) for m in messages
        ), text
        for message in messages:
            assert pattern(text).match(" ".join(message.text.split()).replace(ANY, "x"))
