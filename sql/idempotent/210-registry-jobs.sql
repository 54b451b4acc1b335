-- Training-job queue: submit, claim (FOR UPDATE SKIP LOCKED, leased), progress, complete
-- (creates the model version with lineage), fail; expired leases are requeued.

-- Loads a job or raises P0002 naming the argument.
create or replace function mlops._job(job bigint) returns mlops.training_job_queue
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  j mlops.training_job_queue;
begin
  select * into j from mlops.training_job_queue q where q.id = job for update;
  if j.id is null then
    raise exception using errcode = 'P0002', message = pg_catalog.format('unknown training job %s (argument job)', coalesce(job::text, 'NULL'));
  end if;
  return j;
end
$$;
comment on function mlops._job(bigint) is 'Private: locks and returns a training job; P0002 when unknown.';

-- Queues a training job for a model.
create or replace function mlops.submit_training_job(model text, config jsonb default '{}', lease_seconds integer default 300,
                                                     max_attempts integer default 3) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  jid bigint;
begin
  if config is null or pg_catalog.jsonb_typeof(config) <> 'object' then
    raise exception using errcode = '22023', message = 'config must be a jsonb object (argument config)';
  end if;
  if lease_seconds is null or lease_seconds <= 0 then
    raise exception using errcode = '22023', message = 'lease_seconds must be > 0 (argument lease_seconds)';
  end if;
  if max_attempts is null or max_attempts <= 0 then
    raise exception using errcode = '22023', message = 'max_attempts must be > 0 (argument max_attempts)';
  end if;
  insert into mlops.training_job_queue (model_id, config, lease_seconds, max_attempts)
  values (mid, config, lease_seconds, max_attempts) returning id into jid;
  perform pg_catalog.pg_notify('mlops_training', pg_catalog.jsonb_build_object('job', jid, 'model', model)::text);
  return jid;
end
$$;
comment on function mlops.submit_training_job(text, jsonb, integer, integer) is
  'Queues a training job (config passed to the worker); a claimed job is leased for lease_seconds, renewed by '
  'report_progress, and requeued when the lease expires, up to max_attempts claims. NOTIFYs mlops_training.';

-- Requeues running jobs whose lease expired (worker died); fails them after max_attempts.
create or replace function mlops.requeue_expired_training_jobs() returns integer
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  with expired as (
    select q.id from mlops.training_job_queue q
     where q.status = 'running' and q.lease_until < pg_catalog.clock_timestamp()
       for update skip locked),
  moved as (
    update mlops.training_job_queue q
       set status = case when q.attempts >= q.max_attempts then 'failed' else 'queued' end,
           error = case when q.attempts >= q.max_attempts
                        then pg_catalog.format('lease expired on attempt %s of %s (worker %s)', q.attempts, q.max_attempts, q.worker)
                        else q.error end,
           finished_at = case when q.attempts >= q.max_attempts then pg_catalog.clock_timestamp() end,
           worker = null, lease_until = null
      from expired e where q.id = e.id
    returning q.id)
  select pg_catalog.count(*)::integer from moved
$$;
comment on function mlops.requeue_expired_training_jobs() is
  'Requeues running training jobs whose lease expired (their worker died or hung); jobs out of attempts become failed. Returns how many moved.';

-- Claims the oldest queued job (optionally of one model) for a worker, leased.
create or replace function mlops.claim_training_job(worker text, model text default null)
returns table (job bigint, model_name text, config jsonb, attempt integer, lease_until timestamptz)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := case when model is not null then mlops._model_id(model) end;
begin
  if worker is null or pg_catalog.btrim(worker) = '' then
    raise exception using errcode = '22023', message = 'worker must name the claiming worker (argument worker)';
  end if;
  perform mlops.requeue_expired_training_jobs();
  return query
  with next_job as (
    select q.id from mlops.training_job_queue q
     where q.status = 'queued' and (mid is null or q.model_id = mid)
     order by q.id
     limit 1
       for update skip locked)
  update mlops.training_job_queue q
     set status = 'running', worker = claim_training_job.worker, attempts = q.attempts + 1,
         started_at = pg_catalog.clock_timestamp(), heartbeat_at = pg_catalog.clock_timestamp(),
         lease_until = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => q.lease_seconds)
    from next_job n
   where q.id = n.id
  returning q.id, (select m.name from mlops.models m where m.id = q.model_id), q.config, q.attempts, q.lease_until;
end
$$;
comment on function mlops.claim_training_job(text, text) is
  'Claims the oldest queued training job (of model, when given) for worker with FOR UPDATE SKIP LOCKED, leased for '
  'the job''s lease_seconds; first requeues expired leases. Returns no row when the queue is empty.';

-- A running job owned by the worker (when given), or a 55000 error: the lease was lost.
create or replace function mlops._running_job(job bigint, worker text) returns mlops.training_job_queue
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  j mlops.training_job_queue := mlops._job(job);
begin
  if j.status <> 'running' or (worker is not null and j.worker is distinct from worker) then
    raise exception using errcode = '55000',
      message = pg_catalog.format('training job %s is %s%s, not running for worker %s (argument job)', job, j.status,
                                  coalesce(' by ' || j.worker, ''), coalesce(worker, '(any)')),
      hint = 'Its lease probably expired and it was requeued; stop working on it.';
  end if;
  return j;
end
$$;
comment on function mlops._running_job(bigint, text) is 'Private: locks a running job held by worker, else raises 55000 (lease lost).';

-- Progress (0..1), partial metrics and a log line from a worker; renews the lease.
create or replace function mlops.report_progress(job bigint, progress float8 default null, metrics jsonb default null,
                                                 log_line text default null, worker text default null) returns timestamptz
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  j mlops.training_job_queue;
  new_lease timestamptz;
begin
  if progress is not null and (progress <> progress or progress < 0 or progress > 1) then
    raise exception using errcode = '22023', message = pg_catalog.format('progress must be in [0, 1], got %s (argument progress)', progress);
  end if;
  if metrics is not null and (pg_catalog.jsonb_typeof(metrics) <> 'object'
     or exists (select from pg_catalog.jsonb_each(metrics) e where pg_catalog.jsonb_typeof(e.value) <> 'number')) then
    raise exception using errcode = '22023', message = 'metrics must be a jsonb object of numbers (argument metrics)';
  end if;
  j := mlops._running_job(job, worker);
  update mlops.training_job_queue q
     set progress = coalesce(report_progress.progress, q.progress), metrics = q.metrics || coalesce(report_progress.metrics, '{}'),
         heartbeat_at = pg_catalog.clock_timestamp(),
         lease_until = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => q.lease_seconds)
   where q.id = job
  returning q.lease_until into new_lease;
  if log_line is not null then
    insert into mlops.training_job_logs (job_id, worker, progress, line) values (job, j.worker, progress, log_line);
  end if;
  return new_lease;
end
$$;
comment on function mlops.report_progress(bigint, float8, jsonb, text, text) is
  'Records progress (0..1), merges partial metrics and appends a log line for a running job; renews its lease '
  '(returns the new lease end). 55000 when the job is no longer running for this worker.';

-- Finishes a job: creates the model version (lineage: training_job, config as params) and links it.
create or replace function mlops.complete_training_job(
  job bigint, metrics jsonb default '{}', artifact bytea default null, artifact_uri text default null,
  flavor text default 'custom', params jsonb default null, signature jsonb default '{}', training_set text default null,
  sha256 text default null, semver text default 'minor', tags jsonb default '{}', worker text default null) returns integer
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  j mlops.training_job_queue := mlops._running_job(job, worker);
  mname text := (select m.name from mlops.models m where m.id = j.model_id);
  vnum integer;
begin
  vnum := mlops.create_model_version(model => mname, artifact => artifact, artifact_uri => artifact_uri, flavor => flavor,
            metrics => j.metrics || coalesce(metrics, '{}'), params => coalesce(params, j.config), signature => signature,
            training_set => coalesce(training_set, j.config ->> 'training_set'), training_job => job, tags => tags,
            sha256 => sha256, semver => semver);
  update mlops.training_job_queue q
     set status = 'succeeded', progress = 1, finished_at = pg_catalog.clock_timestamp(), lease_until = null,
         metrics = q.metrics || coalesce(complete_training_job.metrics, '{}'),
         version_id = (select v.id from mlops.model_versions v where v.model_id = j.model_id and v.version = vnum)
   where q.id = job;
  return vnum;
end
$$;
comment on function mlops.complete_training_job(bigint, jsonb, bytea, text, text, jsonb, jsonb, text, text, text, jsonb, text) is
  'Completes a running job: creates the model version (training_job lineage, params default to the job config, '
  'semver bumped by minor unless given) and marks the job succeeded; returns the version number.';

-- Marks a running job failed with an error message.
create or replace function mlops.fail_training_job(job bigint, error text, worker text default null) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
begin
  if error is null or pg_catalog.btrim(error) = '' then
    raise exception using errcode = '22023', message = 'error must describe the failure (argument error)';
  end if;
  perform mlops._running_job(job, worker);
  update mlops.training_job_queue q
     set status = 'failed', error = fail_training_job.error, finished_at = pg_catalog.clock_timestamp(), lease_until = null
   where q.id = job;
  insert into mlops.training_job_logs (job_id, worker, line) values (job, worker, 'failed: ' || error);
end
$$;
comment on function mlops.fail_training_job(bigint, text, text) is 'Marks a running training job failed with an error message (no version is created).';

-- Cancels a queued or running job; its worker learns it at the next progress report (lease lost).
create or replace function mlops.cancel_training_job(job bigint, reason text default null) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  j mlops.training_job_queue := mlops._job(job);
begin
  if j.status not in ('queued', 'running') then
    raise exception using errcode = '55000',
      message = pg_catalog.format('training job %s is already %s (argument job)', job, j.status);
  end if;
  update mlops.training_job_queue q
     set status = 'cancelled', error = coalesce(reason, 'cancelled'), finished_at = pg_catalog.clock_timestamp(),
         lease_until = null
   where q.id = job;
  insert into mlops.training_job_logs (job_id, worker, line) values (job, j.worker, 'cancelled: ' || coalesce(reason, ''));
end
$$;
comment on function mlops.cancel_training_job(bigint, text) is
  'Cancels a queued or running training job; a running worker gets 55000 (lease lost) at its next report and stops.';
