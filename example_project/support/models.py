"""What the chat page shows.

django-unilink mirrors every message, private notes included, in its own tables. This site does
not render those tables: it renders :class:`ChatLine` rows, which only the visitor's own sends
(support/views.py) and the signal receivers (support/receivers.py) write. A private note is
never copied here, so it cannot leak to the page by a forgotten filter in a template.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class ChatLine(models.Model):
    """One line of a visitor's chat: their message, an agent's reply, or a notice."""

    class Kind(models.TextChoices):
        VISITOR = "visitor", "Visitor"
        AGENT = "agent", "Agent"
        NOTICE = "notice", "Notice"

    conversation = models.ForeignKey("django_unilink.Conversation", on_delete=models.CASCADE, related_name="chat_lines")
    # The mirrored message this line shows (none for notices). Unique: a line per message at most.
    message = models.OneToOneField(
        "django_unilink.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="chat_line"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    author = models.CharField(max_length=255, blank=True)
    text = models.TextField()
    failed = models.BooleanField(default=False, help_text="The visitor's message could not be delivered to UniLink.")
    created = models.DateTimeField(
        default=timezone.now, help_text="When it was written (the platform's time for replies)."
    )

    class Meta:
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:60]}"

    def as_json(self) -> dict[str, Any]:
        """What the page's script receives for this line."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "author": self.author,
            "text": self.text,
            "failed": self.failed,
            "created": self.created.isoformat(),
        }
