"""Latency of the Serve app over HTTP on this machine: embedding, click-to-mask with a cached embedding (one
client, then several concurrent ones, with and without decoder batching), and what routing by image buys
(session affinity against landing on a replica that must embed again, and against fetching the embedding
from Ray's object store, the shared-cache alternative).

    .venv/bin/python benchmarks/serve.py [--config sam2.1_hiera_t] [--clicks 40] [--clients 8]
    .venv/bin/python benchmarks/serve.py --proxies 2    # one client through Serve's proxy vs HAProxy, alternated

Random weights (the work per request is real, the masks are not: a random-weight mask is noise, ~110 KB of RLE
where a trained model's is a few KB; the response size is printed). The `bfloat16` app is the same model with
`precision: bfloat16` (bf16 decoder copy, autocast elsewhere), fast on CPUs with AVX512-BF16 or AMX. Start-up
and model loading are excluded. Serve's request path is the one `sam2-ray serve` uses (throughput-optimised, see
sam2_ray/serve/environment.py); compare Serve's default path with RAY_SERVE_THROUGHPUT_OPTIMIZED=0 in the
environment, and HAProxy (`sam2-ray serve --haproxy`) with --proxies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2_ray.serve.client import SAM2Client, image_file_bytes  # noqa: E402
from sam2_ray.serve.environment import FAST_REQUEST_PATH_ENV, HAPROXY_ENV  # noqa: E402
from sam2_ray.serve.errors import EMBEDDING_MISSING, RequestError  # noqa: E402
from tests.support.serve_app import deploy, serve_instance  # noqa: E402


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  (n={len(ms)})"


def image(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def clicks(client: SAM2Client, image_id: str, count: int, seed: int, size: int, best_only: bool = False
           ) -> list[float]:
    rng = np.random.default_rng(seed)
    return [timed(lambda: client.predict(image_id, points=[rng.uniform(0, size, 2)], labels=[1], best_only=best_only))
            for _ in range(count)]


def click_by_id(client: SAM2Client, image_id: str, data: bytes, size: int) -> None:
    """A click by image id; a replica without the embedding answers 404 and the client sends the image there,
    until one answers (without affinity the retry may land on yet another replica)."""
    while True:
        try:
            client.predict(image_id, points=[np.random.uniform(0, size, 2)], labels=[1])
            return
        except RequestError as error:
            if error.code != EMBEDDING_MISSING:
                raise
            client.embed(data)


def concurrent_clicks(url: str, image_id: str, clients: int, count: int, size: int) -> tuple[list[float], float]:
    def one(seed: int) -> list[float]:
        with SAM2Client(url) as client:
            return clicks(client, image_id, count, seed, size)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [s for run in pool.map(one, range(clients)) for s in run]
    return latencies, len(latencies) / (time.perf_counter() - start)


def object_store_fetch(size_bytes: int, repeats: int = 5) -> float:
    """Median seconds for a worker process to get an embedding-sized tensor another process put."""
    import ray

    @ray.remote(num_cpus=0)
    def fetch(refs):
        start = time.perf_counter()
        ray.get(refs[0])
        return time.perf_counter() - start

    ref = ray.put(np.zeros(size_bytes // 4, np.float32))
    ray.get(fetch.remote([ref]))  # a worker started and warm
    return statistics.median(ray.get(fetch.remote([ref])) for _ in range(repeats))


def single_client(config: str, count: int) -> dict[str, list[float]]:
    """One client's clicks (all masks, best only) in float32 and bfloat16, on the proxy this process's Ray uses."""
    from ray import serve

    from sam2.config import load_config

    size = load_config(config).image_size
    model = {"config": config, "num_cpus": os.cpu_count() or 1}
    out = {}
    with serve_instance() as base:
        for precision in ("float32", "bfloat16"):
            url = deploy(base, precision, {"models": [{**model, "precision": precision}]})
            with SAM2Client(url) as client:
                image_id = client.embed(image(0, size)).image_id
                clicks(client, image_id, 3, 99, size)  # warm-up
                out[f"{precision}, best mask"] = clicks(client, image_id, count, 0, size, best_only=True)
                # the replica's own time per best-mask click (warm-up included, a few of 3 masks)
                out[f"{precision}, in replica"] = [client.stats()[config]["predict_ms_p50"] / 1000]
                out[f"{precision}, 3 masks"] = clicks(client, image_id, count, 0, size)
            serve.delete(precision)  # one replica on the cores at a time
    return out


def proxy_rounds(config: str, count: int, rounds: int) -> None:
    """Serve's Python proxy against HAProxy, each in a fresh Ray (the switch is read at start), alternated."""
    runs: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for proxy, flag in (("Serve proxy", "0"), ("HAProxy", "1")):
            child = subprocess.run([sys.executable, __file__, "--single-client", "--config", config,
                                    "--clicks", str(count)], env={**os.environ, HAPROXY_ENV: flag},
                                   capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            for name, seconds in result.items():
                runs.setdefault(proxy, {}).setdefault(name, []).extend(seconds)
    print(f"{config} on CPU, one client, {rounds} alternated rounds of {count} clicks per proxy")
    for proxy, results in runs.items():
        for name, seconds in results.items():
            print(f"[{proxy:11}] click, {name:20} {percentiles(seconds)}")
    for name, seconds in runs["Serve proxy"].items():
        if not name.endswith("in replica"):  # the replica's own time does not cross the proxy
            saved = 1000 * (statistics.median(seconds) - statistics.median(runs["HAProxy"][name]))
            print(f"HAProxy saves {saved:.1f} ms p50 a click, {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--clicks", type=int, default=40, help="clicks of the single client")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client-clicks", type=int, default=10, help="clicks per concurrent client")
    parser.add_argument("--proxies", type=int, metavar="ROUNDS", help="only: one client, Serve proxy vs HAProxy")
    parser.add_argument("--single-client", action="store_true", help=argparse.SUPPRESS)  # a --proxies round
    args = parser.parse_args()
    if args.single_client:
        print(json.dumps(single_client(args.config, args.clicks)))
        return
    if args.proxies:
        proxy_rounds(args.config, args.clicks, args.proxies)
        return
    from sam2.config import load_config

    size = load_config(args.config).image_size
    model = {"config": args.config, "num_cpus": os.cpu_count() or 1}  # one replica: every core is its torch thread
    with serve_instance() as base:
        from ray import serve

        apps = {"batched": {"models": [model]}, "unbatched": {"models": [model], "batching": {"max_batch_size": 1}},
                "bfloat16": {"models": [{**model, "precision": "bfloat16"}]}}
        path = "throughput-optimised" if os.environ.get(FAST_REQUEST_PATH_ENV) == "1" else "default"
        print(f"{args.config} on CPU, {size} px images, random weights, Serve's {path} request path")
        for name, settings in apps.items():
            # One app at a time: an idle replica's background work (health checks, metrics) on the same 2 cores
            # added ~8 ms to every click of the measured one.
            url = deploy(base, name, settings)
            with SAM2Client(url) as client:
                embeds = [timed(lambda s=s, c=client: c.embed(image(s, size))) for s in range(4)]
                image_id = client.embed(image(0, size)).image_id
                cached = [timed(lambda c=client: c.embed(image(0, size))) for _ in range(3)]
                clicks(client, image_id, 3, 99, size)  # warm-up
                single = clicks(client, image_id, args.clicks, 0, size)
                best_only = clicks(client, image_id, args.clicks, 0, size, best_only=True)
                body = {"image_id": image_id, "points": [[size / 2, size / 2]], "labels": [1], "best_only": True}
                response_bytes = len(client._http.post("/images/predict", json=body).content)
            many, rate = concurrent_clicks(url, image_id, args.clients, args.client_clicks, size)
            with SAM2Client(url) as client:
                passes = client.stats()[args.config]["decoder_batches"]  # prompt sets per pass -> passes
            print(f"[{name}] embed (new image)       {percentiles(embeds)}")
            print(f"[{name}] embed (cached, re-sent) {percentiles(cached)}")
            print(f"[{name}] click, 1 client         {percentiles(single)}")
            print(f"[{name}] click, best mask only   {percentiles(best_only)}  "
                  f"({response_bytes / 1024:.0f} KB responses)")
            print(f"[{name}] click, {args.clients} clients        {percentiles(many)}  {rate:.1f} clicks/s")
            by_size = dict(sorted(passes.items(), key=lambda kv: int(kv[0])))
            print(f"[{name}] decoder passes by clicks per pass: {by_size}")
            serve.delete(name)
        for affinity in (True, False):
            url = deploy(base, f"affinity-{affinity}".lower(), {"models": [{**model, "num_replicas": 2, "num_cpus": 1}],
                                                                 "session_affinity": affinity})
            with SAM2Client(url) as client:
                files = [image_file_bytes(image(100 + i, size)) for i in range(4)]
                ids = [client.embed(data).image_id for data in files]
                latencies = [timed(lambda i=i, d=d: click_by_id(client, i, d, size))
                             for _ in range(6) for i, d in zip(ids, files, strict=True)]
            print(f"[2 replicas, affinity {'on ' if affinity else 'off'}] click     {percentiles(latencies)}")
            serve.delete(f"affinity-{affinity}".lower())
        c = load_config(args.config)
        side = size // 16
        embed_bytes = 4 * side * side * (c.d_model + c.d_model // 8 * 16 + c.d_model // 4 * 4)
        print(f"shared cache instead: fetching one {embed_bytes / 2**20:.1f} MiB embedding from the object store "
              f"takes {1000 * object_store_fetch(embed_bytes):.1f} ms per click (same node; more across nodes)")


if __name__ == "__main__":
    main()
