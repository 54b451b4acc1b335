-- Experiments (PL/Python, numpy): vectorized GrowthBook assignment for mlops.assign_batch,
-- which uses it when this companion is installed (the SQL path of mlops._gb_hash_sql stays
-- the reference; tests check both agree with each other and with the growthbook SDK).

-- One code per unit id, in input order: the variant position p >= 0 of a new unit, -1 when it
-- falls in a coverage gap or outside the namespace, -2 - v for a unit whose sticky variant is v
-- (sticky_ord/sticky_variant: 1-based positions in unit_ids and their recorded variants).
-- New units: v2 hash k = fnv(str(fnv(seed || id))) % 10000, slot = width_bucket(k / 10000,
-- thresholds) (thresholds = {start0, end0, start1, end1, ...}, odd slots are variants; empty
-- thresholds: no new unit enters), and with a namespace seed the v1 hash fnv(id || ns_seed) %
-- 1000 must lie in [ns_lo, ns_hi]. FNV-1a 32-bit runs over UTF-16 code units (the bytes for
-- ASCII, like the SDKs), all ids at once: one numpy step per code position over the ids that long.
create or replace function mlops._gb_assign_py(seed text, unit_ids text[], thresholds float8[],
                                               ns_seed text, ns_lo integer, ns_hi integer,
                                               sticky_ord bigint[] default null, sticky_variant integer[] default null)
returns integer[]
language plpython3u immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
import numpy as np
if seed is None or unit_ids is None or thresholds is None:
    plpy.error("seed, unit_ids and thresholds must not be NULL (argument seed)", sqlstate="22004")
P = np.uint32(16777619)
BASIS = 2166136261

def units(s):
    return s.encode("utf-16-le", "surrogatepass")

def fnv_scalar(h, data):
    for i in range(0, len(data), 2):
        h = ((h ^ (data[i] | (data[i + 1] << 8))) * 16777619) & 0xFFFFFFFF
    return h

n = len(unit_ids)
try:  # join refuses a NULL (None) element or a nested list: no separate pass over the ids
    joined = "".join(unit_ids)
except TypeError:
    if any(u is None for u in unit_ids):
        plpy.error("unit_ids must not contain NULL (argument unit_ids)", sqlstate="22004")
    plpy.error("unit_ids must be a one-dimensional array (argument unit_ids)", sqlstate="22023")
raw = units(joined)
buf = np.frombuffer(raw, dtype="<u2")
lens = np.fromiter(map(len, unit_ids), dtype=np.int64, count=n)
if int(lens.sum()) != len(buf):  # characters beyond the BMP take two code units
    lens = np.fromiter((len(units(u)) >> 1 for u in unit_ids), dtype=np.int64, count=n)
offs = np.zeros(n, dtype=np.int64)
if n > 1:
    np.cumsum(lens[:-1], out=offs[1:])

def fnv_ids(idx, start):
    """FNV-1a of the ids at positions idx continuing from start (uint32 array): longest ids first,
    so the ids still going at code position p are a prefix; the last few long ones finish one by one."""
    m = len(idx)
    order = np.argsort(-lens[idx], kind="stable")
    sl = lens[idx][order]
    so = offs[idx][order]
    h = start[order].copy()
    neg = -sl
    p = 0
    maxlen = int(sl[0]) if m else 0
    while p < maxlen:
        cnt = int(np.searchsorted(neg, -p, side="left"))  # ids longer than p
        if cnt <= 4:
            for j in range(cnt):
                o, length = int(so[j]), int(sl[j])
                h[j] = fnv_scalar(int(h[j]), raw[2 * (o + p):2 * (o + length)])
            break
        hp = h[:cnt]
        np.bitwise_xor(hp, buf[so[:cnt] + p], out=hp)
        np.multiply(hp, P, out=hp)
        p += 1
    out = np.empty(m, dtype=np.uint32)
    out[order] = h
    return out

def fnv_const(h, s):
    """continues every hash in h over the code units of the constant s"""
    data = units(s)
    for i in range(0, len(data), 2):
        np.bitwise_xor(h, np.uint32(data[i] | (data[i + 1] << 8)), out=h)
        np.multiply(h, P, out=h)
    return h

# only new units are hashed (none when thresholds is empty); sticky ones get -2 - v
variant = np.full(n, -1, dtype=np.int64)
todo = np.ones(n, dtype=bool)
if sticky_ord:
    if sticky_variant is None or len(sticky_variant) != len(sticky_ord):
        plpy.error("sticky_ord and sticky_variant must have the same length (argument sticky_variant)", sqlstate="22023")
    where = np.asarray(sticky_ord, dtype=np.int64) - 1
    todo[where] = False
idx = np.flatnonzero(todo) if len(thresholds) else np.zeros(0, dtype=np.int64)
m = len(idx)
# v2: fnv(seed || id), then fnv of its decimal text (1 to 10 ASCII digits)
first = fnv_ids(idx, np.full(m, fnv_scalar(BASIS, units(seed)), dtype=np.uint32)).astype(np.uint64)
decimal = []  # digits of first, least significant first
q = first
for j in range(10):
    q, r = np.divmod(q, np.uint64(10))
    decimal.append(r.astype(np.uint32) + np.uint32(48))
h2 = np.full(m, BASIS, dtype=np.uint32)
for j in range(10):  # most significant first; leading zeros are not part of the text
    if j < 9:
        np.copyto(h2, (h2 ^ decimal[9 - j]) * P, where=first >= np.uint64(10 ** (9 - j)))
    else:
        np.bitwise_xor(h2, decimal[0], out=h2)
        np.multiply(h2, P, out=h2)
bucket = (h2 % np.uint32(10000)).astype(np.float64) / 10000.0
slot = np.searchsorted(np.asarray(thresholds, dtype=np.float64), bucket, side="right")
fresh = np.where(slot % 2 == 1, (slot - 1) // 2, -1)
if ns_seed is not None:
    # v1 (namespaces): fnv(id || ns_seed) % 1000
    kn = fnv_const(fnv_ids(idx, np.full(m, BASIS, dtype=np.uint32)), ns_seed) % np.uint32(1000)
    fresh = np.where((kn >= ns_lo) & (kn <= ns_hi), fresh, -1)
variant[idx] = fresh
if sticky_ord:
    variant[where] = -2 - np.asarray(sticky_variant, dtype=np.int64)
return variant.tolist()
$$;
comment on function mlops._gb_assign_py(text, text[], float8[], text, integer, integer, bigint[], integer[]) is
  'Private: numpy GrowthBook v2 assignment of many ids (new variant position, -1 for none, -2 - v for sticky variant v), used by mlops.assign_batch when installed.';

grant execute on function mlops._gb_assign_py(text, text[], float8[], text, integer, integer, bigint[], integer[]) to mlops_writer;
