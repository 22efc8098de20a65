/* Plain C reference for the physical work of the netready kernel (bench only).
 *
 * One pass over columnar samples: watermark and lateness as in
 * pipeline/reference.py, then per sample: bucket (octave + top 6 mantissa
 * bits, see pipeline/histogram.py) and increments of a dense per-(open
 * window, link) row: samples, under, min, max, sum, hist[N_BUCKETS]. A
 * window is emitted once the watermark passes its end: link rows in link
 * order (only the touched octaves are scanned, via a 34-bit mask) and metro
 * rows merged from them. Open windows live in a ring of RING dense slots, so
 * memory is RING * n_links * N_BUCKETS * 4 bytes (35 MB for 1 k links).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SUB_BUCKETS 64
#define OCTAVES 34
#define N_BUCKETS (1 + OCTAVES * SUB_BUCKETS)
#define ZERO_BIT (1ULL << 63)
#define RING 3

typedef struct {
    int64_t window; /* window index (ts / window_ns), -1 when free */
    uint32_t *hist; /* n_links * N_BUCKETS */
    uint64_t *mask; /* touched octaves per link, ZERO_BIT for bucket 0 */
    int64_t *samples, *under;
    double *mn, *mx, *sum;
} slot_t;

typedef struct {
    /* link rows */
    int64_t *l_window; int32_t *l_key; int64_t *l_samples, *l_under;
    double *l_min, *l_max, *l_sum; int64_t *l_off; uint16_t *l_bucket; uint32_t *l_count;
    /* metro rows */
    int64_t *m_window; int32_t *m_key; int64_t *m_samples, *m_under;
    double *m_min, *m_max, *m_sum; int64_t *m_off; uint16_t *m_bucket; uint32_t *m_count;
    int64_t cap_rows, cap_nnz, cap_mrows, cap_mnnz;
    int64_t n_rows, n_nnz, n_mrows, n_mnnz, n_late;
} out_t;

static inline int bucket_of(double v) {
    uint64_t bits;
    int octave;
    if (v < 0.0009765625) return 0;
    memcpy(&bits, &v, 8);
    octave = (int)((bits >> 52) & 0x7FF) - 1023 + 10;
    if (octave >= OCTAVES) return N_BUCKETS - 1;
    return 1 + octave * SUB_BUCKETS + (int)((bits >> 46) & (SUB_BUCKETS - 1));
}

static void reset_row(slot_t *s, int64_t l) {
    s->samples[l] = 0; s->under[l] = 0; s->sum[l] = 0.0;
    s->mn[l] = INFINITY; s->mx[l] = -INFINITY; s->mask[l] = 0;
}

/* Emit one window: link rows, then metro rows merged from them. 0 or -1 on full output. */
static int emit(slot_t *s, int32_t n_links, int32_t n_metros, const int32_t *link_metro,
                uint32_t *mhist, uint64_t *mmask, int64_t *ms, int64_t *mu,
                double *mmn, double *mmx, double *msum, out_t *o) {
    for (int32_t l = 0; l < n_links; l++) {
        if (!s->samples[l]) continue;
        if (o->n_rows >= o->cap_rows || o->n_nnz + N_BUCKETS > o->cap_nnz) return -1;
        int64_t r = o->n_rows++;
        int32_t m = link_metro[l];
        o->l_window[r] = s->window; o->l_key[r] = l;
        o->l_samples[r] = s->samples[l]; o->l_under[r] = s->under[l];
        o->l_min[r] = s->mn[l]; o->l_max[r] = s->mx[l]; o->l_sum[r] = s->sum[l];
        ms[m] += s->samples[l]; mu[m] += s->under[l]; msum[m] += s->sum[l];
        if (s->mn[l] < mmn[m]) mmn[m] = s->mn[l];
        if (s->mx[l] > mmx[m]) mmx[m] = s->mx[l];
        uint32_t *h = s->hist + (int64_t)l * N_BUCKETS;
        uint32_t *mh = mhist + (int64_t)m * N_BUCKETS;
        uint64_t mask = s->mask[l];
        mmask[m] |= mask;
        if (mask & ZERO_BIT) {
            o->l_bucket[o->n_nnz] = 0; o->l_count[o->n_nnz++] = h[0];
            mh[0] += h[0]; h[0] = 0;
        }
        mask &= ~ZERO_BIT;
        while (mask) {
            int oct = __builtin_ctzll(mask);
            mask &= mask - 1;
            int base = 1 + oct * SUB_BUCKETS;
            for (int b = base; b < base + SUB_BUCKETS; b++) {
                uint32_t c = h[b];
                if (c) {
                    o->l_bucket[o->n_nnz] = (uint16_t)b; o->l_count[o->n_nnz++] = c;
                    mh[b] += c; h[b] = 0;
                }
            }
        }
        o->l_off[r + 1] = o->n_nnz;
        reset_row(s, l);
    }
    for (int32_t m = 0; m < n_metros; m++) {
        if (!ms[m]) continue;
        if (o->n_mrows >= o->cap_mrows || o->n_mnnz + N_BUCKETS > o->cap_mnnz) return -1;
        int64_t r = o->n_mrows++;
        o->m_window[r] = s->window; o->m_key[r] = m;
        o->m_samples[r] = ms[m]; o->m_under[r] = mu[m];
        o->m_min[r] = mmn[m]; o->m_max[r] = mmx[m]; o->m_sum[r] = msum[m];
        uint32_t *mh = mhist + (int64_t)m * N_BUCKETS;
        uint64_t mask = mmask[m];
        if (mask & ZERO_BIT) {
            o->m_bucket[o->n_mnnz] = 0; o->m_count[o->n_mnnz++] = mh[0]; mh[0] = 0;
        }
        mask &= ~ZERO_BIT;
        while (mask) {
            int oct = __builtin_ctzll(mask);
            mask &= mask - 1;
            int base = 1 + oct * SUB_BUCKETS;
            for (int b = base; b < base + SUB_BUCKETS; b++) {
                if (mh[b]) {
                    o->m_bucket[o->n_mnnz] = (uint16_t)b; o->m_count[o->n_mnnz++] = mh[b]; mh[b] = 0;
                }
            }
        }
        o->m_off[r + 1] = o->n_mnnz;
        ms[m] = 0; mu[m] = 0; msum[m] = 0.0; mmn[m] = INFINITY; mmx[m] = -INFINITY; mmask[m] = 0;
    }
    s->window = -1;
    return 0;
}

/* Returns 0, -1 (output arrays too small), -2 (ring overflow), -3 (bad input), -4 (out of memory). */
int64_t c_aggregate(int64_t n, const int64_t *ts_ns, const int32_t *link_id, const int32_t *metro_id,
                    const double *value_us, int64_t window_ns, int64_t lateness_ns, double threshold_us,
                    int32_t n_links, int32_t n_metros, out_t *o) {
    slot_t ring[RING];
    int64_t rc = 0;
    int32_t *link_metro = calloc(n_links, sizeof(int32_t));
    uint32_t *mhist = calloc((size_t)n_metros * N_BUCKETS, sizeof(uint32_t));
    uint64_t *mmask = calloc(n_metros, sizeof(uint64_t));
    int64_t *ms = calloc(n_metros, sizeof(int64_t)), *mu = calloc(n_metros, sizeof(int64_t));
    double *mmn = malloc(n_metros * sizeof(double)), *mmx = malloc(n_metros * sizeof(double));
    double *msum = calloc(n_metros, sizeof(double));
    int ok = link_metro && mhist && mmask && ms && mu && mmn && mmx && msum;
    for (int32_t m = 0; m < n_metros && ok; m++) { mmn[m] = INFINITY; mmx[m] = -INFINITY; }
    for (int k = 0; k < RING; k++) {
        slot_t *s = &ring[k];
        s->window = -1;
        s->hist = calloc((size_t)n_links * N_BUCKETS, sizeof(uint32_t));
        s->mask = calloc(n_links, sizeof(uint64_t));
        s->samples = malloc(n_links * sizeof(int64_t)); s->under = malloc(n_links * sizeof(int64_t));
        s->mn = malloc(n_links * sizeof(double)); s->mx = malloc(n_links * sizeof(double));
        s->sum = malloc(n_links * sizeof(double));
        ok = ok && s->hist && s->mask && s->samples && s->under && s->mn && s->mx && s->sum;
        for (int32_t l = 0; l < n_links && ok; l++) reset_row(s, l);
    }
    if (!ok) { rc = -4; goto done; }
    o->n_rows = o->n_nnz = o->n_mrows = o->n_mnnz = o->n_late = 0;
    o->l_off[0] = 0; o->m_off[0] = 0;

    int64_t max_ts = INT64_MIN, wm = INT64_MIN, closed_wm = INT64_MIN, next_close = INT64_MAX;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = ts_ns[i];
        int32_t l = link_id[i];
        if (t < 0 || l < 0 || l >= n_links || metro_id[i] < 0 || metro_id[i] >= n_metros) { rc = -3; goto done; }
        if (t > max_ts) {
            max_ts = t;
            wm = t - lateness_ns;
            if (wm >= next_close) { /* emit every open window ending at or before wm, oldest first */
                for (;;) {
                    slot_t *oldest = NULL;
                    for (int k = 0; k < RING; k++)
                        if (ring[k].window >= 0 && (!oldest || ring[k].window < oldest->window)) oldest = &ring[k];
                    if (!oldest || (oldest->window + 1) * window_ns > wm) break;
                    if (emit(oldest, n_links, n_metros, link_metro, mhist, mmask, ms, mu, mmn, mmx, msum, o)) { rc = -1; goto done; }
                }
                closed_wm = wm;
                next_close = INT64_MAX;
                for (int k = 0; k < RING; k++)
                    if (ring[k].window >= 0 && (ring[k].window + 1) * window_ns < next_close)
                        next_close = (ring[k].window + 1) * window_ns;
            }
        }
        int64_t w = t / window_ns;
        if ((w + 1) * window_ns <= (wm > closed_wm ? wm : closed_wm)) { o->n_late++; continue; }
        slot_t *s = &ring[w % RING];
        if (s->window != w) {
            if (s->window >= 0) { rc = -2; goto done; }
            s->window = w;
            if ((w + 1) * window_ns < next_close) next_close = (w + 1) * window_ns;
        }
        double v = value_us[i];
        int b = bucket_of(v);
        link_metro[l] = metro_id[i];
        s->samples[l]++;
        s->under[l] += v < threshold_us;
        if (v < s->mn[l]) s->mn[l] = v;
        if (v > s->mx[l]) s->mx[l] = v;
        s->sum[l] += v;
        s->hist[(int64_t)l * N_BUCKETS + b]++;
        s->mask[l] |= b ? 1ULL << ((b - 1) >> 6) : ZERO_BIT;
    }
    for (;;) { /* flush: end of a finite input */
        slot_t *oldest = NULL;
        for (int k = 0; k < RING; k++)
            if (ring[k].window >= 0 && (!oldest || ring[k].window < oldest->window)) oldest = &ring[k];
        if (!oldest) break;
        if (emit(oldest, n_links, n_metros, link_metro, mhist, mmask, ms, mu, mmn, mmx, msum, o)) { rc = -1; goto done; }
    }
done:
    for (int k = 0; k < RING; k++) {
        free(ring[k].hist); free(ring[k].mask); free(ring[k].samples); free(ring[k].under);
        free(ring[k].mn); free(ring[k].mx); free(ring[k].sum);
    }
    free(link_metro); free(mhist); free(mmask); free(ms); free(mu); free(mmn); free(mmx); free(msum);
    return rc;
}
