-- Alerts raised by every capability (feature freshness, model degradation, drift, ...).
create table mlops.alerts (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default pg_catalog.now(),
  source text not null check (source ~ '^[a-z][a-z0-9_]{0,62}$'),
  subject text not null,
  severity text not null default 'warning' check (severity in ('info', 'warning', 'critical')),
  message text not null,
  details jsonb not null default '{}',
  resolved_at timestamptz
);
create index alerts_open_idx on mlops.alerts (source, subject) where resolved_at is null;
create index alerts_created_idx on mlops.alerts using brin (created_at);
comment on table mlops.alerts is 'Alerts raised by pgmlops capabilities (freshness, degradation, drift); resolved_at is null while open.';
comment on column mlops.alerts.id is 'Alert id.';
comment on column mlops.alerts.created_at is 'When the alert was raised.';
comment on column mlops.alerts.source is 'Capability that raised it: feature_freshness, model_degradation, drift, ...';
comment on column mlops.alerts.subject is 'What the alert is about: a feature group, model or monitor name.';
comment on column mlops.alerts.severity is 'info, warning or critical.';
comment on column mlops.alerts.message is 'Human-readable description.';
comment on column mlops.alerts.details is 'Machine-readable figures behind the alert.';
comment on column mlops.alerts.resolved_at is 'When the alert was resolved; null while open.';
select mlops._config_dump('mlops.alerts');
