"""A numpy Generator's state as plain data (JSON) and back: how a checkpoint keeps the shuffling
stream without pickles.

numpy's default generator is a Generator over PCG64, whose whole state is
`bit_generator.state`: {"bit_generator": "PCG64", "state": {"state": s, "inc": c},
"has_uint32": h, "uinteger": u}, s and c 128-bit integers (c odd), h 0 or 1, u 32 bits. JSON
holds integers of any size, so the state goes through it unchanged; a generator restored from
it draws exactly what the saved one would have drawn.
"""

import numpy as np


def state_of(rng: np.random.Generator) -> dict:
    """The state of `rng`, as plain data; ValueError for a bit generator other than PCG64."""
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise ValueError(
            f"only PCG64 generators are saved, not {state['bit_generator']}"
        )
    return state


def is_pcg64_state(state: object) -> bool:
    """Whether `state` (read back from JSON) is a PCG64 state, every field checked (numpy
    itself would take an even `inc`, or a boolean for an integer)."""

    def uint(value: object, bits: int) -> bool:
        return type(value) is int and 0 <= value < 1 << bits

    return (
        isinstance(state, dict)
        and set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
        and state["bit_generator"] == "PCG64"
        and isinstance(state["state"], dict)
        and set(state["state"]) == {"state", "inc"}
        and uint(state["state"]["state"], 128)
        and uint(state["state"]["inc"], 128)
        and state["state"]["inc"] % 2 == 1
        and uint(state["has_uint32"], 1)
        and uint(state["uinteger"], 32)
    )


def restored(state: dict) -> np.random.Generator:
    """A new Generator in `state` (checked by is_pcg64_state)."""
    bit_generator = np.random.PCG64()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
