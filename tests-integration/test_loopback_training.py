"""``/ws/training`` over real loopback connections: loss, gaps, chunking and reconnects."""

from __future__ import annotations

import asyncio
import functools
import json
from collections import Counter
from typing import Any

from juniper_cascor_protocol.demo.server import TRAINING_PATH, LoopbackServer
from juniper_cascor_protocol.demo.training_client import TrainingClient
from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.builders import BroadcastBuilder, to_wire_json
from juniper_cascor_protocol.envelope.chunking import Chunker, Reassembler
from juniper_cascor_protocol.envelope.sequence import SeqEvent, SequenceTracker
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    EventEnvelope,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)
from juniper_cascor_protocol.envelope.training_session import ReassemblyExpired, TrainingEvent

BROADCAST_TYPES: list[type[BaseEnvelope]] = [
    MetricsEnvelope,
    MetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    EventEnvelope,
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
]


class Recorder:
    """Collects what one client delivered: every envelope, in arrival order."""

    def __init__(self) -> None:
        self.envelopes: list[BaseEnvelope] = []

    def __call__(self, envelope: BaseEnvelope) -> None:
        self.envelopes.append(envelope)

    def broadcasts(self) -> list[tuple[str, Any]]:
        return [
            (e.type, e.data.get("i"))
            for e in self.envelopes
            if e.type not in ("initial_metrics", "connection_established")
        ]


def test_10000_frames_reach_three_clients_without_loss_or_false_gap(run: Any) -> None:
    frames = 10_000

    async def scenario() -> None:
        async with LoopbackServer() as server:
            recorders = [Recorder() for _ in range(3)]
            clients = [TrainingClient(on_message=recorder) for recorder in recorders]
            readers = [asyncio.create_task(c.run(server.url(TRAINING_PATH))) for c in clients]
            await asyncio.gather(*(c.wait_subscribed() for c in clients))
            sent: list[tuple[str, Any]] = []
            for i in range(frames):
                kind = BROADCAST_TYPES[i % len(BROADCAST_TYPES)]
                await server.training.broadcast(kind, {"i": i, "loss": 1.0 / (i + 1)})
                sent.append((kind.model_fields["type"].default, i))
            last = server.training.current_seq
            await asyncio.gather(*(c.wait_for_seq(last) for c in clients))

            assert server.training.frames_sent == frames
            for client, recorder in zip(clients, recorders, strict=True):
                assert recorder.broadcasts() == sent
                seq = client.seq
                assert (seq.received, seq.gaps, seq.missing, seq.duplicates, seq.resets) == (
                    frames,
                    0,
                    0,
                    0,
                    0,
                )
                assert seq.last_seq == last
                assert client.stats.bad_frames == 0
            for client in clients:
                await client.disconnect()
            await asyncio.gather(*readers)

    run(scenario(), timeout=120)


def test_oversized_topology_arrives_chunked_and_is_rebuilt_exactly(run: Any) -> None:
    budget = 64 * 1024
    # Escape-heavy and non-ASCII text, so chunk boundaries land inside escapes and characters.
    nodes = [
        {"id": i, "label": f'n"{i}\\\n\té—😀', "weights": [i / 7, -0.0, 1e-300]}
        for i in range(6000)
    ]

    async def scenario() -> None:
        async with LoopbackServer(max_frame_bytes=budget) as server:
            recorder = Recorder()
            # The client's frame limit equals the server's budget: any chunk over it would be
            # counted as refused instead of delivered.
            client = TrainingClient(max_frame_bytes=budget, on_message=recorder)
            reader = asyncio.create_task(client.run(server.url(TRAINING_PATH)))
            await client.wait_subscribed()
            await server.training.broadcast(MetricsEnvelope, {"i": "before"})
            texts = await server.training.broadcast(TopologyEnvelope, {"nodes": nodes})
            await server.training.broadcast(MetricsEnvelope, {"i": "after"})
            await client.wait_for_seq(server.training.current_seq)

            chunks = server.training.frames_by_type["chunked_message"]
            assert chunks == len(texts) >= 2
            stats = client.stats.session
            assert stats.reassembly.chunks == chunks
            assert stats.reassembly.completed == 1
            assert dict(stats.refused) == {}
            assert client.seq.gaps == 0
            assert client.seq.received == chunks + 2
            delivered = [e for e in recorder.envelopes if e.type in ("topology", "metrics")]
            assert [e.type for e in delivered] == ["metrics", "topology", "metrics"]
            rebuilt = delivered[1]
            assert isinstance(rebuilt, TopologyEnvelope)
            assert rebuilt.data == {"nodes": nodes}
            # The chunks' payloads joined are the original's exact wire JSON.
            payloads = "".join(json.loads(text)["data"]["payload"] for text in texts)
            assert json.loads(payloads)["data"] == {"nodes": nodes}
            assert client.session.in_flight == 0
            assert client.session.buffered_bytes == 0
            await client.disconnect()
            await reader

    run(scenario())


def test_reconnected_client_is_reseeded_by_initial_metrics_and_counts_what_it_missed(
    run: Any,
) -> None:
    before, away, after = 100, 50, 30

    async def scenario() -> None:
        async with LoopbackServer() as server:
            url = server.url(TRAINING_PATH)
            recorder = Recorder()
            leaver = TrainingClient(on_message=recorder)
            stayer = TrainingClient()
            stayer_reader = asyncio.create_task(stayer.run(url))
            leaver_reader = asyncio.create_task(leaver.run(url))
            await asyncio.gather(stayer.wait_subscribed(), leaver.wait_subscribed())
            for i in range(before):
                await server.training.broadcast(MetricsEnvelope, {"i": i})
            await leaver.wait_for_seq(server.training.current_seq)
            await leaver.disconnect()
            await leaver_reader  # the leaver is gone: what follows cannot reach it
            for i in range(before, before + away):
                await server.training.broadcast(MetricsEnvelope, {"i": i})
            leaver_reader = asyncio.create_task(leaver.run(url))
            await leaver.wait_subscribed()
            for i in range(before + away, before + away + after):
                await server.training.broadcast(MetricsEnvelope, {"i": i})
            last = server.training.current_seq
            await asyncio.gather(leaver.wait_for_seq(last), stayer.wait_for_seq(last))

            seeds = [
                e.data.current_seq
                for e in recorder.envelopes
                if isinstance(e, InitialMetricsEnvelope)
            ]
            assert seeds == [0, before + away]
            # Documented behaviour: the tracker is reseeded, so no GAP is reported by it...
            assert leaver.seq.gaps == 0
            assert leaver.seq.received == before + after
            # ...and the client reports the frames broadcast while it was away.
            assert leaver.stats.session.missed_while_away == away
            assert leaver.stats.connections == 2
            received = [i for _, i in recorder.broadcasts()]
            assert received == [*range(before), *range(before + away, before + away + after)]
            # A tracker that is not reseeded sees exactly the same hole as a GAP.
            plain = SequenceTracker()
            verdicts = [
                plain.observe_seq(e.seq)
                for e in recorder.envelopes
                if e.type == "metrics" and e.seq is not None
            ]
            gaps = [v for v in verdicts if v.event is SeqEvent.GAP]
            assert [(g.missing_first, g.missing_last) for g in gaps] == [
                (before + 1, before + away)
            ]
            assert stayer.seq.received == before + away + after
            assert stayer.seq.gaps == 0
            for client in (leaver, stayer):
                await client.disconnect()
            await asyncio.gather(leaver_reader, stayer_reader)

    run(scenario())


def test_every_broadcast_type_is_delivered_typed_and_counted_once(run: Any) -> None:
    async def scenario() -> None:
        async with LoopbackServer() as server:
            client = TrainingClient()
            reader = asyncio.create_task(client.run(server.url(TRAINING_PATH)))
            await client.wait_subscribed()
            expected: Counter[str] = Counter()
            for kind in BROADCAST_TYPES:
                await server.training.broadcast(kind, {"i": 0})
                expected[kind.model_fields["type"].default] += 1
            await client.wait_for_seq(server.training.current_seq)
            broadcast_counts = Counter(client.stats.session.delivered) - Counter(
                {"initial_metrics": 1}
            )
            assert broadcast_counts == expected == server.training.frames_by_type
            assert client.stats.session.greetings == 1
            await client.disconnect()
            await reader

    run(scenario())


def test_the_client_answers_the_servers_ping(run: Any, scripted_peer: Any) -> None:
    script = ['{"type": "ping", "ts": 1700000000.0}']

    async def scenario() -> tuple[list[str | bytes], TrainingClient]:
        client = TrainingClient()
        async with scripted_peer(script, drain=True) as peer:
            reader = asyncio.create_task(client.run(peer.url))
            while not peer.received:
                await asyncio.sleep(0.01)
            await client.disconnect()
            await reader
            return list(peer.received), client

    received, client = run(scenario(), timeout=10)
    assert received == ['{"type":"pong"}']
    assert client.stats.session.heartbeats == 1


def test_the_client_leaves_a_server_of_another_major_version_at_once(
    run: Any, scripted_peer: Any
) -> None:
    greeting = {"type": "connection_established", "timestamp": 1.0, "data": {}}
    greeting["data"] = {"protocol_version": "9.0", "server_version": "future"}
    script = [json.dumps(greeting), '{"type": "ping", "ts": 1700000000.0}']

    async def scenario() -> tuple[list[str | bytes], TrainingClient]:
        client = TrainingClient()
        async with scripted_peer(script, drain=True) as peer:
            await client.run(peer.url)  # returns: the client closed the connection itself
            return list(peer.received), client

    received, client = run(scenario(), timeout=10)
    assert client.incompatible is not None
    assert (client.incompatible.announced, client.incompatible.server_version) == ("9.0", "future")
    assert received == []  # nothing after the greeting: not even the pong


def test_an_incomplete_chunked_message_expires_while_nothing_arrives(
    run: Any, scripted_peer: Any
) -> None:
    builder = BroadcastBuilder(chunker=Chunker(2048))
    original = builder.draft(TopologyEnvelope, {"nodes": list(range(2000))})
    first_chunk = to_wire_json(builder.frames(original)[0])
    expired: list[ReassemblyExpired] = []

    def keep(event: TrainingEvent) -> None:
        if isinstance(event, ReassemblyExpired):
            expired.append(event)

    async def scenario() -> TrainingClient:
        reassembler = functools.partial(Reassembler, max_age_seconds=0.2)
        client = TrainingClient(reassembler=reassembler, on_event=keep)
        async with scripted_peer([first_chunk], drain=True) as peer:
            reader = asyncio.create_task(client.run(peer.url))
            while not expired:  # the only message came long ago: the timer expires it
                await asyncio.sleep(0.05)
            await client.disconnect()
            await reader
        return client

    client = run(scenario(), timeout=10)
    assert [event.chunk_id for event in expired] == [json.loads(first_chunk)["data"]["chunk_id"]]
    assert (client.session.in_flight, client.session.buffered_bytes) == (0, 0)
    assert client.stats.session.reassembly.expired == 1
