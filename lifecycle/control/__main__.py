"""``python -m lifecycle.control``: run the control plane (uvicorn) until SIGTERM / Ctrl-C."""

from __future__ import annotations

import logging

import uvicorn

from lifecycle.control.app import create_app
from lifecycle.control.plane import ControlPlane
from lifecycle.control.settings import ControlSettings
from lifecycle.settings import Settings
from lifecycle.stack import connect
from serving.rollout.policy import RolloutPolicy


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, control = Settings(), ControlSettings()
    services = connect(settings)
    plane = ControlPlane(services, control, RolloutPolicy())
    plane.start()
    try:
        server = uvicorn.Server(
            uvicorn.Config(create_app(plane), host=control.host, port=control.port, log_level="warning")
        )
        server.run()
    finally:
        plane.stop()
        services.close()


if __name__ == "__main__":
    main()
