"""Plain-Python oracles for the evaluation tests (deliberately slow and obvious)."""
import numpy as np


def brute_force_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, ignore_camid=False):
    """Reference CMC/AP/INP: sort every row by (distance, index) and walk it."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    cmc_sum = [0.0] * max_rank
    aps, inps, valid = [], [], 0
    for q in range(num_q):
        order = sorted(range(num_g), key=lambda j: (float(distmat[q][j]), j))
        kept = [j for j in order
                if ignore_camid or not (g_pids[j] == q_pids[q] and g_camids[j] == q_camids[q])]
        matches = [1 if g_pids[j] == q_pids[q] else 0 for j in kept]
        if sum(matches) == 0:
            continue
        valid += 1
        hits, precisions, last = 0, [], 0
        for i, m in enumerate(matches):
            if m:
                hits += 1
                precisions.append(hits / (i + 1.0))
                last = i
        aps.append(sum(precisions) / hits)
        inps.append(hits / (last + 1.0))
        first = matches.index(1)
        for r in range(max_rank):
            cmc_sum[r] += 1.0 if r >= first else 0.0
    if valid == 0:
        raise RuntimeError("no valid query")
    return np.array(cmc_sum) / valid, np.array(aps), np.array(inps)


def dense_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    """Dense k-reciprocal re-ranking (Zhong et al., CVPR'17), written after the paper's code.

    The only deliberate change is a stable argsort, so that ties follow (distance, index).
    """
    original_dist = np.concatenate(
        [np.concatenate([q_q_dist, q_g_dist], axis=1),
         np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0)
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    query_num = q_g_dist.shape[0]
    all_num = original_dist.shape[0]
    half = int(np.around(k1 / 2.0))
    for i in range(all_num):
        forward = initial_rank[i, :k1 + 1]
        backward = initial_rank[forward, :k1 + 1]
        recip = forward[np.where(backward == i)[0]]
        expansion = recip
        for cand in recip:
            c_forward = initial_rank[cand, :half + 1]
            c_backward = initial_rank[c_forward, :half + 1]
            c_recip = c_forward[np.where(c_backward == cand)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2.0 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        V[i, expansion] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros((1, all_num), dtype=np.float32)
        nz = np.where(V[i] != 0)[0]
        for j in nz:
            rows = inv_index[j]
            temp_min[0, rows] += np.minimum(V[i, j], V[rows, j])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original_dist * lambda_value
    return final[:query_num, query_num:]


def dense_aqe(q_feat, g_feat, qe_times, qe_k, alpha):
    """Average query expansion as fast-reid writes it, on the dense similarity matrix."""
    num_q = q_feat.shape[0]
    feats = np.concatenate([q_feat, g_feat]).astype(np.float64)
    norm = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    for _ in range(qe_times):
        sims = norm @ norm.T
        new = []
        for sim in sims:
            top = np.argsort(-sim, kind="stable")[:qe_k]
            w = np.power(sim[top], alpha)[:, None]
            new.append(np.mean(feats[top] * w, axis=0))
        feats = np.stack(new)
        norm = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    return feats[:num_q], feats[num_q:]
