"""Which confirmations the SMTP server accepted in this process, until their status commits.

The send and the status update cannot be one transaction (SMTP has none). If the commit after
a successful send fails because the database went away (the chaos run restarts PostgreSQL right
after a send), the consumer retries the record, and without this memory the retry would send
the email again. A process that dies in that window forgets; that case is the one the
deterministic Message-ID is for.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict


class AcceptedSends:
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._orders: OrderedDict[uuid.UUID, None] = OrderedDict()

    def remember(self, order_id: uuid.UUID) -> None:
        self._orders[order_id] = None
        self._orders.move_to_end(order_id)
        while len(self._orders) > self._capacity:
            self._orders.popitem(last=False)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders
