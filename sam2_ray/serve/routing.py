"""Session affinity: every request carrying the same session id (an image's content hash, a video session id)
goes to the same replica, the one holding that image's embedding or that session's memory.

Rendezvous hashing over the live replicas: strict (Serve's multiplexing is only best-effort and let a second
replica answer a session's later requests), stateless, and when the replica set changes only the ids of the
replicas that came or went move (an image is then embedded again; a video session is lost and answered 404).
Requests without a session id go to the less loaded of two random replicas, as with Serve's default router.
"""

from __future__ import annotations

import hashlib
import random

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
