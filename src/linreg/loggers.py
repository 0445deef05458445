"""Lightning's TensorBoardLogger, with an HParams tab that compares the runs of `tensorboard --logdir logs`."""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

# Lightning's end-of-training statuses (Logger.finalize) as the HParams tab's.
SESSION_STATUS = {"success": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE}


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's TensorBoardLogger for runs that are compared with each other.

    - HParams: each run records its session (settings, start, end and status) and no experiment summary, so
      TensorBoard derives the columns from all the runs it serves: the settings that differ between them come
      first (the first five are shown), and every scalar of every run is a metric column, its last value the
      run's result (`val/r2` is there also when some runs have no validation split). Lightning's own
      `log_hyperparams(params, metrics)` writes one experiment summary per run, and TensorBoard shows the first
      it finds, whose metrics and alphabetical order then hide the others'.
    - Scalars: no `epoch` card. Lightning adds the epoch to every logged batch of metrics; against the step
      axis it is a staircase that tells nothing the step does not (CSVLogger keeps it as a column).
    """

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics({name: value for name, value in metrics.items() if name != "epoch"}, step)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any], metrics: Any = None, step: int | None = None) -> None:
        """hparams.yaml as Lightning writes it, and this run's session for the HParams tab."""
        super().log_hyperparams(params)  # (default_hp_metric=False and no metrics: the YAML file only)
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time(), group_name=self.trial_name())
        for name, value in params.items():
            if isinstance(value, bool):
                start.hparams[name].bool_value = value
            elif isinstance(value, int | float):
                start.hparams[name].number_value = value
            else:
                start.hparams[name].string_value = str(value)
        self.write_session(metadata.SESSION_START_INFO_TAG, session_start_info=start)
        if metrics:
            self.log_metrics(metrics if isinstance(metrics, dict) else {"hp_metric": metrics}, step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        # Written while the event file is open: Lightning finalizes after fit and after test, each closing it.
        if self._experiment is not None and self._experiment.file_writer is not None and status in SESSION_STATUS:
            end = plugin_data_pb2.SessionEndInfo(status=SESSION_STATUS[status], end_time_secs=time.time())
            self.write_session(metadata.SESSION_END_INFO_TAG, session_end_info=end)
        super().finalize(status)

    def trial_name(self) -> str:
        """The HParams table's trial: `1_optimizer=adam (2026-12-03_10-32-52_20741)`, the run's folder before its
        sweep's (the table's narrow first column shows what tells runs apart, not a common `logs/sweeps/…`)."""
        run = Path(self.log_dir).resolve()
        return f"{run.name} ({run.parent.name})"

    def write_session(self, tag: str, **info: Any) -> None:
        """An HParams plugin summary, as TensorBoard's own (TensorFlow-based) hparams API would write it."""
        content = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **info)
        plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString())
        summary = Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])
        # (The file writer as Lightning's own log_hyperparams reaches it: SummaryWriter has no public one.)
        self.experiment._get_file_writer().add_summary(summary)
