-- head: runs first in every install of pgmlops (CREATE EXTENSION, ALTER EXTENSION UPDATE,
-- pgmlops.install(), alembic). It refuses mixed install modes and hostile pre-created
-- objects, pins search_path for the rest of the script, and creates the ledger.
-- CVE-2018-1058: the head's own queries must not resolve operators (e.g. oid = regclass)
-- through the caller's search_path; the DO block below widens it to the vector schema.
set local search_path = pg_catalog, pg_temp;
do $head$
declare
  mode text := coalesce(nullif(pg_catalog.current_setting('pgmlops.install_mode', true), ''), 'extension');
  in_extension boolean := exists (select from pg_catalog.pg_extension where extname = 'pgmlops');
  vector_schema name;
  schema_oid oid;
begin
  if mode not in ('extension', 'bundled') then
    raise exception using errcode = '22023', message = pg_catalog.format('unknown pgmlops.install_mode %L', mode);
  end if;
  if mode = 'extension' and not in_extension then
    raise exception using errcode = '55000',
      message = 'this script is run by CREATE EXTENSION pgmlops or by pgmlops install, not directly';
  end if;
  if mode = 'bundled' and in_extension then
    raise exception using errcode = '55000',
      message = 'pgmlops is already installed as an extension in this database',
      hint = 'Use ALTER EXTENSION pgmlops UPDATE instead of the bundled install.';
  end if;

  select n.nspname into vector_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'vector';
  if vector_schema is null then
    raise exception using errcode = '58P01', message = 'pgmlops requires the pgvector extension',
      hint = 'CREATE EXTENSION vector (or CREATE EXTENSION pgmlops CASCADE).';
  end if;

  -- CVE-2022-2625: never adopt a schema somebody else created.
  select oid into schema_oid from pg_catalog.pg_namespace where nspname = 'mlops';
  if mode = 'extension' and pg_catalog.to_regclass('mlops._migration') is not null
     and not exists (select from pg_catalog.pg_depend d
                      where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                        and d.objid = pg_catalog.to_regclass('mlops._migration') and d.deptype = 'e') then
    raise exception using errcode = '42P06',
      message = 'schema mlops holds a pgmlops installation that does not belong to extension pgmlops',
      hint = 'It was installed with pgmlops install (bundled mode); upgrade it with pgmlops install.';
  end if;
  if mode = 'extension' and pg_catalog.to_regclass('mlops._migration') is null then
    -- CREATE EXTENSION reuses an existing schema named in the control file: refuse one
    -- owned by someone else, or one already holding objects that are not ours.
    if (select nspowner from pg_catalog.pg_namespace where oid = schema_oid)
       <> (select oid from pg_catalog.pg_roles where rolname = current_user)
       or exists (select from pg_catalog.pg_class c where c.relnamespace = schema_oid
                   and not exists (select from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                     and d.objid = c.oid and d.deptype in ('e', 'a', 'i')))
       or exists (select from pg_catalog.pg_proc p where p.pronamespace = schema_oid
                   and not exists (select from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     and d.objid = p.oid and d.deptype = 'e'))
    then
      raise exception using errcode = '42P06',
        message = 'schema mlops holds objects that do not belong to extension pgmlops, or has another owner',
        hint = 'pgmlops was installed with pgmlops install (bundled mode), or someone created mlops by hand.';
    end if;
  elsif mode = 'bundled' then
    if schema_oid is null then
      create schema mlops;
    elsif (select nspowner from pg_catalog.pg_namespace where oid = schema_oid)
          <> (select oid from pg_catalog.pg_roles where rolname = current_user) then
      raise exception using errcode = '42501',
        message = 'schema mlops exists and is owned by another role',
        hint = 'Drop it or install as its owner; pgmlops never adopts a schema it did not create.';
    end if;
  end if;
  -- Same rule for the feature tables' schema: never adopt one another role created.
  select oid into schema_oid from pg_catalog.pg_namespace where nspname = 'mlops_features';
  if schema_oid is null then
    create schema mlops_features;
  elsif (select nspowner from pg_catalog.pg_namespace where oid = schema_oid)
        <> (select oid from pg_catalog.pg_roles where rolname = current_user) then
    raise exception using errcode = '42501',
      message = 'schema mlops_features exists and is owned by another role',
      hint = 'Drop it or install as its owner; pgmlops never adopts a schema it did not create.';
  end if;

  -- Functions declare "set search_path = pg_catalog, pg_temp", or "set search_path from
  -- current" when they need pgvector's operators: this is the value they capture.
  perform pg_catalog.set_config('search_path', pg_catalog.format('pg_catalog, %I, pg_temp', vector_schema), true);
  perform pg_catalog.set_config('pgmlops.install_mode', mode, true);
  perform pg_catalog.set_config('check_function_bodies', 'on', true);
  perform pg_catalog.set_config('client_min_messages', 'warning', true);
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmlops install'));

  foreach mode in array array['mlops_reader', 'mlops_writer', 'mlops_admin'] loop
    if not exists (select from pg_catalog.pg_roles where rolname = mode) then
      execute pg_catalog.format('create role %I nologin', mode);
    end if;
  end loop;
  if not pg_catalog.pg_has_role('mlops_writer', 'mlops_reader', 'member') then
    grant mlops_reader to mlops_writer;
  end if;
  if not pg_catalog.pg_has_role('mlops_admin', 'mlops_writer', 'member') then
    grant mlops_writer to mlops_admin;
  end if;
end
$head$;

create table if not exists mlops._migration (
  name text primary key,
  sha256 text not null,
  applied_at timestamptz not null default pg_catalog.now()
);
comment on table mlops._migration is
  'Ledger of run-once incremental migrations applied to this database (written by the install script).';

-- Registers a user-filled table (and its sequences) with pg_dump, but only inside
-- CREATE/ALTER EXTENSION, where pg_extension_config_dump is allowed.
create or replace function mlops._config_dump(tbl regclass) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp as $$
declare
  seq regclass;
begin
  if pg_catalog.current_setting('pgmlops.install_mode', true) is distinct from 'extension' then
    return;
  end if;
  perform pg_catalog.pg_extension_config_dump(tbl, '');
  for seq in
    select d.objid::regclass from pg_catalog.pg_depend d
     where d.refobjid = tbl and d.classid = 'pg_catalog.pg_class'::regclass
       and d.deptype in ('a', 'i') and (select relkind from pg_catalog.pg_class where oid = d.objid) = 'S'
  loop
    perform pg_catalog.pg_extension_config_dump(seq, '');
  end loop;
end
$$;
comment on function mlops._config_dump(regclass) is
  'Private: marks a user-filled table and its sequences for pg_dump when running inside CREATE EXTENSION.';
