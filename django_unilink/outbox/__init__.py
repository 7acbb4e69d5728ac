"""The outbox: Celery tasks that create on UniLink what host code wrote locally.

:mod:`django_unilink.services` writes rows (``local_state="queued"``) and queues a task on
commit; the tasks here perform the API calls. docs/sending.md explains the design; in short:

- **One drainer per conversation** (:mod:`.drain`, :mod:`.leases`). ``deliver_conversation(pk)``
  takes the conversation's lease, then creates what is missing in order: the contact
  (:mod:`.contacts`), the conversation, each queued message in primary-key order
  (:mod:`.messages`), a pending status change, pending delivery reports. Tasks of a conversation
  that is taken leave at once; the holder releases the lease only when no work is left.
- **Row states**: ``queued`` -> ``sending`` -> ``sent`` or ``failed``. A row that was
  ``sending`` when a drain began, or that carries an error of an earlier attempt, had an
  **unknown outcome**: it is first looked for on the platform by the key it was sent with
  (message ``source_id``, conversation ``additional_attributes["django_unilink_key"]``, the
  contact's identifier/email/phone and contact-inbox ``source_id``) and adopted when found.
- **Retries** (:mod:`.policy`): 429, 5xx, transport errors (and anything unexpected) retry with
  exponential backoff and full jitter, capped, never sooner than the platform's hint. The
  conversation is paused meanwhile, so that nothing overtakes the message being retried. Other
  4xx answers are final: ``failed``, the platform's message in ``local_error``, and
  ``message_delivery_failed``. ``MAX_RETRIES`` retries exhaust a row the same way.
- **Crash safety** (:mod:`.tasks`): tasks are ``acks_late`` with ``reject_on_worker_lost``, and
  ``sweep_stuck`` (schedule it with Celery beat) re-queues rows left waiting longer than
  ``STUCK_AFTER`` seconds; a dead worker's lease expires after the same time.
- **By hand** (:mod:`.retry`): the admin action and ``manage.py unilink_retry``.

The names below are the outbox's API; the submodules are internal.
"""

from .contacts import ContactFailed, ensure_remote_contact
from .drain import DrainResult, drain_conversation
from .leases import QUEUED_MARK, lease_seconds
from .policy import CONVERSATION_KEY, PENDING, backoff_delay, error_text, is_retryable, requeue_failed
from .retry import retry_contacts, retry_conversations, retry_messages, retry_messages_action
from .tasks import Enqueue, deliver_contact, deliver_conversation, enqueue_on_commit, publish, sweep_stuck

__all__ = [
    "requeue_failed",
    "CONVERSATION_KEY",
    "PENDING",
    "QUEUED_MARK",
    "ContactFailed",
    "DrainResult",
    "Enqueue",
    "backoff_delay",
    "deliver_contact",
    "deliver_conversation",
    "drain_conversation",
    "enqueue_on_commit",
    "ensure_remote_contact",
    "error_text",
    "is_retryable",
    "lease_seconds",
    "publish",
    "retry_contacts",
    "retry_conversations",
    "retry_messages",
    "retry_messages_action",
    "sweep_stuck",
]
