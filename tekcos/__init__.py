"""tekcos: a LAN chat hub for people and for scripts."""

__version__ = "0.1.0"
