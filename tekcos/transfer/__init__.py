"""Reliable pushes over UDP: a Selective Repeat protocol (see docs/protocol.md).

``wire``, ``rtt``, ``sender``, ``receiver`` and ``storage`` are sans-IO: they
import nothing from Twisted and take the time as an argument.  ``udp`` holds
the Twisted adapters.
"""
