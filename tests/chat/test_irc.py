"""The commands IRC users type (chat/irc.py) and /help COMMAND."""
from tests.memory import Server, matching


def test_list_names_and_whois_as_in_irc():
    server = Server()
    server.hub.oper_password = "pw"
    alice, bob = server.user("alice", host="10.0.0.7"), server.user("bob")
    alice.type("/join dev\n/topic builds\n")
    bob.type("/join dev\n")
    alice.read()
    bob.read()
    bob.type("/list\n")
    assert "***   dev (2): builds" in bob.lines()
    bob.type("/names\n")
    assert bob.lines() == ["*** dev (2): @alice bob"]
    bob.type("/names lobby\n/names nowhere\n")
    assert bob.lines() == ["*** lobby (2): alice bob", "*** Error: no room nowhere. /list shows the rooms."]
    bob.type("/whois alice\n")
    lines = bob.lines()
    assert lines[0].startswith("*** alice: in lobby, dev, idle 0s, connected since ")
    assert lines[0].endswith(" by a plain TCP connection")
    assert lines[1] == "***   an operator of dev"
    assert not matching(lines, "10.0.0.7")
    bob.type("/oper pw\n/whois alice\n")
    assert "***   address: 10.0.0.7" in bob.lines()
    bob.type("/whois nobody\n/whois\n")
    assert bob.lines() == ["*** Error: no such nick: nobody.", "*** Error: usage: /whois NICK"]


def test_whois_tells_a_telnet_client_from_nc():
    server = Server()
    tel = server.connect()
    tel.type("tel\r\n")                   # CR LF: offered telnet
    other = server.user("other")
    other.type("/whois tel\n")
    assert other.lines()[0].endswith(" by telnet")


def test_help_command_explains_one_command():
    server = Server()
    a = server.user("alice")
    a.type("/help kick\n")
    lines = a.lines()
    assert lines[0] == "*** /kick NICK [REASON]: room operators: send NICK back to the lobby"
    assert "whoever created the room" in lines[1]
    a.type("/help /away\n/help who\n/help frobnicate\n")
    lines = a.lines()
    assert lines[0].startswith("*** /away [MESSAGE]: ") and "/msg" in lines[1]
    assert lines[2] == "*** /who: who is in your room, with idle times"
    assert lines[3] == "*** Error: no command /frobnicate. /help lists them all."


def test_no_input_to_the_new_commands_raises():
    server = Server(rate=0)
    a = server.user("alice")
    for name in ["list", "names", "whois", "away", "ignore", "unignore", "kick", "ban",
                 "unban", "op", "invite", "mode", "kill", "wall", "help"]:
        for arg in ["", " ", " \u3164", " " + "x" * 300, " -i", " +i", " alice alice"]:
            a.type(f"/{name}{arg}\n")
    assert not a.transport.disconnecting
    assert all(line.startswith(("***", "[")) for line in a.lines())
