"""Kernel cases: the same aggregation by netready and by its peers.

Each case has `run(cols, meta) -> raw` (timed) and `to_canon(raw, meta)`
(untimed) giving `bench.data.canon` form: per (metro, 60 s window) and (link,
60 s window) samples, under threshold, min, max, sum and the log-linear
histogram. Every peer aggregates per (window, link) first and merges link rows
into metro rows, as netready does.
"""
from __future__ import annotations

import numpy as np

from bench import data
from bench.data import LATENESS_NS, N_BUCKETS, THRESHOLD_US, WINDOW_NS

KERNEL_BATCH = 65_536  # samples per Kernel.ingest call (a typical decoded chunk)
REFERENCE_SAMPLES = 100_000


# --- netready compiled kernel ---------------------------------------------------------------

def run_netready(cols, meta):
    from pipeline.kernel import Kernel

    kernel = Kernel(WINDOW_NS, LATENESS_NS, THRESHOLD_US, [(WINDOW_NS, WINDOW_NS)])
    ts, link, metro, rtt = (cols[c] for c in data.COLUMNS)
    for start in range(0, len(ts), KERNEL_BATCH):
        stop = start + KERNEL_BATCH
        kernel.ingest(ts[start:stop], link[start:stop], metro[start:stop], rtt[start:stop])
    kernel.flush()
    return kernel.drain(), kernel.samples_late


def canon_netready(raw, meta):
    windows, late = raw
    if late:
        raise AssertionError(f"{late} samples late; the data should have none")
    levels = {}
    for level, n_keys in (("metros", meta["n_metros"]), ("links", meta["n_links"])):
        parts = [(w.start_ns // WINDOW_NS, getattr(w, level)) for w in windows]
        rows = [rs for _, rs in parts]
        from pipeline.kernel import concat_rowsets

        merged = concat_rowsets(rows)
        window = np.concatenate([np.full(len(rs), w, dtype=np.int64) for w, rs in parts])
        levels[level] = data.canon_from_csr(window, merged.key, merged.samples, merged.under,
                                            merged.min_us, merged.max_us, merged.sum_us,
                                            merged.hist_offsets, merged.hist_bucket,
                                            merged.hist_count, n_keys)
    return data.canon_levels(levels["metros"], levels["links"])


# --- pure-Python reference (the executable spec), on a subset --------------------------------

def subset(cols, n=REFERENCE_SAMPLES):
    return {k: np.ascontiguousarray(v[:n]) for k, v in cols.items()}


def run_reference(cols, meta):
    from pipeline.reference import ReferenceKernel

    kernel = ReferenceKernel(WINDOW_NS, LATENESS_NS, THRESHOLD_US, [(WINDOW_NS, WINDOW_NS)])
    ts, link, metro, rtt = (cols[c] for c in data.COLUMNS)
    for start in range(0, len(ts), KERNEL_BATCH):
        stop = start + KERNEL_BATCH
        kernel.ingest(ts[start:stop], link[start:stop], metro[start:stop], rtt[start:stop])
    kernel.flush()
    return kernel.drain(), kernel.samples_late


# --- plain C loop --------------------------------------------------------------------------------

_C_FN = None


def run_c(cols, meta):
    global _C_FN
    from bench import ckernel

    if _C_FN is None:
        _C_FN = ckernel.load()
    ts = cols["ts_ns"]
    n_windows = int((ts[-1] - ts[0]) // WINDOW_NS) + 4  # capacity hint; ts is mostly ordered
    return ckernel.aggregate(_C_FN, ts, cols["link_id"], cols["metro_id"], cols["rtt_us"],
                             WINDOW_NS, LATENESS_NS, THRESHOLD_US, meta["n_links"],
                             meta["n_metros"], n_windows)


def canon_c(raw, meta):
    if raw["late"]:
        raise AssertionError(f"{raw['late']} samples late; the data should have none")
    levels = {}
    for p, n_keys in (("m", meta["n_metros"]), ("l", meta["n_links"])):
        levels[p] = data.canon_from_csr(*(raw[f"{p}_{k}"] for k in (
            "window", "key", "samples", "under", "min", "max", "sum", "off", "bucket", "count")),
            n_keys)
    return data.canon_levels(levels["m"], levels["l"])


# --- numpy: bincount for dense (window, link) keys, np.unique for (window, link, bucket) ---------

def run_numpy(cols, meta):
    ts, link, metro, rtt = (cols[c] for c in data.COLUMNS)
    n_links, n_metros = meta["n_links"], meta["n_metros"]
    window = ts // WINDOW_NS
    w0 = int(window.min())
    n_keys = (int(window.max()) - w0 + 1) * n_links
    key = (window - w0) * n_links + link
    samples = np.bincount(key, minlength=n_keys)
    under = np.bincount(key[rtt < THRESHOLD_US], minlength=n_keys)
    total = np.bincount(key, weights=rtt, minlength=n_keys)
    mn = np.full(n_keys, np.inf)
    np.minimum.at(mn, key, rtt)
    mx = np.full(n_keys, -np.inf)
    np.maximum.at(mx, key, rtt)
    h_key, h_count = np.unique(key * N_BUCKETS + data.bucket_bits(rtt), return_counts=True)
    link_metro = np.zeros(n_links, dtype=np.int64)
    link_metro[link] = metro
    # metro rows from link rows
    present = np.flatnonzero(samples)
    l_window, l_link = np.divmod(present, n_links)
    m_of_row = l_window * n_metros + link_metro[l_link]
    n_mkeys = n_keys // n_links * n_metros
    m_samples = np.bincount(m_of_row, weights=samples[present], minlength=n_mkeys).astype(np.int64)
    m_under = np.bincount(m_of_row, weights=under[present], minlength=n_mkeys).astype(np.int64)
    m_sum = np.bincount(m_of_row, weights=total[present], minlength=n_mkeys)
    m_min = np.full(n_mkeys, np.inf)
    np.minimum.at(m_min, m_of_row, mn[present])
    m_max = np.full(n_mkeys, -np.inf)
    np.maximum.at(m_max, m_of_row, mx[present])
    h_row, h_bucket = np.divmod(h_key, N_BUCKETS)
    h_window, h_link = np.divmod(h_row, n_links)
    mh_key, inverse = np.unique((h_window * n_metros + link_metro[h_link]) * N_BUCKETS + h_bucket,
                                return_inverse=True)
    mh_count = np.bincount(inverse, weights=h_count).astype(np.int64)
    m_present = np.flatnonzero(m_samples)
    return dict(w0=w0, l_key=present, l_samples=samples[present], l_under=under[present],
                l_min=mn[present], l_max=mx[present], l_sum=total[present],
                lh_key=h_key, lh_count=h_count, m_key=m_present, m_samples=m_samples[m_present],
                m_under=m_under[m_present], m_min=m_min[m_present], m_max=m_max[m_present],
                m_sum=m_sum[m_present], mh_key=mh_key, mh_count=mh_count)


def canon_numpy(raw, meta):
    """Relative window keys -> absolute."""
    shift = {"l": raw["w0"] * meta["n_links"], "m": raw["w0"] * meta["n_metros"]}
    fixed = {k: v for k, v in raw.items() if k != "w0"}
    for p in ("l", "m"):
        fixed[f"{p}_key"] = raw[f"{p}_key"] + shift[p]
        fixed[f"{p}h_key"] = raw[f"{p}h_key"] + shift[p] * N_BUCKETS
    return data.canon(**fixed)


# --- pandas groupby ---------------------------------------------------------------------------

def run_pandas(cols, meta):
    import pandas as pd

    ts, link, metro, rtt = (cols[c] for c in data.COLUMNS)
    df = pd.DataFrame({"window": ts // WINDOW_NS, "link": link, "metro": metro, "rtt_us": rtt,
                       "under": rtt < THRESHOLD_US, "bucket": data.bucket_bits(rtt)})
    links = df.groupby(["window", "link"], sort=False).agg(
        metro=("metro", "last"), samples=("rtt_us", "size"), under=("under", "sum"),
        min=("rtt_us", "min"), max=("rtt_us", "max"), sum=("rtt_us", "sum")).reset_index()
    hist = df.groupby(["window", "link", "bucket"], sort=False).size().reset_index(name="count")
    metros = links.groupby(["window", "metro"], sort=False).agg(
        samples=("samples", "sum"), under=("under", "sum"), min=("min", "min"),
        max=("max", "max"), sum=("sum", "sum")).reset_index()
    hist = hist.merge(links[["window", "link", "metro"]], on=["window", "link"])
    mhist = hist.groupby(["window", "metro", "bucket"], sort=False)["count"].sum().reset_index()
    return links, hist, metros, mhist


def _canon_frames(links, hist, metros, mhist, meta, col):
    nl, nm = meta["n_links"], meta["n_metros"]
    l_key = col(links, "window") * nl + col(links, "link")
    m_key = col(metros, "window") * nm + col(metros, "metro")
    lh_key = (col(hist, "window") * nl + col(hist, "link")) * N_BUCKETS + col(hist, "bucket")
    mh_key = (col(mhist, "window") * nm + col(mhist, "metro")) * N_BUCKETS + col(mhist, "bucket")
    return data.canon(
        m_key=m_key, m_samples=col(metros, "samples"), m_under=col(metros, "under"),
        m_min=col(metros, "min"), m_max=col(metros, "max"), m_sum=col(metros, "sum"),
        mh_key=mh_key, mh_count=col(mhist, "count"),
        l_key=l_key, l_samples=col(links, "samples"), l_under=col(links, "under"),
        l_min=col(links, "min"), l_max=col(links, "max"), l_sum=col(links, "sum"),
        lh_key=lh_key, lh_count=col(hist, "count"))


def canon_pandas(raw, meta):
    return _canon_frames(*raw, meta, lambda df, c: df[c].to_numpy().astype(
        np.float64 if c in ("min", "max", "sum") else np.int64))


# --- polars group_by (lazy, both link-level queries in one collect_all) -------------------------

def run_polars(cols, meta):
    import polars as pl

    rtt = cols["rtt_us"]
    df = pl.DataFrame({"ts_ns": cols["ts_ns"], "link": cols["link_id"], "metro": cols["metro_id"],
                       "rtt_us": rtt, "bits": rtt.view(np.int64)})
    lf = df.lazy().with_columns(
        window=pl.col("ts_ns") // WINDOW_NS,
        bucket=(pl.col("bits") // (1 << 46) - data.BUCKET_BIAS).clip(0, N_BUCKETS - 1),
        under=pl.col("rtt_us") < THRESHOLD_US)
    links_q = lf.group_by("window", "link").agg(
        metro=pl.col("metro").last(), samples=pl.len(), under=pl.col("under").sum(),
        min=pl.col("rtt_us").min(), max=pl.col("rtt_us").max(), sum=pl.col("rtt_us").sum())
    hist_q = lf.group_by("window", "link", "bucket").agg(count=pl.len())
    links, hist = pl.collect_all([links_q, hist_q])
    metros = links.group_by("window", "metro").agg(
        pl.col("samples").sum(), pl.col("under").sum(), pl.col("min").min(),
        pl.col("max").max(), pl.col("sum").sum())
    mhist = (hist.join(links.select("window", "link", "metro"), on=["window", "link"])
             .group_by("window", "metro", "bucket").agg(pl.col("count").sum()))
    return links, hist, metros, mhist


def canon_polars(raw, meta):
    return _canon_frames(*raw, meta, lambda df, c: df[c].to_numpy().astype(
        np.float64 if c in ("min", "max", "sum") else np.int64))


CASES = {
    "netready": (run_netready, canon_netready),
    "reference_py": (run_reference, canon_netready),
    "c_loop": (run_c, canon_c),
    "numpy": (run_numpy, canon_numpy),
    "pandas": (run_pandas, canon_pandas),
    "polars": (run_polars, canon_polars),
}
