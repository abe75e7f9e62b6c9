"""The Triton kernel behind :mod:`neuroview.core.fused` (imported only when triton is there).

Long-standing ``triton.language`` only (masked loads and stores, ``tl.sum``, ``tl.arange``,
``tl.program_id``, ``tl.static_range``, constexpr blocks, ``tl.math.div_rn``): the GPU machines run
torch's own triton, which may be older or newer than the one the interpreter checked it with.

Imports triton and nothing of neuroview.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _breakpoint(k: tl.constexpr, t0, t1, t2):
    """The ``k``-th breakpoint (``k`` is a compile-time loop index, so this folds away)."""
    tk = t0
    if k == 1:
        tk = t1
    if k == 2:
        tk = t2
    return tk


@triton.jit
def _slope_code(x, t0, t1, t2, inv_tau, inv_step, NPTS: tl.constexpr):
    """``uint8(sum_k s_k (1 - s_k) / step + 0.5)``, ``s_k = sigmoid((x - t_k) / tau)``: the
    operations and their order of ``quantize._packed_slope`` (sigmoid_backward is
    ``grad * (1 - s) * s``); only ``exp`` differs."""
    acc = tl.zeros_like(x)
    for k in tl.static_range(NPTS):
        tk = _breakpoint(k, t0, t1, t2)
        s = 1.0 / (1.0 + tl.exp(-((x - tk) * inv_tau)))
        acc += inv_step * (1.0 - s) * s
    return (acc + 0.5).to(tl.uint8)  # >= 0: the cast truncates, so this rounds half up


@triton.jit
def _logical(b, cs, ns, C, N, UNITS_LAST: tl.constexpr):
    """The flat index of ``(b, c, n)`` in the site's logical order (``[B, C, N]`` or ``[B, N, C]``)."""
    if UNITS_LAST:
        return (b * N + ns[None, :]) * C + cs[:, None]
    return (b * C + cs[:, None]) * N + ns[None, :]


@triton.jit
def _partner(z, p, ok, C, N, s_b, s_c, s_n, UNITS_LAST: tl.constexpr):
    """The elements at logical index ``p`` (float32, 0 where not ``ok``)."""
    if UNITS_LAST:
        row, c2 = p // C, p % C
        b2, n2 = row // N, row % N
    else:
        row, n2 = p // N, p % N
        b2, c2 = row // C, row % C
    return tl.load(z + b2 * s_b + c2 * s_c + n2 * s_n, mask=ok, other=0.0).to(tl.float32)


@triton.jit
def site_kernel(z, code, state, C, N, s_b, s_c, s_n, o_b, o_c, total, half,
                t0, t1, t2, inv_tau, inv_step, n_f,
                NPTS: tl.constexpr, UNITS_LAST: tl.constexpr, STATE: tl.constexpr, ROUND: tl.constexpr,
                BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr):
    """One program: sample ``program_id(0)``, units ``[BLOCK_C * program_id(1), ...)``, all positions."""
    b = tl.program_id(0)  # int32 throughout: fused._fits keeps every offset and index below 2^31
    cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = cs < C
    count = tl.zeros([BLOCK_C], dtype=tl.int32)
    bad = tl.zeros([BLOCK_C], dtype=tl.int32)
    for n0 in range(0, N, BLOCK_N):
        ns = n0 + tl.arange(0, BLOCK_N)
        ok = c_ok[:, None] & (ns < N)[None, :]
        x = tl.load(z + b * s_b + cs[:, None] * s_c + ns[None, :] * s_n, mask=ok, other=0.0).to(tl.float32)
        for k in tl.static_range(NPTS):
            d = x - _breakpoint(k, t0, t1, t2)
            if ROUND:  # torch subtracts in the input's own dtype: a half z - t rounds there first
                d = d.to(z.dtype.element_ty).to(tl.float32)
            count += tl.sum((ok & (d > 0)).to(tl.int32), axis=1)
        bad += tl.sum((ok & (x != x)).to(tl.int32), axis=1)
        if STATE > 0:
            j = _logical(b, cs, ns, C, N, UNITS_LAST)
            q = _slope_code(x, t0, t1, t2, inv_tau, inv_step, NPTS)
            if STATE == 8:
                tl.store(state + j, q, mask=ok)
            else:  # byte j holds element j (low half) and element j + half (high half)
                low = ok & (j < half)
                ok2 = low & (j + half < total)
                x2 = _partner(z, j + half, ok2, C, N, s_b, s_c, s_n, UNITS_LAST)
                q2 = tl.where(ok2, _slope_code(x2, t0, t1, t2, inv_tau, inv_step, NPTS).to(tl.int32), 0)
                tl.store(state + j, (q.to(tl.int32) + 16 * q2).to(tl.uint8), mask=low)
    # counts are exact integers; one correctly rounded division, as torch's div_. Not `/` nor
    # tl.fdiv: both were approximate on an H200 with triton 3.6 (ieee_rounding ignored there)
    mean = tl.math.div_rn(count.to(tl.float32), tl.zeros([BLOCK_C], dtype=tl.float32) + n_f)
    mean = tl.where(bad > 0, float("nan"), mean)
    tl.store(code + b * o_b + cs * o_c, mean, mask=c_ok)


@triton.jit
def _bf16_bits(x):
    """float32 ``x`` rounded to bfloat16 (to nearest, ties to even; NaN as 0x7FC0), as int16 bits:
    ``c10::BFloat16``'s rounding, in integers, so that Triton's interpreter (which truncates a
    bfloat16 cast) and a GPU give the same bits."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16
    bits = tl.where(x != x, 0x7FC0, bits)
    return bits.to(tl.uint16).to(tl.int16, bitcast=True)


@triton.jit
def slope_grad_kernel(state, g, out, N, total, half, rows, width, scale, STATE: tl.constexpr,
                      UNITS_LAST: tl.constexpr, OUT_BF16: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """Backward of a site with a slope state, one read of it: element ``i`` of the site (its logical
    order) gets ``float(q_i) * (float(grad[b, c]) * scale)``, the torch path's products in its order
    (``quantize._MeanCode.backward``), cast to ``out``'s dtype (``OUT_BF16``: rounded as torch rounds
    to bfloat16, ``out`` seen as int16); ``q_i`` unpacked as ``quantize._unpack_slope`` reads it
    (byte ``i``, or the low half of byte ``i`` / the high half of byte ``i - half``).

    The site as ``rows x width``: rows ``(b, c)`` of N positions (``[B, C, N]``) or ``(b, n)`` of C
    units (``[B, N, C]``); a tile of ``ROWS x BLOCK``, int32 indices (the site is below 2^31
    elements) and no division per element (64-bit integer division is slow on a GPU)."""
    r = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    r_ok = r < rows
    ok = r_ok[:, None] & (col < width)[None, :]
    i = r[:, None] * width + col[None, :]
    if STATE == 8:
        q = tl.load(state + i, mask=ok, other=0)
    else:
        low = i < half
        byte = tl.load(state + tl.where(low, i, i - half), mask=ok, other=0)
        q = tl.where(low, byte & 15, byte >> 4)
    if UNITS_LAST:  # row (b, n): the units of sample b = r // N
        gv = tl.load(g + (r // N * width)[:, None] + col[None, :], mask=ok, other=0.0)
    else:  # row (b, c) is grad's element b * C + c = r
        gv = tl.load(g + r, mask=r_ok, other=0.0)[:, None]
    val = q.to(tl.float32) * (gv.to(tl.float32) * scale)
    if OUT_BF16:  # out is the bfloat16 gradient seen as int16
        tl.store(out + i, _bf16_bits(val), mask=ok)
    else:
        tl.store(out + i, val.to(out.dtype.element_ty), mask=ok)
