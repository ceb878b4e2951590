"""twistd plugin: ``twistd -n tekcos --port 9000`` (see tekcos.tap)."""
from twisted.application.service import ServiceMaker

tekcos = ServiceMaker(
    "tekcos",
    "tekcos.tap",
    "LAN chat hub: telnet-friendly chat rooms",
    "tekcos",
)
