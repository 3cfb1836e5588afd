"""Tables, sessions and migrations. Knows nothing about HTTP."""

import logging

#: Alembic chats at INFO (every plugin it loads, every context it opens); ``tovplus.db.migrate``
#: logs the one line worth having (which migrations run), so alembic's own loggers are
#: quietened before anything imports alembic.
logging.getLogger("alembic").setLevel(logging.WARNING)
