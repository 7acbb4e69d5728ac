"""The chat page, and the two small JSON endpoints its script uses.

Sending is three calls of django-unilink's services API; each writes local rows and returns at
once, and Celery creates the contact, the conversation and the message on UniLink after the
transaction commits. Receiving is in support/receivers.py.
"""

from __future__ import annotations

import secrets

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from django_unilink import services
from django_unilink.models import Contact, Conversation

from .models import ChatLine

#: Session keys: the anonymous visitor's random id, and the conversation the page shows.
VISITOR_KEY = "support_visitor"
CONVERSATION_KEY = "support_conversation"
#: Longest message a visitor may write (the platform itself accepts 150,000 characters).
MAX_LENGTH = 5000
#: Lines sent to the page on each poll.
MAX_LINES = 200


def _identity(request: HttpRequest) -> dict[str, object]:
    """Who is writing, as ensure_contact() arguments: the user when logged in, else the session."""
    user = request.user
    if user.is_authenticated:
        return {"user": user, "name": user.get_full_name() or user.get_username(), "email": user.email or None}
    visitor = request.session.get(VISITOR_KEY)
    if not visitor:
        visitor = request.session[VISITOR_KEY] = secrets.token_hex(8)
    return {"identifier": f"visitor-{visitor}", "name": f"Visitor {visitor[:6]}"}


def _user_key(user: object) -> tuple[int, str]:
    """How django-unilink links a contact to a user (``Contact.user``, a generic relation)."""
    return ContentType.objects.get_for_model(user, for_concrete_model=False).pk, str(user.pk)  # type: ignore[attr-defined]


def _owns(request: HttpRequest, contact: Contact) -> bool:
    """Whether ``contact`` is the person on this page (the session could outlive a login)."""
    if request.user.is_authenticated:
        return (contact.user_content_type_id, contact.user_object_id) == _user_key(request.user)
    visitor = request.session.get(VISITOR_KEY)
    return bool(visitor) and contact.identifier == f"visitor-{visitor}"


def current_conversation(request: HttpRequest) -> Conversation | None:
    """The conversation this page shows, or None before the visitor's first message."""
    pk = request.session.get(CONVERSATION_KEY)
    if pk:
        conversation = Conversation.objects.select_related("contact_inbox__contact").filter(pk=pk).first()
        if conversation is not None and _owns(request, conversation.contact):
            return conversation
    if request.user.is_authenticated and request.session.get(CONVERSATION_KEY, "") is not None:
        # A signed-in user finds their latest conversation again, from any browser (unless they
        # just asked for a new one: then the session holds None).
        user_type, user_id = _user_key(request.user)
        return (
            Conversation.objects.filter(
                contact_inbox__contact__user_content_type=user_type,
                contact_inbox__contact__user_object_id=user_id,
            )
            .order_by("-pk")
            .first()
        )
    return None


def _lines(conversation: Conversation | None) -> list[ChatLine]:
    if conversation is None:
        return []
    return list(reversed(conversation.chat_lines.order_by("-created", "-pk")[:MAX_LINES]))


@require_GET
def chat(request: HttpRequest) -> HttpResponse:
    """The chat page. It works without JavaScript too (the form posts and comes back here)."""
    conversation = current_conversation(request)
    return render(
        request,
        "support/chat.html",
        {"conversation": conversation, "lines": _lines(conversation), "max_length": MAX_LENGTH},
    )


@require_GET
def lines(request: HttpRequest) -> JsonResponse:
    """What the page polls: the conversation's latest lines (new ones and changed ones)."""
    conversation = current_conversation(request)
    return JsonResponse(
        {
            "status": conversation.status if conversation else None,
            "lines": [line.as_json() for line in _lines(conversation)],
        }
    )


@require_POST
def send(request: HttpRequest) -> HttpResponse:
    """The visitor writes: store the line and hand the message to django-unilink."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    content = (request.POST.get("content") or "").strip()
    error = None
    if not content:
        error = "Write a message first."
    elif len(content) > MAX_LENGTH:
        error = f"Messages are limited to {MAX_LENGTH} characters; this one has {len(content)}."
    if error:
        if wants_json:
            return JsonResponse({"error": error, "field": "content"}, status=400)
        return redirect("support:chat")

    with transaction.atomic():
        contact = services.ensure_contact(**_identity(request))  # type: ignore[arg-type]
        conversation = current_conversation(request)
        if conversation is None or conversation.contact.pk != contact.pk:
            conversation = services.start_conversation(contact)
        # "incoming": written by the end user. (An answer from the site itself would be "outgoing".)
        message = services.send_message(conversation, content, message_type="incoming")
        line = ChatLine.objects.create(
            conversation=conversation, message=message, kind=ChatLine.Kind.VISITOR, author="You", text=content
        )
    request.session[CONVERSATION_KEY] = conversation.pk
    if wants_json:
        return JsonResponse({"line": line.as_json()}, status=201)
    return redirect("support:chat")


@require_POST
def new_conversation(request: HttpRequest) -> HttpResponse:
    """Start over: the next message opens a new conversation."""
    request.session[CONVERSATION_KEY] = None
    return redirect("support:chat")
