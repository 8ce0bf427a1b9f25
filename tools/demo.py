"""The `make demo` job: report the environment and the default config.

Grows into a real train + evaluate run on the synthetic dataset once training lands.
"""
import logging

from fastreid.config import get_cfg
from fastreid.utils.env import collect_env_info
from fastreid.utils.logger import setup_logger


def main() -> None:
    logger = setup_logger(name="fastreid")
    logger.info("Environment:\n%s", collect_env_info())
    logger.info("Default config:\n%s", get_cfg().dump())


if __name__ == "__main__":
    logging.captureWarnings(True)
    main()
