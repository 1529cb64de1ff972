"""NumPy reference of every op, written from docs/algorithms.md (not from the kernels).

Everything is computed in Python ints / int64 with explicit sign handling, so
that the C++ kernels are checked against an independent implementation.
"""

import numpy as np

MIN_EXPONENT, MAX_EXPONENT = -120, 100
LOG2E_NUMERATOR, LOG2E_SHIFT = 47274, 15
AVG_POOL_SHIFT = 16


# ---------------------------------------------------------------- rounding

def bit_length(values):
    """bit_length(max |values|), 0 for all-zero or empty."""
    values = np.asarray(values, dtype=np.int64)
    return int(np.abs(values).max()).bit_length() if values.size else 0


def philox4x32(counters, key):
    """Philox4x32-10 (Salmon et al. 2011) on an array [n, 4] of uint32 counters."""
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    mask = np.uint64(0xFFFFFFFF)
    c = [np.asarray(counters[:, i], dtype=np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key & 0xFFFFFFFF), np.uint64((key >> 32) & 0xFFFFFFFF)
    for _ in range(10):
        p0, p1 = m0 * c[0], m1 * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask, p1 & mask,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask, p0 & mask]
        k0 = (k0 + np.uint64(0x9E3779B9)) & mask
        k1 = (k1 + np.uint64(0xBB67AE85)) & mask
    return np.stack(c, axis=1)


def random_words(seed, step, n):
    """The random word of element i: word i % 4 of Philox((i // 4, step), seed)."""
    index = np.arange(n, dtype=np.uint64)
    block = index // np.uint64(4)
    counters = np.stack([block & np.uint64(0xFFFFFFFF), block >> np.uint64(32),
                         np.full(n, step & 0xFFFFFFFF, np.uint64),
                         np.full(n, (step >> 32) & 0xFFFFFFFF, np.uint64)], axis=1)
    words = philox4x32(counters, seed)
    return words[np.arange(n), (index % np.uint64(4)).astype(np.int64)]


def round_shift(values, s, mode, random=None):
    """Shift right by s >= 0 on magnitudes with the given rounding; sign restored."""
    v = np.asarray(values, dtype=np.int64)
    if s <= 0:
        return v.copy()
    mag = np.abs(v).astype(object)  # Python ints: no overflow for any s
    out = []
    rand = [0] * v.size if random is None else [int(r) for r in np.ravel(random)]
    for m, r_word in zip(np.ravel(mag), rand):
        t, r = m >> s, m & ((1 << s) - 1)
        if mode == "nearest":
            up = r >= (1 << (s - 1))
        elif mode == "truncate":
            up = False
        elif mode == "pseudo_stochastic":
            h = s // 2
            p, q = r >> h, r & ((1 << h) - 1)
            if s % 2:
                q *= 2
            up = p > q
        elif mode == "stochastic":
            q = (r_word & ((1 << s) - 1)) if s <= 32 else (r_word << (s - 32))
            up = r > q
        else:
            raise ValueError(mode)
        out.append(t + int(up))
    result = np.array(out, dtype=np.int64).reshape(v.shape)
    return np.where(v < 0, -result, result)


def requantize(acc, exponent, mode="nearest", bits=8, seed=(0, 0)):
    acc = np.asarray(acc, dtype=np.int64)
    limit = 2 ** (bits - 1) - 1
    s = bit_length(acc) - (bits - 1)
    if s <= 0:
        return acc.copy(), exponent
    random = random_words(seed[0], seed[1], acc.size) if mode == "stochastic" else None
    q = np.clip(round_shift(acc, s, mode, random), -limit, limit)
    return q, exponent + s


# ------------------------------------------------------------ conversions

def quantize(x, bits=8):
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("NaN or Inf")
    limit = 2 ** (bits - 1) - 1
    x = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.float32(0), x)  # subnormals count as zero
    m = float(np.abs(x).max()) if x.size else 0.0
    if m == 0.0:
        return np.zeros(x.shape, np.int64), 0
    fraction, p = np.frexp(np.float32(m))
    power_of_two = fraction == 0.5
    e = (p - 1 if power_of_two else p) - (bits - 1)
    if power_of_two:
        scaled = np.ldexp(x, -(e + 1)).astype(np.float32)
        if np.all(scaled == np.trunc(scaled)):
            e += 1
    if not MIN_EXPONENT <= e <= MAX_EXPONENT:
        raise ValueError(f"exponent {e} out of range")
    scaled = np.ldexp(x, -e).astype(np.float32)
    # Round half away from zero, exactly: compare the (exact) fraction with 1/2.
    whole = np.trunc(scaled)
    fraction = scaled - whole
    q = whole + (fraction >= 0.5) - (fraction <= -0.5)
    return np.clip(q, -limit, limit).astype(np.int64), int(e)


def dequantize(q, e):
    return np.ldexp(np.asarray(q, np.float32), e).astype(np.float32)


# ------------------------------------------------------------------ GEMM

def matmul(x, w, transpose_x=False, transpose_w=False):
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    return (x.T if transpose_x else x) @ (w.T if transpose_w else w)


def window_geometry(size, window, stride, dilation, padding):
    effective = (window - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        pad = max((out - 1) * stride + effective - size, 0)
        return out, pad // 2, pad - pad // 2
    out = (size - effective) // stride + 1
    return out, 0, 0


def _conv_geometry(x_shape, w_shape, strides, padding, dilations):
    n, h, w, c = x_shape
    kh, kw, _, o = w_shape
    oh, pt, pb = window_geometry(h, kh, strides[0], dilations[0], padding)
    ow, pl, pr = window_geometry(w, kw, strides[1], dilations[1], padding)
    return oh, ow, pt, pb, pl, pr


def _taps(x_padded, kh, kw, oh, ow, strides, dilations):
    """Slice of the padded input seen by tap (kh, kw) for every output pixel."""
    h0, w0 = kh * dilations[0], kw * dilations[1]
    return x_padded[:, h0:h0 + (oh - 1) * strides[0] + 1:strides[0],
                    w0:w0 + (ow - 1) * strides[1] + 1:strides[1], :]


def conv2d(x, w, strides=(1, 1), padding="SAME", dilations=(1, 1)):
    x, w = np.asarray(x, np.int64), np.asarray(w, np.int64)
    oh, ow, pt, pb, pl, pr = _conv_geometry(x.shape, w.shape, strides, padding, dilations)
    xp = np.pad(x, ((0, 0), (pt, pb + strides[0]), (pl, pr + strides[1]), (0, 0)))
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]), np.int64)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out += np.einsum("nhwc,co->nhwo", _taps(xp, i, j, oh, ow, strides, dilations), w[i, j])
    return out


def conv2d_backprop_input(x_shape, w, dy, strides=(1, 1), padding="SAME", dilations=(1, 1)):
    w, dy = np.asarray(w, np.int64), np.asarray(dy, np.int64)
    oh, ow, pt, pb, pl, pr = _conv_geometry(x_shape, w.shape, strides, padding, dilations)
    n, h, wd, c = x_shape
    dxp = np.zeros((n, h + pt + pb + strides[0] + w.shape[0] * dilations[0],
                    wd + pl + pr + strides[1] + w.shape[1] * dilations[1], c), np.int64)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            h0, w0 = i * dilations[0], j * dilations[1]
            dxp[:, h0:h0 + (oh - 1) * strides[0] + 1:strides[0],
                w0:w0 + (ow - 1) * strides[1] + 1:strides[1], :] += np.einsum(
                    "nhwo,co->nhwc", dy, w[i, j])
    return dxp[:, pt:pt + h, pl:pl + wd, :]


def conv2d_backprop_filter(x, w_shape, dy, strides=(1, 1), padding="SAME", dilations=(1, 1)):
    x, dy = np.asarray(x, np.int64), np.asarray(dy, np.int64)
    oh, ow, pt, pb, pl, pr = _conv_geometry(x.shape, w_shape, strides, padding, dilations)
    xp = np.pad(x, ((0, 0), (pt, pb + strides[0]), (pl, pr + strides[1]), (0, 0)))
    dw = np.zeros(w_shape, np.int64)
    for i in range(w_shape[0]):
        for j in range(w_shape[1]):
            dw[i, j] = np.einsum("nhwc,nhwo->co", _taps(xp, i, j, oh, ow, strides, dilations), dy)
    return dw


# --------------------------------------------------------------- pooling

def _pool_windows(shape, pool, strides, padding):
    """Yields (oh, ow, [(h, w) in-bounds taps in row-major order])."""
    _, h, w, _ = shape
    oh, pt, _ = window_geometry(h, pool[0], strides[0], 1, padding)
    ow, pl, _ = window_geometry(w, pool[1], strides[1], 1, padding)
    for i in range(oh):
        for j in range(ow):
            taps = [(a, b) for a in range(i * strides[0] - pt, i * strides[0] - pt + pool[0])
                    for b in range(j * strides[1] - pl, j * strides[1] - pl + pool[1])
                    if 0 <= a < h and 0 <= b < w]
            yield i, j, taps, (oh, ow)


def max_pool(x, pool, strides, padding):
    x = np.asarray(x, np.int64)
    out = None
    for i, j, taps, (oh, ow) in _pool_windows(x.shape, pool, strides, padding):
        if out is None:
            out = np.zeros((x.shape[0], oh, ow, x.shape[3]), np.int64)
        out[:, i, j, :] = np.max(np.stack([x[:, a, b, :] for a, b in taps]), axis=0)
    return out


def max_pool_grad(x, dy, pool, strides, padding):
    x, dy = np.asarray(x, np.int64), np.asarray(dy, np.int64)
    dx = np.zeros(x.shape, np.int64)
    for i, j, taps, _ in _pool_windows(x.shape, pool, strides, padding):
        values = np.stack([x[:, a, b, :] for a, b in taps])  # [taps, n, c]
        first = np.argmax(values, axis=0)  # argmax returns the first maximum
        for n in range(x.shape[0]):
            for c in range(x.shape[3]):
                a, b = taps[first[n, c]]
                dx[n, a, b, c] += dy[n, i, j, c]
    return dx


def avg_multiplier(count):
    return ((1 << (AVG_POOL_SHIFT + 1)) // count + 1) // 2


def avg_pool_acc(x, pool, strides, padding):
    x = np.asarray(x, np.int64)
    out = None
    for i, j, taps, (oh, ow) in _pool_windows(x.shape, pool, strides, padding):
        if out is None:
            out = np.zeros((x.shape[0], oh, ow, x.shape[3]), np.int64)
        out[:, i, j, :] = sum(x[:, a, b, :] for a, b in taps) * avg_multiplier(len(taps))
    return out


def avg_pool_grad_acc(x_shape, dy, pool, strides, padding):
    dy = np.asarray(dy, np.int64)
    dx = np.zeros(x_shape, np.int64)
    for i, j, taps, _ in _pool_windows(x_shape, pool, strides, padding):
        for a, b in taps:
            dx[:, a, b, :] += dy[:, i, j, :] * avg_multiplier(len(taps))
    return dx


# ------------------------------------------------------------ residual add

def add_bias(acc, bias, shift):
    """acc + bias * 2**shift along the last axis (shift < 0: rounded to nearest)."""
    bias = np.asarray(bias, np.int64)
    aligned = bias * 2**shift if shift >= 0 else round_shift(bias, -shift, "nearest")
    return np.asarray(acc, np.int64) + aligned


def aligned_add(a, ea, b, eb, bits=8):
    """Section 3; bits=16: section 16 (int64, exact alignment up to 47 bits)."""
    max_shift = 23 if bits == 8 else 47
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if ea < eb:
        a, ea, b, eb = b, eb, a, ea
    if ea - eb > max_shift and not a.any():  # x + 0 is x (an all-zero tensor's exponent means nothing)
        return b, eb
    left = min(ea - eb, max_shift)
    return a * 2 ** left + round_shift(b, ea - eb - left, "nearest"), ea - left


# ---------------------------------------------------------- cross-entropy

def _trunc_shift(v, s):
    return np.sign(v) * (np.abs(v) >> s)


def softmax_cross_entropy_grad(logits, exponent, labels, mode="pseudo_stochastic", seed=(0, 0), bits=8):
    """Section 4; bits=16: section 16 (Taylor form from e <= -15, 19 fraction bits, error at -15)."""
    q = np.asarray(logits, np.int64)
    fraction_bits = bits + 3
    rows = []
    for b in range(q.shape[0]):
        row = q[b]
        if exponent <= 1 - bits:
            e = max(exponent, -20)
            v = round_shift(row, e - exponent, "nearest")
            p = [(1 << (1 - 2 * e)) + int(t) * (1 << (1 - e)) + int(t) ** 2 for t in v]
        else:
            v = row * LOG2E_NUMERATOR
            shift = exponent - LOG2E_SHIFT
            s = v * 2 ** min(shift, 32) if shift >= 0 else _trunc_shift(v, -shift)
            s = np.maximum(s - (s.max() - 10), 0)
            p = [(1 << int(t)) - 1 for t in s]
        total = sum(p)
        big_p = [(t << fraction_bits) // total for t in p]
        big_p[int(labels[b])] -= sum(big_p)
        rows.append(big_p)
    big = np.array(rows, dtype=np.int64)
    random = random_words(seed[0], seed[1], big.size) if mode == "stochastic" else None
    limit = 2 ** (bits - 1) - 1
    return np.clip(round_shift(big, 4, mode, random), -limit, limit), 1 - bits


# ------------------------------------------------------------ integer SGD

def sgd_update(w, g, mu, momentum=0, buffer=None, weight_decay=0, bits=8):
    limit = {8: 127, 16: 32767, 32: 2**31 - 1}[bits]
    w = np.asarray(w, np.int64)
    g = np.asarray(g, np.int64)
    b = bit_length(g)
    if b == 0:
        return w.copy(), None if buffer is None else np.asarray(buffer, np.int64).copy()
    step = g.copy()
    if weight_decay:
        shift = b - 15
        decay = weight_decay * w
        step = step + (decay * 2 ** shift if shift >= 0 else round_shift(decay, -shift, "nearest"))
    s = bit_length(step) - mu
    if s >= 1:
        step = round_shift(step, s, "pseudo_stochastic")
    new_buffer = None
    if momentum:
        decayed = _trunc_shift(np.asarray(buffer, np.int64) * momentum, 4)
        step = np.clip(decayed + step, -limit, limit)
        new_buffer = step
    return np.clip(w - step, -limit, limit), new_buffer


# ------------------------------------------------------ batch normalization
#
# docs/algorithms.md section 8. Everything is exact integer arithmetic in
# Python ints (object arrays where a product can pass 64 bits); NumPy int64
# only where the spec's bounds keep values below 2**63.

import math  # noqa: E402  (kept in this section: the functions above do not need it)

NORM_FRACTION_BITS = 8          # F (kNormFractionBits)
NORM_MAX_ROWS = 2**23           # kNormMaxRows
NORM_MEAN_BITS = 23             # batch mean: round(S1 * 2**23 / n) at e_x - 23
NORM_VARIANCE_BITS = 16         # batch variance: round(V * 2**16 / n**2) at 2 e_x - 16
NORM_MOMENTUM_BITS = 16         # p = round(momentum * 2**16)
NORM_MOVING_BITS = 30           # moving statistics normalised to 30 bits
NORM_EPSILON_BITS = 15          # m_eps in [2**14, 2**15)
NORM_W_LIMIT = 2**60            # saturation of E (and of V at inference)
NORM_S1_LIMIT = 2**31 - 1       # saturation of S1 at inference
INT32_MAX = 2**31 - 1


def _seed_pair(seed, mode):
    """The ops' seed convention: None, an int key (step 0) or (key, step)."""
    if seed is None:
        if mode == "stochastic":
            raise ValueError("stochastic rounding needs a seed")
        return 0, 0
    if isinstance(seed, (int, np.integer)):
        return int(seed), 0
    key, step = seed
    return int(key), int(step)


def _obj(values):
    """An object array of Python ints (exact at any size)."""
    return np.vectorize(int, otypes=[object])(np.asarray(values)) if np.size(values) else \
        np.asarray(values, dtype=object)


def _shift_nearest(values, s):
    """round_shift(values, s, nearest) on Python ints / object arrays (any size).

    s <= 0 shifts left exactly (a negative right shift)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        values = _obj(values)
    if s <= 0:
        return values * (1 << -s)
    mag = abs(values)
    out = (mag + (1 << (s - 1))) >> s
    if isinstance(out, np.ndarray):
        return np.where(values < 0, -out, out)
    return -out if values < 0 else out


def _shift_exact_or_nearest(value, shift):
    """value * 2**shift: a left shift is exact, a right shift rounds to nearest."""
    return value << shift if shift >= 0 else _shift_nearest(value, -shift)


def _div_nearest(num, den):
    """num / den (den > 0) rounded half away from zero, in Python ints (any size)."""
    num, den = int(num), int(den)
    mag = (2 * abs(num) + den) // (2 * den)
    return -mag if num < 0 else mag


def _bit_length_abs(value):
    return abs(int(value)).bit_length()


def _as_rows(q):
    """[..., C] -> ([n, C] int64 rows, n, C)."""
    q = np.asarray(q, dtype=np.int64)
    if q.ndim < 2:
        raise ValueError(f"batch norm needs rank >= 2 ([..., C]), got shape {q.shape}")
    channels = q.shape[-1]
    rows = q.reshape(-1, channels)
    n = rows.shape[0]
    if not 1 <= n <= NORM_MAX_ROWS:
        raise ValueError(f"batch norm: {n} rows per channel, must be in [1, 2**23]")
    return rows, n, channels


def requantize_channels(v, e_c, mode="nearest", seed=None, bits=8):
    """int64 values v [..., C] with per-channel exponents e_c [C] -> (q, e), q of `bits` (8 or 16) bits.

    P = max over the non-zero elements of bit_length(|v|) + e_c, e = P -
    (bits - 1). A channel with e > e_c is rounded by round_shift(v, e - e_c,
    mode) and clipped to +-(2**(bits-1) - 1); one with e <= e_c is shifted
    left exactly (v << (e_c - e) < 2**(bits-1) there). All zero: (0, 0). In stochastic mode
    element i (flat, row-major index over the whole [..., C] tensor) uses
    word i of random_words(key, step, size), as section 2's requantize; the
    elements that are shifted left still own their index (nothing consumed).
    Reading: an all-zero channel's exponent takes no part in P, whatever it is.
    """
    v = np.asarray(v, dtype=np.int64)
    channels = v.shape[-1]
    e_c = [int(e) for e in np.broadcast_to(np.asarray(e_c, dtype=np.int64), (channels,))]
    key, step = _seed_pair(seed, mode)
    tops = [_bit_length_abs(np.abs(v[..., c]).max()) + e_c[c]
            for c in range(channels) if v[..., c].size and np.any(v[..., c])]
    if not tops:
        return np.zeros(v.shape, np.int64), 0
    e = max(tops) - (bits - 1)
    limit = 2**(bits - 1) - 1
    random = random_words(key, step, v.size).reshape(v.shape) if mode == "stochastic" else None
    q = np.zeros(v.shape, np.int64)
    for c in range(channels):
        column = v[..., c]
        if not np.any(column):
            continue
        s = e - e_c[c]
        if s > 0:
            words = None if random is None else random[..., c]
            q[..., c] = np.clip(round_shift(column, s, mode, words), -limit, limit)
        else:
            q[..., c] = column << -s   # exact: |column| < 2**(bits - 1 + s) here
    return q, e


def norm_inverse_sqrt(W):
    """(r, k) with 1 / sqrt(W) ~= r * 2**(k - 61); W = 0 -> (0, 0).

    L = bit_length(W), k = (61 - L) // 2, s = isqrt(W * 4**k), r = 2**61 // s.
    Reading: the spec keeps W < 2**61 (L <= 61, k >= 0). At inference V and E
    both saturate at 2**60, so W = 2**61 (L = 62) is possible there; we take
    k = max(0, (61 - L) // 2) = 0 (what C++'s truncating (61 - L) / 2 gives),
    so s = isqrt(2**61) and the error bound still holds.
    """
    W = int(W)
    if W < 0 or W > 2**61:
        raise ValueError(f"norm_inverse_sqrt: W = {W} out of [0, 2**61]")
    if W == 0:
        return 0, 0
    k = max(0, (61 - W.bit_length()) // 2)
    s = math.isqrt(W << (2 * k))
    return (1 << 61) // s, k


def norm_epsilon_term(m_eps, e_eps, n, e_x):
    """E = eps * n**2 in units of 2**(2 e_x): t = e_eps - 2 e_x;
    (m_eps * n**2) << t saturated at 2**60 when t >= 0, else
    round_shift(m_eps * n**2, -t, nearest) (0 when -t >= 64)."""
    base = int(m_eps) * int(n) ** 2
    t = int(e_eps) - 2 * int(e_x)
    if t >= 0:
        if base == 0:
            return 0
        return NORM_W_LIMIT if t > 61 else min(base << t, NORM_W_LIMIT)
    if -t >= 64:
        return 0
    return _shift_nearest(base, -t)


def _normalise(d, r, k):
    """xhat = round_shift(d * r, 61 - k - F, nearest) on Python ints (object array),
    saturated at +-(2**31 - 1) (only inference reaches it: d * r is exact here,
    the 128 bits of the spec)."""
    xhat = _shift_nearest(_obj(d) * int(r), 61 - int(k) - NORM_FRACTION_BITS)
    return np.clip(xhat, -INT32_MAX, INT32_MAX)


def _norm_output(rows_xhat, gamma, beta, e_g, shape, rounding, seed):
    """acc = gamma * xhat + beta at e_g - F (beta is stored at that exponent), then requantize_channels."""
    channels = len(gamma)
    acc = np.empty(rows_xhat.shape, dtype=object)
    for c in range(channels):
        acc[:, c] = int(gamma[c]) * rows_xhat[:, c] + int(beta[c])
    if acc.size and max(abs(int(a)) for a in acc.ravel()) >= 2**63:
        raise OverflowError("batch norm accumulator over 63 bits")
    acc = acc.astype(np.int64).reshape(shape)
    return requantize_channels(acc, [e_g - NORM_FRACTION_BITS] * channels, rounding, seed)


def _check_params(gamma, beta, channels):
    gamma = [int(g) for g in np.ravel(gamma)]
    beta = [int(b) for b in np.ravel(beta)]
    if len(gamma) != channels or len(beta) != channels:
        raise ValueError(f"gamma/beta shape must be [{channels}], got {len(gamma)}/{len(beta)}")
    return gamma, beta


def batch_norm_train(q, e_x, gamma, e_g, beta, m_eps, e_eps, rounding="nearest", seed=None):
    """Training forward of section 8 on int8 q [..., C] at exponent e_x.

    Returns a dict: y_q (int64 array of int8 values), y_exponent, xhat (int32,
    exponent -F, shape of q), r (int64 [C]: r < 2**31.5 does not fit int32),
    k (int64 [C]), batch_mean (int32 [C]) at batch_mean_exponent = e_x - 23,
    batch_variance (int32 [C]) at batch_variance_exponent = 2 e_x - 16.
    Also S1, S2, V, E, W (Python ints per channel) for the tests.
    """
    rows, n, channels = _as_rows(q)
    gamma, beta = _check_params(gamma, beta, channels)
    S1 = [int(s) for s in rows.sum(axis=0)]
    S2 = [int(s) for s in (rows * rows).sum(axis=0)]
    V = [n * s2 - s1 * s1 for s1, s2 in zip(S1, S2)]
    E = norm_epsilon_term(m_eps, e_eps, n, e_x)
    W = [v + E for v in V]
    rk = [norm_inverse_sqrt(w) for w in W]
    xhat = np.empty(rows.shape, dtype=object)
    for c in range(channels):
        d = n * rows[:, c] - S1[c]                  # |d| < 2**31: int64 is exact
        xhat[:, c] = _normalise(d, *rk[c])
    y_q, y_e = _norm_output(xhat, gamma, beta, e_g, np.shape(q), rounding, seed)
    mean = [_div_nearest(s1 << NORM_MEAN_BITS, n) for s1 in S1]
    var = [_div_nearest(v << NORM_VARIANCE_BITS, n * n) for v in V]
    return {
        "y_q": y_q, "y_exponent": y_e,
        "xhat": xhat.astype(np.int64).astype(np.int32).reshape(np.shape(q)),
        "r": np.array([r for r, _ in rk], np.int64), "k": np.array([k for _, k in rk], np.int64),
        "batch_mean": np.array(mean, np.int32), "batch_mean_exponent": int(e_x) - NORM_MEAN_BITS,
        "batch_variance": np.array(var, np.int32),
        "batch_variance_exponent": 2 * int(e_x) - NORM_VARIANCE_BITS,
        "S1": S1, "S2": S2, "V": V, "E": E, "W": W, "n": n,
    }


def batch_norm_grad(err, e_err, xhat, e_x, r, k, gamma, e_g, details=False):
    """Backward of section 8 from the quantized error (err int8 [..., C] at e_err).

    Returns (dx_q, dx_exponent, dgamma int32 [C], dbeta int32 [C]); with
    details=True a dict that adds dgamma_exponent = e_err - F + h,
    dbeta_exponent = e_err and the intermediate A, B, a, b, rho, z, h.
    Reading: dgamma = round_shift(B, h, nearest) can round up to exactly
    2**31 when max |B| is within 2**(h-1) of 2**(31+h); it is saturated to
    +-(2**31 - 1).
    """
    F = NORM_FRACTION_BITS
    err_rows, n, channels = _as_rows(err)
    xhat_rows = np.asarray(xhat, np.int64).reshape(-1, channels)
    if xhat_rows.shape != err_rows.shape:
        raise ValueError(f"err {np.shape(err)} and xhat {np.shape(xhat)} differ")
    gamma = [int(g) for g in np.ravel(gamma)]
    r = [int(x) for x in np.ravel(r)]
    k = [int(x) for x in np.ravel(k)]
    A = [int(a) for a in err_rows.sum(axis=0)]
    B = [int(b) for b in (err_rows * xhat_rows).sum(axis=0)]   # |B| < 2**50
    h = max(0, max(_bit_length_abs(b) for b in B) - 31)
    dgamma = [max(-INT32_MAX, min(INT32_MAX, int(_shift_nearest(b, h)))) for b in B]
    v = np.empty(err_rows.shape, dtype=object)
    e_c, a_list, b_list, rho_list, z_list = [], [], [], [], []
    for c in range(channels):
        a = _div_nearest(A[c] << F, n)
        b = _div_nearest(B[c], n)
        bracket = (_obj(err_rows[:, c]) << F) - a - _shift_nearest(_obj(xhat_rows[:, c]) * b, F)
        nr = n * r[c]
        z = max(nr.bit_length() - 16, 0)
        rho = _shift_nearest(nr, z)
        v[:, c] = bracket * (gamma[c] * rho)
        e_c.append(e_g - e_x + e_err - F + k[c] - 61 + z)
        a_list.append(a), b_list.append(b), rho_list.append(rho), z_list.append(z)
    if v.size and max(abs(int(x)) for x in v.ravel()) >= 2**63:
        raise OverflowError("batch norm gradient over 63 bits")
    dx_q, dx_e = requantize_channels(v.astype(np.int64).reshape(np.shape(err)), e_c, "nearest")
    dgamma, dbeta = np.array(dgamma, np.int32), np.array(A, np.int32)
    if not details:
        return dx_q, dx_e, dgamma, dbeta
    return {"dx_q": dx_q, "dx_exponent": dx_e, "dgamma": dgamma, "dbeta": dbeta,
            "dgamma_exponent": e_err - F + h, "dbeta_exponent": e_err, "h": h,
            "A": A, "B": B, "a": a_list, "b": b_list, "rho": rho_list, "z": z_list,
            "dx_channel_exponents": e_c}


def batch_norm_grad_from_carrier(dy, xhat, e_x, r, k, gamma, e_g, details=False):
    """batch_norm_grad after quantizing the float32 dy carrier (section 1), as the op does."""
    err, e_err = quantize(dy)
    return batch_norm_grad(err, e_err, xhat, e_x, r, k, gamma, e_g, details=details)


def batch_norm_frozen_grad(err, e_err, j, e_x, r, k, gamma, e_g):
    """Backward of section 8 in inference mode (a frozen layer) from err (int8 [..., C] at e_err).

    Per channel with the inference count n = 2**j[c]: rho = round_shift(n * r,
    z, nearest), z = max(bit_length(n * r) - 16, 0), v = err * gamma * rho at
    e_g - e_x + e_err + k - 61 + z, dx = requantize_channels(v, nearest).
    Returns (dx_q, dx_exponent).
    """
    err_rows, _, channels = _as_rows(err)
    gamma = [int(g) for g in np.ravel(gamma)]
    v = np.empty(err_rows.shape, dtype=object)
    e_c = []
    for c in range(channels):
        nr = (1 << int(np.ravel(j)[c])) * int(np.ravel(r)[c])
        z = max(nr.bit_length() - 16, 0)
        v[:, c] = _obj(err_rows[:, c]) * (gamma[c] * _shift_nearest(nr, z))
        e_c.append(e_g - e_x + e_err + int(np.ravel(k)[c]) - 61 + z)
    return requantize_channels(v.astype(np.int64).reshape(np.shape(err)), e_c, "nearest")


def moving_average(m, e_m, b, e_b, p):
    """Moving statistic update: (m, e_m) <- p/2**16 * m + (1 - p/2**16) * b.

    Align both to e = max(e_m, e_b), where an all-zero operand's exponent does
    not count (all-zero m: e = e_b; all-zero b: e = e_m; both: the result is
    zero anyway), the finer one by round_shift(., difference, nearest) (0
    beyond 63 bits); m' = round_shift(p * m + (2**16 - p) * b, 16, nearest);
    then normalise so that the largest has 30 bits (right: nearest, left:
    exact). All zero: exponent 0.
    """
    p = int(p)
    if not 0 <= p <= 1 << NORM_MOMENTUM_BITS:
        raise ValueError(f"momentum p = {p} out of [0, 65536]")
    m = [int(x) for x in np.ravel(m)]
    b = [int(x) for x in np.ravel(b)]
    e_m, e_b = int(e_m), int(e_b)
    e = e_b if not any(m) else e_m if not any(b) else max(e_m, e_b)

    def align(values, exponent):
        shift = e - exponent
        if shift > 63:
            return [0] * len(values)
        return [_shift_nearest(x, shift) for x in values]

    m, b = align(m, e_m), align(b, e_b)
    one = 1 << NORM_MOMENTUM_BITS
    new = [_shift_nearest(p * x + (one - p) * y, NORM_MOMENTUM_BITS) for x, y in zip(m, b)]
    top = max((abs(x).bit_length() for x in new), default=0)
    if top == 0:
        return np.zeros(len(new), np.int32), 0
    shift = top - NORM_MOVING_BITS
    new = [_shift_nearest(x, shift) for x in new]   # shift < 0: exact left shift
    return np.array(new, np.int32), e + shift


def batch_norm_inference(q, e_x, gamma, e_g, beta, m_M, e_M, m_V, e_V, m_eps, e_eps,
                         rounding="nearest", seed=None, details=False):
    """Inference forward of section 8 with moving statistics (m_M, e_M), (m_V, e_V).

    Per channel (reading: bit_length(|m_M|) is per element, as everywhere in
    section 8, so j and the virtual count n = 2**j are per channel):
    j = clip(30 - (bit_length(|m_M|) + e_M - e_x), 0, 23),
    S1 = m_M * 2**(e_M - e_x + j) saturated at +-(2**31 - 1),
    V = m_V * 2**(e_V - 2 e_x + 2 j) saturated at 2**60 (left shifts exact,
    right shifts nearest), E = norm_epsilon_term(m_eps, e_eps, 2**j, e_x),
    then W, (r, k), d = n q - S1, xhat, acc and y as in training.
    xhat is saturated at +-(2**31 - 1) as in training (reached here only, at
    2**23 standard deviations: a saturated S1 or a tiny variance), after the
    exact product d * r (up to 2**63.5, Python ints).
    Reading: a negative moving variance is an error.
    Returns (y_q, y_exponent), or a dict with the per-channel j, S1, V, W, r, k.
    """
    rows, n_rows, channels = _as_rows(q)
    gamma, beta = _check_params(gamma, beta, channels)
    m_M = [int(x) for x in np.ravel(m_M)]
    m_V = [int(x) for x in np.ravel(m_V)]
    if len(m_M) != channels or len(m_V) != channels:
        raise ValueError(f"moving statistics must have shape [{channels}]")
    if any(x < 0 for x in m_V):
        raise ValueError("negative moving variance")
    e_x, e_M, e_V = int(e_x), int(e_M), int(e_V)
    xhat = np.empty(rows.shape, dtype=object)
    info = {"j": [], "S1": [], "V": [], "W": [], "r": [], "k": []}
    for c in range(channels):
        j = min(max(30 - (abs(m_M[c]).bit_length() + e_M - e_x), 0), 23)
        n = 1 << j
        S1 = _shift_exact_or_nearest(m_M[c], e_M - e_x + j) if m_M[c] else 0
        S1 = max(-NORM_S1_LIMIT, min(NORM_S1_LIMIT, S1))
        shift = e_V - 2 * e_x + 2 * j
        if m_V[c] and shift > 61:
            V = NORM_W_LIMIT
        else:
            V = min(_shift_exact_or_nearest(m_V[c], shift), NORM_W_LIMIT) if m_V[c] else 0
        W = V + norm_epsilon_term(m_eps, e_eps, n, e_x)
        r, k = norm_inverse_sqrt(W)
        d = _obj(rows[:, c]) * n - S1                 # |d| < 2**32: Python ints
        xhat[:, c] = _normalise(d, r, k)
        for key, value in zip(("j", "S1", "V", "W", "r", "k"), (j, S1, V, W, r, k)):
            info[key].append(value)
    y_q, y_e = _norm_output(xhat, gamma, beta, e_g, np.shape(q), rounding, seed)
    if not details:
        return y_q, y_e
    info.update(y_q=y_q, y_exponent=y_e, xhat=xhat.reshape(np.shape(q)))
    return info


def epsilon_pair(eps):
    """(m_eps, e_eps) with eps ~= m_eps * 2**e_eps, m_eps in [2**14, 2**15).

    frexp: eps = f * 2**p, f in [0.5, 1); m = round(f * 2**15) (Python's
    round: a tie, f * 2**15 = k + 1/2, goes to even; f * 2**15 is exact in
    float64), renormalised to (2**14, p + 1) when it rounds up to 2**15;
    e_eps = p - 15.
    Reading: eps must be finite and > 0 (else ValueError); eps is taken as a
    Python float (float64), not rounded to float32 first. Ties only occur for
    eps with exactly 16 significant bits (e.g. 0.5 + 2**-16).
    """
    eps = float(eps)
    if not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"epsilon must be finite and > 0, got {eps}")
    fraction, p = math.frexp(eps)
    m = round(fraction * 2**NORM_EPSILON_BITS)
    if m == 1 << NORM_EPSILON_BITS:
        m, p = 1 << (NORM_EPSILON_BITS - 1), p + 1
    return int(m), int(p) - NORM_EPSILON_BITS


# ---------------------------------------------------------------- layer normalization (section 9)

def _feature_rows(q):
    """[..., C] -> [R, C] int64 rows, each normalised over its C features."""
    q = np.asarray(q, dtype=np.int64)
    if q.ndim < 1:
        raise ValueError(f"layer norm needs rank >= 1 ([..., C]), got shape {q.shape}")
    return q.reshape(-1, q.shape[-1])


def layer_norm(q, e_x, gamma, e_g, beta, m_eps, e_eps, rounding="nearest", seed=None):
    """Forward of section 9 on int8 q [..., C] at e_x: each row over its C features.

    Per row S1, S2, V = C * S2 - S1**2, W = V + E(C), (r, k) =
    norm_inverse_sqrt(W), xhat = round_shift((C * q - S1) * r, 61 - k - F,
    nearest); acc = gamma[c] * xhat + beta[c] at e_g - F; requantize_channels
    with that one exponent. Returns a dict: y_q, y_exponent, xhat (int32 [...,
    C]) and per row S1 (x_sum), r, k (int64 [R]).
    """
    rows = _feature_rows(q)
    R, C = rows.shape
    gamma, beta = _check_params(gamma, beta, C)
    xhat = np.empty(rows.shape, dtype=object)
    S1, r_list, k_list = [], [], []
    for i in range(R):
        s1 = int(rows[i].sum())
        s2 = int((rows[i] * rows[i]).sum())
        W = C * s2 - s1 * s1 + norm_epsilon_term(m_eps, e_eps, C, e_x)
        r, k = norm_inverse_sqrt(W)
        xhat[i] = _normalise(C * rows[i] - s1, r, k)
        S1.append(s1), r_list.append(r), k_list.append(k)
    acc = np.empty(rows.shape, dtype=object)
    for c in range(C):
        acc[:, c] = gamma[c] * xhat[:, c] + beta[c]
    y_q, y_e = requantize_channels(acc.astype(np.int64).reshape(np.shape(q)), [e_g - NORM_FRACTION_BITS] * C,
                                   rounding, seed)
    return {"y_q": y_q, "y_exponent": y_e, "xhat": xhat.astype(np.int64).astype(np.int32).reshape(np.shape(q)),
            "x_sum": np.array(S1, np.int64), "r": np.array(r_list, np.int64), "k": np.array(k_list, np.int64)}


def layer_norm_grad(err, e_err, xhat, e_x, r, k, gamma, e_g, dx_bits=8):
    """Backward of section 9 from err (int8 [..., C] at e_err) and the forward's xhat, r, k.

    g = err * gamma[c]; per row A = sum(g), B = sum(g * xhat), a =
    round(A * 2**F / C), b = round(B / C), bracket = (g << F) - a -
    round_shift(xhat * b, F, nearest), rho = round_shift(C * r, z, nearest)
    with z = max(bit_length(C * r) - 16, 0), v = bracket * rho at e_g - e_x +
    e_err - F + k - 61 + z (per row); dx = requantize_channels over the rows
    (nearest) to dx_bits (8 or 16) mantissas. Per feature dbeta = sum(err), B_c = sum(err * xhat), dgamma =
    round_shift(B_c, h, nearest) with h = max(0, max bit_length(|B_c|) - 31).
    Returns (dx_q, dx_exponent, dgamma, dbeta).
    """
    F = NORM_FRACTION_BITS
    err_rows = _feature_rows(err)
    xhat_rows = np.asarray(xhat, np.int64).reshape(err_rows.shape)
    R, C = err_rows.shape
    gamma = [int(g) for g in np.ravel(gamma)]
    v = np.empty(err_rows.shape, dtype=object)
    e_rows = []
    for i in range(R):
        g = _obj(err_rows[i]) * np.array(gamma, dtype=object)
        x = _obj(xhat_rows[i])
        A, B = int(g.sum()), int((g * x).sum())
        a, b = _div_nearest(A << F, C), _div_nearest(B, C)
        nr = C * int(np.ravel(r)[i])
        z = max(nr.bit_length() - 16, 0)
        v[i] = ((g << F) - a - _shift_nearest(x * b, F)) * _shift_nearest(nr, z)
        e_rows.append(e_g - e_x + e_err - F + int(np.ravel(k)[i]) - 61 + z)
    if v.size and max(abs(int(x)) for x in v.ravel()) >= 2**63:
        raise OverflowError("layer norm gradient over 63 bits")
    # requantize_channels with the rows as the channels (nearest: no random words).
    dx_t, dx_e = requantize_channels(v.astype(np.int64).T, e_rows, "nearest", bits=dx_bits) if R else (v.T, 0)
    B_c = [int(x) for x in (err_rows * xhat_rows).sum(axis=0)]
    h = max([0] + [_bit_length_abs(b) - 31 for b in B_c])
    dgamma = np.array([max(-INT32_MAX, min(INT32_MAX, int(_shift_nearest(b, h)))) for b in B_c], np.int32)
    dbeta = err_rows.sum(axis=0).astype(np.int32)
    return np.asarray(dx_t, np.int64).T.reshape(np.shape(err)), dx_e, dgamma, dbeta


# ---------------------------------------------------------------- integer softmax (section 10)

SOFTMAX_PROBABILITY_BITS = 22
SOFTMAX_EXP_CUTOFF = 31 * 256


def softmax_exp2_table():
    """T[j] = round(2**30 * 2**(-j / 256)), j = 0..255 (float64 rounds these exactly: no value is
    within 1e-6 of a tie, checked against exact decimals when this table was made)."""
    return [round(2.0 ** (30 - j / 256)) for j in range(256)]


_EXP2 = softmax_exp2_table()


def softmax_probabilities(q, e, mask=None, scale=(1, 0)):
    """Section 10: int8 q [..., n] at e, optional bool mask, scale (M, S) -> P int64 at -22.

    t = round_shift(d * 47274 * M, 7 + S - e, nearest) (a left shift when
    negative) with d = q_max - q over the kept entries, capped at 31 * 256;
    p = round_shift(T[t % 256], t // 256, nearest) (0 at the cap); P =
    round(p * 2**22 / sum(p)); masked entries and fully masked rows 0.
    """
    M, S = (int(v) for v in scale)
    rows = np.asarray(q, np.int64).reshape(-1, np.shape(q)[-1])
    keep = np.ones(rows.shape, bool) if mask is None else np.asarray(mask, bool).reshape(rows.shape)
    out = np.zeros(rows.shape, np.int64)
    shift = 7 + S - int(e)
    for r in range(rows.shape[0]):
        kept = rows[r][keep[r]]
        if kept.size == 0:
            continue
        q_max = int(kept.max())
        p = []
        for i in range(rows.shape[1]):
            if not keep[r, i]:
                p.append(0)
                continue
            v = (q_max - int(rows[r, i])) * LOG2E_NUMERATOR * M
            t = v << -shift if shift <= 0 else (0 if shift >= 64 else int(_shift_nearest(v, shift)))
            t = min(t, SOFTMAX_EXP_CUTOFF)
            p.append(0 if t >= SOFTMAX_EXP_CUTOFF else int(_shift_nearest(_EXP2[t % 256], t // 256)))
        total = sum(p)
        out[r] = [_div_nearest(pi << SOFTMAX_PROBABILITY_BITS, total) for pi in p]
    return out.reshape(np.shape(q))


def softmax(q, e, mask=None, scale=(1, 0), mode="nearest", seed=(0, 0)):
    """The forward: requantize(P, -22, mode) -> (y_q, y_exponent)."""
    P = softmax_probabilities(q, e, mask, scale)
    return requantize(P, -SOFTMAX_PROBABILITY_BITS, mode, seed=seed)


def softmax_grad(err, e_err, y, e_y, scale=(1, 0)):
    """Section 10's backward: D = sum(y * err) per row, v = y * (err * 2**-e_y - D) * M at
    2 e_y + e_err - S, requantized (nearest) with one exponent -> (dx_q, dx_exponent)."""
    M, S = (int(v) for v in scale)
    if not -SOFTMAX_PROBABILITY_BITS <= int(e_y) <= 0:
        raise ValueError(f"y exponent {e_y} out of [-22, 0]")
    y_rows = np.asarray(y, np.int64).reshape(-1, np.shape(y)[-1])
    e_rows = np.asarray(err, np.int64).reshape(y_rows.shape)
    v = np.empty(y_rows.shape, dtype=object)
    for r in range(y_rows.shape[0]):
        D = int((y_rows[r] * e_rows[r]).sum())
        v[r] = _obj(y_rows[r]) * (_obj(e_rows[r]) * (1 << -int(e_y)) - D) * M
    if not v.size:
        return np.zeros(np.shape(y), np.int64), 0
    # One exponent for all: requantize_channels with a single channel.
    q, e = requantize_channels(v.astype(np.int64).reshape(-1, 1), [2 * int(e_y) + int(e_err) - S], "nearest")
    return q.reshape(np.shape(y)), e


# ---------------------------------------------------------------- integer GELU (section 11)

GELU_CLIP = 163954        # round(2**16 * 1.769 * sqrt(2))
GELU_CURVATURE = 9463     # round(2**16 * 0.2888 / 2)


def _gelu_magnitude(q, e):
    mag, shift = abs(int(q)), int(e) + 16
    if shift >= 0:
        x = (GELU_CLIP + 1 if mag else 0) if shift > 20 else mag << shift
    else:
        x = 0 if -shift >= 64 else int(_shift_nearest(mag, -shift))
    return min(x, GELU_CLIP + 1)


def _gelu_erf(x):
    d = min(x, GELU_CLIP) - GELU_CLIP
    return (1 << 16) - int(_shift_nearest(GELU_CURVATURE * d * d, 32)), d


def gelu_value(q, e):
    """q * (2**16 + sign(q) * |erf|) at e - 17 (section 11)."""
    q = int(q)
    if q == 0:
        return 0
    erf, _ = _gelu_erf(_gelu_magnitude(q, e))
    return q * ((1 << 16) + (erf if q > 0 else -erf))


def gelu_derivative(q, e):
    """2**16 + sign(q) |erf| - round_shift(curvature * x * d, 31) at -17 (section 11)."""
    q = int(q)
    x = _gelu_magnitude(q, e)
    erf, d = _gelu_erf(x)
    erf = 0 if q == 0 else erf
    signed_x = -x if q < 0 else x
    return (1 << 16) + (-erf if q < 0 else erf) - int(_shift_nearest(GELU_CURVATURE * signed_x * d, 31))


def gelu(q, e, mode="nearest", seed=(0, 0)):
    acc = np.vectorize(lambda v: gelu_value(v, e), otypes=[np.int64])(np.asarray(q)) if np.size(q) else \
        np.zeros(np.shape(q), np.int64)
    return requantize(acc, int(e) - 17, mode, seed=seed)


def gelu_grad(err, e_err, x_q, e_x):
    acc = np.asarray(err, np.int64) * np.vectorize(lambda v: gelu_derivative(v, e_x), otypes=[np.int64])(
        np.asarray(x_q)) if np.size(x_q) else np.zeros(np.shape(x_q), np.int64)
    return requantize(acc, int(e_err) - 17, "nearest")


# ---------------------------------------------------------------- embeddings and products (sections 12, 13)

def embedding(ids, table, e):
    """Rows of the int8 table at exponent e, as float values."""
    return dequantize(np.asarray(table)[np.asarray(ids)], e)


def embedding_grad(err, ids, vocab):
    """int32 [vocab, dim]: err rows added into their ids' rows."""
    err = np.asarray(err, np.int64)
    out = np.zeros((vocab, err.shape[-1]), np.int64)
    np.add.at(out, np.asarray(ids).ravel(), err.reshape(-1, err.shape[-1]))
    return out.astype(np.int32)


def batch_matmul(x, w, transpose_x=False, transpose_w=False):
    """Exact int64 products of matching batches (as int32: the op's result type)."""
    x, w = np.asarray(x, np.int64), np.asarray(w, np.int64)
    if transpose_x:
        x = np.swapaxes(x, -1, -2)
    if transpose_w:
        w = np.swapaxes(w, -1, -2)
    return np.matmul(x, w)


# ---------------------------------------------------------------- integer Adam (section 14)

ADAM_GRADIENT_BITS = 15
ADAM_STEP_FRACTION_BITS = 24


def adam_power_q30(beta, t):
    """beta**t in Q30 (beta in Q16): square-and-multiply from t's lowest bit, each product
    rounded (nearest) to Q30; stops once the result is 0."""
    result, base = 1 << 30, int(beta) << 14
    while t > 0 and result != 0:
        if t & 1:
            result = int(_shift_nearest(result * base, 30))
        base = int(_shift_nearest(base * base, 30))
        t >>= 1
    return result


def adam_update(w, g, m, v, t, beta_1=58982, beta_2=65470, step_shift=0, bits=8):
    """Section 14, step t >= 1: (w', m', v') from int weights w (`bits` wide), int32 gradient g
    and int32 moments m, v."""
    g = [int(x) for x in np.ravel(g)]
    s = max((abs(x) for x in g), default=0).bit_length() - ADAM_GRADIENT_BITS
    c1 = (1 << 30) - adam_power_q30(beta_1, t)
    c2 = (1 << 30) - adam_power_q30(beta_2, t)
    limit = (1 << (bits - 1)) - 1
    w_out, m_out, v_out = [], [], []
    for wi, gi, mi, vi in zip(np.ravel(w), g, np.ravel(m), np.ravel(v)):
        gn = int(_shift_nearest(gi, s)) if s > 0 else gi << -s
        m1 = int(_shift_nearest(beta_1 * int(mi) + ((1 << 16) - beta_1) * gn, 16))
        v1 = int(_shift_nearest(beta_2 * int(vi) + ((1 << 16) - beta_2) * gn * gn, 16))
        step = 0
        if m1:
            m_hat = (abs(m1) << 30) // c1
            v_hat = (v1 << 30) // c2
            fraction = (m_hat << ADAM_STEP_FRACTION_BITS) // (math.isqrt(v_hat) + 1)
            size = int(round_shift(np.array([fraction], np.int64), ADAM_STEP_FRACTION_BITS - step_shift,
                                   "pseudo_stochastic")[0])
            step = -size if m1 < 0 else size
        w_out.append(max(-limit, min(limit, int(wi) - step)))
        m_out.append(m1)
        v_out.append(v1)
    shape = np.shape(w)
    dtype = {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    return (np.array(w_out, dtype).reshape(shape), np.array(m_out, np.int32).reshape(shape),
            np.array(v_out, np.int32).reshape(shape))
