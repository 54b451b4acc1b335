-- tail: runs last in every install. Enforces the security baseline on whatever the
-- files above created, so a forgotten clause fails the install instead of shipping.
-- Pin the lookup path for the tail's own queries (pgspot tracks SET, not set_config).
set local search_path = pg_catalog, pg_temp;
do $tail$
declare
  fn record;
begin
  -- Every function pins search_path to pg_catalog first and pg_temp last (CVE-2018-1058).
  for fn in
    select p.oid::regprocedure as sig, p.proconfig
      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'mlops' and p.prokind in ('f', 'p', 'w')
  loop
    if not exists (select from pg_catalog.unnest(fn.proconfig) c
                    where c like 'search_path=pg\_catalog,%' and c like '%pg\_temp') then
      raise exception using errcode = '42P17',
        message = pg_catalog.format('function %s does not pin search_path = pg_catalog, ..., pg_temp', fn.sig);
    end if;
  end loop;
  -- Nothing of ours is callable by PUBLIC; roles get rights in the grants files.
  for fn in
    select p.oid::regprocedure as sig, p.prokind
      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'mlops' and p.prokind in ('f', 'p', 'a', 'w')
  loop
    -- ROUTINE covers functions, procedures, aggregates and window functions alike.
    execute pg_catalog.format('revoke all on routine %s from public', fn.sig);
  end loop;
  revoke all on schema mlops, mlops_features from public;
end
$tail$;
