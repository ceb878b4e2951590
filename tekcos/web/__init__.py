"""The browser front end: one page served by the server itself, chat over
WebSocket as members of the same hub as telnet users, file uploads into the
same downloads directory as pushes, the last neighbour scan, and /metrics.

Like :mod:`tekcos.tap`, this package composes the features (chat, push,
scan); the features know nothing of it.
"""
