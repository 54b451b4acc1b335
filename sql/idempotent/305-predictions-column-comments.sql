-- Column comments of the prediction log tables (BI tools show them as column descriptions).
comment on column mlops.prediction_settings.singleton is 'Always true: the primary key that allows at most one settings row.';
comment on column mlops.prediction_settings.partition_interval is 'Width of partitions of mlops.predictions created from now on, in hours/days between 1 hour and 366 days, aligned in UTC (default 1 day).';
comment on column mlops.prediction_settings.premake is 'Partitions created ahead of the one holding now, 0 to 366 (default 3).';
comment on column mlops.prediction_settings.retention is 'mlops.maintain_predictions drops whole partitions ending at or before now() - retention, with their request keys and feedback; null = keep forever.';
comment on column mlops.prediction_settings.updated_at is 'When mlops.configure_predictions last changed the settings.';

comment on column mlops.prediction_partitions.name is 'Partition table in schema mlops, named predictions_p<YYYYMMDD_HH24MISS of its UTC lower bound>.';
comment on column mlops.prediction_partitions.lower_bound is 'Inclusive lower bound of created_at in the partition (aligned on partition_interval, or clipped to the previous partition).';
comment on column mlops.prediction_partitions.upper_bound is 'Exclusive upper bound of created_at in the partition (lower_bound + partition_interval, or clipped to the next partition).';
comment on column mlops.prediction_partitions.created_at is 'When the partition was created.';

comment on column mlops.prediction_feedback.request_id is 'Request id of the prediction this is the ground truth for (mlops.predictions.request_id; no foreign key, feedback may arrive first).';
comment on column mlops.prediction_feedback.actual is 'Ground truth as any JSON value (at most 64 KiB); null when not given.';
comment on column mlops.prediction_feedback.label is 'True class label, compared with the predicted label when correct is null; null when not given.';
comment on column mlops.prediction_feedback.value is 'True numeric value (regression, finite), used for the absolute error and the value metric of experiments; null when not given.';
comment on column mlops.prediction_feedback.correct is 'Whether the prediction was right, as judged by the caller; null when not given (BI views then compare labels).';
comment on column mlops.prediction_feedback.reward is 'Reward observed after the prediction (finite, e.g. revenue or 1 for a click), summed per unit by experiments; null when not given.';
comment on column mlops.prediction_feedback.created_at is 'When feedback for this request_id was first recorded.';
comment on column mlops.prediction_feedback.updated_at is 'When the feedback was last written: a later mlops.log_feedback for the same request_id replaces every field.';
