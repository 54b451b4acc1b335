-- Prediction monitoring: predictions joined with feedback, BI views per model version and
-- time bucket, model_performance(), promotion-gate metrics and degradation alerts.

create or replace view mlops.prediction_outcomes as
  select p.created_at as time, p.id, p.request_id, p.model, p.model_version, p.alias, p.experiment, p.variant,
         p.unit_id, p.score, p.label, p.confidence, p.latency_ms, p.error, p.error is not null as is_error,
         f.updated_at as feedback_at, f.label as actual_label, f.value as actual_value,
         coalesce(f.correct, f.label = p.label) as correct, f.reward,
         pg_catalog.abs(f.value - p.score) as abs_error
    from mlops.predictions p
    left join mlops.prediction_feedback f on f.request_id = p.request_id;
comment on view mlops.prediction_outcomes is
  'BI view: one row per prediction with its feedback (ground truth) when known.';
comment on column mlops.prediction_outcomes.time is 'When the prediction was made.';
comment on column mlops.prediction_outcomes.id is 'Prediction id.';
comment on column mlops.prediction_outcomes.request_id is 'Request id (idempotency key).';
comment on column mlops.prediction_outcomes.model is 'Model name.';
comment on column mlops.prediction_outcomes.model_version is 'Model version number.';
comment on column mlops.prediction_outcomes.alias is 'Alias used to pick the version, if any.';
comment on column mlops.prediction_outcomes.experiment is 'A/B experiment, if any.';
comment on column mlops.prediction_outcomes.variant is 'Experiment variant, if any.';
comment on column mlops.prediction_outcomes.unit_id is 'User / entity id.';
comment on column mlops.prediction_outcomes.score is 'Predicted score or value.';
comment on column mlops.prediction_outcomes.label is 'Predicted label.';
comment on column mlops.prediction_outcomes.confidence is 'Model confidence.';
comment on column mlops.prediction_outcomes.latency_ms is 'Inference latency in milliseconds.';
comment on column mlops.prediction_outcomes.error is 'Error message of a failed prediction.';
comment on column mlops.prediction_outcomes.is_error is 'True when the prediction failed.';
comment on column mlops.prediction_outcomes.feedback_at is 'When feedback was last recorded; empty without feedback.';
comment on column mlops.prediction_outcomes.actual_label is 'True label from feedback.';
comment on column mlops.prediction_outcomes.actual_value is 'True value from feedback (regression).';
comment on column mlops.prediction_outcomes.correct is 'Feedback''s correct flag, else predicted label = true label.';
comment on column mlops.prediction_outcomes.reward is 'Reward from feedback.';
comment on column mlops.prediction_outcomes.abs_error is 'Absolute error |actual_value - score|.';

create or replace view mlops.model_performance_hourly as
  select pg_catalog.date_trunc('hour', o.time) as time, o.model, o.model_version,
         pg_catalog.count(*) as predictions,
         pg_catalog.count(*) filter (where o.is_error) as errors,
         pg_catalog.avg(o.is_error::integer)::float8 as error_rate,
         pg_catalog.percentile_cont(0.5) within group (order by o.latency_ms) as latency_p50,
         pg_catalog.percentile_cont(0.95) within group (order by o.latency_ms) as latency_p95,
         pg_catalog.percentile_cont(0.99) within group (order by o.latency_ms) as latency_p99,
         pg_catalog.avg(o.confidence) as mean_confidence,
         pg_catalog.count(o.feedback_at) as feedback_count,
         pg_catalog.avg(o.correct::integer)::float8 as accuracy,
         pg_catalog.avg(o.abs_error) as mae
    from mlops.prediction_outcomes o
   group by 1, 2, 3;
comment on view mlops.model_performance_hourly is
  'BI view: per model version and hour, prediction count, error rate, latency percentiles, confidence, accuracy and MAE.';
comment on column mlops.model_performance_hourly.time is 'Start of the hour.';
comment on column mlops.model_performance_hourly.model is 'Model name.';
comment on column mlops.model_performance_hourly.model_version is 'Model version number.';
comment on column mlops.model_performance_hourly.predictions is 'Predictions logged.';
comment on column mlops.model_performance_hourly.errors is 'Failed predictions.';
comment on column mlops.model_performance_hourly.error_rate is 'errors / predictions.';
comment on column mlops.model_performance_hourly.latency_p50 is 'Median latency (ms).';
comment on column mlops.model_performance_hourly.latency_p95 is '95th percentile latency (ms).';
comment on column mlops.model_performance_hourly.latency_p99 is '99th percentile latency (ms).';
comment on column mlops.model_performance_hourly.mean_confidence is 'Mean confidence.';
comment on column mlops.model_performance_hourly.feedback_count is 'Predictions with feedback.';
comment on column mlops.model_performance_hourly.accuracy is 'Share of correct predictions among those with feedback.';
comment on column mlops.model_performance_hourly.mae is 'Mean absolute error among those with a feedback value.';

create or replace view mlops.prediction_label_distribution as
  select pg_catalog.date_trunc('hour', p.created_at) as time, p.model, p.model_version,
         coalesce(p.label, '(none)') as label, pg_catalog.count(*) as predictions,
         (pg_catalog.count(*)::float8 / pg_catalog.sum(pg_catalog.count(*))
            over (partition by pg_catalog.date_trunc('hour', p.created_at), p.model, p.model_version))::float8 as share
    from mlops.predictions p
   group by 1, 2, 3, 4;
comment on view mlops.prediction_label_distribution is 'BI view: predicted label counts and shares per model version and hour.';
comment on column mlops.prediction_label_distribution.time is 'Start of the hour.';
comment on column mlops.prediction_label_distribution.model is 'Model name.';
comment on column mlops.prediction_label_distribution.model_version is 'Model version number.';
comment on column mlops.prediction_label_distribution.label is 'Predicted label ((none) when empty).';
comment on column mlops.prediction_label_distribution.predictions is 'Predictions with this label.';
comment on column mlops.prediction_label_distribution.share is 'Share of the hour''s predictions of this version.';

-- Per version and bucket (UTC-aligned) metrics of one model since a time.
create or replace function mlops.model_performance(model text, since timestamptz default pg_catalog.now() - interval '1 day',
                                                   bucket interval default '1 hour')
returns table ("time" timestamptz, model_version integer, predictions bigint, errors bigint, error_rate float8,
               latency_p50 float8, latency_p95 float8, latency_p99 float8, mean_confidence float8,
               feedback_count bigint, accuracy float8, mae float8)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
begin
  if bucket is null or bucket <= interval '0' or pg_catalog.date_part('month', bucket) <> 0
     or pg_catalog.date_part('year', bucket) <> 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid bucket %s: must be a positive interval without months', bucket);
  end if;
  if since is null then
    raise exception using errcode = '22023', message = 'invalid since: must not be null';
  end if;
  if not exists (select from mlops.models m where m.name = model_performance.model) then
    raise exception using errcode = '42704',
      message = pg_catalog.format('unknown model %s', coalesce(pg_catalog.quote_literal(model), 'NULL'));
  end if;
  return query
  select pg_catalog.date_bin(bucket, o.time, '2000-01-01 00:00+00'), o.model_version,
         pg_catalog.count(*), pg_catalog.count(*) filter (where o.is_error),
         pg_catalog.avg(o.is_error::integer)::float8,
         pg_catalog.percentile_cont(0.5) within group (order by o.latency_ms),
         pg_catalog.percentile_cont(0.95) within group (order by o.latency_ms),
         pg_catalog.percentile_cont(0.99) within group (order by o.latency_ms),
         pg_catalog.avg(o.confidence), pg_catalog.count(o.feedback_at),
         pg_catalog.avg(o.correct::integer)::float8, pg_catalog.avg(o.abs_error)
    from mlops.prediction_outcomes o
   where o.model = model_performance.model and o.time >= since
   group by 1, 2
   order by 1, 2;
end
$$;
comment on function mlops.model_performance(text, timestamptz, interval) is
  'Per model version and time bucket since a time: count, error rate, latency p50/p95/p99, confidence, accuracy, MAE.';

-- Promotion gate: p95 latency (ms) of a model version since a time; null without data.
create or replace function mlops.model_version_latency_p95(model text, version integer, since timestamptz)
returns float8
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.percentile_cont(0.95) within group (order by p.latency_ms)
    from mlops.predictions p
   where p.model = model_version_latency_p95.model and p.model_version = model_version_latency_p95.version
     and p.created_at >= model_version_latency_p95.since
$$;
comment on function mlops.model_version_latency_p95(text, integer, timestamptz) is
  'Promotion gate: 95th percentile latency_ms of a model version''s predictions since a time (null without data).';

-- Promotion gate: accuracy from feedback of a model version since a time; null without feedback.
create or replace function mlops.model_version_accuracy(model text, version integer, since timestamptz)
returns float8
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.avg(coalesce(f.correct, f.label = p.label)::integer)::float8
    from mlops.predictions p
    join mlops.prediction_feedback f on f.request_id = p.request_id
   where p.model = model_version_accuracy.model and p.model_version = model_version_accuracy.version
     and p.created_at >= model_version_accuracy.since
$$;
comment on function mlops.model_version_accuracy(text, integer, timestamptz) is
  'Promotion gate: share of correct predictions (from feedback) of a model version since a time (null without feedback).';

-- Compares each version served in the last `window` with the model's baseline (all versions
-- in the `baseline` period before the window): accuracy drop, p95 latency ratio, error-rate
-- rise. Raises one model_degradation alert for the model when anything degraded.
create or replace function mlops.detect_degradation(model text, "window" interval default '1 hour',
                                                    baseline interval default '7 days',
                                                    max_accuracy_drop float8 default 0.05,
                                                    max_latency_ratio float8 default 1.5,
                                                    max_error_rate_rise float8 default 0.05,
                                                    min_predictions integer default 20)
returns table (model_version integer, metric text, baseline_value float8, current_value float8, degraded boolean)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  t_now timestamptz := pg_catalog.now();
  found_rows jsonb;
begin
  if "window" is null or "window" <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid window %s: must be positive', "window");
  end if;
  if baseline is null or baseline <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid baseline %s: must be positive', baseline);
  end if;
  if not exists (select from mlops.models m where m.name = detect_degradation.model) then
    raise exception using errcode = '42704',
      message = pg_catalog.format('unknown model %s', coalesce(pg_catalog.quote_literal(model), 'NULL'));
  end if;
  create temp table if not exists mlops_degradation_result (
    model_version integer, metric text, baseline_value float8, current_value float8, degraded boolean) on commit drop;
  truncate mlops_degradation_result;
  insert into mlops_degradation_result
  with base as (
    select pg_catalog.count(*) as n, pg_catalog.count(o.correct) as nf,
           pg_catalog.avg(o.correct::integer)::float8 as acc,
           pg_catalog.percentile_cont(0.95) within group (order by o.latency_ms) as p95,
           pg_catalog.avg(o.is_error::integer)::float8 as err
      from mlops.prediction_outcomes o
     where o.model = detect_degradation.model and o.time >= t_now - "window" - baseline and o.time < t_now - "window"),
  cur as (
    select o.model_version as v, pg_catalog.count(*) as n, pg_catalog.count(o.correct) as nf,
           pg_catalog.avg(o.correct::integer)::float8 as acc,
           pg_catalog.percentile_cont(0.95) within group (order by o.latency_ms) as p95,
           pg_catalog.avg(o.is_error::integer)::float8 as err
      from mlops.prediction_outcomes o
     where o.model = detect_degradation.model and o.time >= t_now - "window" and o.time <= t_now
     group by o.model_version)
  select c.v, m.metric, m.b, m.c, m.bad
    from cur c cross join base b
    cross join lateral (values
      ('accuracy', b.acc, c.acc, b.nf >= min_predictions and c.nf >= min_predictions and c.acc < b.acc - max_accuracy_drop),
      ('latency_p95', b.p95, c.p95, b.n >= min_predictions and c.n >= min_predictions and c.p95 > b.p95 * max_latency_ratio),
      ('error_rate', b.err, c.err, b.n >= min_predictions and c.n >= min_predictions and c.err > b.err + max_error_rate_rise)
    ) as m(metric, b, c, bad)
   where b.n > 0;
  update mlops_degradation_result r set degraded = coalesce(r.degraded, false);
  select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)) into found_rows from mlops_degradation_result r where r.degraded;
  if found_rows is not null then
    perform mlops._raise_alert('model_degradation', detect_degradation.model, 'warning',
      pg_catalog.format('model %s degraded in the last %s against the %s before: %s', detect_degradation.model, "window",
                        baseline, (select pg_catalog.string_agg(pg_catalog.format('v%s %s %s -> %s', r.model_version,
                                     r.metric, pg_catalog.round(r.baseline_value::numeric, 4),
                                     pg_catalog.round(r.current_value::numeric, 4)), '; ')
                                     from mlops_degradation_result r where r.degraded)),
      pg_catalog.jsonb_build_object('window', "window"::text, 'baseline', baseline::text, 'degraded', found_rows));
  end if;
  return query select r.model_version, r.metric, r.baseline_value, r.current_value, r.degraded
                 from mlops_degradation_result r order by 1, 2;
end
$$;
comment on function mlops.detect_degradation(text, interval, interval, float8, float8, float8, integer) is
  'Compares each version served in the last window with the model''s baseline period before it (accuracy, p95 latency, '
  'error rate) and raises a model_degradation alert for the model when a threshold is crossed.';
