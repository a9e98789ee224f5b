"""Session affinity: every request carrying the same session id (an image's content hash, a video session id)
goes to the same replica, the one holding that image's embedding or that session's memory.

Rendezvous hashing over the live replicas: strict (Serve's multiplexing is only best-effort and let a second
replica answer a session's later requests), stateless, and when the replica set changes only the ids of the
replicas that came or went move (an image is then embedded again; a video session is lost and answered 404).
Requests without a session id go to the less loaded of two random replicas, as with Serve's default router.

`routed` picks the transport too. Under RAY_SERVE_THROUGHPUT_OPTIMIZED (see `environment.py`) a
handle call travels by Serve's gRPC between replicas, by value, and its receiver refuses a message over 4 MiB
(RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH, read in each process when ray.serve is imported): an image over
4 MiB ended in a 500 (RESOURCE_EXHAUSTED). Calls that carry what a client uploaded (image bytes, a mask as RLE: up
to limits.max_request_mb) therefore go as Ray actor calls (`_by_reference=True`, Serve's per-handle switch), whose
arguments over 100 KB travel through the object store, with no limit but its size. Everything else keeps the
default, gRPC here, because a click is faster that way than as an actor call. Responses take the call's
transport; a prediction stays well below 4 MiB, even three random-weight (noise) masks of a very large image
(the README's Benchmarks section has both figures).
"""

from __future__ import annotations

import hashlib
import random

from ray.serve.handle import DeploymentHandle
from ray.serve.request_router import FIFOMixin, PendingRequest, RequestRouter, RunningReplica


def owner_score(session_id: str, replica_id: str) -> int:
    digest = hashlib.blake2b(f"{session_id}|{replica_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class SessionAffinityRouter(FIFOMixin, RequestRouter):
    async def choose_replicas(self, candidate_replicas: list[RunningReplica],
                              pending_request: PendingRequest | None = None) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        session_id = pending_request.metadata.session_id if pending_request is not None else ""
        if not session_id:
            return [random.sample(candidate_replicas, k=min(2, len(candidate_replicas)))]
        owner = max(candidate_replicas, key=lambda r: owner_score(session_id, r.replica_id.unique_id))
        return [[owner]]


def routed(handle: DeploymentHandle, session_id: str, upload: bool = False) -> DeploymentHandle:
    """`handle` bound to the replica that owns `session_id`; `upload`: the call carries a client's upload, so it
    goes through the object store rather than gRPC (see the module docstring)."""
    if upload:
        return handle.options(session_id=session_id, _by_reference=True)
    return handle.options(session_id=session_id)
