-- Column comments of the A/B experiment tables (BI tools show them as column descriptions).
comment on column mlops.experiments.id is 'Experiment id.';
comment on column mlops.experiments.name is 'Unique experiment name, logged as mlops.predictions.experiment.';
comment on column mlops.experiments.model_id is 'Model (mlops.models.id) whose versions the variants serve; null for experiments that do not route to a model.';
comment on column mlops.experiments.unit is 'Name of the randomization unit whose ids are passed to mlops.assign (default user_id; descriptive only).';
comment on column mlops.experiments.primary_metric is 'Metric analysed per variant: conversion (share of units with a feedback reward, value or correct > 0), accuracy (share of predictions with feedback correct), reward or value (sum per unit).';
comment on column mlops.experiments.namespace is 'Namespace for mutual exclusion: live experiments of one namespace must have disjoint ranges; null = none.';
comment on column mlops.experiments.namespace_start is 'Inclusive start of the namespace range in [0, 1): units whose GrowthBook namespace hash falls in [namespace_start, namespace_end) are eligible (default 0).';
comment on column mlops.experiments.namespace_end is 'Exclusive end of the namespace range, up to 1 (default 1); ignored without a namespace.';
comment on column mlops.experiments.coverage is 'Fraction of eligible units included, 0 to 1 (default 1); raising it only adds units.';
comment on column mlops.experiments.seed is 'Seed of the GrowthBook hash (defaults to the experiment name).';
comment on column mlops.experiments.hash_version is 'GrowthBook hash version used for bucketing; always 2.';
comment on column mlops.experiments.status is 'draft, running, paused or completed (mlops.start_experiment, pause_experiment, conclude_experiment).';
comment on column mlops.experiments.starts_at is 'Scheduled start: no new unit is assigned before it; null = no restriction.';
comment on column mlops.experiments.ends_at is 'Scheduled end: no new unit is assigned from it on (assigned units keep their variant); null = no restriction.';
comment on column mlops.experiments.started_at is 'When the experiment first went to running (kept across pauses); null while a draft.';
comment on column mlops.experiments.completed_at is 'When mlops.conclude_experiment completed it; null before.';
comment on column mlops.experiments.winner is 'Winning variant name recorded at conclusion (given, or the best variant beating the control at p < 0.05); null when none.';
comment on column mlops.experiments.promoted_version is 'Model version number the alias was moved to at conclusion; null when nothing was promoted.';
comment on column mlops.experiments.result is 'Conclusion as JSON {variants, winner, automatic, promoted_version, alias, srm_failed, not_promoted_because}; null until concluded.';
comment on column mlops.experiments.description is 'Free-text description; empty string when none was given.';
comment on column mlops.experiments.created_at is 'When the experiment was created.';
comment on column mlops.experiments.created_by is 'Role (current_user) that created it.';

comment on column mlops.experiment_variants.experiment_id is 'Experiment (mlops.experiments.id) the variant belongs to.';
comment on column mlops.experiment_variants.position is 'Zero-based position in GrowthBook variation order; 0 is the control.';
comment on column mlops.experiment_variants.name is 'Variant name, unique within the experiment, logged as mlops.predictions.variant.';
comment on column mlops.experiment_variants.alias is 'Model alias the variant serves, resolved when a unit is routed; null when it serves a fixed version or the experiment has no model.';
comment on column mlops.experiment_variants.version is 'Model version number the variant serves; null when it serves an alias or the experiment has no model.';
comment on column mlops.experiment_variants.weight is 'Share of covered traffic, 0 to 1; an experiment''s weights sum to 1 (percentages are converted).';

comment on column mlops.experiment_assignments.experiment_id is 'Experiment (mlops.experiments.id; no foreign key, only mlops.assign and assign_batch write here).';
comment on column mlops.experiment_assignments.unit_id is 'Unit id (a value of the experiment''s unit, e.g. a user id), compared byte-wise (collation C).';
comment on column mlops.experiment_assignments.variant is 'Position of the assigned variant (mlops.experiment_variants.position; 0 = control).';
comment on column mlops.experiment_assignments.assigned_at is 'First exposure: when the unit was assigned (start of the assigning transaction).';

comment on column mlops.experiment_history.id is 'History event id, increasing.';
comment on column mlops.experiment_history.experiment_id is 'Experiment (mlops.experiments.id) the event belongs to.';
comment on column mlops.experiment_history.from_status is 'Status before the event; null for the creation event.';
comment on column mlops.experiment_history.to_status is 'Status after the event; equal to from_status for a traffic change.';
comment on column mlops.experiment_history.details is 'Event data: the variants at creation, {weights, coverage} for a traffic change, {winner, promoted_version, not_promoted_because} at conclusion, else {}.';
comment on column mlops.experiment_history.changed_at is 'When the event happened.';
comment on column mlops.experiment_history.changed_by is 'Role (current_user) that caused it.';
