"""The app on Ray Serve: a deployment whose replicas each run :func:`speechserve.server.create_app`.

Importing this module imports Ray (the optional extra ``speechserve[ray]``); the CLI imports it only for
``--replicas`` / ``--autoscale``. Ray Serve's HTTP proxy passes every route through unchanged: streamed audio
and SSE stream, and ``WS /v1/realtime`` is proxied as one connection to one replica for its whole life (a
realtime session is sticky by construction). Routing, autoscaling, health checks and replacing a dead
replica are Ray's; the replica only builds the app, says who it is (``X-Speechserve-Replica``), waits for
its models before taking traffic, and reports itself unhealthy if a model failed to load.
"""

from __future__ import annotations

import logging
import signal
import threading

import ray
from fastapi import FastAPI
from ray import serve

from speechserve.scale.options import ScaleOptions
from speechserve.scale.replica import ReplicaHeader, wait_for_models
from speechserve.server import ServerSettings, create_app

log = logging.getLogger("speechserve.scale")

APP_NAME = "speechserve"
"""The Ray Serve application's name (one per cluster unless ``deploy`` is given another)."""
DEPLOYMENT_NAME = "speechserve"
"""The deployment's name: its replicas are the actors ``SERVE_REPLICA::speechserve#speechserve#<id>``."""


def replica_id() -> str:
    """This replica's id: stable for its life, new for the replica Ray starts in place of a dead one."""
    return serve.get_replica_context().replica_id.unique_id


@serve.ingress()
class SpeechserveReplica:
    """One replica: the whole app (engines, models, queues) in one Ray actor process.

    Lifetime: the actor. Ray calls ``__serve_build_asgi_app__`` once, then runs the app's lifespan, which
    returns once every model is loaded and warmed up (:func:`wait_for_models`)."""

    def __init__(self, settings: dict) -> None:
        self.settings = ServerSettings(**settings)
        self.served: FastAPI | None = None  # not `app`: Ray's wrapper owns that name
        level = self.settings.log_level.upper()
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("speechserve").setLevel(level)

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = create_app(self.settings)
        wait_for_models(app)
        app.add_middleware(ReplicaHeader, replica_id=replica_id())
        self.served = app
        log.info("replica %s: app built; loading %d model(s)", replica_id(), len(self.settings.model))
        return app

    def check_health(self) -> None:
        """Ray's periodic health check: a replica whose models failed to load is replaced."""
        if self.served is not None and self.served.state.startup.status == "failed":
            raise RuntimeError("a model failed to load in this replica")


def build_application(settings: ServerSettings, options: ScaleOptions) -> serve.Application:
    """The Ray Serve application: ``options``' replicas of the app configured by ``settings``."""
    deployment = serve.deployment(
        SpeechserveReplica, name=DEPLOYMENT_NAME, **options.deployment_options(settings)
    )
    return deployment.bind(options.replica_settings(settings).model_dump())


SCALE_ARGS = {"replicas": int, "gpus_per_replica": float, "cpus_per_replica": float}
"""Builder arguments that are scale options rather than server settings."""


def app_builder(args: dict[str, object]) -> serve.Application:
    """Ray Serve application builder: ``import_path: speechserve.scale.ray_serve:app_builder`` in a Serve
    config file or a KubeRay ``RayService`` (``deploy/``), or ``serve run speechserve.scale.ray_serve:app_builder
    model=<dir or hub id>``. ``args`` are server settings (``model``, ``max_batch`` …; ``SPEECHSERVE_*``
    variables fill the rest) plus ``replicas``, ``gpus_per_replica``, ``cpus_per_replica``; the config file's
    ``deployments:`` entry (``num_replicas``, ``autoscaling_config``, ``ray_actor_options``) overrides them."""
    given = dict(args)
    scale = {k: kind(given.pop(k)) for k, kind in SCALE_ARGS.items() if k in given}
    options = ScaleOptions(**{"replicas": 1} | scale)
    return build_application(ServerSettings(**given), options)


def connect(options: ScaleOptions, **local: object) -> None:
    """Join the cluster at ``options.ray_address``, or start a local Ray (``local`` goes to ``ray.init``:
    ``num_cpus``, ``object_store_memory`` …). Nothing happens if this process is already connected."""
    if ray.is_initialized():
        return
    if options.ray_address:
        ray.init(address=options.ray_address)
    else:
        ray.init(**local)


def deploy(settings: ServerSettings, options: ScaleOptions, name: str = APP_NAME) -> serve.DeploymentHandle:
    """Start Serve's HTTP proxy on ``settings.host:port`` and deploy the app; returns once every replica has
    loaded its models. Connect first (:func:`connect`)."""
    if settings.port == 0:
        raise ValueError("--port 0 cannot be used with Ray Serve: give the port its proxy listens on")
    serve.start(http_options={"host": settings.host, "port": settings.port})
    return serve.run(build_application(settings, options), name=name, route_prefix="/")


def run(settings: ServerSettings, options: ScaleOptions) -> None:
    """``speechserve serve --replicas …``: deploy, serve until Ctrl-C or SIGTERM, then take the app down
    (and the local Ray, if this process started it)."""
    connect(options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        deploy(settings, options)
        where = f"http://{settings.host}:{settings.port}"
        log.info("serving %s through Ray Serve at %s (Ctrl-C to stop)", ", ".join(settings.model), where)
        stop.wait()
        serve.delete(APP_NAME)
    except KeyboardInterrupt:
        serve.delete(APP_NAME)
    finally:
        if not options.ray_address:  # the local Ray this process started goes with it
            serve.shutdown()
            ray.shutdown()
