"""The documentation of more-itertools (docstrings of more_itertools/more.py and recipes.py in the PyPI wheel
more-itertools==10.8.0): Python functions explained in prose, with doctest examples.

A piece is one public function or class: "more_itertools.chunked(iterable, n, strict=False)", then its docstring
with the reStructuredText roles written plainly and its examples ('>>> list(chunked([1, 2, 3, 4, 5, 6], 3))' and the
output) as they are; the builder groups consecutive pieces into documents of a few hundred words. Questions:
- "output": 'In more_itertools, what does `list(chunked([1, 2, 3, 4, 5, 6], 3))` return?' -> the doctest's printed
  output, for a one-line expression that calls a more_itertools function, with the earlier lines of the docstring
  that bind the names it reads ('after `iterable = [1, 2, 3]`, what does ...'), and a short output that is not a
  guessable constant (True, None, [], 0, ...);
- "function": 'Which more_itertools function is documented as: "Break iterable into lists of length n."?' ->
  "chunked", only where no word of the name appears in the sentence;
- "reference": 'In the more_itertools documentation of `prepend`, which function completes: "To prepend multiple
  values, see itertools.chain or ___."?' -> "value_chain", a function the docstring cites (not one whose name
  is like the documented function's: "partition" in the documentation of "partitions");
- "sentence": 'Which more_itertools function's documentation says: "Flattening stops when the first value in a
  dimension is a scalar."?' -> "reshape", for each further sentence of the prose (not the first, which
  "function" asks) of MIN_SENTENCE_WORDS to MAX_SENTENCE_WORDS words, mostly words rather than code, that no other
  docstring has and in which no word of the name appears.
A setup line whose value is a literal (`data = [1, 2, 3]`) stays usable after a line has read it: reading it
spends nothing.
The source is parsed with `ast`, never imported or run.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

from lifelong.data.sources import MORE_ITERTOOLS, Package
from lifelong.data.sources.passages import Candidate, Piece, gives_away, sentences, words

PACKAGE: Package = MORE_ITERTOOLS
MEMBERS = ("more_itertools/more.py", "more_itertools/recipes.py")
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|obj|data|exc|attr|ref|term):`~?([^`<]+?)(?:\s*<[^>]*>)?`")
LITERAL = re.compile(r"``([^`]+)``")
EMPHASIS = re.compile(r"(?<![\w*])\*(\w+)\*(?![\w*])")
MAX_OUTPUT_CHARS = 50
MAX_SETUP_CHARS = 160
GUESSABLE_OUTPUTS = frozenset(("True", "False", "None", "[]", "()", "{}", "''", '""', "set()", "0", "1", "2",
                               "-1", "[0]", "[1]", "...", "Ellipsis"))
BUILTIN_NAMES = frozenset(dir(builtins))
MIN_SENTENCE_WORDS = 5
MAX_SENTENCE_WORDS = 40
MIN_PROSE_SHARE = 0.7  # of a "sentence" question's tokens, at least this share are words of letters
PROSE_WORD = re.compile(r"^[A-Za-z][a-z]*[,.;:]?$")


@dataclass(frozen=True)
class Example:
    source: str
    output: str  # "" when the statement prints nothing


@dataclass(frozen=True)
class Function:
    name: str
    signature: str  # "(iterable, n, strict=False)"
    doc: str  # the docstring, roles written plainly
    examples: tuple[Example, ...]
    references: tuple[str, ...] = ()  # names the docstring cites with a role (:func:`value_chain`)


def clean_line(line: str) -> str:
    """A docstring's prose line with reStructuredText roles, literals and emphasis written plainly."""
    line = ROLE.sub(lambda m: m.group(1).strip(), line)
    line = LITERAL.sub(lambda m: m.group(1), line)
    return EMPHASIS.sub(lambda m: m.group(1), line)


def clean_doc(doc: str) -> str:
    """Every line but the doctests' (which stay as they are) cleaned; directive lines ('.. seealso::') dropped."""
    out = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith((">>>", "...")):
            out.append(line)
        elif stripped.startswith(".. "):
            continue
        else:
            out.append(clean_line(line))
    return "\n".join(out).strip()


def examples(doc: str) -> list[Example]:
    """The doctests of a docstring: '>>> ' with its '... ' lines, then the output up to a blank line or prompt."""
    out: list[Example] = []
    source: list[str] | None = None
    output: list[str] = []
    for raw in doc.splitlines() + [""]:
        line = raw.strip()
        if line.startswith(">>>"):
            if source is not None:
                out.append(Example("\n".join(source), "\n".join(output)))
            source, output = [line[4:]], []
        elif source is not None and line.startswith("...") and not output:
            source.append(line[4:])
        elif source is not None and line:
            output.append(line)
        elif source is not None:
            out.append(Example("\n".join(source), "\n".join(output)))
            source, output = None, []
    return out


def signature(node: ast.FunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is None:
            return "(...)"
        args = init.args
        args = ast.arguments(args.posonlyargs, args.args[1:], args.vararg, args.kwonlyargs, args.kw_defaults,
                             args.kwarg, args.defaults)
        return f"({ast.unparse(args)})"
    return f"({ast.unparse(node.args)})"


def parse_module(source: str) -> list[Function]:
    """Public top-level functions and classes with a docstring, in source order."""
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        if doc:
            cited = tuple(dict.fromkeys(m.group(1).strip().split(".")[-1] for m in ROLE.finditer(doc)))
            out.append(Function(node.name, signature(node), clean_doc(doc), tuple(examples(doc)), cited))
    return out


def load(members: dict[str, bytes]) -> list[Function]:
    """Functions of more.py then recipes.py (a name documented twice is kept once, first)."""
    seen, out = set(), []
    for member in MEMBERS:
        for function in parse_module(members[member].decode("utf-8")):
            if function.name not in seen:
                seen.add(function.name)
                out.append(function)
    return out


def first_sentence(doc: str) -> str:
    """The docstring's first paragraph up to its first full stop."""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(?:\s|$)", paragraph)
    return (match.group(1) if match else paragraph).strip()


def free_names(source: str, mode: str = "eval") -> set[str] | None:
    """Names a one-line expression (or, with mode "exec", statement) reads and does not bind itself; None when
    it is not one line of valid Python."""
    if "\n" in source:
        return None
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError:
        return None
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            bound.update(a.arg for a in node.args.args + node.args.kwonlyargs)
        elif isinstance(node, ast.comprehension):
            bound.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def binds(source: str) -> str | None:
    """The name a setup line binds: `name = <expression>` or `from module import name`; else None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if len(tree.body) != 1:
        return None
    node = tree.body[0]
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.ImportFrom) and len(node.names) == 1 and node.names[0].asname is None:
        return node.names[0].name
    return None


def with_setup(function: Function, known: frozenset[str]) -> list[tuple[Example, tuple[str, ...]]]:
    """Each example that prints something, with the setup lines it needs (None: it needs a line it cannot have).
    Setup lines are earlier lines of the docstring that print nothing and bind a name the example reads
    (`iterable = [1, 2, 3]`, `from itertools import count`). A name is usable only while fresh: once any line has
    read it (an iterator may be spent), later examples that read it get no setup."""
    setups: dict[str, str] = {}  # name -> the line that binds it, while no line has read it
    out = []
    for example in function.examples:
        if example.output:
            out.append((example, needed_setup(example.source, setups, known)))
        for name in free_names(example.source, "exec") or set():
            if name in setups and not binds_literal(setups[name]):
                del setups[name]
        name = binds(example.source) if not example.output else None
        if name is not None:
            setups.pop(name, None)
            setups[name] = example.source
    return out


def binds_literal(source: str) -> bool:
    """True for `name = <a Python literal>` (a list, a string, a number...): a value that reading cannot spend."""
    try:
        node = ast.parse(source).body[0]
        ast.literal_eval(node.value)
    except (SyntaxError, ValueError, TypeError, AttributeError, IndexError, RecursionError, MemoryError):
        return False
    return isinstance(node, ast.Assign)


def needed_setup(source: str, setups: dict[str, str], known: frozenset[str]) -> tuple[str, ...] | None:
    """The setup lines (in docstring order) that the one-line expression needs, or None."""
    names = free_names(source)
    if names is None:
        return None
    needed: set[str] = set()
    pending = sorted(names - known - BUILTIN_NAMES)
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in setups:
            return None
        needed.add(name)
        pending.extend(sorted((free_names(setups[name], "exec") or set()) - known - BUILTIN_NAMES))
    return tuple(line for name, line in setups.items() if name in needed)


def document(function: Function) -> str:
    return f"more_itertools.{function.name}{function.signature}\n{function.doc}"


def output_reason(example: Example, setup: tuple[str, ...] | None, known: frozenset[str]) -> str | None:
    """Why an example makes no question (None: it makes one)."""
    if "+SKIP" in example.source:
        return "output not checked (doctest skipped)"
    if setup is None:
        return "needs a line it cannot have"
    if not any((free_names(line, "exec") or set()) & known for line in (example.source, *setup)):
        return "calls no more_itertools function"
    if len("; ".join(setup)) > MAX_SETUP_CHARS:
        return "setup too long"
    if "\n" in example.output or len(example.output) > MAX_OUTPUT_CHARS:
        return "output too long"
    if example.output in GUESSABLE_OUTPUTS or "Traceback" in example.output:
        return "output guessable"
    return None


def candidates(function: Function, known: frozenset[str], shared: frozenset[str] = frozenset()) -> list[Candidate]:
    """The function's questions; `shared`: prose sentences that more than one docstring has (never asked)."""
    group = f"function:{function.name}"
    out = []
    sentence = first_sentence(function.doc)
    reason = None
    if words(sentence) < MIN_SENTENCE_WORDS:
        reason = "description too short"
    elif gives_away(function.name, sentence):
        reason = "name in its description"
    out.append(Candidate("function", f'Which more_itertools function is documented as: "{sentence}"?',
                         function.name, group, dropped=reason))
    for example, setup in with_setup(function, known):
        after = f"after `{'`; `'.join(setup)}`, " if setup else ""
        out.append(Candidate("output", f"In more_itertools, {after}what does `{example.source}` return?",
                             example.output, group, dropped=output_reason(example, setup, known)))
    out.extend(reference_candidates(function, known))
    out.extend(sentence_candidates(function, shared))
    return out


def prose_sentences(doc: str) -> list[str]:
    """Sentences of the docstring's prose (its examples left out)."""
    prose = "\n".join(line for line in doc.splitlines() if not line.strip().startswith((">>>", "...")))
    out = []
    for paragraph in re.split(r"\n\s*\n", prose):
        out.extend(sentences(paragraph))
    return out


def like(name: str, other: str) -> bool:
    """True when one name contains the other or both start alike ("pad_none", "padded"): one gives the other."""
    a, b = name.lower(), other.lower()
    return a in b or b in a or a[:3] == b[:3]


def reference_candidates(function: Function, known: frozenset[str]) -> list[Candidate]:
    """'In the more_itertools documentation of `prepend`, which function completes: "... see ___."?' for each
    other function the docstring cites, in the first prose sentence that names it once."""
    out = []
    for cited in function.references:
        if cited == function.name or cited not in known:
            continue
        pattern = re.compile(rf"(?<![\w.]){re.escape(cited)}(?!\w)")
        sentence = next((s for s in prose_sentences(function.doc) if len(pattern.findall(s)) == 1), None)
        if sentence is None:
            continue
        blanked = pattern.sub("___", sentence, count=1)
        reason = None
        if gives_away(cited, blanked):
            reason = "name in the sentence"
        elif like(cited, function.name):
            reason = "name like the function's"
        out.append(Candidate("reference", f"In the more_itertools documentation of `{function.name}`, which "
                             f'function completes: "{blanked}"?', cited, f"function:{function.name}",
                             dropped=reason))
    return out


def shared_sentences(functions: list[Function]) -> frozenset[str]:
    """Prose sentences that two or more docstrings have."""
    seen: dict[str, int] = {}
    for function in functions:
        for sentence in set(prose_sentences(function.doc)):
            seen[sentence] = seen.get(sentence, 0) + 1
    return frozenset(sentence for sentence, count in seen.items() if count > 1)


def is_prose(sentence: str) -> bool:
    """A sentence of words, not an example's data: MIN_PROSE_SHARE of its tokens are words of letters."""
    tokens = sentence.split()
    return bool(tokens) and sum(bool(PROSE_WORD.match(t)) for t in tokens) >= MIN_PROSE_SHARE * len(tokens)


def sentence_candidates(function: Function, shared: frozenset[str]) -> list[Candidate]:
    """'Which more_itertools function's documentation says: "..."?' for each prose sentence after the first."""
    out = []
    for sentence in prose_sentences(function.doc)[1:]:
        if not MIN_SENTENCE_WORDS <= words(sentence) <= MAX_SENTENCE_WORDS or not is_prose(sentence):
            continue
        reason = None
        if sentence in shared:
            reason = "sentence in another docstring"
        elif gives_away(function.name, sentence):
            reason = "name in the sentence"
        out.append(Candidate("sentence", f'Which more_itertools function\'s documentation says: "{sentence}"?',
                             function.name, f"function:{function.name}", dropped=reason))
    return out


def pieces(functions: list[Function]) -> list[Piece]:
    """One piece per function, in source order (the builder keeps neighbours together)."""
    known = frozenset(f.name for f in functions)
    shared = shared_sentences(functions)
    return [Piece(f.name, document(f), tuple(candidates(f, known, shared))) for f in functions]
