"""The blocking facade: ``Client`` over ``AsyncClient`` on a loop thread.

``_bridge`` runs the event loop in a background thread and carries blocking calls into it;
``_iterators`` drives async iterators from blocking code; ``_client`` is ``Client`` itself.
"""

from ._client import Chat, ChatWithRawResponse, Client, Models, ModelsWithRawResponse
from ._iterators import BatchResultIterator, ChatStream

__all__ = [
    "BatchResultIterator",
    "Chat",
    "ChatStream",
    "ChatWithRawResponse",
    "Client",
    "Models",
    "ModelsWithRawResponse",
]
