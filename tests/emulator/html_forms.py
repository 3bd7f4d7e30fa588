"""Read the forms out of an HTML page, as a browser without JavaScript would submit them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submits
    text: str = ""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._current = Form(attr.get("action", ""), attr.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and attr.get("name"):
            self._current.fields[attr["name"]] = attr.get("value", "")
        elif self._current is not None and tag == "button" and attr.get("name"):
            self._current.buttons.append((attr["name"], attr.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.text += data


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def form_with(html: str, action_suffix: str, text: str = "") -> Form:
    """The first form posting to a path ending in ``action_suffix`` (and containing ``text``)."""
    for form in forms(html):
        if form.action.endswith(action_suffix) and text in form.text:
            return form
    raise AssertionError(f"no form for {action_suffix!r} containing {text!r} in page")
