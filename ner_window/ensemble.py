"""An ensemble of K window networks is one window network: merge their parameters exactly.

train.py trains K members of one config (``train.ensemble: K``), each with its own seed, and
calls ``merge`` once they are done.  The saved model is a single network of the lecture's
equations, so tagging, ``explain``, ``serve``, ONNX export and the spaCy component read it
as they read any model, and nothing downstream knows it was trained as K.

The derivation (model.py's forward pass, member by member)
----------------------------------------------------------
Member k has E_k (V, d), C_k (K_c, d_c), W_k (H, D), b_k, u_k, c_k and scores a window by

    s_k = u_kᵀ f(W_k x_k + b_k) + c_k,     x_k = [e_k(t_1); c_k(t_1); ...; e_k(t_w); c_k(t_w)]

The ensemble's score is the mean of the members' scores (the log-odds of a binary model):

    s̄ = (1/K) Σ_k s_k

Stack the members side by side.  Word and casing vectors are concatenated,
E' = [E_1 | ... | E_K] (V, K·d) and C' = [C_1 | ... | C_K] (K_c, K·d_c), so the window's
input x' holds every member's x_k, slot by slot in model.py's layout:

    x' = [e_1(t_1); ...; e_K(t_1); c_1(t_1); ...; c_K(t_1); ...]          (w·K·(d + d_c),)

W' (K·H, w·K·(d + d_c)) is block diagonal in the members: its rows k·H ... (k+1)·H - 1 read
only member k's columns of each slot, with W_k's numbers, and zeros elsewhere.  Then

    z' = W' x' + b' = [z_1; ...; z_K]      with b' = [b_1; ...; b_K]           (K·H,)
    h' = f(z') = [h_1; ...; h_K]           (f is elementwise)
    s' = u'ᵀh' + c' = (1/K) Σ_k (u_kᵀh_k + c_k) = s̄
                                           with u' = [u_1; ...; u_K] / K, c' = (1/K) Σ_k c_k

exactly, for every window: p = σ(s̄) is the members' mean log-odds turned back into a
probability.  A multiclass U (n, H) stacks along H the same way; a sentence-level model
also averages its transitions, A' = (1/K) Σ_k A_k, so a tag path's score
Σ_t (S'[t, y_t] + A'[y_{t-1}, y_t]) is the mean of the members' path scores and
Viterbi finds the path whose mean score is highest.

What it costs: H' = K·H hidden units and d' = K·d (so K times the multiplications per
window, K times E in memory and on disk).  The zeros of W' are multiplied too; tagging
through slot projections (slots.py) skips them only when it precomputes a row.
"""

from __future__ import annotations

import numpy as np

from .errors import TrainingError
from .model import Params


def member_seeds(seed: int, k: int) -> list[int]:
    """The seeds of an ensemble of k members trained with ``train.seed = seed``: k·seed ... k·seed + k - 1,
    so ensembles of seeds 0, 1, 2 share no member, and k = 1 is the plain seed."""
    return [k * seed + j for j in range(k)]


def merge(members: list[Params]) -> Params:
    """One network whose score is the mean of the members' scores (module docstring).

    members: K >= 1 Params of one architecture (the same V, window, d, d_c, H, outputs, dtype).
    Returns Params with E (V, K·d), C (K_c, K·d_c), W (K·H, w·K·(d + d_c)), b (K·H,),
    u (K·H,) or (n, K·H), c and A the members' means.
    """
    if not members:
        raise TrainingError("ensemble: no members to merge")
    first = members[0]
    shapes = [tuple(None if a is None else a.shape for a in (p.E, p.C, p.W, p.b, p.u, p.c, p.A)) for p in members]
    if len(set(shapes)) != 1 or len({p.W.dtype for p in members}) != 1:
        raise TrainingError(f"ensemble: the members' parameters differ in shape or dtype ({sorted(set(shapes))}); "
                            f"they must be trained from one config")
    K, H, w, d, d_c = len(members), first.hidden, first.window, first.d, first.d_c
    E = np.concatenate([p.E for p in members], axis=1)  # E' = [E_1 | ... | E_K]
    C = None if first.C is None else np.concatenate([p.C for p in members], axis=1)  # C' = [C_1 | ... | C_K]
    W = np.zeros((K * H, w * K * (d + d_c)), dtype=first.W.dtype)  # W' block diagonal in the members
    for k, p in enumerate(members):
        for j in range(w):
            block, at = p.W[:, j * (d + d_c):(j + 1) * (d + d_c)], j * K * (d + d_c)
            W[k * H:(k + 1) * H, at + k * d:at + (k + 1) * d] = block[:, :d]
            W[k * H:(k + 1) * H, at + K * d + k * d_c:at + K * d + (k + 1) * d_c] = block[:, d:]
    b = np.concatenate([p.b for p in members])  # b' = [b_1; ...; b_K]
    u = np.concatenate([p.u for p in members], axis=-1) / first.u.dtype.type(K)  # u' = [u_1; ...; u_K] / K
    c = None if first.c is None else np.mean([p.c for p in members], axis=0).astype(first.c.dtype)  # c' = mean c_k
    A = None if first.A is None else np.mean([p.A for p in members], axis=0).astype(first.A.dtype)  # A' = mean A_k
    arrays = {"E": E, "C": C, "W": W, "b": b, "u": u, "c": c, "A": A}
    return Params.from_dict({k: a for k, a in arrays.items() if a is not None}, "ensemble")  # W column-major
