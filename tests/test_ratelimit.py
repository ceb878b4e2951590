from tekcos.ratelimit import TokenBucket


def test_burst_then_rate():
    bucket = TokenBucket(rate=5, burst=3, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.allow(0.1)      # half a token
    assert bucket.allow(0.2)          # one token after 0.2 s at 5/s
    assert not bucket.allow(0.2)


def test_refill_is_capped_at_burst():
    bucket = TokenBucket(rate=5, burst=3, now=0.0)
    for _ in range(3):
        bucket.allow(0.0)
    allowed = [bucket.allow(1000.0) for _ in range(5)]
    assert allowed == [True, True, True, False, False]


def test_rate_zero_disables():
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(1000))
