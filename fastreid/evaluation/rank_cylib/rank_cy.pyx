# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels for re-id evaluation.

The Python entry points live in :mod:`fastreid.evaluation.rank` and
:mod:`fastreid.evaluation.rerank`; these kernels release the GIL so that callers can
run query ranges in parallel threads.
"""
import numpy as np

cimport numpy as cnp
from libc.stdlib cimport free, malloc

ctypedef fused dist_t:
    float
    double


def compiled() -> bool:
    """True: this module is the compiled extension."""
    return True


cdef inline bint _key_less(double da, long long ia, double db, long long ib) noexcept nogil:
    return da < db or (da == db and ia < ib)


cdef void _sort_positives(double* d, long long* idx, Py_ssize_t n) noexcept nogil:
    # Insertion sort by (distance, gallery index); n is the number of positives of one query.
    cdef Py_ssize_t a, b
    cdef double dv
    cdef long long iv
    for a in range(1, n):
        dv = d[a]
        iv = idx[a]
        b = a - 1
        while b >= 0 and _key_less(dv, iv, d[b], idx[b]):
            d[b + 1] = d[b]
            idx[b + 1] = idx[b]
            b -= 1
        d[b + 1] = dv
        idx[b + 1] = iv


def rank_positives(
    dist_t[:, ::1] distmat,
    const long long[::1] q_pids,
    const long long[::1] g_pids,
    const long long[::1] q_camids,
    const long long[::1] g_camids,
    bint ignore_camid,
    long long[::1] first_rank,
    double[::1] ap,
    double[::1] inp,
    long long[::1] num_pos,
):
    """Per-query ranking statistics without sorting the gallery.

    The rank of a positive is the number of valid gallery items ordered before it by
    (distance, gallery index); only negatives closer than the hardest positive are
    binary-searched into the (small) sorted list of positives.

    Args:
        distmat: (Q, G) distances, C-contiguous.
        q_pids, g_pids, q_camids, g_camids: int64 labels.
        ignore_camid: keep same-camera items of the query identity.
        first_rank, ap, inp, num_pos: (Q,) outputs; ``num_pos == 0`` marks a query
            without a valid match (its other outputs are left untouched).
    """
    cdef Py_ssize_t num_q = distmat.shape[0]
    cdef Py_ssize_t num_g = distmat.shape[1]
    cdef Py_ssize_t q, j, k, lo, hi, mid, npos
    cdef long long qpid, qcam, imax, acc, r
    cdef double dj, tmax, ap_sum
    cdef double* pos_d = <double*> malloc(num_g * sizeof(double))
    cdef long long* pos_i = <long long*> malloc(num_g * sizeof(long long))
    cdef long long* counts = <long long*> malloc((num_g + 1) * sizeof(long long))
    if pos_d == NULL or pos_i == NULL or counts == NULL:
        free(pos_d)
        free(pos_i)
        free(counts)
        raise MemoryError()
    with nogil:
        for q in range(num_q):
            qpid = q_pids[q]
            qcam = q_camids[q]
            npos = 0
            for j in range(num_g):
                if g_pids[j] == qpid and (ignore_camid or g_camids[j] != qcam):
                    pos_d[npos] = distmat[q, j]
                    pos_i[npos] = j
                    npos += 1
            num_pos[q] = npos
            if npos == 0:
                continue
            _sort_positives(pos_d, pos_i, npos)
            for k in range(npos + 1):
                counts[k] = 0
            tmax = pos_d[npos - 1]
            imax = pos_i[npos - 1]
            for j in range(num_g):
                dj = distmat[q, j]
                if not (dj <= tmax) or g_pids[j] == qpid:
                    continue
                if dj == tmax and j > imax:
                    continue
                lo = 0
                hi = npos
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if _key_less(pos_d[mid], pos_i[mid], dj, j):
                        lo = mid + 1
                    else:
                        hi = mid
                counts[lo] += 1
            acc = 0
            ap_sum = 0.0
            r = 0
            for k in range(npos):
                acc += counts[k]
                r = k + acc
                ap_sum += (k + 1.0) / (r + 1.0)
            first_rank[q] = counts[0]
            ap[q] = ap_sum / npos
            inp[q] = npos / (r + 1.0)
    free(pos_d)
    free(pos_i)
    free(counts)


def jaccard_min_sum(
    const long long[::1] q_indptr,
    const long long[::1] q_indices,
    const float[::1] q_data,
    const long long[::1] c_indptr,
    const long long[::1] c_rows,
    const float[::1] c_data,
    float[:, ::1] out,
):
    """Sum over shared coordinates of min(v_q, v_g) for sparse non-negative vectors.

    Args:
        q_indptr, q_indices, q_data: CSR of the (Q, N) query rows.
        c_indptr, c_rows, c_data: CSC of the (G, N) gallery rows (column k holds the
            gallery rows with a non-zero at k).
        out: (Q, G) float32 output, accumulated into (caller zero-fills).
    """
    cdef Py_ssize_t num_q = out.shape[0]
    cdef Py_ssize_t q, a, b, k
    cdef float vq, vg
    with nogil:
        for q in range(num_q):
            for a in range(q_indptr[q], q_indptr[q + 1]):
                k = q_indices[a]
                vq = q_data[a]
                for b in range(c_indptr[k], c_indptr[k + 1]):
                    vg = c_data[b]
                    out[q, c_rows[b]] += vq if vq < vg else vg


def pair_dots(
    const float[:, ::1] gallery,
    const double[:, ::1] query,
    const long long[::1] rows,
    const long long[::1] cols,
    double[::1] out,
):
    """``out[p] = <query[rows[p]], gallery[cols[p]]>`` in float64, in a fixed order.

    Every pair is summed by the same instruction sequence, so a pair gets the same bits
    whatever else is computed alongside (identical features tie exactly).

    Args:
        gallery: (G, D) float32 features.
        query: (Q, D) float64 features.
        rows, cols: (P,) query and gallery indices.
        out: (P,) float64 output.
    """
    cdef Py_ssize_t num_p = rows.shape[0]
    cdef Py_ssize_t dim = query.shape[1]
    cdef Py_ssize_t dim4 = dim - dim % 4
    cdef Py_ssize_t p, d
    cdef const double* qv
    cdef const float* gv
    cdef double a0, a1, a2, a3
    with nogil:
        for p in range(num_p):
            qv = &query[rows[p], 0]
            gv = &gallery[cols[p], 0]
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            for d in range(0, dim4, 4):
                a0 += qv[d] * gv[d]
                a1 += qv[d + 1] * gv[d + 1]
                a2 += qv[d + 2] * gv[d + 2]
                a3 += qv[d + 3] * gv[d + 3]
            for d in range(dim4, dim):
                a0 += qv[d] * gv[d]
            out[p] = (a0 + a1) + (a2 + a3)
