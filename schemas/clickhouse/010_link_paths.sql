-- The path of each link: the first non-null access point (`site`) and computing
-- centre (`dc`) its samples carried, landed alongside the windows when a link's
-- path becomes known. NULL = never reported. A later landing (higher version)
-- replaces a row; readers take argMax(site, version) and argMax(dc, version),
-- which skip NULLs, so a run that saw only one of the two never erases the other.
CREATE TABLE IF NOT EXISTS netready.link_paths
(
    metro $LC(String),
    router $LC(String),
    link String,
    site Nullable(String),
    dc Nullable(String),
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (metro, router, link);

-- Site coverage (pipeline/site_coverage.py) per (policy, window family, metro,
-- site, window): the site's best path to a computing centre (`best_dc`, '' when
-- the site had no data in the window) with that path's exact counts and p99 from
-- its exactly merged histogram; `covered` = the path meets the policy's
-- statistic; `weight` = the site's weight in its metro's share (1 unless a
-- weights file says otherwise; 0 = not a key site). A metro window is compliant
-- iff sum(weight * covered) / sum(weight) >= the policy's bar. Rows with
-- window_s = hop_s = 86400 are UTC days (the day's counts per path), which give
-- the daily verdicts. Query with FINAL.
CREATE TABLE IF NOT EXISTS netready.site_window
(
    metro $LC(String),
    site String,
    window_start DateTime('UTC'),
    window_s UInt32,
    hop_s UInt32,
    policy $LC(String),
    best_dc String,
    paths UInt32,
    samples UInt64,
    under_threshold UInt64,
    share_under Float64,
    p99_us Float64,
    covered UInt8,
    weight Float64,
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (policy, window_s, hop_s, metro, site, window_start)
$TTL(window_start + INTERVAL 10 YEAR);
