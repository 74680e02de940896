"""Compiled loops for the fast path's small work: gather, bias, output layer + δ, scatter,
and the sentence-level recursions (sll_batch: sentence.py's forward-backward and gradients).

Why they exist.  A training step on a batch of 64 windows (d = 50, H = 100) is two
BLAS products with E frozen (Z = X Wᵀ, ΔW = Δᵀ X) and three fine-tuned (+ ∂J/∂X = Δ W);
on one core they take ~75 µs.  Everything else -- the gather, b, f, s = h u + c, the
loss, δs, Δ = (δs uᵀ) ∘ f'(Z), ∂J/∂b, ∂J/∂u, ∂J/∂c, the sparse update of E -- is
~30 numpy calls on arrays of 64 to 16,000 numbers, and there a numpy call costs its
overhead (~1-3 µs) more than its arithmetic.  Measured on this project's 2-core
machine, those calls were ~40% of a step.  Written as plain loops and compiled by
numba, the same arithmetic is 4 calls (gather_rows, add_bias, binary_head or
softmax_head, scatter_add_rows; tanh stays numpy's, which is vectorised), and a step
is 1.25-1.3x faster than the numpy path (BENCHMARKS.md).

The maths is model.py's, line for line (fast.py's docstring maps the lines); fast.py's
numpy code for each piece stays the readable version (and the fallback when numba is
not installed: `pip install 'ner-window[fast]'` adds it, the Makefile installs it).
Only fast.py imports this module.  tests/test_kernels.py checks each kernel against its
numpy twin, and tests/test_fast.py runs train_step both ways against the reference
path.  NER_WINDOW_KERNELS=numpy turns the kernels off.

Floating point.  Each kernel keeps the arrays' dtype (float32 stays float32); sums
may be reassociated (fastmath "reassoc", "contract": so the loops vectorise), which
changes float32 results in the last bits, never NaN/inf handling (a NaN still
reaches J, where the trainer stops on it).
"""

from __future__ import annotations

import os

import numpy as np

try:  # numba is the optional "fast" extra
    from numba import njit
except ImportError:  # pragma: no cover - exercised by the numpy path's tests instead
    njit = None

# activation and loss codes (numba compiles one function; the branch is per batch); their
# names are model.ACTIVATIONS' and model.BINARY_LOSSES' (tests/test_kernels.py checks)
ACTIVATION_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}
LOSS_CODES = {"bce": 0, "squared": 1}
_FASTMATH = {"reassoc", "contract"}  # not "nnan"/"ninf": NaN must still reach J


# NER_WINDOW_KERNELS=numpy (read at import) runs the numpy twins instead; tests flip ENABLED
ENABLED = os.environ.get("NER_WINDOW_KERNELS", "").lower() != "numpy"


def available() -> bool:
    """True when numba is installed and the kernels are not turned off."""
    return njit is not None and ENABLED


if njit is not None:

    # The row copies below go through 1-D views (row, out): written as X[i, col + m]
    # the loops did not vectorise and ran 4x slower (measured, numba 0.68).

    @njit(cache=True, fastmath=_FASTMATH)
    def gather_rows(table, ids, X, offset, stride):  # pragma: no cover - compiled
        """X[i, t*stride + offset : ... + k] = table[ids[i, t]] for every window i, token t.

        table (n, k); ids (B, w) int; X (B, w*stride).  Returns -1, or the flat position
        of the first id outside [0, n) (then X is partly written: the caller raises).
        """
        B, w = ids.shape
        n, k = table.shape
        for i in range(B):
            for t in range(w):
                r = ids[i, t]
                if r < 0 or r >= n:
                    return i * w + t
                row = table[r]
                out = X[i, t * stride + offset :]
                for m in range(k):
                    out[m] = row[m]
        return -1

    @njit(cache=True, fastmath=_FASTMATH)
    def scatter_add_rows(table, ids, dX, offset, stride):  # pragma: no cover - compiled
        """table[ids[i, t]] += dX[i, t*stride + offset : ... + k]: gather_rows run backwards.

        One window after another, so a row used twice gets both slices added (the
        chain rule's sum).  ids must lie in [0, n) (gather_rows checked them).
        """
        B, w = ids.shape
        k = table.shape[1]
        for i in range(B):
            for t in range(w):
                row = table[ids[i, t]]
                src = dX[i, t * stride + offset :]
                for m in range(k):
                    row[m] += src[m]

    @njit(cache=True, fastmath=_FASTMATH)
    def add_bias(z, b):  # pragma: no cover - compiled
        """z += b row by row: z (B, H), b (H,)."""
        B, H = z.shape
        for i in range(B):
            for j in range(H):
                z[i, j] += b[j]

    @njit(cache=True, fastmath=_FASTMATH)
    def binary_head(h, u, c, y, pos_weight, lr, loss_code, act_code, t, delta, gb, gu):  # pragma: no cover
        """The binary output layer, its loss and the error signals, for one batch, fused.

        h (B, H) hidden activations; u (H,); c the output bias (0.0 without one);
        y (B,) int 0/1; ω_i = pos_weight if y_i else 1.  Per example (model.py steps 1-3):
            s = u·h + c,  p = σ(s),
            bce:      ℓ = softplus(s) − y s,   ∂ℓ/∂s = p − y
            squared:  ℓ = (p − y)²,           ∂ℓ/∂s = 2(p − y) p (1 − p)
            δs_i = ω_i ∂ℓ_i/∂s_i / Σω,   t_i = −lr δs_i                      -> t (B,)
            Δ_ij = t_i u_j f'(z_ij), f' from h (σ: h − h², tanh: 1 − h², relu: [h > 0])  -> delta
        and the SGD steps of the output layer and b: gb = Σ_i Δ_i (H,), gu = Σ_i t_i h_i (H,).
        Returns (J_data = Σ ω ℓ / Σ ω, gc = Σ_i t_i).
        """
        B, H = h.shape
        total = 0.0
        for i in range(B):
            total += pos_weight if y[i] != 0 else 1.0
        for j in range(H):
            gb[j] = 0.0
            gu[j] = 0.0
        J = 0.0
        gc = 0.0
        for i in range(B):
            s = 0.0
            for j in range(H):
                s += h[i, j] * u[j]
            s += c
            yi = 1.0 if y[i] != 0 else 0.0
            omega = pos_weight if y[i] != 0 else 1.0
            if s >= 0.0:  # σ and softplus without overflow
                e = np.exp(-s)
                p = 1.0 / (1.0 + e)
                softplus = s + np.log1p(e)
            else:
                e = np.exp(s)
                p = e / (1.0 + e)
                softplus = np.log1p(e)
            if loss_code == 0:
                ell = softplus - yi * s
                dl_ds = p - yi
            else:
                ell = (p - yi) ** 2
                dl_ds = 2.0 * (p - yi) * p * (1.0 - p)
            J += omega * ell
            t[i] = -lr * omega * dl_ds / total  # stored in the arrays' dtype
            ti = t[i]
            gc += ti
            for j in range(H):
                hij = h[i, j]
                if act_code == 0:
                    d = ti * u[j] * (hij - hij * hij)
                elif act_code == 1:
                    d = ti * u[j] - ti * u[j] * hij * hij
                else:
                    d = (hij > 0) * (ti * u[j])  # bool × float32 stays float32
                delta[i, j] = d
                gb[j] += d
                gu[j] += ti * hij
        return J / total, gc

    @njit(cache=True, fastmath=_FASTMATH)
    def softmax_head(h, U, c, y, pos_weight, lr, act_code, T, delta, gb, gU, gc):  # pragma: no cover
        """The multiclass output layer, its cross-entropy and the error signals, fused.

        h (B, H); U (n, H); c (n,) (zeros without an output bias); y (B,) int class
        indices; ω_i = pos_weight if y_i != 0 (an entity) else 1.  Per example:
            s = U h + c,  p = softmax(s),  ℓ = logsumexp(s) − s_y,  ∂ℓ/∂s = p − onehot(y)
            δs_i = ω_i (p − onehot(y_i)) / Σω,   T_i = −lr δs_i                  -> T (B, n)
            Δ_i = (Uᵀ T_i) ∘ f'(z_i)                                             -> delta
        and the steps gb = Σ_i Δ_i (H,), gU = Σ_i T_i h_iᵀ (n, H), gc = Σ_i T_i (n,).
        Returns J_data = Σ ω ℓ / Σ ω.
        """
        B, H = h.shape
        n = U.shape[0]
        total = 0.0
        for i in range(B):
            total += pos_weight if y[i] != 0 else 1.0
        gb[:] = 0.0
        gU[:, :] = 0.0
        gc[:] = 0.0
        e = np.empty(n)  # exp(s_k − max s)
        dh = np.empty(H, delta.dtype)  # ∂J/∂h_i = Uᵀ T_i, times −lr
        J = 0.0
        for i in range(B):
            hi = h[i]
            for k in range(n):
                Uk = U[k]
                acc = 0.0
                for j in range(H):
                    acc += hi[j] * Uk[j]
                e[k] = acc + c[k]
            m = e.max()
            s_y = e[y[i]]
            Z = 0.0
            for k in range(n):
                e[k] = np.exp(e[k] - m)
                Z += e[k]
            omega = pos_weight if y[i] != 0 else 1.0
            J += omega * (np.log(Z) + m - s_y)
            Ti = T[i]
            for k in range(n):
                Ti[k] = -lr * omega * (e[k] / Z - (1.0 if k == y[i] else 0.0)) / total  # the arrays' dtype
                gc[k] += Ti[k]
            dh[:] = 0.0
            for k in range(n):
                tk, Uk, gUk = Ti[k], U[k], gU[k]
                for j in range(H):
                    dh[j] += tk * Uk[j]
                    gUk[j] += tk * hi[j]
            di = delta[i]
            for j in range(H):
                hij = hi[j]
                if act_code == 0:
                    d = dh[j] * (hij - hij * hij)
                elif act_code == 1:
                    d = dh[j] - dh[j] * hij * hij
                else:
                    d = (hij > 0) * dh[j]
                di[j] = d
                gb[j] += d
        return J / total

    @njit(cache=True, fastmath=_FASTMATH)
    def _logadd_into(out, row, a, b):  # pragma: no cover - compiled
        """out[row] = log Σ_i exp(a[i] + b[i]) for vectors a, b (T,), shifted by the max."""
        m = -np.inf
        for i in range(a.shape[0]):
            v = a[i] + b[i]
            if v > m:
                m = v
        if m == -np.inf:  # every term exp(−∞) = 0
            out[row] = -np.inf
            return
        acc = 0.0
        for i in range(a.shape[0]):
            acc += np.exp(a[i] + b[i] - m)
        out[row] = m + np.log(acc)

    @njit(cache=True, fastmath=_FASTMATH)
    def sll_batch(S, A, y, starts, scale, dS, dA):  # pragma: no cover - compiled
        """sentence.sll_batch compiled, one sentence after another (sentence.py steps 1-5).

        S (N, T) tag scores, sentence s at rows starts[s]:starts[s+1]; A (T+1, T), row T the
        start; y (N,) int gold tags; scale = −lr / N.  Writes dS = scale·(P − Y) (N, T) and
        dA = scale·(Σ_k P(y_{k-1} = i, y_k = j) − #(i → j in y)) (T+1, T), P the marginals
        from log α and log β (float64 inside); returns J_data = Σ_s (log Z_s − score_s) / N.
        """
        N, T = S.shape
        longest = 0
        for s in range(starts.shape[0] - 1):
            longest = max(longest, starts[s + 1] - starts[s])
        alpha, beta = np.empty((longest, T)), np.empty((longest, T))
        pairs = np.zeros((T + 1, T))  # Σ over sentences of (expected − gold) transition counts
        col, nxt, zeros, log_Z_of = np.empty(T), np.empty(T), np.zeros(T), np.empty(1)
        J = 0.0
        for s in range(starts.shape[0] - 1):
            a, n = starts[s], starts[s + 1] - starts[s]
            if n == 0:
                continue
            for j in range(T):  # α_0(j) = A[start, j] + S[0, j]
                alpha[0, j] = A[T, j] + S[a, j]
            for k in range(1, n):  # α_k(j) = S[k, j] + logadd_i (α_{k-1}(i) + A[i, j])
                for j in range(T):
                    for i in range(T):
                        col[i] = A[i, j]
                    _logadd_into(alpha[k], j, alpha[k - 1], col)
                    alpha[k, j] += S[a + k, j]
            beta[n - 1, :] = 0.0
            for k in range(n - 2, -1, -1):  # β_k(i) = logadd_j (A[i, j] + S[k+1, j] + β_{k+1}(j))
                for j in range(T):
                    nxt[j] = S[a + k + 1, j] + beta[k + 1, j]
                for i in range(T):
                    _logadd_into(beta[k], i, A[i], nxt)
            _logadd_into(log_Z_of, 0, alpha[n - 1], zeros)  # log Z = logadd_j α_{n-1}(j)
            log_Z = log_Z_of[0]
            score = A[T, y[a]] + S[a, y[a]]
            for k in range(1, n):
                score += A[y[a + k - 1], y[a + k]] + S[a + k, y[a + k]]
            J += log_Z - score
            for k in range(n):  # ∂J/∂S = P − Y, P(y_k = j) = exp(α_k(j) + β_k(j) − log Z)
                for j in range(T):
                    dS[a + k, j] = scale * np.exp(alpha[k, j] + beta[k, j] - log_Z)
                dS[a + k, y[a + k]] -= scale
                if k == 0:
                    for j in range(T):
                        pairs[T, j] += np.exp(alpha[0, j] + beta[0, j] - log_Z)
                    pairs[T, y[a]] -= 1.0
                    continue
                for i in range(T):
                    for j in range(T):
                        pairs[i, j] += np.exp(alpha[k - 1, i] + A[i, j] + S[a + k, j] + beta[k, j] - log_Z)
                pairs[y[a + k - 1], y[a + k]] -= 1.0
        for i in range(T + 1):
            for j in range(T):
                dA[i, j] = scale * pairs[i, j]
        return J / N
