"""The ``type`` tags of the JSON text frames on ``/ws/v1/workers``."""

from enum import StrEnum

__all__ = ["WorkerMessageType"]


class WorkerMessageType(StrEnum):
    """Every ``type`` value a worker or the server may send, in the order of the wire contract.

    A ``StrEnum``: members compare equal to (and serialise as) their plain string values, so
    ``WorkerMessageType.REGISTER == "register"`` and ``json.dumps`` needs no adapter.
    """

    REGISTER = "register"
    HEARTBEAT = "heartbeat"
    TASK_RESULT = "task_result"
    REGISTRATION_ACK = "registration_ack"
    RESULT_ACK = "result_ack"
    TASK_ASSIGN = "task_assign"
    TOKEN_REFRESH = "token_refresh"
    CONNECTION_ESTABLISHED = "connection_established"
    ERROR = "error"
