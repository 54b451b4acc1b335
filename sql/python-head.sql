-- python-head: runs first in every install of pgmlops_python.
-- CVE-2018-1058: the head's own queries must not resolve operators (e.g. oid = regclass)
-- through the caller's search_path; the DO block below widens it to the vector schema.
set local search_path = pg_catalog, pg_temp;
do $head$
declare
  mode text := coalesce(nullif(pg_catalog.current_setting('pgmlops.install_mode', true), ''), 'extension');
  vector_schema name;
begin
  if pg_catalog.to_regclass('mlops._migration') is null then
    raise exception using errcode = '58P01', message = 'pgmlops_python requires pgmlops',
      hint = 'CREATE EXTENSION pgmlops_python CASCADE, or pgmlops install --python.';
  end if;
  if mode = 'extension' and not exists (select from pg_catalog.pg_extension where extname = 'pgmlops_python') then
    raise exception using errcode = '55000',
      message = 'this script is run by CREATE EXTENSION pgmlops_python or by pgmlops install, not directly';
  end if;
  if mode = 'bundled' and exists (select from pg_catalog.pg_extension where extname = 'pgmlops_python') then
    raise exception using errcode = '55000',
      message = 'pgmlops_python is already installed as an extension in this database';
  end if;
  if not exists (select from pg_catalog.pg_language where lanname = 'plpython3u') then
    raise exception using errcode = '58P01', message = 'pgmlops_python requires plpython3u',
      hint = 'CREATE EXTENSION plpython3u (package postgresql-plpython3-15).';
  end if;
  select n.nspname into vector_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'vector';
  perform pg_catalog.set_config('search_path', pg_catalog.format('pg_catalog, %I, pg_temp', vector_schema), true);
  perform pg_catalog.set_config('pgmlops.install_mode', mode, true);
  perform pg_catalog.set_config('client_min_messages', 'warning', true);
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmlops install'));
end
$head$;
