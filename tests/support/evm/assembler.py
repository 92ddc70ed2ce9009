"""A tiny two-pass EVM assembler: opcode names, pushes, labels and raw data, to bytecode.

There is no Solidity compiler on this machine, so the test contracts are written in assembly.
A program is a list of items:

- an opcode name (`"CALLER"`, `"LOG3"`), from OPCODES;
- `Push(value, width)` or a plain int: PUSHn of the value (a plain int takes the fewest bytes);
- `Label("name")` marks a position and writes nothing (a jump target writes "JUMPDEST" right
  after it); `Ref("name")` pushes a label's offset as PUSH2, so forward references need no
  second guess of their width;
- `Data(bytes)`: raw bytes, e.g. another contract's code appended after this one's.

Only the opcodes the contracts use are listed; their numbers are from the Yellow Paper
(Appendix H) and evm.codes.
"""

from __future__ import annotations

from dataclasses import dataclass

OPCODES: dict[str, int] = {
    "STOP": 0x00,
    "ADD": 0x01,
    "SUB": 0x03,
    "LT": 0x10,
    "EQ": 0x14,
    "ISZERO": 0x15,
    "SHL": 0x1B,
    "SHR": 0x1C,
    "CALLER": 0x33,
    "CALLDATALOAD": 0x35,
    "CALLDATASIZE": 0x36,
    "CALLDATACOPY": 0x37,
    "CODECOPY": 0x39,
    "POP": 0x50,
    "MLOAD": 0x51,
    "MSTORE": 0x52,
    "SLOAD": 0x54,
    "SSTORE": 0x55,
    "JUMP": 0x56,
    "JUMPI": 0x57,
    "JUMPDEST": 0x5B,
    **{f"DUP{n}": 0x7F + n for n in range(1, 17)},
    **{f"SWAP{n}": 0x8F + n for n in range(1, 17)},
    **{f"LOG{n}": 0xA0 + n for n in range(5)},
    "CREATE": 0xF0,
    "RETURN": 0xF3,
    "REVERT": 0xFD,
}
PUSH1 = 0x60  # PUSHn is 0x5f + n


@dataclass(frozen=True)
class Push:
    value: int
    width: int  # bytes, 1..32


@dataclass(frozen=True)
class Label:
    name: str


@dataclass(frozen=True)
class Ref:
    """PUSH2 of a label's offset."""

    name: str


@dataclass(frozen=True)
class Data:
    raw: bytes


Item = str | int | Push | Label | Ref | Data


def _push(value: int, width: int) -> bytes:
    if not 1 <= width <= 32 or value < 0 or value >= 1 << (8 * width):
        raise ValueError(f"cannot push {value:#x} in {width} bytes")
    return bytes([PUSH1 - 1 + width]) + value.to_bytes(width, "big")


def _size(item: Item) -> int:
    if isinstance(item, str):
        return 1
    if isinstance(item, int):
        return 1 + max(1, (item.bit_length() + 7) // 8)
    if isinstance(item, Push):
        return 1 + item.width
    if isinstance(item, Label):
        return 0
    if isinstance(item, Ref):
        return 3
    return len(item.raw)


def assemble(program: list[Item]) -> bytes:
    """The bytecode of `program`; a label resolves to the offset of the item after it."""
    labels: dict[str, int] = {}
    offset = 0
    for item in program:
        if isinstance(item, Label):
            if item.name in labels:
                raise ValueError(f"label {item.name!r} defined twice")
            labels[item.name] = offset
        offset += _size(item)
    code = bytearray()
    for item in program:
        if isinstance(item, str):
            code.append(OPCODES[item])
        elif isinstance(item, int):
            code += _push(item, _size(item) - 1)
        elif isinstance(item, Push):
            code += _push(item.value, item.width)
        elif isinstance(item, Label):
            pass
        elif isinstance(item, Ref):
            code += _push(labels[item.name], 2)
        else:
            code += item.raw
    return bytes(code)


def deployer(runtime: bytes, constructor: list[Item] | None = None) -> bytes:
    """Init code: run `constructor`, then return `runtime` as the new contract's code.

    The runtime is appended after the init code; CODECOPY copies it to memory 0 and RETURN
    hands it back. The constructor must leave the stack empty and may use memory freely.
    """
    return assemble(
        [
            *(constructor or []),
            Push(len(runtime), 2),  # [size]
            "DUP1",  # [size, size]
            Ref("runtime"),  # [offset, size, size]
            0,  # [0, offset, size, size]
            "CODECOPY",  # memory[0:size] = code[offset:offset + size]; [size]
            0,  # [0, size]
            "RETURN",  # return memory[0:size]
            Label("runtime"),
            Data(runtime),
        ]
    )
