"""ARP frames and the probe schedule, driven with explicit time."""
import ipaddress

from twisted.internet.task import Clock

from tekcos.scan import arp

IPS = [ipaddress.IPv4Address(f"10.0.0.{i}") for i in range(1, 11)]
OUR_MAC, OUR_IP = arp.mac_bytes("02:aa:00:00:00:01"), ipaddress.IPv4Address("10.0.0.250").packed


def test_request_carries_our_real_addresses_and_replies_parse():
    frame = arp.request(OUR_MAC, OUR_IP, IPS[0].packed)
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == OUR_MAC
    assert frame[22:28] == OUR_MAC and frame[28:32] == OUR_IP     # sender = us
    their_mac = arp.mac_bytes("00:1b:c5:00:00:15")
    reply = (OUR_MAC + their_mac + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x02"
             + their_mac + IPS[0].packed + OUR_MAC + OUR_IP)
    assert arp.parse_reply(reply, OUR_IP) == (IPS[0].packed, their_mac)
    assert arp.parse_reply(frame, OUR_IP) is None                  # a request, not a reply
    assert arp.parse_reply(reply, IPS[1].packed) is None           # for someone else
    assert arp.parse_reply(reply[:30], OUR_IP) is None


def drive(schedule, clock, replies=lambda ip, attempt: None, step=0.001):
    """Run the schedule on a task.Clock; ``replies`` says who answers which probe."""
    sent = []
    attempts = {}
    while not schedule.finished(clock.seconds()):
        for ip in schedule.probes(clock.seconds()):
            attempts[ip] = attempts.get(ip, 0) + 1
            sent.append((round(clock.seconds(), 4), ip))
            mac = replies(ip, attempts[ip])
            if mac:
                schedule.reply(ip, mac, clock.seconds() + 0.0002)
        timer = schedule.get_timer()
        clock.advance(max(step, timer - clock.seconds()) if timer else step)
    return sent


def test_paced_at_the_rate_and_silent_hosts_reprobed_with_growing_waits():
    clock = Clock()
    schedule = arp.Schedule(IPS[:3], clock.seconds(), rate=100, tries=3, first_wait=0.05,
                            final_wait=0.1)
    sent = drive(schedule, clock)
    times = [t for t, _ in sent]
    assert len(sent) == 9                                   # 3 targets x 3 tries
    assert all(b - a >= 0.0099 for a, b in zip(times, times[1:]))   # 100/s
    first = [t for t, ip in sent if ip == IPS[0]]
    assert first[1] - first[0] >= 0.0499 and first[2] - first[1] >= 0.0999   # waits grow
    assert schedule.answered == {}
    assert clock.seconds() >= times[-1] + 0.1               # final wait for late replies


def test_only_silent_hosts_are_probed_again():
    clock = Clock()
    schedule = arp.Schedule(IPS, clock.seconds(), rate=1000, tries=4)
    # Even addresses answer the first probe; 10.0.0.3 only its third.
    def replies(ip, attempt):
        if int(ip) % 2 == 0:
            return "02:00:00:00:00:%02x" % (int(ip) & 0xFF)
        if ip == IPS[2] and attempt == 3:
            return "02:00:00:00:00:03"
    sent = drive(schedule, clock, replies)
    per_ip = {ip: sum(1 for _, s in sent if s == ip) for ip in IPS}
    assert all(per_ip[ip] == 1 for ip in IPS if int(ip) % 2 == 0)
    assert per_ip[IPS[2]] == 3
    assert all(per_ip[ip] == 4 for ip in IPS if int(ip) % 2 and ip != IPS[2])
    assert sorted(schedule.answered) == sorted([ip for ip in IPS if int(ip) % 2 == 0] + [IPS[2]])
    assert schedule.answered[IPS[1]].rtt is not None


def test_every_mac_is_kept_and_two_macs_are_a_conflict():
    schedule = arp.Schedule(IPS[:1], 0.0)
    schedule.probes(0.0)
    schedule.reply(IPS[0], "02:00:00:00:00:01", 0.001)
    schedule.reply(IPS[0], "02:00:00:00:00:01", 0.002)
    schedule.reply(IPS[0], "02:00:00:00:00:99", 0.003)
    host = schedule.answered[IPS[0]]
    assert host.macs == ["02:00:00:00:00:01", "02:00:00:00:00:99"] and host.conflict
    assert abs(host.rtt - 0.001) < 1e-9


def test_waits_stop_growing_at_half_a_second():
    clock = Clock()
    schedule = arp.Schedule(IPS[:1], clock.seconds(), rate=1000, tries=8, first_wait=0.05)
    sent = drive(schedule, clock)
    gaps = [round(b - a, 3) for (a, _), (b, _) in zip(sent, sent[1:])]
    assert gaps == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
