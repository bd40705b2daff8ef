"""Pure formulas: table-driven, against a brute-force sliding window, and against torch."""

import doctest

import pytest
import torch
import torch.nn.functional as Fn
from hypothesis import assume, given
from hypothesis import strategies as st

from cnnshape import formulas as F


def brute_windows(n, k, s, pl, pr, d):
    """Count window positions of a dilated kernel sliding over the padded input."""
    padded = n + pl + pr
    keff = d * (k - 1) + 1
    count, start = 0, 0
    while start + keff <= padded:
        count += 1
        start += s
    return count


@pytest.mark.parametrize("n,k,s,p,d,expected", [
    (28, 3, 1, 0, 1, 26), (28, 3, 1, 1, 1, 28), (28, 5, 1, 0, 1, 24), (224, 11, 4, 2, 1, 55),
    (7, 3, 1, 0, 2, 3), (12, 1, 1, 0, 1, 12), (5, 5, 1, 0, 1, 1),
])
def test_conv_out_table(n, k, s, p, d, expected):
    assert F.conv_out(n, k, s, p, d) == expected


@pytest.mark.parametrize("n,k,s,p,ceil,expected", [
    (26, 2, 2, 0, False, 13), (13, 2, 2, 0, False, 6), (13, 2, 2, 0, True, 7), (12, 2, 2, 1, False, 7),
    (5, 2, 2, 1, True, 3), (6, 3, 2, 1, True, 4), (6, 3, 2, 0, True, 3), (55, 3, 2, 0, False, 27),
])
def test_pool_out_table(n, k, s, p, ceil, expected):
    assert F.pool_out(n, k, s, p, 1, ceil) == expected


@given(n=st.integers(1, 60), k=st.integers(1, 9), s=st.integers(1, 5), pl=st.integers(0, 4),
       pr=st.integers(0, 4), d=st.integers(1, 3))
def test_conv_out_matches_brute_force(n, k, s, pl, pr, d):
    expected = brute_windows(n, k, s, pl, pr, d)
    got = F.conv_out(n, k, s, pl, d, padding_right=pr)
    assert max(got, 0) == expected


@given(n=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3),
       data=st.data())
def test_conv_out_matches_torch(n, k, s, d, data):
    p = data.draw(st.integers(0, 3))
    assume(F.effective_kernel(k, d) <= n + 2 * p)
    y = Fn.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d)
    assert y.shape[-1] == F.conv_out(n, k, s, p, d)


@given(n=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 2),
       ceil=st.booleans(), data=st.data())
def test_pool_out_matches_torch(n, k, s, d, ceil, data):
    p = data.draw(st.integers(0, k // 2))
    out = F.pool_out(n, k, s, p, d, ceil)
    try:
        y = Fn.max_pool2d(torch.zeros(1, 1, 1, n), (1, k), (1, s), (0, p), (1, d), ceil_mode=ceil)
    except RuntimeError:
        assert out < 1
        return
    assert y.shape[-1] == out


@given(n=st.integers(1, 20), k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 3),
       p=st.integers(0, 3), data=st.data())
def test_conv_transpose_out_matches_torch(n, k, s, d, p, data):
    op = data.draw(st.integers(0, max(s, d) - 1))
    out = F.conv_transpose_out(n, k, s, p, op, d)
    assume(out >= 1)
    y = Fn.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p,
                            output_padding=op, dilation=d)
    assert y.shape[-1] == out


@given(k=st.integers(1, 8), d=st.integers(1, 3), n=st.integers(1, 30))
def test_same_padding_matches_torch(k, d, n):
    left, right = F.same_padding(k, d)
    y = Fn.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), padding="same", dilation=d)
    assert y.shape[-1] == n == F.conv_out(n, k, 1, left, d, padding_right=right)


@given(size=st.integers(1, 30), out=st.integers(1, 30))
def test_adaptive_windows_match_torch(size, out):
    x = torch.arange(size, dtype=torch.float32).view(1, 1, size)
    y = Fn.adaptive_max_pool1d(x, out)
    assert [float(e - 1) for _, e in F.adaptive_windows(size, out)] == y.flatten().tolist()


def test_doctests():
    assert doctest.testmod(F).failed == 0
