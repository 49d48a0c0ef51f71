"""Scale-out: the same app, several replicas behind Ray Serve (``speechserve serve --replicas N``).

One process on one device stays the default and needs nothing of Ray. With ``--replicas`` or ``--autoscale``
the CLI imports :mod:`speechserve.scale.ray_serve`, which deploys :func:`speechserve.server.create_app`
through Ray Serve's FastAPI ingress: each replica is one process holding its own engines and models, Ray's
HTTP proxy routes requests (and keeps a WebSocket on its replica for its whole life), autoscaling and health
come from Ray. Ray is an optional extra: ``pip install "speechserve[ray]"``.

What lives where: ``options.py`` (the scale-out flags, validated; no Ray), ``replica.py`` (what a replica adds
to the app: its id header, a lifespan that waits for the models; no Ray), ``ray_serve.py`` (the deployment,
connecting to Ray, running; imports Ray).
"""

from speechserve.scale.options import ScaleOptions, parse_autoscale

__all__ = ["ScaleOptions", "parse_autoscale"]
