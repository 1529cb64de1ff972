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


def aligned_add(a, ea, b, eb):
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if ea < eb:
        a, ea, b, eb = b, eb, a, ea
    if ea - eb > 23 and not a.any():  # x + 0 is x (an all-zero tensor's exponent means nothing)
        return b, eb
    left = min(ea - eb, 23)
    return a * 2 ** left + round_shift(b, ea - eb - left, "nearest"), ea - left


# ---------------------------------------------------------- cross-entropy

def _trunc_shift(v, s):
    return np.sign(v) * (np.abs(v) >> s)


def softmax_cross_entropy_grad(logits, exponent, labels, mode="pseudo_stochastic", seed=(0, 0)):
    q = np.asarray(logits, np.int64)
    rows = []
    for b in range(q.shape[0]):
        row = q[b]
        if exponent <= -7:
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
        big_p = [(t << 11) // total for t in p]
        big_p[int(labels[b])] -= sum(big_p)
        rows.append(big_p)
    big = np.array(rows, dtype=np.int64)
    random = random_words(seed[0], seed[1], big.size) if mode == "stochastic" else None
    return np.clip(round_shift(big, 4, mode, random), -127, 127), -7


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
