"""PiiMasker's item budget: one mask() call visits a bounded number of items, whatever the size.

Timings are not asserted (they depend on the machine): the tests count the strings the masker
masked and check the shape of its output instead.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque, namedtuple
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_error_codes.metrics import PiiMasker, mask_pii
from fastapi_error_codes.metrics.pii import (
    DEFAULT_MAX_ITEMS,
    EMAIL_MASK,
    MASK,
    TRUNCATED_KEY,
)


class CountingMasker(PiiMasker):
    """A masker that counts the strings it masks: every string the walk visits."""

    __slots__ = ("texts",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.texts = 0

    def mask_text(self, text: str) -> str:
        self.texts += 1
        return super().mask_text(text)


def _leaves(obj: Any) -> int:
    """Items in a (masked) structure: container elements and mapping values, any depth."""
    if isinstance(obj, dict):
        return sum(1 + _leaves(v) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(1 + _leaves(v) for v in obj)
    return 0


def _markers(obj: Any) -> list[str]:
    """Every budget marker anywhere in *obj*."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == TRUNCATED_KEY:
                found.append(value)
            else:
                found.extend(_markers(value))
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            if isinstance(item, str) and item.startswith("[") and "more item" in item:
                found.append(item)
            else:
                found.extend(_markers(item))
    return found


class TestConfiguration:
    def test_default_is_a_few_thousand(self) -> None:
        assert 1000 <= DEFAULT_MAX_ITEMS <= 10_000
        assert PiiMasker().max_items == DEFAULT_MAX_ITEMS

    def test_per_masker(self) -> None:
        masker = PiiMasker(max_items=10)
        assert masker.max_items == 10
        assert masker.mask(list(range(100))) == [*range(10), "[90 more items]"]

    def test_per_call_overrides_the_masker(self) -> None:
        masker = PiiMasker(max_items=10)
        assert masker.mask(list(range(100)), max_items=3) == [0, 1, 2, "[97 more items]"]
        assert masker.mask(list(range(100)), max_items=1000) == list(range(100))

    def test_mask_pii_takes_it_too(self) -> None:
        assert mask_pii(list(range(5)), max_items=2) == [0, 1, "[3 more items]"]
        assert mask_pii(["a@b.co"] * 3, ["tenant"], max_items=1) == [EMAIL_MASK, "[2 more items]"]

    @pytest.mark.parametrize("bad", [0, -1, 2.5, "10", True, None])
    def test_invalid_budget_is_refused(self, bad: Any) -> None:
        if bad is not None:
            with pytest.raises(ValueError, match="max_items"):
                PiiMasker(max_items=bad)
            with pytest.raises(ValueError, match="max_items"):
                PiiMasker().mask([1], max_items=bad)
        else:  # None on a call means "the masker's own budget"
            assert PiiMasker(max_items=1).mask([1, 2], max_items=bad) == [1, "[1 more item]"]


class TestHugeValues:
    def test_100k_strings_visit_only_the_budget(self) -> None:
        masker = CountingMasker()
        detail = [f"user{i}@example.com" for i in range(100_000)]
        out = masker.mask(detail)
        assert masker.texts == DEFAULT_MAX_ITEMS
        assert len(out) == DEFAULT_MAX_ITEMS + 1
        assert out[:-1] == [EMAIL_MASK] * DEFAULT_MAX_ITEMS
        assert out[-1] == f"[{100_000 - DEFAULT_MAX_ITEMS} more items]"

    def test_100k_item_detail_in_a_mapping(self) -> None:
        masker = CountingMasker(max_items=1000)
        detail = {"reason": "too many", "ids": [f"id-{i}" for i in range(100_000)]}
        out = masker.mask(detail)
        assert out["reason"] == "too many"
        assert len(out["ids"]) == 999  # 998 ids and the marker: 2 values + 998 = 1000 items
        assert out["ids"][-1] == f"[{100_000 - 998} more items]"
        assert masker.texts <= 1000 + 2  # the values, plus the two keys

    def test_100k_keys(self) -> None:
        masker = CountingMasker(max_items=500)
        detail = {f"field{i}": f"value {i}" for i in range(100_000)}
        out = masker.mask(detail)
        assert len(out) == 501
        assert out[TRUNCATED_KEY] == f"[{100_000 - 500} more items]"
        assert masker.texts <= 2 * 500  # keys and values of the visited entries only

    def test_100k_dicts_bounded_at_every_depth(self) -> None:
        masker = CountingMasker(max_items=1000)
        rows = [{"id": i, "email": f"u{i}@x.io", "name": f"n{i}"} for i in range(100_000)]
        out = masker.mask({"rows": rows})
        assert _leaves(out) <= 1000 + len(_markers(out))
        assert out["rows"][0] == {"id": 0, "email": EMAIL_MASK, "name": "n0"}
        assert "more items" in out["rows"][-1]
        # The rows before the cut are whole; the cut one says how much of it is left out.
        whole = [r for r in out["rows"] if isinstance(r, dict) and TRUNCATED_KEY not in r]
        assert len(whole) >= 240

    def test_nested_lists_share_one_budget(self) -> None:
        masker = PiiMasker(max_items=100)
        out = masker.mask([list(range(60)), list(range(60)), list(range(60))])
        # The three lists are visited (3 items); then 97 numbers across them.
        assert out[0] == list(range(60))
        assert out[1] == [*range(37), "[23 more items]"]
        assert out[2] == ["[60 more items]"]
        assert _leaves(out) - len(_markers(out)) == 100

    def test_other_containers_are_cut_too(self) -> None:
        masker = PiiMasker(max_items=5)
        point = namedtuple("point", "x y z")

        @dataclasses.dataclass
        class Row:
            a: int
            b: int
            c: int

        assert masker.mask(tuple(range(10))) == (0, 1, 2, 3, 4, "[5 more items]")
        assert masker.mask(deque(range(10))) == [0, 1, 2, 3, 4, "[5 more items]"]
        assert masker.mask({i: i for i in range(10)}.values()) == [0, 1, 2, 3, 4, "[5 more items]"]
        assert masker.mask(range(10**12)) == [0, 1, 2, 3, 4, f"[{10**12 - 5} more items]"]
        cut_set = masker.mask(set(range(10)))
        assert isinstance(cut_set, set) and "[5 more items]" in cut_set and len(cut_set) == 6
        assert isinstance(masker.mask(frozenset(range(10))), frozenset)
        # A cut namedtuple is a plain tuple: the marker is no field of it.
        # ([3 items] first, then the point's fields with the 2 items left.)
        cut = masker.mask([point(1, 2, 3), 4, 5])
        assert cut == [(1, 2, "[1 more item]"), 4, 5]
        assert type(cut[0]) is tuple
        assert masker.mask([1, 2, 3, Row(1, 2, 3)]) == [
            1,
            2,
            3,
            {"a": 1, TRUNCATED_KEY: "[2 more items]"},
        ]

    def test_one_item_left(self) -> None:
        assert PiiMasker(max_items=1).mask([1, 2]) == [1, "[1 more item]"]
        assert PiiMasker(max_items=1).mask({"a": 1, "b": 2}) == {
            "a": 1,
            TRUNCATED_KEY: "[1 more item]",
        }


class TestNothingLeaks:
    def test_items_past_the_budget_are_left_out(self) -> None:
        secret = "hunter2-SECRET"
        data = {
            "items": list(range(50)),
            "password": secret,
            "note": f"password={secret}",
            "users": [{"email": "a@b.co", "token": secret}],
            "raw": [(b"x-api-key", secret.encode())],
        }
        for budget in range(1, 80):
            out = PiiMasker(max_items=budget).mask(data)
            assert secret not in repr(out), budget
            assert "a@b.co" not in repr(out), budget

    def test_a_cut_pair_is_not_taken_for_a_header(self) -> None:
        # ["password", "x", "y"] cut to ["password", "[2 more items]"] is no (name, value) pair.
        out = PiiMasker(max_items=1).mask(["password", "x", "y"])
        assert out == ["password", "[2 more items]"]
        # A real pair inside the budget is still masked.
        assert PiiMasker(max_items=5).mask([("authorization", "Bearer abc")]) == [
            ("authorization", MASK)
        ]

    def test_never_raises_and_never_mutates(self) -> None:
        data = {"a": [list(range(100)) for _ in range(100)], "b": {i: str(i) for i in range(100)}}
        before = copy.deepcopy(data)
        PiiMasker(max_items=37).mask(data)
        assert data == before


class TestUnderTheBudget:
    def test_nothing_changes_when_it_fits(self) -> None:
        data = {"rows": [{"id": i, "email": f"u{i}@x.io"} for i in range(100)], "n": 100}
        size = 1 + 100 * 3 + 1  # "rows", each row and its two values, "n"
        assert PiiMasker(max_items=size).mask(data) == PiiMasker(max_items=10**9).mask(data)
        assert _markers(PiiMasker(max_items=size).mask(data)) == []
        assert _markers(PiiMasker(max_items=size - 1).mask(data)) == ["[1 more item]"]

    def test_a_normal_sentry_exception_is_not_cut(self) -> None:
        # 60 frames with source context and trimmed locals (the SDK keeps 10 wide, 5 deep):
        # what one mask() call of Sentry's event scrubbing sees in the "exception" field.
        def frame(i: int) -> dict[str, Any]:
            return {
                "filename": f"app/module{i}.py",
                "abs_path": f"/srv/app/module{i}.py",
                "function": f"handler_{i}",
                "module": f"app.module{i}",
                "lineno": i,
                "pre_context": [f"line {j}" for j in range(5)],
                "context_line": "    raise ValueError(email)",
                "post_context": [f"line {j}" for j in range(5)],
                "in_app": True,
                "vars": {
                    "self": "<app.Service object>",
                    "request": {"headers": [["x-api-key", "k"]] * 5, "path": "/x"},
                    "user": {"id": i, "email": "a@b.co", "roles": ["admin", "dev"]},
                    "items": list(range(10)),
                },
            }

        exception = {
            "values": [
                {
                    "type": "ValueError",
                    "value": "a@b.co",
                    "stacktrace": {"frames": [frame(i) for i in range(60)]},
                }
            ]
        }
        size = _leaves(exception)
        assert 2000 < size < DEFAULT_MAX_ITEMS
        out = PiiMasker().mask(exception)
        assert _markers(out) == []
        assert _leaves(out) == size
        assert out["values"][0]["stacktrace"]["frames"][-1]["vars"]["user"]["email"] == EMAIL_MASK


class TestIdempotent:
    @pytest.mark.parametrize("budget", [1, 2, 3, 7, 50, 99, 100, 101, 250])
    def test_masking_a_cut_value_again_changes_nothing(self, budget: int) -> None:
        masker = PiiMasker(max_items=budget)
        data = {
            "a": [list(range(30)), {"x": list(range(30)), "y": "a@b.co"}],
            "b": {"k": list(range(40))},
            "c": [[["deep"] * 10] * 3],
            "d": {"s": set(range(20))},
        }
        once = masker.mask(data)
        assert masker.mask(once) == once


children = st.one_of(st.none(), st.integers(), st.text(max_size=10), st.emails())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        children,
        lambda c: st.one_of(
            st.lists(c, max_size=8),
            st.dictionaries(st.sampled_from(["id", "password", "n", "email", "x"]), c, max_size=5),
        ),
        max_leaves=60,
    ),
    st.integers(min_value=1, max_value=40),
)
def test_any_value_visits_at_most_the_budget(value: Any, budget: int) -> None:
    masker = CountingMasker(max_items=budget)
    out = masker.mask(value)
    if isinstance(value, (list, dict)):
        assert _leaves(out) - len(_markers(out)) <= budget
        # Each visited item masks at most two strings (a mapping's key and its value).
        assert masker.texts <= 2 * budget
    assert masker.mask(out) == out
