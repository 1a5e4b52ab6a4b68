"""Mail texts from jinja2 templates, composed into ``EmailMessage`` objects for the outbox.

Templates live at ``mail/<template>/<lang>/{subject.txt.j2,body.txt.j2,body.html.j2}``; folders
given as ``template_dirs`` are searched first, so a user overrides any packaged file by writing
one at the same relative path.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2

DEFAULT_SENDER = "regflow <no-reply@regflow.invalid>"
DEFAULT_LANG = "ja"
MESSAGE_ID_DOMAIN = "regflow.invalid"


class MailComposer:
    """Renders a named mail in a language into a multipart/alternative ``EmailMessage``."""

    def __init__(
        self,
        sender: str = DEFAULT_SENDER,
        template_dirs: Sequence[str | Path] = (),
    ) -> None:
        self.sender = sender
        loaders: list[jinja2.BaseLoader] = [
            jinja2.FileSystemLoader(str(folder)) for folder in template_dirs
        ]
        loaders.append(jinja2.PackageLoader("regflow", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            # Template names end in ``.j2``: only ``*.html`` and ``*.html.j2`` are escaped.
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "html.j2"),
                disabled_extensions=(),
                default_for_string=False,
                default=False,
            ),
            undefined=jinja2.StrictUndefined,  # a missing parameter is a bug, not a blank
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def compose(
        self,
        template: str,
        lang: str,
        to: str,
        params: Mapping[str, Any],
        *,
        message_id: str | None = None,
    ) -> EmailMessage:
        """The mail ``template`` in ``lang`` (else its primary subtag, else Japanese) to ``to``.

        A ``date`` in ``params`` (a timezone-aware ``datetime``, from the engine's Clock) becomes
        the Date header; without one the message has no Date: the composer never reads the clock.
        """
        used_lang, subject_t, text_t, html_t = self._templates(template, lang)
        context: dict[str, Any] = {**params, "lang": used_lang}
        subject = _one_line(subject_t.render(context))
        context["subject"] = subject

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        date = params.get("date")
        if date is not None:
            message["Date"] = _date_header(date)
        message["Message-ID"] = message_id or email.utils.make_msgid(domain=MESSAGE_ID_DOMAIN)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(text_t.render(context), subtype="plain", charset="utf-8")
        message.add_alternative(html_t.render(context), subtype="html", charset="utf-8")
        # After add_alternative: making the message multipart moves Content-* headers away.
        message["Content-Language"] = used_lang
        return message

    def _templates(
        self, template: str, lang: str
    ) -> tuple[str, jinja2.Template, jinja2.Template, jinja2.Template]:
        """The language actually used and its subject, text and HTML templates."""
        primary = re.split(r"[-_]", lang, maxsplit=1)[0].lower()
        candidates = [c for c in dict.fromkeys((lang, primary, DEFAULT_LANG)) if c]
        for candidate in candidates:
            folder = f"mail/{template}/{candidate}"
            try:
                subject = self.env.get_template(f"{folder}/subject.txt.j2")
            except jinja2.TemplateNotFound:
                continue
            # Once a language folder exists, its bodies must exist too: no silent mixing.
            text = self.env.get_template(f"{folder}/body.txt.j2")
            html = self.env.get_template(f"{folder}/body.html.j2")
            return candidate, subject, text, html
        raise jinja2.TemplateNotFound(f"mail/{template}/{{{','.join(candidates)}}}/subject.txt.j2")


def _one_line(text: str) -> str:
    """The lines of ``text``, stripped and joined by spaces (inner spacing such as U+3000 kept)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _date_header(date: object) -> str:
    """The RFC 5322 Date of an aware ``datetime``."""
    if not isinstance(date, datetime):
        raise TypeError(f"the 'date' parameter must be a datetime, not {type(date).__name__}")
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("the 'date' parameter must be timezone-aware")
    return email.utils.format_datetime(date)
