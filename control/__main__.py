"""``python -m control``: run the control plane (uvicorn) until SIGTERM / Ctrl-C."""

from __future__ import annotations

import logging

import uvicorn

from control.app import create_app
from control.compose import build_control_plane
from control.services import connect
from control.settings import ControlSettings
from lifecycle.settings import Settings
from rollout.policy import RolloutPolicy


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, control = Settings(), ControlSettings()
    services = connect(settings)
    plane = build_control_plane(services, control, RolloutPolicy())
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
