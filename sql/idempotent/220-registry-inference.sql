-- In-database inference in plain SQL (core, no PL/Python): the linear flavor.
-- pgmlops_python's mlops.predict / predict_batch give the same numbers through numpy.

-- Coefficients of a linear version: (coefficients float8[], intercept, link, feature names); 0A000 for other flavors.
create or replace function mlops._linear_params(version_id bigint, out coefficients float8[], out intercept float8,
                                                out link text, out names text[])
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  v record;
  a jsonb;
begin
  select x.flavor, x.artifact, x.signature, x.version, m.name into v
    from mlops.model_versions x join mlops.models m on m.id = x.model_id where x.id = version_id;
  if v.flavor is distinct from 'linear' then
    raise exception using errcode = '0A000',
      message = pg_catalog.format('version %s of model %L has flavor %s; plain-SQL scoring handles linear only (argument model)',
                                  v.version, v.name, v.flavor),
      hint = 'Install pgmlops_python and use mlops.predict for sklearn / onnx flavors.';
  end if;
  a := pg_catalog.convert_from(v.artifact, 'UTF8')::jsonb;
  coefficients := array(select e::float8 from pg_catalog.jsonb_array_elements_text(a -> 'coefficients') e);
  intercept := coalesce((a ->> 'intercept')::float8, 0);
  link := coalesce(a ->> 'link', 'identity');
  names := case when pg_catalog.jsonb_typeof(v.signature -> 'inputs') = 'array'
                then array(select pg_catalog.jsonb_array_elements_text(v.signature -> 'inputs'))
                when pg_catalog.jsonb_typeof(a -> 'features') = 'array'
                then array(select pg_catalog.jsonb_array_elements_text(a -> 'features')) end;
end
$$;
comment on function mlops._linear_params(bigint) is 'Private: coefficients, intercept, link and feature names of a linear-flavor version.';

-- Feature vector check: length against the model, no NaN / infinity / null.
create or replace function mlops._check_features(features float8[], width integer) returns void
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  if features is null or pg_catalog.cardinality(features) = 0 then
    raise exception using errcode = '22023', message = 'features must be a non-empty array (argument features)';
  end if;
  if width is not null and pg_catalog.array_ndims(features) = 1 and pg_catalog.cardinality(features) <> width then
    raise exception using errcode = '22023',
      message = pg_catalog.format('features has %s values but the model expects %s (argument features)', pg_catalog.cardinality(features), width);
  end if;
  if width is not null and pg_catalog.array_ndims(features) = 2 and pg_catalog.array_length(features, 2) <> width then
    raise exception using errcode = '22023',
      message = pg_catalog.format('features rows have %s values but the model expects %s (argument features)', pg_catalog.array_length(features, 2), width);
  end if;
  if exists (select from pg_catalog.unnest(features) x where x is null or x = 'NaN'::float8 or x in ('Infinity'::float8, '-Infinity'::float8)) then
    raise exception using errcode = '22023', message = 'features contains null, NaN or infinity (argument features)';
  end if;
end
$$;
comment on function mlops._check_features(float8[], integer) is 'Private: raises 22023 for an empty feature array, a wrong width, or null/NaN/infinite values.';

-- jsonb features ({"name": value} by the model's feature names, or [values]) as a float8 vector.
create or replace function mlops._features_from_jsonb(features jsonb, names text[]) returns float8[]
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  missing text;
begin
  if pg_catalog.jsonb_typeof(features) = 'array' then
    if exists (select from pg_catalog.jsonb_array_elements(features) e where pg_catalog.jsonb_typeof(e) <> 'number') then
      raise exception using errcode = '22023', message = 'features array must hold numbers only (argument features)';
    end if;
    return array(select e::float8 from pg_catalog.jsonb_array_elements_text(features) e);
  elsif pg_catalog.jsonb_typeof(features) = 'object' then
    if names is null then
      raise exception using errcode = '22023',
        message = 'features given by name but the model declares no feature names (argument features)',
        hint = 'Pass an array, or register the version with signature => ''{"inputs": [names]}''.';
    end if;
    select pg_catalog.string_agg(n, ', ') into missing from pg_catalog.unnest(names) n
     where pg_catalog.jsonb_typeof(features -> n) is distinct from 'number';
    if missing is not null then
      raise exception using errcode = '22023',
        message = pg_catalog.format('features lacks numeric values for %s (argument features)', missing);
    end if;
    return array(select (features ->> n)::float8 from pg_catalog.unnest(names) with ordinality u(n, i) order by i);
  end if;
  raise exception using errcode = '22023', message = 'features must be a jsonb object or array (argument features)';
end
$$;
comment on function mlops._features_from_jsonb(jsonb, text[]) is 'Private: converts features given as jsonb (array, or object keyed by feature name) into a float8 vector.';

-- Scores one feature vector with a linear version in plain SQL.
create or replace function mlops.predict_sql(model text, alias_or_version text, features float8[]) returns float8
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  p record := mlops._linear_params(mlops._resolve_version(model, alias_or_version));
  z float8;
begin
  if pg_catalog.array_ndims(features) > 1 then
    raise exception using errcode = '22023', message = 'features must be one vector; use mlops.predict_batch_sql for rows (argument features)';
  end if;
  perform mlops._check_features(features, pg_catalog.cardinality(p.coefficients));
  begin
    select p.intercept + pg_catalog.sum(x * c) into z from unnest(features, p.coefficients) u(x, c);
  exception when numeric_value_out_of_range then  -- float8 arithmetic refuses overflow and underflow
    raise exception using errcode = '22003',
      message = 'features times coefficients leave the float8 range (argument features)';
  end;
  -- the logit clamped to +-700: exp() of a larger one overflows, and the score is 0 or 1 to float8 anyway
  return case when p.link = 'logistic' then 1.0 / (1.0 + pg_catalog.exp(-least(greatest(z, -700), 700))) else z end;
end
$$;
comment on function mlops.predict_sql(text, text, float8[]) is
  'Scores one feature vector with a linear-flavor version in plain SQL: intercept + coefficients . features, '
  'through the logistic link when the artifact says so. Same result as mlops.predict (pgmlops_python).';

-- Scores features given as jsonb (an array, or an object keyed by the version's feature names).
create or replace function mlops.predict_sql(model text, alias_or_version text, features jsonb) returns float8
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  p record := mlops._linear_params(mlops._resolve_version(model, alias_or_version));
begin
  return mlops.predict_sql(model, alias_or_version, mlops._features_from_jsonb(features, p.names));
end
$$;
comment on function mlops.predict_sql(text, text, jsonb) is
  'Scores features given as jsonb (object keyed by the signature''s input names, or an array) with a linear version in plain SQL.';

-- Scores many rows (a 2-D array, one row per prediction) in one set-based pass.
create or replace function mlops.predict_batch_sql(model text, alias_or_version text, features float8[]) returns float8[]
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  p record := mlops._linear_params(mlops._resolve_version(model, alias_or_version));
  width integer := pg_catalog.cardinality(p.coefficients);
  result float8[];
begin
  if features is null or pg_catalog.array_ndims(features) is distinct from 2 then
    raise exception using errcode = '22023', message = 'features must be a 2-D array, one row per prediction (argument features)';
  end if;
  perform mlops._check_features(features, width);
  begin  -- as predict_sql: out-of-range arithmetic is named, the logit clamped
    select pg_catalog.array_agg(case when p.link = 'logistic' then 1.0 / (1.0 + pg_catalog.exp(-least(greatest(s.z, -700), 700)))
                                     else s.z end order by s.r)
      into result
      from (select (u.k - 1) / width as r, p.intercept + pg_catalog.sum(u.x * p.coefficients[(u.k - 1) % width + 1]) as z
              from pg_catalog.unnest(features) with ordinality u(x, k)
             group by 1) s;
  exception when numeric_value_out_of_range then
    raise exception using errcode = '22003',
      message = 'features times coefficients leave the float8 range (argument features)';
  end;
  return result;
end
$$;
comment on function mlops.predict_batch_sql(text, text, float8[]) is
  'Scores a 2-D array of feature rows with a linear-flavor version in plain SQL; returns one prediction per row, in order.';

-- Scores an entity from its online features: the version's signature names the entity and the
-- feature refs, {"entity": "customer", "features": ["group:feature", ...]} (in coefficient order).
-- Linear versions are scored in plain SQL; other flavors through mlops.predict when pgmlops_python is installed.
create or replace function mlops.predict_entity(model text, alias_or_version text, entity_key text) returns float8
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  vid bigint := mlops._resolve_version(model, alias_or_version);
  sig jsonb;
  flav text;
  refs text[];
  vals jsonb;
  stat jsonb;
  names text[];
  x float8[];
  bad text;
  result float8;
  vnum integer;
begin
  select v.signature, v.flavor into sig, flav from mlops.model_versions v where v.id = vid;
  if pg_catalog.jsonb_typeof(sig -> 'entity') is distinct from 'string'
     or pg_catalog.jsonb_typeof(sig -> 'features') is distinct from 'array' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('version %s of model %L has no feature-store signature (argument model)', alias_or_version, model),
      hint = 'Register the version with signature => ''{"entity": "customer", "features": ["group:feature", ...]}''.';
  end if;
  if entity_key is null then
    raise exception using errcode = '22023', message = 'entity_key must not be null (argument entity_key)';
  end if;
  refs := array(select pg_catalog.jsonb_array_elements_text(sig -> 'features'));
  select o."values", o.status into vals, stat
    from mlops.get_online_features(sig ->> 'entity', array[entity_key], refs) o;
  -- the lookup names a value by its feature, or group__feature when two groups share a name
  names := array(select case when vals ? pg_catalog.replace(r, ':', '__') then pg_catalog.replace(r, ':', '__')
                             else pg_catalog.split_part(r, ':', 2) end
                   from pg_catalog.unnest(refs) with ordinality u(r, i) order by i);
  select pg_catalog.string_agg(pg_catalog.format('%s (%s)', n, coalesce(stat ->> n, 'MISSING')), ', ') into bad
    from pg_catalog.unnest(names) n
   where stat ->> n is distinct from 'PRESENT' or pg_catalog.jsonb_typeof(vals -> n) is distinct from 'number';
  if bad is not null then
    raise exception using errcode = '22023',
      message = pg_catalog.format('entity %s %s has no usable online value for %s (argument entity_key)', sig ->> 'entity', entity_key, bad);
  end if;
  x := array(select (vals ->> n)::float8 from pg_catalog.unnest(names) with ordinality u(n, i) order by i);
  select v.version into vnum from mlops.model_versions v where v.id = vid;
  if flav = 'linear' then
    return mlops.predict_sql(model, vnum::text, x);
  end if;
  if pg_catalog.to_regprocedure('mlops.predict(text,text,float8[])') is null then
    raise exception using errcode = '0A000',
      message = pg_catalog.format('flavor %s needs pgmlops_python (argument model)', flav),
      hint = 'CREATE EXTENSION pgmlops_python.';
  end if;
  execute 'select mlops.predict($1, $2, $3)' into result using model, vnum::text, x;
  return result;
end
$$;
comment on function mlops.predict_entity(text, text, text) is
  'Scores one entity from its online features (feature store): the version signature gives {"entity": name, '
  '"features": ["group:feature", ...]} in model input order; missing or expired values raise 22023. Linear in plain '
  'SQL, other flavors through mlops.predict (pgmlops_python).';
