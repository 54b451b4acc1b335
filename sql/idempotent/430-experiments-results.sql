-- Experiments: analysis from the prediction log and feedback, conclusion with winner
-- promotion through the registry, and BI views.

-- Per variant: units (sticky assignments), exposures (logged predictions), the primary
-- metric (conversion/accuracy: rate; reward/value: mean per unit), lift vs the control with
-- a 95% CI, p-value (two-proportion z-test or Welch t-test), chance to beat control, SRM.
create or replace function mlops.experiment_results(experiment text)
returns table (variant text, is_control boolean, weight float8, units bigint, exposures bigint, metric text,
               metric_n bigint, metric_mean float8, metric_sd float8, lift float8, lift_ci_low float8,
               lift_ci_high float8, p_value float8, chance_to_beat_control float8, srm_p_value float8,
               srm_warning boolean, days_running float8)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments := mlops._experiment(experiment);
  binary_metric boolean := e.primary_metric in ('conversion', 'accuracy');
  srm record;
  c record;
  r record;
  se_c float8;
  se float8;
  diff float8;
begin
  select * into srm from mlops.srm_test(
    (select array_agg((select pg_catalog.count(*) from mlops.experiment_assignments a
                        where a.experiment_id = e.id and a.variant = v.position) order by v.position)
       from mlops.experiment_variants v where v.experiment_id = e.id),
    (select array_agg(greatest(v.weight, 1e-12) order by v.position) from mlops.experiment_variants v
      where v.experiment_id = e.id));
  for r in
  with pf as (
    select p.variant as vname, p.unit_id, f.correct, f.reward, f.value
      from mlops.predictions p left join mlops.prediction_feedback f on f.request_id = p.request_id
     where p.experiment = e.name),
  per_unit as (  -- union + group by instead of a join: no plan depends on row estimates
    select u.position, u.unit_id,
           coalesce(bool_or(u.converted), false)::integer::float8 as conversion,
           coalesce(sum(u.reward), 0) as reward, coalesce(sum(u.value), 0) as value
      from (select a.variant as position, a.unit_id, true as assigned, null::boolean as converted,
                   null::float8 as reward, null::float8 as value
              from mlops.experiment_assignments a where a.experiment_id = e.id
            union all
            select v.position, pf.unit_id collate "C", false,
                   coalesce(pf.reward, pf.value, pf.correct::integer::float8) > 0, pf.reward, pf.value
              from pf join mlops.experiment_variants v on v.experiment_id = e.id and v.name = pf.vname
             where pf.unit_id is not null) u
     group by u.position, u.unit_id
    having bool_or(u.assigned)),
  unit_stats as (
    select u.position, pg_catalog.count(*) as n,
           avg(case e.primary_metric when 'reward' then u.reward when 'value' then u.value else u.conversion end) as mean,
           stddev_samp(case e.primary_metric when 'reward' then u.reward when 'value' then u.value else u.conversion end) as sd
      from per_unit u group by u.position),
  accuracy as (
    select pf.vname, pg_catalog.count(*) as n, avg(pf.correct::integer::float8) as mean,
           stddev_samp(pf.correct::integer::float8) as sd
      from pf where pf.correct is not null group by pf.vname),
  exposures as (select pf.vname, pg_catalog.count(*) as n from pf group by pf.vname)
  select v.position, v.name, v.weight, coalesce(us.n, 0) as units, coalesce(x.n, 0) as exposures,
         case when e.primary_metric = 'accuracy' then coalesce(acc.n, 0) else coalesce(us.n, 0) end as n,
         case when e.primary_metric = 'accuracy' then acc.mean else us.mean end as mean,
         case when e.primary_metric = 'accuracy' then acc.sd else us.sd end as sd
    from mlops.experiment_variants v
    left join unit_stats us on us.position = v.position
    left join accuracy acc on acc.vname = v.name
    left join exposures x on x.vname = v.name
   where v.experiment_id = e.id
   order by v.position
  loop
    if r.position = 0 then  -- the control comes first
      c := r;
      se_c := case when c.n > 0 then
                   case when binary_metric then pg_catalog.sqrt(c.mean * (1 - c.mean) / c.n) else c.sd / pg_catalog.sqrt(c.n) end end;
    end if;
    variant := r.name; is_control := r.position = 0; weight := r.weight; units := r.units; exposures := r.exposures;
    metric := e.primary_metric; metric_n := r.n; metric_mean := r.mean; metric_sd := r.sd;
    lift := null; lift_ci_low := null; lift_ci_high := null; p_value := null; chance_to_beat_control := null;
    if r.position > 0 and c.n > 0 and r.n > 0 then
      se := case when binary_metric then pg_catalog.sqrt(r.mean * (1 - r.mean) / r.n) else r.sd / pg_catalog.sqrt(r.n) end;
      diff := r.mean - c.mean;
      if c.mean <> 0 then
        lift := diff / c.mean;
        lift_ci_low := (diff - 1.959963984540054 * pg_catalog.sqrt(se * se + se_c * se_c)) / pg_catalog.abs(c.mean);
        lift_ci_high := (diff + 1.959963984540054 * pg_catalog.sqrt(se * se + se_c * se_c)) / pg_catalog.abs(c.mean);
      end if;
      if binary_metric then
        p_value := (mlops.two_proportion_ztest(pg_catalog.round(c.mean * c.n)::bigint, c.n,
                                               pg_catalog.round(r.mean * r.n)::bigint, r.n)).p_value;
      elsif c.n >= 2 and r.n >= 2 then
        p_value := (mlops.welch_ttest(c.mean, c.sd, c.n, r.mean, r.sd, r.n)).p_value;
      end if;
      chance_to_beat_control := mlops.chance_to_beat(c.mean, se_c, r.mean, se);
    end if;
    srm_p_value := srm.p_value;
    srm_warning := coalesce(srm.p_value < 0.001, false);
    days_running := case when e.started_at is not null then
                      extract(epoch from coalesce(e.completed_at, pg_catalog.now()) - e.started_at)::float8 / 86400 end;
    return next;
  end loop;
end
$$;
comment on function mlops.experiment_results(text) is
  'Per variant: units, exposures, primary metric (n, mean, sd), lift vs control with 95% CI, p-value (z-test for '
  'conversion/accuracy, Welch for reward/value), chance to beat control, SRM p-value and warning (p < 0.001), days running.';

-- Concludes an experiment: records the results and winner (given, or automatically the best
-- variant beating the control at p < 0.05), and with promote moves the model's alias (champion)
-- to the winner's version through mlops.set_alias (its promotion policy applies). A sample
-- ratio mismatch blocks automatic promotion.
create or replace function mlops.conclude_experiment(experiment text, winner text default null,
                                                     promote boolean default true, alias text default 'champion',
                                                     reason text default null) returns jsonb
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments := mlops._experiment(experiment);
  results jsonb;
  chosen text := winner;
  auto boolean := winner is null;
  srm_failed boolean;
  vnum integer;
  blocked text;
  position integer;
begin
  perform from mlops.experiments x where x.id = e.id for update;
  select * into e from mlops.experiments x where x.id = e.id;
  if e.status not in ('running', 'paused') then
    raise exception using errcode = '55000',
      message = pg_catalog.format('experiment %s is %s: only running or paused experiments conclude (argument experiment)',
                                  e.name, e.status),
      hint = case e.status when 'draft' then 'Start it with mlops.start_experiment first.' else 'It has concluded already.' end;
  end if;
  if chosen is not null and not exists (select from mlops.experiment_variants v where v.experiment_id = e.id and v.name = chosen) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('experiment %s has no variant %L (argument winner)', e.name, chosen);
  end if;
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]'), coalesce(bool_or(r.srm_warning), false)
    into results, srm_failed from mlops.experiment_results(e.name) r;
  if auto then
    select r ->> 'variant' into chosen from pg_catalog.jsonb_array_elements(results) r
     where (r ->> 'p_value')::float8 < 0.05 and (r ->> 'lift')::float8 > 0
     order by (r ->> 'metric_mean')::float8 desc limit 1;
  end if;
  if promote and chosen is not null and e.model_id is not null then
    if auto and srm_failed then
      blocked := 'sample ratio mismatch (SRM p < 0.001) blocks automatic promotion';
    else
      select v.position into position from mlops.experiment_variants v where v.experiment_id = e.id and v.name = chosen;
      select mv.version into vnum from mlops.model_versions mv where mv.id = mlops._variant_version_id(e.id, position);
      perform mlops.set_alias((select m.name from mlops.models m where m.id = e.model_id), alias, vnum,
                              coalesce(reason, pg_catalog.format('experiment %s concluded: winner %s', e.name, chosen)));
    end if;
  elsif chosen is null then
    blocked := 'no variant beat the control at p < 0.05';
  end if;
  update mlops.experiments x set status = 'completed', completed_at = pg_catalog.now(), winner = chosen,
         promoted_version = vnum,
         result = pg_catalog.jsonb_build_object('variants', results, 'winner', chosen, 'automatic', auto,
                                                'promoted_version', vnum, 'alias', alias, 'srm_failed', srm_failed,
                                                'not_promoted_because', blocked)
   where x.id = e.id;
  perform mlops._experiment_event(e.id, e.status, 'completed',
            pg_catalog.jsonb_build_object('winner', chosen, 'promoted_version', vnum, 'not_promoted_because', blocked));
  return (select x.result from mlops.experiments x where x.id = e.id);
end
$$;
comment on function mlops.conclude_experiment(text, text, boolean, text, text) is
  'Completes an experiment, records results and winner (auto: best variant beating control at p < 0.05), and with '
  'promote moves alias (champion) to the winner''s version via mlops.set_alias; SRM blocks automatic promotion.';

create or replace view mlops.experiments_bi as
  select coalesce(e.started_at, e.created_at) as time, e.name as experiment, m.name as model, e.status, e.unit,
         e.primary_metric, e.namespace, e.namespace_start, e.namespace_end, e.coverage,
         (select pg_catalog.count(*) from mlops.experiment_variants v where v.experiment_id = e.id)::integer as variants,
         (select pg_catalog.count(*) from mlops.experiment_assignments a where a.experiment_id = e.id) as units,
         e.winner, e.promoted_version, e.created_at, e.started_at, e.completed_at,
         case when e.started_at is not null
              then extract(epoch from coalesce(e.completed_at, pg_catalog.now()) - e.started_at)::float8 / 86400 end
           as days_running
    from mlops.experiments e left join mlops.models m on m.id = e.model_id;
comment on view mlops.experiments_bi is 'BI view: one row per A/B experiment with its status, traffic and outcome.';
comment on column mlops.experiments_bi.time is 'When the experiment started (created, for drafts).';
comment on column mlops.experiments_bi.experiment is 'Experiment name.';
comment on column mlops.experiments_bi.model is 'Model whose versions the variants serve; empty for non-model experiments.';
comment on column mlops.experiments_bi.status is 'draft, running, paused or completed.';
comment on column mlops.experiments_bi.unit is 'Randomization unit (e.g. user_id).';
comment on column mlops.experiments_bi.primary_metric is 'conversion, accuracy, reward or value.';
comment on column mlops.experiments_bi.namespace is 'Namespace for mutual exclusion; empty when none.';
comment on column mlops.experiments_bi.namespace_start is 'Start of the namespace range [0, 1).';
comment on column mlops.experiments_bi.namespace_end is 'End of the namespace range (exclusive).';
comment on column mlops.experiments_bi.coverage is 'Fraction of eligible units included (0..1).';
comment on column mlops.experiments_bi.variants is 'Number of variants.';
comment on column mlops.experiments_bi.units is 'Units assigned so far (sticky assignments).';
comment on column mlops.experiments_bi.winner is 'Winning variant once concluded.';
comment on column mlops.experiments_bi.promoted_version is 'Model version promoted at conclusion, if any.';
comment on column mlops.experiments_bi.created_at is 'When the experiment was created.';
comment on column mlops.experiments_bi.started_at is 'When it first started running.';
comment on column mlops.experiments_bi.completed_at is 'When it was concluded.';
comment on column mlops.experiments_bi.days_running is 'Days between start and conclusion (or now).';

create or replace view mlops.experiment_assignments_daily as
  select pg_catalog.date_trunc('day', a.assigned_at) as time, e.name as experiment, v.name as variant,
         pg_catalog.count(*) as new_units
    from mlops.experiment_assignments a
    join mlops.experiments e on e.id = a.experiment_id
    join mlops.experiment_variants v on v.experiment_id = a.experiment_id and v.position = a.variant
   group by 1, 2, 3;
comment on view mlops.experiment_assignments_daily is 'BI view: units entering each variant per day (first exposures).';
comment on column mlops.experiment_assignments_daily.time is 'Day (UTC midnight) of the first exposures.';
comment on column mlops.experiment_assignments_daily.experiment is 'Experiment name.';
comment on column mlops.experiment_assignments_daily.variant is 'Variant name.';
comment on column mlops.experiment_assignments_daily.new_units is 'Units first assigned that day.';

create or replace view mlops.experiment_results_bi as
  select coalesce(e.completed_at, pg_catalog.now()) as time, e.name as experiment, e.status, r.variant, r.is_control,
         r.weight, r.units, r.exposures, r.metric, r.metric_n, r.metric_mean, r.metric_sd, r.lift, r.lift_ci_low,
         r.lift_ci_high, r.p_value, r.chance_to_beat_control, r.srm_p_value, r.srm_warning, r.days_running
    from mlops.experiments e cross join lateral mlops.experiment_results(e.name) r
   where e.status <> 'draft';
comment on view mlops.experiment_results_bi is 'BI view: current analysis of every started experiment, one row per variant.';
comment on column mlops.experiment_results_bi.time is 'When the analysis holds: conclusion time, or now while running.';
comment on column mlops.experiment_results_bi.experiment is 'Experiment name.';
comment on column mlops.experiment_results_bi.status is 'running, paused or completed.';
comment on column mlops.experiment_results_bi.variant is 'Variant name.';
comment on column mlops.experiment_results_bi.is_control is 'True for the control (first) variant.';
comment on column mlops.experiment_results_bi.weight is 'Traffic weight of the variant (0..1).';
comment on column mlops.experiment_results_bi.units is 'Units assigned to the variant.';
comment on column mlops.experiment_results_bi.exposures is 'Predictions logged for the variant.';
comment on column mlops.experiment_results_bi.metric is 'Primary metric name.';
comment on column mlops.experiment_results_bi.metric_n is 'Observations behind the metric (units, or predictions with feedback for accuracy).';
comment on column mlops.experiment_results_bi.metric_mean is 'Mean of the metric (a rate for conversion and accuracy).';
comment on column mlops.experiment_results_bi.metric_sd is 'Sample standard deviation of the metric.';
comment on column mlops.experiment_results_bi.lift is 'Relative lift vs control.';
comment on column mlops.experiment_results_bi.lift_ci_low is 'Lower bound of the 95% CI of the lift.';
comment on column mlops.experiment_results_bi.lift_ci_high is 'Upper bound of the 95% CI of the lift.';
comment on column mlops.experiment_results_bi.p_value is 'Two-sided p-value vs control (z-test or Welch t-test).';
comment on column mlops.experiment_results_bi.chance_to_beat_control is 'Bayesian (Gaussian) chance the variant beats the control.';
comment on column mlops.experiment_results_bi.srm_p_value is 'Sample ratio mismatch chi-square p-value of the experiment.';
comment on column mlops.experiment_results_bi.srm_warning is 'True when SRM p < 0.001: the split is broken, do not trust the result.';
comment on column mlops.experiment_results_bi.days_running is 'Days the experiment has run.';
