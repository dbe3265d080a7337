"""Spec strings, dicts and lists -> loss modules. Parsed by hand, never evaluated.

Grammar::

    sum     := term (("+" | "-") term)*
    term    := factor ("*" factor)*  with exactly one loss among the factors
    factor  := NUMBER | loss | "(" sum ")"
    loss    := NAME [ "(" [ NAME "=" literal ("," NAME "=" literal)* ] ")" ]
    literal := NUMBER | STRING | True | False | None | "[" [literal ("," literal)*] "]"

Names must be registered losses; values are literals only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from .compose import WeightedSum
from .errors import did_you_mean
from .registry import get_loss, list_losses

__all__ = ["build", "parse"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>'[^'\\]*'|"[^"\\]*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>[-+*/(),=\[\]])
    )""",
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(text, i)
        if not m or m.lastgroup is None:
            if text[i] == ".":
                raise ValueError(_err(text, i, "attribute access is not allowed"))
            raise ValueError(_err(text, i, f"unexpected character {text[i]!r}"))
        start = m.start(m.lastgroup)
        toks.append(_Tok(m.lastgroup, m.group(m.lastgroup), start))
        i = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


def _err(text: str, pos: int, what: str, suggestion: str = "") -> str:
    return f"build: invalid loss spec at position {pos}: {what}.{suggestion}\n  {text}\n  {' ' * pos}^"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok.kind != kind or (text is not None and tok.text != text):
            want = repr(text) if text else kind
            got = "the end" if tok.kind == "end" else repr(tok.text)
            raise ValueError(_err(self.text, tok.pos, f"expected {want}, got {got}"))
        self.i += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text == text

    # sum := term (("+"|"-") term)*
    def parse_sum(self) -> list[tuple[float, str, dict[str, Any]]]:
        terms = self.parse_term(1.0)
        while self.at("+") or self.at("-"):
            sign = 1.0 if self.take("op").text == "+" else -1.0
            terms += self.parse_term(sign)
        return terms

    def parse_term(self, sign: float) -> list[tuple[float, str, dict[str, Any]]]:
        coef = sign
        inner: list[tuple[float, str, dict[str, Any]]] | None = None
        start = self.peek().pos
        while True:
            if self.at("-"):
                self.take("op")
                coef = -coef
            tok = self.peek()
            if tok.kind == "number":
                coef *= float(self.take("number").text)
            elif tok.kind == "name":
                if inner is not None:
                    raise ValueError(_err(self.text, tok.pos, "a product may hold only one loss"))
                inner = [(1.0, *self.parse_loss())]
            elif self.at("("):
                if inner is not None:
                    raise ValueError(_err(self.text, tok.pos, "a product may hold only one loss"))
                self.take("op", "(")
                inner = self.parse_sum()
                self.take("op", ")")
            else:
                got = "the end" if tok.kind == "end" else repr(tok.text)
                raise ValueError(_err(self.text, tok.pos, f"expected a number, a loss name or '(', got {got}"))
            if self.at("*"):
                self.take("op")
                continue
            if self.at("/"):
                self.take("op")
                div = self.take("number")
                if float(div.text) == 0:
                    raise ValueError(_err(self.text, div.pos, "division by zero"))
                coef /= float(div.text)
            break
        if inner is None:
            raise ValueError(_err(self.text, start, "a term must name a loss"))
        return [(coef * c, name, kw) for c, name, kw in inner]

    def parse_loss(self) -> tuple[str, dict[str, Any]]:
        tok = self.take("name")
        if tok.text not in list_losses() and not _is_alias(tok.text):
            raise ValueError(
                _err(self.text, tok.pos, f"unknown loss {tok.text!r}", did_you_mean(tok.text, list_losses()))
            )
        kwargs: dict[str, Any] = {}
        if self.at("("):
            self.take("op", "(")
            while not self.at(")"):
                key = self.take("name")
                self.take("op", "=")
                if key.text in kwargs:
                    raise ValueError(_err(self.text, key.pos, f"duplicate argument {key.text!r}"))
                kwargs[key.text] = self.parse_literal()
                if not self.at(")"):
                    self.take("op", ",")
            self.take("op", ")")
        return get_loss(tok.text).name, kwargs

    def parse_literal(self) -> Any:
        tok = self.peek()
        if self.at("-"):
            self.take("op")
            num = self.take("number")
            return -_number(num.text)
        if tok.kind == "number":
            return _number(self.take("number").text)
        if tok.kind == "string":
            return self.take("string").text[1:-1]
        if tok.kind == "name" and tok.text in ("True", "False", "None"):
            self.take("name")
            return {"True": True, "False": False, "None": None}[tok.text]
        if self.at("["):
            self.take("op", "[")
            items = []
            while not self.at("]"):
                items.append(self.parse_literal())
                if not self.at("]"):
                    self.take("op", ",")
            self.take("op", "]")
            return items
        got = "the end" if tok.kind == "end" else repr(tok.text)
        raise ValueError(_err(self.text, tok.pos, f"expected a literal (number, string, True/False/None, "
                                                  f"list), got {got}"))


def _is_alias(name: str) -> bool:
    try:
        get_loss(name)
    except ValueError:
        return False
    return True


def _number(text: str) -> float | int:
    return int(text) if re.fullmatch(r"\d+", text) else float(text)


def parse(text: str) -> list[tuple[float, str, dict[str, Any]]]:
    """Parse a spec string into ``[(coefficient, registry name, kwargs), ...]``."""
    if not isinstance(text, str):
        raise TypeError(f"build: spec must be a str, dict or list, got {type(text).__name__}.")
    p = _Parser(text)
    terms = p.parse_sum()
    if p.peek().kind != "end":
        tok = p.peek()
        raise ValueError(_err(text, tok.pos, f"unexpected {tok.text!r}"))
    return terms


def _instantiate(name: str, kwargs: Mapping[str, Any]) -> nn.Module:
    spec = get_loss(name)
    if spec.module is None:
        raise ValueError(f"build: loss {name!r} has no module form; it cannot be built from a spec.")
    try:
        return spec.module(**kwargs)
    except TypeError as exc:
        raise ValueError(f"build: {name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}): {exc}") from exc


def _from_dict(entry: Mapping[str, Any]) -> tuple[float, nn.Module]:
    if "loss" not in entry:
        raise ValueError(f"build: a dict spec needs a 'loss' key, got keys {sorted(entry)}.")
    kwargs = dict(entry)
    name = kwargs.pop("loss")
    coef = kwargs.pop("coef", 1.0)
    if isinstance(name, str) and not _is_alias(name):
        raise ValueError(f"build: loss must be a registered name, got {name!r}." + did_you_mean(name, list_losses()))
    return float(coef), _instantiate(get_loss(name).name, kwargs)


def build(spec: str | Mapping[str, Any] | Sequence[Any] | nn.Module) -> nn.Module:
    """Build a loss from a spec string, a dict, a list of dicts, or return a module as is.

    - ``"dice + 0.5*focal(gamma=2.0)"``: a weighted sum; names are registry keys,
      arguments are literals.
    - ``{"loss": "focal", "gamma": 2.0}``: one loss (``"coef"`` scales it).
    - ``[{"loss": "dice"}, {"loss": "focal", "coef": 0.5}]``: a sum.

    A single loss with coefficient 1 is returned as its own module; anything else
    is a :class:`WeightedSum`.

    Raises:
        ValueError: For unknown names (with the nearest registered one), anything
            that is not a literal, or a syntax error (with its position).

    Examples:
        >>> import lossforge as lf
        >>> lf.build("l1 + 0.5*huber(delta=2.0)")
        WeightedSum(
          1*l1 + 0.5*huber
          (losses): ModuleDict(
            (l1): L1Loss(reduction='mean')
            (huber): HuberLoss(delta=2.0, reduction='mean')
          )
        )
    """
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, str):
        parsed = [(c, _instantiate(name, kw)) for c, name, kw in parse(spec)]
    elif isinstance(spec, Mapping):
        parsed = [_from_dict(spec)]
    elif isinstance(spec, Sequence):
        parsed = []
        for entry in spec:
            if isinstance(entry, str):
                parsed += [(c, _instantiate(name, kw)) for c, name, kw in parse(entry)]
            elif isinstance(entry, Mapping):
                parsed.append(_from_dict(entry))
            else:
                raise TypeError(f"build: list entries must be str or dict, got {type(entry).__name__}.")
    else:
        raise TypeError(f"build: spec must be a str, dict, list or nn.Module, got {type(spec).__name__}.")
    if not parsed:
        raise ValueError("build: spec must name at least one loss, got none.")
    if len(parsed) == 1 and parsed[0][0] == 1.0:
        return parsed[0][1]
    return WeightedSum([(module, coef) for coef, module in parsed])
