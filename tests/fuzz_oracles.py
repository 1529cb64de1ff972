"""Reference helpers of the fuzz suite on top of tests/reference.py.

reference.py pads tensors and enumerates windows tap by tap, which is exact
but cannot take a stride, dilation or pool size of 2**31. These versions
walk only the in-bounds taps with Python-int geometry, so any attribute
value works on small tensors; test_fuzz.py checks them against
reference.py where both apply. Everything is exact (int64 / Python ints).
"""

import numpy as np

import reference as ref

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MIN_EXPONENT, MAX_EXPONENT = ref.MIN_EXPONENT, ref.MAX_EXPONENT
TINY = float(np.finfo(np.float32).tiny)


class Refused(ValueError):
    """The specification refuses the input; `pattern` is what the error must name."""

    def __init__(self, pattern):
        super().__init__(pattern)
        self.pattern = pattern


def in_int32(v):
    return INT32_MIN <= int(v) <= INT32_MAX


def in_exponent_range(e):
    return MIN_EXPONENT <= int(e) <= MAX_EXPONENT


def fits_int32(array):
    a = np.asarray(array)
    return a.size == 0 or (int(a.min()) >= INT32_MIN and int(a.max()) <= INT32_MAX)


# ------------------------------------------------------------- geometry

def window(size, k, s, d, padding):
    """(out, pad_before) of one spatial dimension, TensorFlow's rules, Python ints."""
    effective = (k - 1) * d + 1
    if padding == "SAME":
        out = -(-size // s)
        pad = max((out - 1) * s + effective - size, 0)
        return out, pad // 2
    if size < effective:
        raise Refused(r"smaller than|window|VALID")
    return (size - effective) // s + 1, 0


def taps(out, pad, size, k, s, d):
    """[(o, i, t)]: output position o reads input i through tap t (in-bounds only)."""
    result = []
    for o in range(out):
        start = o * s - pad
        for t in range(k):
            i = start + t * d
            if 0 <= i < size:
                result.append((o, i, t))
    return result


def tap_counts(out, pad, size, k, s):
    """For each tap t (dilation 1): how many output positions read in-bounds input through it."""
    counts = []
    for t in range(k):
        lo = max(0, -(-(pad - t) // s))          # first o with o*s - pad + t >= 0
        hi = min(out - 1, (size - 1 + pad - t) // s)
        counts.append(max(0, hi - lo + 1))
    return counts


def conv2d(x, w, strides, padding, dilations):
    x, w = np.asarray(x, np.int64), np.asarray(w, np.int64)
    n, h, wd, c = x.shape
    kh, kw, c2, o = w.shape
    if c != c2:
        raise Refused(r"channels|match|shape")
    oh, pt = window(h, kh, strides[0], dilations[0], padding)
    ow, pl = window(wd, kw, strides[1], dilations[1], padding)
    out = np.zeros((n, oh, ow, o), np.int64)
    rows = taps(oh, pt, h, kh, strides[0], dilations[0])
    cols = taps(ow, pl, wd, kw, strides[1], dilations[1])
    for a, i, ti in rows:
        for b, j, tj in cols:
            out[:, a, b, :] += x[:, i, j, :] @ w[ti, tj]
    return out


def conv2d_backprop_input(x_shape, w, dy, strides, padding, dilations):
    w, dy = np.asarray(w, np.int64), np.asarray(dy, np.int64)
    n, h, wd, c = x_shape
    kh, kw, _, _ = w.shape
    oh, pt = window(h, kh, strides[0], dilations[0], padding)
    ow, pl = window(wd, kw, strides[1], dilations[1], padding)
    dx = np.zeros(x_shape, np.int64)
    for a, i, ti in taps(oh, pt, h, kh, strides[0], dilations[0]):
        for b, j, tj in taps(ow, pl, wd, kw, strides[1], dilations[1]):
            dx[:, i, j, :] += dy[:, a, b, :] @ w[ti, tj].T
    return dx


def conv2d_backprop_filter(x, w_shape, dy, strides, padding, dilations):
    x, dy = np.asarray(x, np.int64), np.asarray(dy, np.int64)
    n, h, wd, c = x.shape
    kh, kw, _, _ = w_shape
    oh, pt = window(h, kh, strides[0], dilations[0], padding)
    ow, pl = window(wd, kw, strides[1], dilations[1], padding)
    dw = np.zeros(w_shape, np.int64)
    for a, i, ti in taps(oh, pt, h, kh, strides[0], dilations[0]):
        for b, j, tj in taps(ow, pl, wd, kw, strides[1], dilations[1]):
            dw[ti, tj] += x[:, i, j, :].T @ dy[:, a, b, :]
    return dw


def conv_out_shape(x_shape, w_shape, strides, padding, dilations):
    oh, _ = window(x_shape[1], w_shape[0], strides[0], dilations[0], padding)
    ow, _ = window(x_shape[2], w_shape[1], strides[1], dilations[1], padding)
    return (x_shape[0], oh, ow, w_shape[3])


# -------------------------------------------------------------- pooling

def pool_windows(shape, pool, strides, padding):
    """[(a, b, [(i, j) in-bounds, row-major])] and the output size."""
    _, h, w, _ = shape
    oh, pt = window(h, pool[0], strides[0], 1, padding)
    ow, pl = window(w, pool[1], strides[1], 1, padding)
    result = []
    for a in range(oh):
        rows = range(max(a * strides[0] - pt, 0), min(a * strides[0] - pt + pool[0], h))
        for b in range(ow):
            cols = range(max(b * strides[1] - pl, 0), min(b * strides[1] - pl + pool[1], w))
            result.append((a, b, [(i, j) for i in rows for j in cols]))
    return result, (oh, ow)


def max_pool(x, pool, strides, padding):
    x = np.asarray(x)
    windows, (oh, ow) = pool_windows(x.shape, pool, strides, padding)
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    for a, b, cells in windows:
        out[:, a, b, :] = np.max(np.stack([x[:, i, j, :] for i, j in cells]), axis=0)
    return out


def max_pool_grad(x, dy, pool, strides, padding, dtype=np.int64):
    x, dy = np.asarray(x), np.asarray(dy)
    windows, _ = pool_windows(x.shape, pool, strides, padding)
    dx = np.zeros(x.shape, dtype)
    for a, b, cells in windows:
        values = np.stack([x[:, i, j, :] for i, j in cells])  # [taps, n, c]
        first = np.argmax(values, axis=0)
        for n in range(x.shape[0]):
            for c in range(x.shape[3]):
                i, j = cells[first[n, c]]
                dx[n, i, j, c] += dy[n, a, b, c]
    return dx


def avg_pool_acc(x, pool, strides, padding):
    x = np.asarray(x, np.int64)
    windows, (oh, ow) = pool_windows(x.shape, pool, strides, padding)
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]), np.int64)
    for a, b, cells in windows:
        out[:, a, b, :] = sum(x[:, i, j, :] for i, j in cells) * ref.avg_multiplier(len(cells))
    return out


def avg_pool_grad_acc(x_shape, dy, pool, strides, padding):
    dy = np.asarray(dy, np.int64)
    windows, _ = pool_windows(x_shape, pool, strides, padding)
    dx = np.zeros(x_shape, np.int64)
    for a, b, cells in windows:
        m = ref.avg_multiplier(len(cells))
        for i, j in cells:
            dx[:, i, j, :] += dy[:, a, b, :] * m
    return dx


# ---------------------------------------------------- DFP conversions

def flush(x):
    """Subnormal float32 values count as zero (the documented decision)."""
    x = np.asarray(x, np.float32)
    return np.where(np.abs(x) < TINY, np.float32(0), x)


def quantize(x, bits=8):
    """ref.quantize with subnormals as zero; Refused for NaN/Inf and out-of-range exponents."""
    x = flush(x)
    if not np.all(np.isfinite(x)):
        raise Refused(r"NaN|Inf")
    try:
        return ref.quantize(x, bits)
    except ValueError as error:
        raise Refused(r"exponent|out of range") from error


def requantize(acc, exponent, mode="nearest", bits=8, seed=(0, 0)):
    """ref.requantize, also for 0-d arrays (which reference.py's shifts by >= 63 do not take)."""
    acc = np.asarray(acc)
    q, e = ref.requantize(acc.reshape(-1), exponent, mode, bits, seed=seed)
    return np.asarray(q).reshape(acc.shape), e


def round_shift(values, s, mode, random=None):
    values = np.asarray(values)
    return np.asarray(ref.round_shift(values.reshape(-1), s, mode, random)).reshape(values.shape)


def aligned_add(a, ea, b, eb):
    a, b = np.asarray(a), np.asarray(b)
    acc, e = ref.aligned_add(a.reshape(-1), ea, b.reshape(-1), eb)
    return np.asarray(acc).reshape(a.shape), e


def value_of(q, e):
    """Exact values q * 2**e as float64 (exact for |q| < 2**53 and sane e)."""
    return np.ldexp(np.asarray(q, np.float64), int(e))


# ------------------------------------------------------ cross-entropy

def _round_shift_fast(values, s, mode, random=None):
    """Vectorised ref.round_shift for int64 magnitudes < 2**62 (the wide-row cases)."""
    v = np.asarray(values, np.int64)
    m = np.abs(v)
    t, r = m >> s, m & ((1 << s) - 1)
    if mode == "nearest":
        up = r >= (1 << (s - 1))
    elif mode == "truncate":
        up = np.zeros_like(r, bool)
    elif mode == "pseudo_stochastic":
        h = s // 2
        p, q = r >> h, r & ((1 << h) - 1)
        if s % 2:
            q = q * 2
        up = p > q
    else:
        word = np.asarray(random, np.uint64).astype(np.int64)
        q = word & ((1 << s) - 1)
        up = r > q
    out = t + up
    return np.where(v < 0, -out, out)


def softmax_cross_entropy_grad(logits, exponent, labels, mode="pseudo_stochastic", seed=(0, 0)):
    """ref.softmax_cross_entropy_grad computed per distinct logit value (exact Python ints), so
    that rows of millions of classes take milliseconds."""
    q = np.asarray(logits, np.int64)
    batch, classes = q.shape
    rows = np.zeros(q.shape, np.int64)
    for b in range(batch):
        values, inverse, counts = np.unique(q[b], return_inverse=True, return_counts=True)
        if exponent <= -7:
            e = max(exponent, -20)
            v = [int(t) for t in ref.round_shift(values, e - exponent, "nearest")]
            p = [(1 << (1 - 2 * e)) + t * (1 << (1 - e)) + t * t for t in v]
        else:
            v = values * ref.LOG2E_NUMERATOR
            shift = exponent - ref.LOG2E_SHIFT
            s = v * 2 ** min(shift, 32) if shift >= 0 else ref._trunc_shift(v, -shift)
            s = np.maximum(s - (s.max() - 10), 0)
            p = [(1 << int(t)) - 1 for t in s]
        total = sum(int(c) * t for c, t in zip(counts, p))
        big = np.array([(t << 11) // total for t in p], np.int64)
        row = big[inverse.reshape(-1)]
        row[int(labels[b])] -= int(sum(int(c) * int(t) for c, t in zip(counts, big)))
        rows[b] = row
    random = ref.random_words(seed[0], seed[1], rows.size) if mode == "stochastic" else None
    err = _round_shift_fast(rows.reshape(-1), 4, mode, random).reshape(q.shape)
    return np.clip(err, -127, 127), -7
