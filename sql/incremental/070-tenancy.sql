-- Opt-in multi-tenancy (docs/tenancy.md): which roles may act for which tenant. Nothing
-- else changes until the owner runs mlops.enable_tenancy().
create table mlops.tenant_roles (
  tenant text not null check (tenant ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  role name not null,
  created_at timestamptz not null default pg_catalog.now(),
  primary key (tenant, role)
);
comment on table mlops.tenant_roles is 'Roles allowed to act for a tenant: mlops.tenant = t is honoured only for members of a role bound to t (mlops.add_tenant_role).';
comment on column mlops.tenant_roles.tenant is 'Tenant name (value of the mlops.tenant setting).';
comment on column mlops.tenant_roles.role is 'Role whose members (session_user) may act for the tenant.';
comment on column mlops.tenant_roles.created_at is 'When the binding was added.';
select mlops._config_dump('mlops.tenant_roles');
