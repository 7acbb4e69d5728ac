"""Signals django-unilink sends to host code.

Every signal is sent with ``sender`` set to the model class concerned (``Message``,
``Conversation``, ``WebhookEvent``), after the transaction that stored the change has
committed. Receivers take ``**kwargs`` so that new keyword arguments can be added later.

Receiving (webhooks and sync), see docs/signals.md:

- ``message_received(message, event)``: a new message that did not come from this site:
  an agent's reply (``outgoing``), a ``template`` message, or a **private note**
  (``message.private`` is true: never show those to the end user).
- ``message_updated(message, event)``: a known message changed (status, deletion, failure report).
- ``conversation_created(conversation, event)``
- ``conversation_updated(conversation, changed_attributes, event)``
- ``conversation_status_changed(conversation, previous_status, event)``
- ``typing(conversation, is_typing, user, event)``: someone types; ``user`` is the remote
  person's data (an agent, or the contact). (Named ``user`` because ``sender`` is reserved.)
- ``webhook_received(webhook_event)``: every verified delivery, before it is processed.

Sending (the outbox):

- ``message_delivery_failed(message, error)``: a message this site sent was refused for good
  (a 4xx other than 429, or retries exhausted). ``error`` is the exception.
- ``message_sent(message)``: a message this site wrote now exists on UniLink (``remote_id`` set).
"""

from django.dispatch import Signal

message_received = Signal()
message_updated = Signal()
conversation_created = Signal()
conversation_updated = Signal()
conversation_status_changed = Signal()
typing = Signal()
webhook_received = Signal()

message_delivery_failed = Signal()
message_sent = Signal()
