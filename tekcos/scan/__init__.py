"""Who is on this LAN: ARP scan of the local subnet.  ``iface`` chooses what
to scan, ``arp``/``engine`` probe, ``report`` renders, ``service`` serves
``/scan`` in the chat, ``discover`` finds tekcos servers, ``command`` is
``tekcos scan``."""
