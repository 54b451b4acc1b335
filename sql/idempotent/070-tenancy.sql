-- Opt-in multi-tenancy (docs/tenancy.md). mlops.enable_tenancy(), run once by a superuser,
-- gives every user-data table of mlops and mlops_features a tenant column (default: the
-- session's tenant), row-level security with FORCE, unique keys that include the tenant,
-- security_invoker views where the readers may read the base tables, and a non-superuser
-- owner for tables, views and SECURITY DEFINER functions (a superuser bypasses RLS even
-- with FORCE). Tables created later in mlops_features (feature groups, training sets) are
-- covered by the event trigger mlops_tenancy. Without enable_tenancy nothing here acts.

-- The tenant this session acts for: the mlops.tenant setting, honoured only when the session
-- user is a member of a role bound to that tenant (mlops.tenant_roles); otherwise null, which
-- the policies turn into "no rows". Security definer: tenant roles need no right on tenant_roles.
create or replace function mlops.current_tenant() returns text
language plpgsql stable security definer parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  wanted text := nullif(pg_catalog.current_setting('mlops.tenant', true), '');
begin
  -- plpgsql, not sql: a non-inlinable SQL function is planned again in every statement
  if wanted is null then
    return null;
  end if;
  if exists (select from mlops.tenant_roles r
              where r.tenant = wanted
                and case when pg_catalog.to_regrole(pg_catalog.quote_ident(r.role)) is null then false
                         else pg_catalog.pg_has_role(session_user, r.role, 'member') end) then
    return wanted;
  end if;
  return null;
end
$$;
comment on function mlops.current_tenant() is
  'The tenant this session acts for: setting mlops.tenant when session_user is a member of a role bound to it in mlops.tenant_roles, else null.';

-- Default of every tenant column: the session's tenant, or a clear error naming what is missing.
create or replace function mlops._tenant_default() returns text
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  t text := mlops.current_tenant();
  wanted text := nullif(pg_catalog.current_setting('mlops.tenant', true), '');
begin
  if t is not null then
    return t;
  end if;
  if wanted is null then
    raise exception using errcode = '22023',
      message = 'mlops.tenant is not set: tenancy is enabled, every write needs a tenant',
      hint = 'set mlops.tenant = ''<tenant>'' (e.g. alter role ... set mlops.tenant = ...).';
  end if;
  raise exception using errcode = '42501',
    message = pg_catalog.format('role %s may not act for tenant %s (mlops.tenant_roles)', session_user, wanted),
    hint = 'The owner binds roles to tenants with mlops.add_tenant_role(tenant, role).';
end
$$;
comment on function mlops._tenant_default() is
  'Private: default of tenant columns under tenancy; the session''s tenant or an error (22023 unset, 42501 not allowed).';

-- Binds a role to a tenant: its members may set mlops.tenant to it. Owner only (no grant).
create or replace function mlops.add_tenant_role(tenant text, role regrole) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
begin
  if tenant is null or tenant !~ '^[a-z0-9][a-z0-9_-]{0,62}$' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid tenant %s: 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter or digit',
                                  coalesce(pg_catalog.quote_literal(tenant), 'NULL'));
  end if;
  if role is null then
    raise exception using errcode = '22004', message = 'role must not be NULL';
  end if;
  insert into mlops.tenant_roles (tenant, role)
  select add_tenant_role.tenant, r.rolname from pg_catalog.pg_roles r where r.oid = add_tenant_role.role
  on conflict on constraint tenant_roles_pkey do nothing;
end
$$;
comment on function mlops.add_tenant_role(text, regrole) is
  'Lets members of role act for tenant (set mlops.tenant = tenant). Run by the owner; see docs/tenancy.md.';

-- Whether mlops.enable_tenancy() ran in this database.
create or replace function mlops.tenancy_enabled() returns boolean
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select exists (select from pg_catalog.pg_event_trigger e where e.evtname = 'mlops_tenancy')
$$;
comment on function mlops.tenancy_enabled() is 'True once mlops.enable_tenancy() has run in this database.';

-- Tables that stay shared (bookkeeping, not user data) or are tenancy's own.
create or replace function mlops._tenancy_excluded(tbl regclass) returns boolean
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select c.relispartition or c.relname like '\_%'
         or (n.nspname = 'mlops' and c.relname in ('tenant_roles', 'prediction_partitions', 'prediction_settings'))
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = tbl
$$;
comment on function mlops._tenancy_excluded(regclass) is
  'Private: tables left shared under tenancy (partitions, private _tables, tenant_roles, prediction partition bookkeeping and settings).';

-- A column whose values are unique across tenants by construction: identity, sequence
-- default, or a single-column foreign key to an identity column. Keys holding one need no tenant.
create or replace function mlops._tenancy_global_column(tbl regclass, col smallint) returns boolean
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select exists (select from pg_catalog.pg_attribute a where a.attrelid = tbl and a.attnum = col and a.attidentity <> '')
      or exists (select from pg_catalog.pg_attrdef d where d.adrelid = tbl and d.adnum = col
                    and pg_catalog.pg_get_expr(d.adbin, d.adrelid) like 'nextval(%')
      or exists (select from pg_catalog.pg_constraint f
                   join pg_catalog.pg_attribute ra on ra.attrelid = f.confrelid and ra.attnum = f.confkey[1]
                  where f.conrelid = tbl and f.contype = 'f' and f.conkey = array[col] and ra.attidentity <> '')
$$;
comment on function mlops._tenancy_global_column(regclass, smallint) is
  'Private: whether a column is unique across tenants by construction (identity, sequence default, FK to an identity).';

-- Tenant column, RLS (FORCE) and policy on one table. existing: tenant of rows already there
-- (null: the session's tenant). pin: rows may only ever be written for this tenant (tables of
-- one feature group); null for shared tables.
create or replace function mlops._tenancy_table(tbl regclass, existing text, pin text) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  col record;
begin
  select a.atttypid::regtype::text as typ, pg_catalog.pg_get_expr(d.adbin, d.adrelid) as def into col
    from pg_catalog.pg_attribute a left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
   where a.attrelid = tbl and a.attname = 'tenant' and not a.attisdropped;
  if found and (col.typ <> 'text' or col.def is distinct from 'mlops._tenant_default()') then
    raise exception using errcode = '42701',
      message = pg_catalog.format('table %s already has a column named tenant: reserved under tenancy', tbl),
      hint = 'Rename the column (a feature may not be called tenant once tenancy is enabled).';
  end if;
  if not found then
    execute pg_catalog.format('alter table %s add column tenant text', tbl);
    execute pg_catalog.format('update %s set tenant = %s', tbl,
                              coalesce(pg_catalog.quote_literal(existing), 'mlops._tenant_default()'));
    execute pg_catalog.format('alter table %s alter column tenant set default mlops._tenant_default(), '
                              'alter column tenant set not null', tbl);
    execute pg_catalog.format('comment on column %s.tenant is %L', tbl,
                              'Tenant owning the row (mlops.enable_tenancy; default: the session''s mlops.tenant).');
  end if;
  execute pg_catalog.format('alter table %s enable row level security, force row level security', tbl);
  if exists (select from pg_catalog.pg_policy p where p.polrelid = tbl and p.polname = 'mlops_tenant') then
    execute pg_catalog.format('drop policy mlops_tenant on %s', tbl);
  end if;
  execute pg_catalog.format('create policy mlops_tenant on %s using (tenant = (select mlops.current_tenant())) '
                            'with check (tenant = (select mlops.current_tenant())%s)', tbl,
                            case when pin is null then '' else pg_catalog.format(' and tenant = %L', pin) end);
end
$$;
comment on function mlops._tenancy_table(regclass, text, text) is
  'Private: adds the tenant column, enables and forces row-level security with policy mlops_tenant on one table.';

-- Rebuilds the primary and unique keys of a shared table that hold no cross-tenant unique
-- column as (tenant, ...) under the same names (ON CONFLICT ON CONSTRAINT keeps working),
-- with the foreign keys pointing at them. Returns the number of keys rebuilt.
create or replace function mlops._tenancy_keys(tbl regclass) returns integer
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  tenant_col smallint := (select a.attnum from pg_catalog.pg_attribute a where a.attrelid = tbl and a.attname = 'tenant');
  k record;
  fk record;
  fks text[];
  stmt text;
  cols text;
  n integer := 0;
begin
  for k in
    select c.conname, c.contype, c.conkey, c.conindid from pg_catalog.pg_constraint c
     where c.conrelid = tbl and c.contype in ('p', 'u') and not tenant_col = any (c.conkey)
       and not exists (select from pg_catalog.unnest(c.conkey) u(col) where mlops._tenancy_global_column(tbl, u.col))
  loop
    fks := '{}';
    for fk in
      select f.conname, f.conrelid::regclass as rel, pg_catalog.pg_get_constraintdef(f.oid) as def
        from pg_catalog.pg_constraint f where f.contype = 'f' and f.confrelid = tbl and f.conindid = k.conindid
    loop
      fks := fks || pg_catalog.format('alter table %s add constraint %I %s', fk.rel, fk.conname,
        pg_catalog.regexp_replace(pg_catalog.regexp_replace(fk.def, '^FOREIGN KEY \(', 'FOREIGN KEY (tenant, '),
                                  ' REFERENCES ([^(]+)\(', ' REFERENCES \1(tenant, '));
      execute pg_catalog.format('alter table %s drop constraint %I', fk.rel, fk.conname);
    end loop;
    select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by u.n) into cols
      from pg_catalog.unnest(k.conkey) with ordinality u(col, n)
      join pg_catalog.pg_attribute a on a.attrelid = tbl and a.attnum = u.col;
    execute pg_catalog.format('alter table %s drop constraint %I, add constraint %I %s (tenant, %s)', tbl, k.conname,
                              k.conname, case k.contype when 'p' then 'primary key' else 'unique' end, cols);
    foreach stmt in array fks loop
      execute stmt;
    end loop;
    n := n + 1;
  end loop;
  -- unique indexes without a constraint (partial ones, e.g. "one current version per name")
  for k in
    select i.indexrelid::regclass as idx, pg_catalog.pg_get_indexdef(i.indexrelid) as def
      from pg_catalog.pg_index i
     where i.indrelid = tbl and i.indisunique and i.indexprs is null
       and not exists (select from pg_catalog.pg_constraint c where c.conindid = i.indexrelid)
       and not tenant_col = any (i.indkey::smallint[])
       and not exists (select from pg_catalog.unnest(i.indkey::smallint[]) u(col) where mlops._tenancy_global_column(tbl, u.col))
  loop
    execute pg_catalog.format('drop index %s', k.idx);
    execute pg_catalog.regexp_replace(k.def, ' USING (\w+) \(', ' USING \1 (tenant, ');
    n := n + 1;
  end loop;
  return n;
end
$$;
comment on function mlops._tenancy_keys(regclass) is
  'Private: rebuilds keys without a cross-tenant unique column as (tenant, ...) under the same names, with their foreign keys.';

-- Event trigger: a table created in mlops_features (feature group, training set, a table of
-- the user's) belongs to the creating tenant; a table a later version adds to mlops is shared.
create or replace function mlops._tenancy_ddl() returns event_trigger
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  cmd record;
begin
  for cmd in
    select c.objid::regclass as tbl, c.schema_name from pg_catalog.pg_event_trigger_ddl_commands() c
     where c.object_type = 'table' and c.schema_name in ('mlops', 'mlops_features')
  loop
    continue when mlops._tenancy_excluded(cmd.tbl);
    if cmd.schema_name = 'mlops_features' then
      perform mlops._tenancy_table(cmd.tbl, null, mlops._tenant_default());
    else
      perform mlops._tenancy_table(cmd.tbl, null, null);
      perform mlops._tenancy_keys(cmd.tbl);
    end if;
  end loop;
end
$$;
comment on function mlops._tenancy_ddl() is
  'Private: event trigger mlops_tenancy; applies tenancy to tables created in mlops_features (pinned to the creating tenant) and mlops.';

-- Makes registry, features, predictions, experiments (every user-data table of mlops and
-- mlops_features) tenant-scoped. Run once, as a superuser, before tenants connect; rows that
-- exist go to existing_tenant. owner (create it first: nologin, not superuser, no BYPASSRLS)
-- becomes the owner of our schemas, tables, views and SECURITY DEFINER functions, so FORCE
-- applies to them. A one-way switch of the whole database: owner has no default on purpose.
create or replace function mlops.enable_tenancy(owner regrole, existing_tenant text default 'default') returns jsonb
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  r record;
  tables integer := 0;
  keys integer := 0;
  invoker integer := 0;
  owner_views integer := 0;
  definers integer := 0;
begin
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    raise exception using errcode = '42501', message = 'enable_tenancy must be run by a superuser',
      hint = 'It creates an event trigger and changes owners; see docs/tenancy.md.';
  end if;
  if owner is null then
    raise exception using errcode = '22004', message = 'owner must not be NULL',
      hint = 'create role mlops_owner nologin; select mlops.enable_tenancy(owner => ''mlops_owner'');';
  end if;
  if exists (select from pg_catalog.pg_roles where oid = owner and (rolsuper or rolbypassrls)) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid owner %s: a superuser or BYPASSRLS role is never subject to row-level security', owner);
  end if;
  if existing_tenant is null or existing_tenant !~ '^[a-z0-9][a-z0-9_-]{0,62}$' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid existing_tenant %s: 1 to 63 characters of a-z, 0-9, _ and -',
                                  coalesce(pg_catalog.quote_literal(existing_tenant), 'NULL'));
  end if;
  if mlops.tenancy_enabled() then
    raise exception using errcode = '55000', message = 'tenancy is already enabled in this database';
  end if;
  execute pg_catalog.format('grant mlops_reader to %s', owner);
  execute pg_catalog.format('grant execute on function mlops.current_tenant(), mlops._tenant_default() to %s', owner);
  -- the event trigger runs as whoever creates a table (the owner making a partition, an admin
  -- creating a feature group): its helpers only alter tables that role owns anyway
  execute pg_catalog.format('grant execute on function mlops._tenancy_excluded(regclass), '
                            'mlops._tenancy_global_column(regclass, smallint), mlops._tenancy_table(regclass, text, text), '
                            'mlops._tenancy_keys(regclass) to %s, mlops_admin', owner);

  -- owners first (ALTER TABLE OWNER carries indexes and owned sequences)
  execute pg_catalog.format('alter schema mlops owner to %s', owner);
  execute pg_catalog.format('alter schema mlops_features owner to %s', owner);
  for r in
    select c.oid::regclass as rel, c.relkind from pg_catalog.pg_class c
     where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace)
       and c.relkind in ('r', 'p', 'v', 'm', 'f')
  loop
    execute pg_catalog.format('alter %s %s owner to %s',
                              case r.relkind when 'v' then 'view' when 'm' then 'materialized view'
                                             when 'f' then 'foreign table' else 'table' end, r.rel, owner);
  end loop;
  for r in
    select c.oid::regclass as rel from pg_catalog.pg_class c
     where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace) and c.relkind = 'S'
       and not exists (select from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_class'::regclass
                          and d.objid = c.oid and d.deptype in ('a', 'i'))
  loop
    execute pg_catalog.format('alter sequence %s owner to %s', r.rel, owner);
  end loop;
  for r in
    select p.oid::regprocedure as fn from pg_catalog.pg_proc p
     where p.pronamespace = 'mlops'::regnamespace and p.prosecdef
  loop
    execute pg_catalog.format('alter function %s owner to %s', r.fn, owner);
    definers := definers + 1;
  end loop;

  -- tenant column + RLS on every table, then keys (foreign keys need the column on both sides)
  for r in
    select c.oid::regclass as rel, c.relnamespace = 'mlops_features'::regnamespace as pinned
      from pg_catalog.pg_class c
     where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace) and c.relkind in ('r', 'p')
       and not mlops._tenancy_excluded(c.oid::regclass)
     order by c.oid
  loop
    perform mlops._tenancy_table(r.rel, existing_tenant, case when r.pinned then existing_tenant end);
    tables := tables + 1;
  end loop;
  for r in
    select c.oid::regclass as rel from pg_catalog.pg_class c
     where c.relnamespace = 'mlops'::regnamespace and c.relkind in ('r', 'p')
       and not mlops._tenancy_excluded(c.oid::regclass)
     order by c.oid
  loop
    keys := keys + mlops._tenancy_keys(r.rel);
  end loop;

  -- views: security_invoker where every role that may read the view may read what it reads;
  -- the others keep running as the owner, who is subject to the policies (FORCE, not superuser).
  for r in
    select c.oid::regclass as rel,
           not exists (select from pg_catalog.pg_rewrite w
                         join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = w.oid
                                                   and d.refclassid = 'pg_catalog.pg_class'::regclass
                         join pg_catalog.pg_class b on b.oid = d.refobjid and b.relkind in ('r', 'p', 'v', 'm', 'f')
                         cross join (values ('mlops_reader'), ('mlops_writer'), ('mlops_admin')) g(role)
                        where w.ev_class = c.oid and d.refobjid <> c.oid
                          and pg_catalog.has_table_privilege(g.role, c.oid, 'select')
                          and not pg_catalog.has_table_privilege(g.role, d.refobjid, 'select')) as ok
      from pg_catalog.pg_class c
     where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace) and c.relkind = 'v'
  loop
    if r.ok then
      execute pg_catalog.format('alter view %s set (security_invoker = true)', r.rel);
      invoker := invoker + 1;
    else
      owner_views := owner_views + 1;
    end if;
  end loop;

  -- cluster-wide operations stay with the superuser: dropping partitions drops every tenant's rows
  for r in
    select p.oid::regprocedure as fn from pg_catalog.pg_proc p
     where p.pronamespace = 'mlops'::regnamespace
       and p.proname in ('drop_predictions_before', 'maintain_predictions', 'configure_predictions')
  loop
    execute pg_catalog.format('revoke execute on function %s from mlops_reader, mlops_writer, mlops_admin', r.fn);
  end loop;

  create event trigger mlops_tenancy on ddl_command_end
    when tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    execute function mlops._tenancy_ddl();
  comment on event trigger mlops_tenancy is
    'pgmlops tenancy: applies tenant column and row-level security to tables created in mlops_features and mlops.';
  return pg_catalog.jsonb_build_object('tables', tables, 'keys_rebuilt', keys, 'views_security_invoker', invoker,
                                       'views_run_as_owner', owner_views, 'security_definer_functions', definers,
                                       'owner', owner::text, 'existing_tenant', existing_tenant);
end
$$;
comment on function mlops.enable_tenancy(regrole, text) is
  'Opt-in multi-tenancy: tenant column + FORCE row-level security on every user table of mlops and mlops_features, '
  'keys including the tenant, security_invoker views, non-superuser owner. Superuser only; see docs/tenancy.md.';

grant execute on function mlops.current_tenant(), mlops._tenant_default(), mlops.tenancy_enabled() to mlops_reader;
