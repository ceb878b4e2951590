"""Who is on this LAN: ARP scan of the local subnet (see tekcos.scan.engine)."""
