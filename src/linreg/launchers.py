"""The launchers that start one process per device on clusters: torchrun and SLURM's srun.

Under them every process runs the whole command line, so the processes of one job must agree on one run
directory without talking to each other: its name comes from what the launcher gives them all (torchrun's
rendezvous id and port, SLURM's job and step ids). Light (no torch): Hydra resolves these before a job starts.
"""

import os
from datetime import datetime


def launcher() -> str | None:
    """`torchrun`, `srun` (more than one task), or None: the process was not started as one of several."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        return "torchrun"
    if "SLURM_STEP_ID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return "srun"
    return None


def nodes() -> int:
    """How many machines the launcher started processes on (Lightning's `num_nodes`)."""
    if launcher() == "torchrun":
        return int(os.environ["GROUP_WORLD_SIZE"])
    if launcher() == "srun":
        return int(os.environ.get("SLURM_NNODES", "1"))
    return 1


def processes_per_node() -> int:
    """Processes on each machine (Lightning's `devices`): one per device."""
    if launcher() == "torchrun":
        return int(os.environ["LOCAL_WORLD_SIZE"])
    if launcher() == "srun":
        return int(os.environ["SLURM_NTASKS"]) // nodes()
    return 1


def rank() -> int:
    """This process's place among the job's processes (0: the one that writes)."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) if launcher() else "0")


def run_name() -> str:
    """The run directory's name: the time and process id, or under a launcher the name every process of the
    job derives alike, `torchrun_<rendezvous id>_<port>` or `srun_<job id>.<step id>`."""
    if launcher() == "torchrun":
        return f"torchrun_{os.environ['TORCHELASTIC_RUN_ID']}_{os.environ.get('MASTER_PORT', '')}"
    if launcher() == "srun":
        return f"srun_{os.environ.get('SLURM_JOB_ID', '')}.{os.environ['SLURM_STEP_ID']}"
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{os.getpid()}"


def console_level() -> str:
    """The console's logging level: the other processes of a job print only warnings and errors, so a torchrun
    console with 4 processes shows each message once."""
    return "WARNING" if rank() else "INFO"


def log_suffix() -> str:
    """`_rank1`, … for the other processes' Hydra log files beside rank 0's `train.log`."""
    return f"_rank{rank()}" if rank() else ""
