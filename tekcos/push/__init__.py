"""Pushes: files and short messages over UDP with Selective Repeat (see
docs/protocol.md).

``wire``, ``rtt``, ``sender``, ``receiver`` and ``storage`` are sans-IO: they
import nothing from Twisted and take the time as an argument.  ``udp`` holds
the Twisted adapters and the server's UDP service; ``command`` is
``tekcos push``.
"""
