# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled event-time pane aggregator: the hot path of netready.

Only typed arrays of primitives cross this boundary: event times (ns), link
ids, metro ids and latencies (µs) in; columnar rows with sparse histograms
out. Semantics are specified by `pipeline/reference.py` (read that first);
this file makes them fast:

- each sample updates exactly one (pane, link) accumulator; windows are exact
  merges of closed panes, so sliding windows cost no extra per-sample work;
- open panes live in a small ring indexed by pane number, and each open pane
  maps link id -> row through a dense array, so a sample costs a few array
  reads and increments, no hashing;
- per-row histograms are allocated one octave (64 counters) at a time, so a
  link whose latencies span two octaves holds 128 counters, not 2177.
"""
from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.math cimport ldexp, ceil, INFINITY, NAN

cimport cython
import numpy as np
cimport numpy as cnp

from pipeline.rows import RowSet, WindowResult

cnp.import_array()

cdef enum:
    SUB_BITS = 6
    SUB_BUCKETS = 64
    OCTAVES = 34
    N_BUCKETS = 1 + OCTAVES * SUB_BUCKETS

cdef int MIN_EXP = -10
cdef double MIN_VALUE_US = 0.0009765625  # 2**MIN_EXP
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef int64_t INT64_MIN = -INT64_MAX - 1


cdef inline int bucket_of(double value_us) noexcept nogil:
    """Octave and top six mantissa bits of the double; see pipeline/histogram.py."""
    cdef uint64_t bits
    cdef int octave
    if value_us < MIN_VALUE_US:
        return 0
    memcpy(&bits, &value_us, 8)
    octave = <int>((bits >> 52) & 0x7FF) - 1023 - MIN_EXP
    if octave >= OCTAVES:
        return N_BUCKETS - 1
    return 1 + octave * SUB_BUCKETS + <int>((bits >> 46) & (SUB_BUCKETS - 1))


cdef inline double representative(int bucket) noexcept nogil:
    cdef int octave, sub
    if bucket == 0:
        return 0.0
    octave = (bucket - 1) // SUB_BUCKETS
    sub = (bucket - 1) % SUB_BUCKETS
    return ldexp(1.0 + (sub + 0.5) / SUB_BUCKETS, octave + MIN_EXP)


def bucket_of_array(const double[::1] values_us):
    """Bucket of each value (for tests and for SQL-side tooling)."""
    cdef Py_ssize_t i, n = values_us.shape[0]
    out = np.empty(n, dtype=np.uint16)
    cdef uint16_t[::1] o = out
    for i in range(n):
        o[i] = <uint16_t>bucket_of(values_us[i])
    return out


cdef struct RowAcc:
    # One (pane, link) accumulator. Array-of-structs: the counters a sample touches share
    # cache lines, which is what limits speed once there are thousands of links.
    int64_t samples
    int64_t under
    double min_us
    double max_us
    double sum_us
    int64_t zero
    int32_t link
    int32_t blocks[OCTAVES]  # index of this row's 64-counter block per octave, -1 if none


cdef void* _grow(void* ptr, Py_ssize_t n_items, size_t item_size) except NULL:
    cdef void* grown = PyMem_Realloc(ptr, n_items * item_size)
    if grown == NULL:
        raise MemoryError()
    return grown


@cython.final
cdef class _OpenPane:
    """Accumulators of one pane that still accepts samples."""

    cdef readonly int64_t index
    cdef int64_t n_rows, cap_rows, n_blocks, cap_blocks, link_cap
    cdef int32_t* slot_of_link
    cdef RowAcc* rows
    cdef uint32_t* blocks

    def __cinit__(self, int64_t index, int64_t link_cap):
        self.index = index
        self.n_rows = self.cap_rows = self.n_blocks = self.cap_blocks = self.link_cap = 0
        self.slot_of_link = NULL
        self.rows = NULL
        self.blocks = NULL
        self._grow_links(link_cap)
        self._grow_rows(64)
        self._grow_blocks(128)

    def __dealloc__(self):
        PyMem_Free(self.slot_of_link)
        PyMem_Free(self.rows)
        PyMem_Free(self.blocks)

    cdef void _grow_links(self, int64_t link_cap) except *:
        cdef int64_t i
        self.slot_of_link = <int32_t*>_grow(self.slot_of_link, link_cap, sizeof(int32_t))
        for i in range(self.link_cap, link_cap):
            self.slot_of_link[i] = -1
        self.link_cap = link_cap

    cdef void _grow_rows(self, int64_t cap) except *:
        self.rows = <RowAcc*>_grow(self.rows, cap, sizeof(RowAcc))
        self.cap_rows = cap

    cdef void _grow_blocks(self, int64_t cap) except *:
        self.blocks = <uint32_t*>_grow(self.blocks, cap * SUB_BUCKETS, sizeof(uint32_t))
        memset(self.blocks + self.cap_blocks * SUB_BUCKETS, 0,
               (cap - self.cap_blocks) * SUB_BUCKETS * sizeof(uint32_t))
        self.cap_blocks = cap

    cdef inline RowAcc* _row(self, int32_t link) except NULL:
        cdef int64_t row = self.slot_of_link[link]
        cdef RowAcc* acc
        cdef int octave
        if row >= 0:
            return &self.rows[row]
        if self.n_rows == self.cap_rows:
            self._grow_rows(self.cap_rows * 2)
        row = self.n_rows
        self.n_rows += 1
        self.slot_of_link[link] = <int32_t>row
        acc = &self.rows[row]
        acc.samples = 0
        acc.under = 0
        acc.zero = 0
        acc.min_us = INFINITY
        acc.max_us = -INFINITY
        acc.sum_us = 0.0
        acc.link = link
        for octave in range(OCTAVES):
            acc.blocks[octave] = -1
        return acc

    cdef inline void _add_bucket(self, RowAcc* acc, int bucket, uint32_t count) except *:
        cdef int octave, sub
        cdef int32_t block
        if bucket == 0:
            acc.zero += count
            return
        octave = (bucket - 1) >> SUB_BITS
        sub = (bucket - 1) & (SUB_BUCKETS - 1)
        block = acc.blocks[octave]
        if block < 0:
            if self.n_blocks == self.cap_blocks:
                self._grow_blocks(self.cap_blocks * 2)
            block = <int32_t>self.n_blocks
            self.n_blocks += 1
            acc.blocks[octave] = block
        self.blocks[block * SUB_BUCKETS + sub] += count

    cdef inline void add(self, int32_t link, double value_us, double threshold_us) except *:
        cdef RowAcc* acc = self._row(link)
        acc.samples += 1
        if value_us < threshold_us:
            acc.under += 1
        if value_us < acc.min_us:
            acc.min_us = value_us
        if value_us > acc.max_us:
            acc.max_us = value_us
        acc.sum_us += value_us
        self._add_bucket(acc, bucket_of(value_us), 1)

    def to_rowset(self):
        """Rows in CSR form (histogram buckets ascending), keyed by link id."""
        cdef int64_t n = self.n_rows, row, nnz = 0, k = 0, i
        cdef int octave, sub
        cdef int32_t block
        cdef uint32_t count
        cdef RowAcc* acc
        for row in range(n):
            nnz += self.rows[row].zero > 0
        for i in range(self.n_blocks * SUB_BUCKETS):
            nnz += self.blocks[i] != 0
        key = np.empty(n, dtype=np.int32)
        samples = np.empty(n, dtype=np.int64)
        under = np.empty(n, dtype=np.int64)
        mn = np.empty(n, dtype=np.float64)
        mx = np.empty(n, dtype=np.float64)
        sm = np.empty(n, dtype=np.float64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        buckets = np.empty(nnz, dtype=np.uint16)
        counts = np.empty(nnz, dtype=np.int64)
        cdef int32_t[::1] kv = key
        cdef int64_t[::1] sv = samples, uv = under, o = offsets, c = counts
        cdef double[::1] mnv = mn, mxv = mx, smv = sm
        cdef uint16_t[::1] b = buckets
        for row in range(n):
            acc = &self.rows[row]
            kv[row] = acc.link
            sv[row] = acc.samples
            uv[row] = acc.under
            mnv[row] = acc.min_us
            mxv[row] = acc.max_us
            smv[row] = acc.sum_us
            if acc.zero > 0:
                b[k] = 0
                c[k] = acc.zero
                k += 1
            for octave in range(OCTAVES):
                block = acc.blocks[octave]
                if block < 0:
                    continue
                for sub in range(SUB_BUCKETS):
                    count = self.blocks[block * SUB_BUCKETS + sub]
                    if count:
                        b[k] = <uint16_t>(1 + octave * SUB_BUCKETS + sub)
                        c[k] = count
                        k += 1
            o[row + 1] = k
        return RowSet(key=key, samples=samples, under=under, min_us=mn, max_us=mx, sum_us=sm,
                      hist_offsets=offsets, hist_bucket=buckets, hist_count=counts)

    def load_rowset(self, rows):
        """Add a CSR rowset's accumulators into this pane (snapshot restore)."""
        cdef int64_t i, j
        cdef RowAcc* acc
        cdef const int32_t[::1] key = rows.key
        cdef const int64_t[::1] samples = rows.samples, under = rows.under, offsets = rows.hist_offsets
        cdef const int64_t[::1] counts = rows.hist_count
        cdef const uint16_t[::1] buckets = rows.hist_bucket
        cdef const double[::1] mn = rows.min_us, mx = rows.max_us, sm = rows.sum_us
        for i in range(key.shape[0]):
            if key[i] >= self.link_cap:
                self._grow_links(key[i] + 1)
            acc = self._row(key[i])
            acc.samples += samples[i]
            acc.under += under[i]
            acc.min_us = min(acc.min_us, mn[i])
            acc.max_us = max(acc.max_us, mx[i])
            acc.sum_us += sm[i]
            for j in range(offsets[i], offsets[i + 1]):
                self._add_bucket(acc, buckets[j], <uint32_t>counts[j])


def merge_rows(rows, const int32_t[::1] keys):
    """Exact merge of the rows of `rows` that share a key in `keys` (one key per row).

    Counts and histograms add up; min/max combine; the result is sorted by key.
    Histogram merging uses a dense scratch array plus a list of touched buckets,
    so each output row costs only what it contains.
    """
    cdef Py_ssize_t n = keys.shape[0]
    order_arr = np.argsort(np.asarray(keys), kind="stable").astype(np.int64)
    cdef const int64_t[::1] order = order_arr
    cdef const int64_t[::1] samples = rows.samples, under = rows.under, offsets = rows.hist_offsets
    cdef const int64_t[::1] counts = rows.hist_count
    cdef const uint16_t[::1] buckets = rows.hist_bucket
    cdef const double[::1] mn = rows.min_us, mx = rows.max_us, sm = rows.sum_us

    cdef Py_ssize_t n_groups = 0, i, j, r
    for i in range(n):
        if i == 0 or keys[order[i]] != keys[order[i - 1]]:
            n_groups += 1
    out_key = np.empty(n_groups, dtype=np.int32)
    out_samples = np.zeros(n_groups, dtype=np.int64)
    out_under = np.zeros(n_groups, dtype=np.int64)
    out_min = np.full(n_groups, INFINITY)
    out_max = np.full(n_groups, -INFINITY)
    out_sum = np.zeros(n_groups)
    out_offsets = np.zeros(n_groups + 1, dtype=np.int64)
    out_bucket = np.empty(counts.shape[0], dtype=np.uint16)
    out_count = np.empty(counts.shape[0], dtype=np.int64)
    cdef int32_t[::1] ok = out_key
    cdef int64_t[::1] os = out_samples, ou = out_under, oo = out_offsets, oc = out_count
    cdef double[::1] omn = out_min, omx = out_max, osm = out_sum
    cdef uint16_t[::1] ob = out_bucket

    scratch_arr = np.zeros(N_BUCKETS, dtype=np.int64)
    touched_arr = np.empty(N_BUCKETS, dtype=np.int32)
    cdef int64_t[::1] scratch = scratch_arr
    cdef int32_t[::1] touched = touched_arr
    cdef Py_ssize_t n_touched = 0, g = -1, k = 0, t
    cdef int bucket
    for i in range(n + 1):
        if i == n or (i > 0 and keys[order[i]] != keys[order[i - 1]]):
            # flush group g: touched buckets in ascending order
            _sort_int32(touched, n_touched)
            for t in range(n_touched):
                bucket = touched[t]
                ob[k] = <uint16_t>bucket
                oc[k] = scratch[bucket]
                scratch[bucket] = 0
                k += 1
            oo[g + 1] = k
            n_touched = 0
            if i == n:
                break
        r = order[i]
        if i == 0 or keys[r] != keys[order[i - 1]]:
            g += 1
            ok[g] = keys[r]
        os[g] += samples[r]
        ou[g] += under[r]
        if mn[r] < omn[g]:
            omn[g] = mn[r]
        if mx[r] > omx[g]:
            omx[g] = mx[r]
        osm[g] += sm[r]
        for j in range(offsets[r], offsets[r + 1]):
            bucket = buckets[j]
            if scratch[bucket] == 0:
                touched[n_touched] = bucket
                n_touched += 1
            scratch[bucket] += counts[j]
    if n == 0:
        oo[0] = 0
    return RowSet(key=out_key, samples=out_samples, under=out_under, min_us=out_min,
                  max_us=out_max, sum_us=out_sum, hist_offsets=out_offsets,
                  hist_bucket=out_bucket[:k].copy(), hist_count=out_count[:k].copy())


cdef void _sort_int32(int32_t[::1] values, Py_ssize_t n) noexcept:
    """Insertion sort: touched-bucket lists are short and nearly sorted."""
    cdef Py_ssize_t i, j
    cdef int32_t v
    for i in range(1, n):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


def quantiles_csr(const int64_t[::1] offsets, const uint16_t[::1] buckets,
                  const int64_t[::1] counts, const double[::1] min_us,
                  const double[::1] max_us, const double[::1] qs):
    """Nearest-rank quantiles per row, as `pipeline.histogram.quantile` reads them."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, nq = qs.shape[0], i, j, q
    out = np.full((n, nq), NAN)
    cdef double[:, ::1] o = out
    cdef int64_t total, rank, seen
    cdef double value
    for i in range(n):
        total = 0
        for j in range(offsets[i], offsets[i + 1]):
            total += counts[j]
        if total == 0:
            continue
        for q in range(nq):
            rank = <int64_t>ceil(qs[q] * total)
            if rank < 1:
                rank = 1
            seen = 0
            value = max_us[i]
            for j in range(offsets[i], offsets[i + 1]):
                seen += counts[j]
                if seen >= rank:
                    value = representative(buckets[j])
                    break
            o[i, q] = min(max(value, min_us[i]), max_us[i])
    return out


def concat_rowsets(rowsets):
    """One RowSet holding every row of `rowsets` (CSR offsets shifted)."""
    if len(rowsets) == 1:
        return rowsets[0]
    shifted = [np.zeros(1, dtype=np.int64)]
    base = 0
    for rs in rowsets:
        shifted.append(rs.hist_offsets[1:] + base)
        base += rs.hist_offsets[-1]
    return RowSet(
        key=np.concatenate([rs.key for rs in rowsets]).astype(np.int32, copy=False),
        samples=np.concatenate([rs.samples for rs in rowsets]),
        under=np.concatenate([rs.under for rs in rowsets]),
        min_us=np.concatenate([rs.min_us for rs in rowsets]),
        max_us=np.concatenate([rs.max_us for rs in rowsets]),
        sum_us=np.concatenate([rs.sum_us for rs in rowsets]),
        hist_offsets=np.concatenate(shifted),
        hist_bucket=np.concatenate([rs.hist_bucket for rs in rowsets]),
        hist_count=np.concatenate([rs.hist_count for rs in rowsets]),
    )


@cython.final
cdef class Kernel:
    """Event-time pane aggregator with watermark-driven window emission.

    `windows_ns` lists `(length_ns, hop_ns)` pairs; `pane_ns` must divide every
    hop and every length. See pipeline/reference.py for the semantics.
    """

    cdef readonly int64_t pane_ns, lateness_ns
    cdef readonly double threshold_us
    cdef readonly list windows_ns
    cdef readonly int64_t samples_in, samples_late
    cdef int64_t max_ts_ns, closed_wm_ns, next_trigger_ns, max_window_ns
    cdef bint has_data
    cdef int64_t ring_size, link_cap
    cdef list ring
    cdef dict closed
    cdef list out
    cdef int32_t[::1] link_metro

    def __init__(self, int64_t pane_ns, int64_t lateness_ns, double threshold_us, windows_ns):
        if pane_ns <= 0 or lateness_ns < 0:
            raise ValueError("pane_ns must be positive and lateness_ns non-negative")
        self.windows_ns = [(int(length), int(hop)) for length, hop in windows_ns]
        for length, hop in self.windows_ns:
            if hop % pane_ns or length % hop:
                raise ValueError(f"window {length}/{hop} ns is not made of {pane_ns} ns panes")
        self.pane_ns = pane_ns
        self.lateness_ns = lateness_ns
        self.threshold_us = threshold_us
        self.max_window_ns = max(length for length, _ in self.windows_ns)
        self.samples_in = 0
        self.samples_late = 0
        self.has_data = False
        self.max_ts_ns = INT64_MIN
        self.closed_wm_ns = INT64_MIN
        self.next_trigger_ns = INT64_MAX
        self.ring_size = lateness_ns // pane_ns + 3
        self.ring = [None] * self.ring_size
        self.closed = {}
        self.out = []
        self.link_cap = 0
        self.link_metro = np.full(0, -1, dtype=np.int32)
        self._grow_links(1024)

    @property
    def watermark_ns(self):
        return None if not self.has_data else self.max_ts_ns - self.lateness_ns

    cdef void _grow_links(self, int64_t needed):
        cdef int64_t cap = max(needed, self.link_cap * 2)
        grown = np.full(cap, -1, dtype=np.int32)
        grown[:self.link_cap] = np.asarray(self.link_metro)
        self.link_metro = grown
        self.link_cap = cap
        for pane in self.ring:
            if pane is not None:
                (<_OpenPane>pane)._grow_links(cap)

    def ingest(self, const int64_t[::1] ts_ns, const int32_t[::1] link_id,
               const int32_t[::1] metro_id, const double[::1] value_us):
        """Aggregate one batch; returns a boolean mask of the late samples."""
        cdef Py_ssize_t i, n = ts_ns.shape[0]
        if link_id.shape[0] != n or metro_id.shape[0] != n or value_us.shape[0] != n:
            raise ValueError("ingest arrays must have equal lengths")
        late_arr = np.zeros(n, dtype=np.bool_)
        cdef cnp.npy_bool[::1] late = late_arr
        cdef int64_t t, pane, wm, closed_wm
        cdef int32_t link
        cdef _OpenPane cur = None
        cdef int64_t cur_index = -1
        wm = self.max_ts_ns - self.lateness_ns if self.has_data else INT64_MIN
        for i in range(n):
            t = ts_ns[i]
            if t < 0:
                raise ValueError(f"negative event time at row {i}")
            if not self.has_data or t > self.max_ts_ns:
                self.has_data = True
                self.max_ts_ns = t
                wm = t - self.lateness_ns
                if wm >= self.next_trigger_ns:
                    self._advance(wm)
                    cur = None
                    cur_index = -1
            link = link_id[i]
            if link < 0:
                raise ValueError(f"negative link id at row {i}")
            pane = t // self.pane_ns
            if (pane + 1) * self.pane_ns <= (wm if wm > self.closed_wm_ns else self.closed_wm_ns):
                late[i] = True
                self.samples_late += 1
                continue
            if pane != cur_index:
                cur = self._open(pane)
                cur_index = pane
            if link >= self.link_cap:
                self._grow_links(link + 1)
            self.link_metro[link] = metro_id[i]
            cur.add(link, value_us[i], self.threshold_us)
        self.samples_in += n
        return late_arr

    def flush(self):
        """End of a finite input: close every pane and emit every window."""
        self._advance(INT64_MAX)

    def drain(self):
        """Windows emitted since the last call, in order of window end."""
        out, self.out = self.out, []
        return out

    cdef _OpenPane _open(self, int64_t pane):
        cdef int64_t slot = pane % self.ring_size
        existing = self.ring[slot]
        if existing is not None:
            if (<_OpenPane>existing).index == pane:
                return <_OpenPane>existing
            raise RuntimeError("pane ring overflow: watermark invariant broken")
        created = _OpenPane(pane, self.link_cap)
        self.ring[slot] = created
        self.next_trigger_ns = min(self.next_trigger_ns, (pane + 1) * self.pane_ns)
        return created

    cdef void _advance(self, int64_t wm):
        """Close panes that end at or before `wm`, emit due windows, forget old panes."""
        cdef int64_t slot
        for slot in range(self.ring_size):
            pane = self.ring[slot]
            if pane is not None and ((<_OpenPane>pane).index + 1) * self.pane_ns <= wm:
                self.closed[(<_OpenPane>pane).index] = (<_OpenPane>pane).to_rowset()
                self.ring[slot] = None
        due = set()
        for index in self.closed:
            for spec_index, window in enumerate(self.windows_ns):
                for start in self._starts(index, window):
                    end = start + window[0]
                    if self.closed_wm_ns < end <= wm:
                        due.add((end, spec_index, start))
        for end, spec_index, start in sorted(due):
            self.out.append(self._assemble(spec_index, start))
        self.closed_wm_ns = wm if wm > self.closed_wm_ns else self.closed_wm_ns
        for index in [i for i in self.closed if i * self.pane_ns + self.max_window_ns <= wm]:
            del self.closed[index]
        self._reset_trigger()

    cdef list _starts(self, int64_t index, tuple window):
        cdef int64_t length = window[0], hop = window[1]
        cdef int64_t last = (index * self.pane_ns // hop) * hop
        return list(range(last - length + hop, last + 1, hop))

    cdef void _reset_trigger(self):
        cdef int64_t trigger = INT64_MAX
        for pane in self.ring:
            if pane is not None:
                trigger = min(trigger, ((<_OpenPane>pane).index + 1) * self.pane_ns)
        for index in self.closed:
            for window in self.windows_ns:
                for start in self._starts(index, window):
                    if start + window[0] > self.closed_wm_ns:
                        trigger = min(trigger, start + window[0])
        self.next_trigger_ns = trigger

    cdef object _assemble(self, int spec_index, int64_t start_ns):
        length_ns, hop_ns = self.windows_ns[spec_index]
        parts = [self.closed[i] for i in range(start_ns // self.pane_ns,
                                               (start_ns + length_ns) // self.pane_ns)
                 if i in self.closed]
        panes = concat_rowsets(parts)
        links = merge_rows(panes, panes.key)
        metros = merge_rows(links, np.asarray(self.link_metro)[links.key])
        return WindowResult(spec_index, start_ns, length_ns, hop_ns, links, metros)

    def snapshot(self):
        """Plain-data state (numpy arrays and ints) from which `restore` rebuilds an equal kernel.

        Windows already emitted but not yet taken with `drain()` are not part of the state:
        drain first (the streaming worker lands them before it checkpoints)."""
        return {
            "pane_ns": self.pane_ns, "lateness_ns": self.lateness_ns,
            "threshold_us": self.threshold_us, "windows_ns": list(self.windows_ns),
            "has_data": bool(self.has_data), "max_ts_ns": self.max_ts_ns,
            "closed_wm_ns": self.closed_wm_ns,
            "samples_in": self.samples_in, "samples_late": self.samples_late,
            "link_metro": np.asarray(self.link_metro).copy(),
            "open": [((<_OpenPane>p).index, (<_OpenPane>p).to_rowset()) for p in self.ring if p is not None],
            "closed": sorted(self.closed.items()),
        }

    @classmethod
    def restore(cls, state):
        cdef Kernel kernel = cls(state["pane_ns"], state["lateness_ns"], state["threshold_us"],
                                 state["windows_ns"])
        kernel.has_data = state["has_data"]
        kernel.max_ts_ns = state["max_ts_ns"]
        kernel.closed_wm_ns = state["closed_wm_ns"]
        kernel.samples_in = state["samples_in"]
        kernel.samples_late = state["samples_late"]
        link_metro = np.asarray(state["link_metro"], dtype=np.int32)
        kernel._grow_links(max(len(link_metro), 1))
        np.asarray(kernel.link_metro)[:len(link_metro)] = link_metro
        for index, rows in state["open"]:
            kernel._open(index).load_rowset(rows)
        kernel.closed = dict(state["closed"])
        kernel._reset_trigger()
        return kernel
