"""Export a checkpoint as ONNX and a torch.export program: python scripts/export.py [ckpt_path=last]"""

import hydra
from omegaconf import DictConfig

import linreg  # noqa: F401  (registers the ${pid:} resolver used in run directory names)
from linreg.errors import report_errors


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
@report_errors
def main(cfg: DictConfig) -> None:
    from linreg.export import export  # torch loads only once a job runs

    export(cfg)


if __name__ == "__main__":
    main()
