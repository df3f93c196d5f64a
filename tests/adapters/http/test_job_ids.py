"""A job id's unique part (adapters/http/app.py random_uuid4_hex): a version-4 UUID's hex digits, different
in every forked web worker (the supervisor imports the app before it forks)."""

import os
import uuid

from adapters.http.app import random_uuid4_hex


def ids_of_a_forked_child(count: int) -> list[str]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its ids, exit at once
        try:
            os.write(write, " ".join(random_uuid4_hex() for _ in range(count)).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
    finally:
        os.waitpid(pid, 0)
    return data.decode().split()


def test_ids_are_version_4_uuids_and_differ_in_every_forked_child():
    ids = [random_uuid4_hex() for _ in range(1000)]
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 and len(i) == 32 for i in ids)
    children = [ids_of_a_forked_child(3) for _ in range(3)]
    everything = ids + [i for child in children for i in child]
    assert all(len(child) == 3 for child in children) and len(set(everything)) == len(everything)
