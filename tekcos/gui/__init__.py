"""``tekcos gui``: the desktop window (Tk), a front end beside the terminal
client and the web page, on the same chat, push and get engines."""
