"""The baseline for bench/chat.py: the smallest Twisted broadcast chat server.

Every line received is written to every connected client; nothing else
(no nicks, rooms, limits or history).  Run: python bench/minimal_server.py PORT
"""
import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver


class Broadcast(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self):
        self.factory.clients.append(self)

    def connectionLost(self, reason):
        self.factory.clients.remove(self)

    def lineReceived(self, line):
        data = line + b"\n"
        for client in self.factory.clients:
            client.transport.write(data)


factory = Factory.forProtocol(Broadcast)
factory.clients = []
reactor.listenTCP(int(sys.argv[1]), factory, backlog=1024, interface="127.0.0.1")
reactor.run()
