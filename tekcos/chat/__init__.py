"""Chat: the hub and its sessions (plain objects), the telnet-aware TCP
adapter and server, and ``tekcos chat`` (``client``, ``lineedit``)."""
