"""Several tekcos servers as one hub, over Redis (``--redis``)."""
