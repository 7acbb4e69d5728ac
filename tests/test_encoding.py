import datetime as dt

import pytest

from django_unilink.encoding import (
    MESSAGE_STATUSES,
    enum_name,
    message_type_code,
    message_type_name,
    parse_timestamp,
    to_unix,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        (0, None),
        (1750238142, dt.datetime(2025, 6, 18, 9, 15, 42, tzinfo=UTC)),
        ("1750238142", dt.datetime(2025, 6, 18, 9, 15, 42, tzinfo=UTC)),
        (1750238142.318, dt.datetime(2025, 6, 18, 9, 15, 42, 318000, tzinfo=UTC)),
        ("2026-06-18T09:15:42.318Z", dt.datetime(2026, 6, 18, 9, 15, 42, 318000, tzinfo=UTC)),
        ("2026-06-18T09:15:42Z", dt.datetime(2026, 6, 18, 9, 15, 42, tzinfo=UTC)),
        ("2026-06-18T11:15:42.000+02:00", dt.datetime(2026, 6, 18, 9, 15, 42, tzinfo=UTC)),
        ("2026-06-18T09:15:42", dt.datetime(2026, 6, 18, 9, 15, 42, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_accepts_every_remote_encoding(value, expected):
    parsed = parse_timestamp(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None and parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("value", ["yesterday", True, [1], {"a": 1}, 10**20])
def test_parse_timestamp_rejects_garbage_naming_the_field(value):
    with pytest.raises(ValueError, match="created_at"):
        parse_timestamp(value, field="created_at")


def test_message_type_both_encodings():
    assert [message_type_name(i) for i in range(4)] == ["incoming", "outgoing", "activity", "template"]
    assert message_type_name("outgoing") == "outgoing"
    assert message_type_name("1") == "outgoing"
    assert message_type_code("template") == 3
    with pytest.raises(ValueError, match="message_type"):
        message_type_name(9)
    with pytest.raises(ValueError, match="message_type"):
        message_type_name(False)


def test_unknown_enum_names_are_kept_for_newer_platforms():
    assert enum_name("escalated", MESSAGE_STATUSES) == "escalated"


def test_to_unix():
    assert to_unix(dt.datetime(2026, 6, 18, 9, 15, 42, tzinfo=UTC)) == 1781774142
    assert to_unix(None) is None
    assert to_unix(12.9) == 12
