"""Signed records (models decisions, labels): the header a signer adds, and who trusts what."""

from __future__ import annotations

from bizstream.stream.signing import HEADER, sign, signed, trusted

KEY = "sixteen or more characters"


def test_a_signed_record_is_trusted_as_aiokafka_and_faust_give_its_headers() -> None:
    value = b'{"post_id":"p1","rating":1}'
    headers = sign(KEY, value)
    assert headers is not None and [name for name, _ in headers] == [HEADER]
    assert signed(KEY, value, headers) and signed(KEY, value, dict(headers))  # aiokafka: pairs; faust: a dict
    assert trusted(KEY, value, headers)


def test_unsigned_tampered_or_foreign_records_are_not_trusted_when_a_key_is_set() -> None:
    value = b'{"post_id":"p1","rating":1}'
    assert sign("", value) is None  # no key: nothing to sign with, and everything is trusted
    assert trusted("", value, None) and trusted("", value, sign(KEY, value))
    assert not trusted(KEY, value, None) and not trusted(KEY, value, [])
    assert not trusted(KEY, value.replace(b"1}", b"-1}"), sign(KEY, value))  # the value changed after signing
    assert not trusted(KEY, value, sign("another key of 16+ characters", value))
    assert not trusted(KEY, value, [(HEADER, b"0" * 64)])
