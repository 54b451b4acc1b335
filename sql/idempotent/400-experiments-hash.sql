-- Experiments: GrowthBook-compatible hashing and bucketing, bit-for-bit with the growthbook
-- SDK (FNV-1a 32-bit; ASCII strings hash their bytes, other strings their UTF-16 code units
-- like the JS SDK's charCodeAt loop; v2 = fnv(str(fnv(seed || id))) % 10000 / 10000).

-- FNV-1a 32-bit of a string, continuing from basis (the offset basis by default), so a
-- constant prefix (the seed) can be hashed once and every unit id continues from it.
create or replace function mlops._fnv1a32(value text, basis bigint default 2166136261) returns bigint
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  h bigint := basis;
  b bytea;
  i integer;
  cp integer;
  c text;
begin
  b := pg_catalog.convert_to(value, 'UTF8');
  if pg_catalog.octet_length(b) = pg_catalog.length(value) then
    for i in 0 .. pg_catalog.octet_length(b) - 1 loop
      h := ((h # pg_catalog.get_byte(b, i)) * 16777619) & 4294967295;
    end loop;
  else
    foreach c in array pg_catalog.regexp_split_to_array(value, '') loop
      cp := pg_catalog.ascii(c);
      if cp > 65535 then
        h := ((h # (55296 + ((cp - 65536) >> 10))) * 16777619) & 4294967295;
        h := ((h # (56320 + ((cp - 65536) & 1023))) * 16777619) & 4294967295;
      else
        h := ((h # cp) * 16777619) & 4294967295;
      end if;
    end loop;
  end if;
  return h;
end
$$;
comment on function mlops._fnv1a32(text, bigint) is
  'Private: FNV-1a 32-bit like the GrowthBook SDKs (bytes for ASCII, UTF-16 code units otherwise), from basis.';

-- SQL text of FNV-1a unrolled over the bytes of a bytea expression whose length (len) is
-- between lo and hi: a binary search on len picks one straight chain of xor/multiply steps,
-- so a row costs a few comparisons plus four operations per byte (no per-byte calls, no
-- padding). bytes and len must be plain column references (they are repeated in the text).
create or replace function mlops._fnv_sql(start text, bytes text, len text, lo integer, hi integer) returns text
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  e text := start;
  mid integer := (lo + hi) / 2;
begin
  if lo = hi then
    for k in 0 .. lo - 1 loop
      e := pg_catalog.format('(((%s # pg_catalog.get_byte(%s, %s)) * 16777619) & 4294967295)', e, bytes, k);
    end loop;
    return e;
  end if;
  return pg_catalog.format('(case when %s <= %s then %s else %s end)', len, mid,
                           mlops._fnv_sql(start, bytes, len, lo, mid), mlops._fnv_sql(start, bytes, len, mid + 1, hi));
end
$$;
comment on function mlops._fnv_sql(text, text, text, integer, integer) is
  'Private: SQL expression of FNV-1a unrolled over a bytea column of lo..hi bytes (batch hashing).';

-- SQL text of a subquery adding column <alias> = GrowthBook's integer hash bucket of column u
-- to the rows of source (v2: fnv(str(fnv(seed || u))) % 10000, v1: fnv(u || seed) % 1000),
-- set-based: ASCII ids of min_len..max_len (at most 64) bytes go through unrolled expressions
-- (give the batch's range: the SQL text grows with it), others through the loop. Only rows
-- where guard (an SQL condition on the source's columns) holds are hashed, the others get
-- NULL. Helper columns are named <alias>_*.
create or replace function mlops._gb_hash_sql(seed text, version integer, source text, alias text,
                                              guard text, min_len integer, max_len integer) returns text
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  h text;
  bytes text := pg_catalog.format($q$
    select s.*, pg_catalog.convert_to(s.u, 'UTF8') as %1$I_b, pg_catalog.octet_length(s.u) as %1$I_n
      from (select s.*, %3$s as %1$I_g from (%2$s) s offset 0) s offset 0$q$, alias, source, guard);
  fast text := pg_catalog.format('case when not s.%1$I_g then null when s.%1$I_n between %2$s and %3$s'
                                 ' and s.%1$I_n = pg_catalog.length(s.u) then ', alias, min_len, max_len);
begin
  if min_len < 0 or max_len > 64 or min_len > max_len then
    raise exception using errcode = '22023',
      message = pg_catalog.format('lengths must satisfy 0 <= min_len <= max_len <= 64, got %s..%s (argument min_len)', min_len, max_len);
  end if;
  if version = 2 then
    h := fast || pg_catalog.format('%s else mlops._fnv1a32(s.u, %s) end',
                                   mlops._fnv_sql(mlops._fnv1a32(seed)::text || '::bigint', pg_catalog.format('s.%I_b', alias),
                                                  pg_catalog.format('s.%I_n', alias), min_len, max_len),
                                   mlops._fnv1a32(seed));
    return pg_catalog.format($q$
      select s.*, (case when s.%1$I_g then %2$s %% 10000 end)::integer as %1$I
        from (select s.*, pg_catalog.convert_to(s.%1$I_h::text, 'UTF8') as %1$I_d, pg_catalog.length(s.%1$I_h::text) as %1$I_nd
                from (select s.*, %3$s as %1$I_h from (%4$s) s offset 0) s offset 0) s$q$,
      alias, mlops._fnv_sql('2166136261::bigint', pg_catalog.format('s.%I_d', alias), pg_catalog.format('s.%I_nd', alias), 1, 10),
      h, bytes);
  end if;
  -- v1: fnv(u || seed) continues fnv(u) over the seed's bytes (constants when the seed is ASCII)
  h := fast || pg_catalog.format('%s else mlops._fnv1a32(s.u) end',
                                 mlops._fnv_sql('2166136261::bigint', pg_catalog.format('s.%I_b', alias),
                                                pg_catalog.format('s.%I_n', alias), min_len, max_len));
  if pg_catalog.octet_length(seed) = pg_catalog.length(seed) then
    for i in 1 .. pg_catalog.length(seed) loop
      h := pg_catalog.format('(((%s) # %s) * 16777619) & 4294967295', h, pg_catalog.ascii(pg_catalog.substr(seed, i, 1)));
    end loop;
  else
    h := pg_catalog.format('case when s.%I_g then mlops._fnv1a32(s.u || %L) end', alias, seed);
  end if;
  return pg_catalog.format('select s.*, ((%2$s) %% 1000)::integer as %1$I from (%3$s) s', alias, h, bytes);
end
$$;
comment on function mlops._gb_hash_sql(text, integer, text, text, text, integer, integer) is
  'Private: SQL subquery adding GrowthBook''s integer hash bucket (v2 % 10000, v1 % 1000) of column u to a source query.';

-- GrowthBook's hash(seed, value, version): v2 (default) fnv(str(fnv(seed + value))) % 10000 / 10000,
-- v1 fnv(value + seed) % 1000 / 1000 (used for namespaces); other versions give NULL like the SDK.
create or replace function mlops.gb_hash(seed text, value text, version integer default 2) returns float8
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  if seed is null then
    raise exception using errcode = '22004', message = 'seed must not be NULL',
      hint = 'GrowthBook uses the experiment key as the seed when none is set.';
  end if;
  if value is null then
    raise exception using errcode = '22004', message = 'value (unit id) must not be NULL';
  end if;
  if version = 2 then
    return (mlops._fnv1a32(mlops._fnv1a32(seed || value)::text) % 10000)::float8 / 10000;
  elsif version = 1 then
    return (mlops._fnv1a32(value || seed) % 1000)::float8 / 1000;
  end if;
  return null;
end
$$;
comment on function mlops.gb_hash(text, text, integer) is
  'GrowthBook hash(seed, value, version) in [0, 1): v2 by default, v1 for namespaces; NULL for unknown versions.';

-- GrowthBook's inNamespace: v1 hash of the unit with seed "__" || namespace, inside [range_start, range_end).
create or replace function mlops.gb_in_namespace(unit_id text, namespace text, range_start float8, range_end float8)
returns boolean
language sql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
  select h.n >= range_start and h.n < range_end from (select mlops.gb_hash('__' || namespace, unit_id, 1) as n offset 0) h
$$;
comment on function mlops.gb_in_namespace(text, text, float8, float8) is
  'GrowthBook inNamespace(unit, [namespace, start, end]): true when the unit''s v1 namespace hash falls in the range.';

-- GrowthBook's getBucketRanges as one sorted array {start0, end0, start1, end1, ...}: variant i
-- covers [cumulative_i, cumulative_i + coverage * weight_i), computed with the same float8
-- operations in the same order as the SDK. Ranges never overlap, so width_bucket(n, thresholds)
-- finds n's slot directly: odd slot 2i + 1 is variant i, even slots are the coverage gaps (the
-- SDK's first-range-wins choice). One plain array, no set-returning call: assign() runs it per new unit.
create or replace function mlops._gb_thresholds(weights float8[], coverage float8 default 1) returns float8[]
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  cumulative float8 := 0;
  w float8;
  total float8 := 0;
  thresholds float8[] := '{}';
begin
  if weights is null or pg_catalog.cardinality(weights) = 0 then
    raise exception using errcode = '22023', message = 'weights must be a non-empty array';
  end if;
  coverage := least(greatest(coalesce(coverage, 1), 0), 1);
  foreach w in array weights loop
    if w is null or w = 'NaN'::float8 or w < 0 or w = 'Infinity'::float8 then
      raise exception using errcode = '22023',
        message = pg_catalog.format('weights must be finite and >= 0, got %s', w);
    end if;
    total := total + w;
  end loop;
  if total < 0.99 or total > 1.01 then  -- the SDK replaces such weights with equal ones
    weights := pg_catalog.array_fill(1::float8 / pg_catalog.cardinality(weights), array[pg_catalog.cardinality(weights)]);
  end if;
  foreach w in array weights loop
    thresholds := thresholds || array[cumulative, cumulative + coverage * w];
    cumulative := cumulative + w;
  end loop;
  return thresholds;
end
$$;
comment on function mlops._gb_thresholds(float8[], float8) is
  'Private: GrowthBook getBucketRanges(weights, coverage) as {start0, end0, start1, end1, ...} for width_bucket.';

-- GrowthBook's getBucketRanges: one row per variant of mlops._gb_thresholds.
create or replace function mlops.gb_bucket_ranges(weights float8[], coverage float8 default 1)
returns table (variant integer, range_start float8, range_end float8)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select (i - 1) / 2, t.t[i], t.t[i + 1]
    from (select mlops._gb_thresholds(weights, coverage) as t) t,
         pg_catalog.generate_series(1, pg_catalog.cardinality(t.t), 2) i
   order by i
$$;
comment on function mlops.gb_bucket_ranges(float8[], float8) is
  'GrowthBook getBucketRanges(weights, coverage): one [range_start, range_end) per variant (0-based).';

-- GrowthBook's chooseVariation: index of the first range holding n, -1 when none does.
create or replace function mlops.gb_choose_variation(n float8, range_starts float8[], range_ends float8[])
returns integer
language sql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select (i - 1)::integer from pg_catalog.generate_subscripts(range_starts, 1) i
                    where n >= range_starts[i] and n < range_ends[i] order by i limit 1), -1)
$$;
comment on function mlops.gb_choose_variation(float8, float8[], float8[]) is
  'GrowthBook chooseVariation(n, ranges): 0-based variant whose [start, end) holds n, or -1.';

-- Set-based GrowthBook hash of many values with one seed (see mlops._gb_hash_sql): one
-- statement, unrolled FNV-1a per row, input order kept. version 1 (namespaces) hashes value || seed.
create or replace function mlops.gb_hash_batch(seed text, unit_ids text[], version integer default 2)
returns table (ord bigint, unit_id text, n float8)
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp set jit = off
as $$
declare
  lo integer;
  hi integer;
begin
  if seed is null then
    raise exception using errcode = '22004', message = 'seed must not be NULL (argument seed)';
  end if;
  if unit_ids is null then
    raise exception using errcode = '22004', message = 'unit_ids must not be NULL (argument unit_ids)';
  end if;
  if version is null or version not in (1, 2) then
    raise exception using errcode = '22023', message = pg_catalog.format('hash version must be 1 or 2, got %s (argument version)', version);
  end if;
  select coalesce(min(pg_catalog.octet_length(u)), 0), least(coalesce(max(pg_catalog.octet_length(u)), 0), 64)
    into lo, hi from pg_catalog.unnest(unit_ids) u;
  return query execute pg_catalog.format('select h.ord, h.u, h.k::float8 / %s from (%s) h',
    case version when 2 then 10000 else 1000 end,
    mlops._gb_hash_sql(seed, version, 'select x.u, x.ord from pg_catalog.unnest($1) with ordinality x(u, ord)', 'k',
                       'true', least(lo, hi), hi))
  using unit_ids;
end
$$;
comment on function mlops.gb_hash_batch(text, text[], integer) is
  'GrowthBook hash (v2 default, v1 for namespaces) of many unit ids with one seed, set-based: '
  '(ordinality, unit_id, n in [0, 1)).';
