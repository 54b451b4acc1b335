-- Core: version, info, shared validation and alerting helpers used by every capability.

comment on schema mlops is
  'pgmlops: feature store, model registry, prediction log, A/B experiments, drift and embeddings (SQL API, tables, BI views).';
comment on schema mlops_features is
  'pgmlops feature group tables (one history and one online table per group version) and training sets.';

-- Installed version of the SQL API (substituted by sql/build.py).
create or replace function mlops.version() returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$ select '@VERSION@'::text $$;
comment on function mlops.version() is 'Version of the pgmlops SQL API installed in this database.';

-- Versions of the parts pgmlops runs on, for support and for the CLI's status table.
create or replace function mlops.info() returns jsonb
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.jsonb_build_object(
    'pgmlops', mlops.version(),
    'install_mode', case when exists (select from pg_catalog.pg_extension where extname = 'pgmlops')
                         then 'extension' else 'bundled' end,
    'pgvector', (select extversion from pg_catalog.pg_extension where extname = 'vector'),
    'plpython', exists (select from pg_catalog.pg_language where lanname = 'plpython3u'),
    'pgmlops_python', coalesce((select extversion from pg_catalog.pg_extension where extname = 'pgmlops_python'),
                               case when pg_catalog.to_regprocedure('mlops.python_info()') is not null
                                    then mlops.version() end),
    'postgresql', pg_catalog.current_setting('server_version'))
$$;
comment on function mlops.info() is
  'Versions of pgmlops, pgvector and PostgreSQL, install mode, and whether PL/Python (pgmlops_python) is present.';

-- Names users give (groups, models, experiments, ...) become identifiers or keys:
-- one rule everywhere, checked before anything is written.
create or replace function mlops._check_name(name text, argument text) returns text
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  if name is null or name !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid %s %s: must match ^[a-z][a-z0-9_]{0,62}$',
                                  argument, coalesce(pg_catalog.quote_literal(pg_catalog.left(name, 80)), 'NULL')),
      hint = 'Use lowercase letters, digits and underscores, starting with a letter.';
  end if;
  return name;
end
$$;
comment on function mlops._check_name(text, text) is
  'Private: validates a user-given name against ^[a-z][a-z0-9_]{0,62}$ and raises 22023 naming the argument.';

-- Raises an alert once: an open alert with the same source and subject is updated, not duplicated.
create or replace function mlops._raise_alert(source text, subject text, severity text, message text,
                                              details jsonb default '{}') returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  alert_id bigint;
begin
  update mlops.alerts a set message = _raise_alert.message, details = _raise_alert.details,
                            severity = _raise_alert.severity
   where a.source = _raise_alert.source and a.subject = _raise_alert.subject and a.resolved_at is null
  returning a.id into alert_id;
  if alert_id is null then
    insert into mlops.alerts (source, subject, severity, message, details)
    values (_raise_alert.source, _raise_alert.subject, _raise_alert.severity, _raise_alert.message, _raise_alert.details)
    returning id into alert_id;
  end if;
  perform pg_catalog.pg_notify('mlops_' || _raise_alert.source,
            pg_catalog.jsonb_build_object('alert', alert_id, 'subject', _raise_alert.subject,
                                          'severity', _raise_alert.severity)::text);
  return alert_id;
end
$$;
comment on function mlops._raise_alert(text, text, text, text, jsonb) is
  'Private: opens (or refreshes) the alert for (source, subject) and NOTIFYs channel mlops_<source>.';

-- Closes open alerts for a subject (e.g. when freshness recovers).
create or replace function mlops.resolve_alerts(source text, subject text) returns integer
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  with closed as (
    update mlops.alerts a set resolved_at = pg_catalog.now()
     where a.source = resolve_alerts.source and a.subject = resolve_alerts.subject and a.resolved_at is null
    returning 1)
  select pg_catalog.count(*)::integer from closed
$$;
comment on function mlops.resolve_alerts(text, text) is 'Resolves every open alert of a source and subject; returns how many.';

create or replace view mlops.alert_log as
  select a.created_at as time, a.id, a.source, a.subject, a.severity, a.message,
         a.resolved_at, a.resolved_at is null as is_open
    from mlops.alerts a;
comment on view mlops.alert_log is 'BI view of every alert raised by pgmlops (one row per alert).';
comment on column mlops.alert_log.time is 'When the alert was raised.';
comment on column mlops.alert_log.id is 'Alert id.';
comment on column mlops.alert_log.source is 'Capability that raised it.';
comment on column mlops.alert_log.subject is 'Feature group, model or monitor the alert is about.';
comment on column mlops.alert_log.severity is 'info, warning or critical.';
comment on column mlops.alert_log.message is 'Human-readable description.';
comment on column mlops.alert_log.resolved_at is 'When it was resolved; empty while open.';
comment on column mlops.alert_log.is_open is 'True while the alert is unresolved.';
