"""The test contracts, in assembly: a token, a log emitter, a reverter and a factory.

Stack comments show the stack after the instruction, top first. Each contract is small enough
to read opcode by opcode; together they give a chain every kind of receipt and log: Transfer
logs (3 topics, 32 bytes of data), LOG0..LOG4 with 0..256 bytes of data, reverted calls
(status 0, a log emitted and then undone), direct deploys (`to` null, `contractAddress` set)
and contracts created by a contract, which emit a log from their constructor.

Event topics are keccak-256 of the signatures; with no keccak in the standard library they are
written out here (anvil's `web3_sha3` gives the same, and test_anvil_datasets checks that).
"""

from __future__ import annotations

from tests.support.evm.assembler import Data, Item, Label, Push, Ref, assemble, deployer

TRANSFER_TOPIC = 0xDDF252AD1BE2C89B69C2B068FC378DAA952BA7F163C4A11628F55A4DF523B3EF
CHILD_CREATED_TOPIC = 0x7B4B5576882318F3025EDE3B4525A692B9A9792674C6BD0F82CE62845374A921
BORN_TOPIC = 0xADE1E81D532EAB1CC337CD4F4C32E6CAE7BDE82C3C7303C535F9B6C13E23A5D4
DOOMED_TOPIC = 0x3F0D84FC470041CF5240E36EC883B4E8DFA63D163DD752392222CB38FF35094F
SIGNATURES = {
    "Transfer(address,address,uint256)": TRANSFER_TOPIC,
    "ChildCreated(address)": CHILD_CREATED_TOPIC,
    "Born(address)": BORN_TOPIC,
    "Doomed()": DOOMED_TOPIC,
}

TRANSFER_SELECTOR = 0xA9059CBB  # transfer(address,uint256)
TOKEN_SUPPLY = 10**30

REVERT_EMPTY: list[Item] = [0, "DUP1", "REVERT"]  # revert(0, 0)

# --- the token ----------------------------------------------------------------------------------
# Storage: balance of address a at slot a. transfer(to, amount) moves `amount` from the caller to
# `to` and emits Transfer(caller, to, amount); more than the balance reverts (status 0, no log).

TOKEN_RUNTIME = assemble(
    [
        0,  # [0]
        "CALLDATALOAD",  # [calldata[0:32]]
        0xE0,  # [224, word]
        "SHR",  # [selector]
        Push(TRANSFER_SELECTOR, 4),  # [transfer, selector]
        "EQ",  # [selector == transfer]
        Ref("transfer"),  # [dest, is_transfer]
        "JUMPI",  # []
        *REVERT_EMPTY,  # an unknown function
        Label("transfer"),
        "JUMPDEST",
        0x24,  # [36]
        "CALLDATALOAD",  # [amount]
        "CALLER",  # [caller, amount]
        "SLOAD",  # [balance, amount]
        "DUP2",  # [amount, balance, amount]
        "DUP2",  # [balance, amount, balance, amount]
        "LT",  # [balance < amount, balance, amount]
        Ref("insufficient"),  # [dest, short, balance, amount]
        "JUMPI",  # [balance, amount]
        "DUP2",  # [amount, balance, amount]
        "SWAP1",  # [balance, amount, amount]
        "SUB",  # [balance - amount, amount]
        "CALLER",  # [caller, balance - amount, amount]
        "SSTORE",  # storage[caller] = balance - amount; [amount]
        4,  # [4, amount]
        "CALLDATALOAD",  # [to, amount]
        "DUP1",  # [to, to, amount]
        "SLOAD",  # [to_balance, to, amount]
        "DUP3",  # [amount, to_balance, to, amount]
        "ADD",  # [to_balance + amount, to, amount]
        "DUP2",  # [to, to_balance + amount, to, amount]
        "SSTORE",  # storage[to] = to_balance + amount; [to, amount]
        "SWAP1",  # [amount, to]
        0,  # [0, amount, to]
        "MSTORE",  # memory[0:32] = amount; [to]
        "CALLER",  # [caller, to]
        Push(TRANSFER_TOPIC, 32),  # [topic0, caller, to]
        32,  # [32, topic0, caller, to]
        0,  # [0, 32, topic0, caller, to]
        "LOG3",  # log(memory[0:32], topic0, from=caller, to); []
        1,  # [1]
        0,  # [0, 1]
        "MSTORE",  # memory[0:32] = true
        32,  # [32]
        0,  # [0, 32]
        "RETURN",  # return true
        Label("insufficient"),
        "JUMPDEST",
        *REVERT_EMPTY,
    ]
)

# The constructor mints the supply to the deployer and says so: Transfer(0, deployer, supply).
TOKEN_INIT = deployer(
    TOKEN_RUNTIME,
    constructor=[
        Push(TOKEN_SUPPLY, 32),  # [supply]
        "DUP1",  # [supply, supply]
        "CALLER",  # [caller, supply, supply]
        "SSTORE",  # storage[caller] = supply; [supply]
        0,  # [0, supply]
        "MSTORE",  # memory[0:32] = supply; []
        "CALLER",  # [caller]
        0,  # [0 (from), caller]
        Push(TRANSFER_TOPIC, 32),  # [topic0, 0, caller]
        32,  # [32, topic0, 0, caller]
        0,  # [0, 32, topic0, 0, caller]
        "LOG3",  # log(memory[0:32], topic0, from=0, to=caller); []
    ],
)


def transfer_calldata(to: str, amount: int) -> str:
    """transfer(to, amount), ABI-encoded: selector, then two 32-byte words."""
    return f"0x{TRANSFER_SELECTOR:08x}{int(to, 16):064x}{amount:064x}"


# --- the emitter ----------------------------------------------------------------------------
# Calldata: one byte n (0..4), n topics of 32 bytes, then the log's data (all the rest).
# It emits LOGn(topics, data) and stops. Calldata shorter than 1 + 32n makes the size underflow
# and the copy run out of gas; emit_calldata never builds it.


def _emit_branch(topics: int) -> list[Item]:
    """Branch `topics`, entered with [n, size]: LOGn of memory[0:size] with n topics."""
    loads: list[Item] = []
    for position in reversed(range(topics)):  # the last topic is pushed first
        loads += [1 + 32 * position, "CALLDATALOAD"]  # [topic_i, ...]
    return [
        Label(f"log{topics}"),
        "JUMPDEST",  # [n, size]
        "POP",  # [size]
        *loads,  # [topic0 .. topic(n-1), size]
        f"DUP{topics + 1}",  # [size, topics.., size]
        0,  # [0, size, topics.., size]
        f"LOG{topics}",  # log(memory[0:size], topics..); [size]
        "POP",  # []
        "STOP",
    ]


def _dispatch(topics: int) -> list[Item]:
    """Jump to branch `topics` when n == topics; entered and left with [n, size]."""
    return [
        "DUP1",  # [n, n, size]
        topics,  # [topics, n, n, size]
        "EQ",  # [n == topics, n, size]
        Ref(f"log{topics}"),  # [dest, equal, n, size]
        "JUMPI",  # [n, size]
    ]


EMITTER_RUNTIME = assemble(
    [
        0,  # [0]
        "CALLDATALOAD",  # [calldata[0:32]]
        0xF8,  # [248, word]
        "SHR",  # [n]
        "DUP1",  # [n, n]
        5,  # [5, n, n]
        "SHL",  # [32n, n]
        1,  # [1, 32n, n]
        "ADD",  # [offset = 1 + 32n, n]
        "DUP1",  # [offset, offset, n]
        "CALLDATASIZE",  # [calldatasize, offset, offset, n]
        "SUB",  # [size = calldatasize - offset, offset, n]
        "DUP1",  # [size, size, offset, n]
        "DUP3",  # [offset, size, size, offset, n]
        0,  # [0, offset, size, size, offset, n]
        "CALLDATACOPY",  # memory[0:size] = calldata[offset:offset + size]; [size, offset, n]
        "SWAP1",  # [offset, size, n]
        "POP",  # [size, n]
        "SWAP1",  # [n, size]
        *[item for topics in range(5) for item in _dispatch(topics)],
        *REVERT_EMPTY,  # n > 4 (with calldata long enough for n topics)
        *[item for topics in range(5) for item in _emit_branch(topics)],
    ]
)
EMITTER_INIT = deployer(EMITTER_RUNTIME)


def emit_calldata(topics: list[int], data: bytes) -> str:
    """Calldata making the emitter log `data` under `topics` (0 to 4 of them)."""
    assert len(topics) <= 4
    words = "".join(f"{topic:064x}" for topic in topics)
    return f"0x{len(topics):02x}{words}{data.hex()}"


# --- the reverter -------------------------------------------------------------------------------
# Emits Doomed() and then reverts with 4 bytes of reason: the receipt has status 0 and no log.

REVERTER_RUNTIME = assemble(
    [
        Push(DOOMED_TOPIC, 32),  # [topic0]
        0,  # [0, topic0]
        0,  # [0, 0, topic0]
        "LOG1",  # log(empty, Doomed), undone by the revert below; []
        Push(0xDEADBEEF, 4),  # [reason]
        0,  # [0, reason]
        "MSTORE",  # memory[28:32] = reason
        4,  # [4]
        28,  # [28, 4]
        "REVERT",  # revert(memory[28:32])
    ]
)
REVERTER_INIT = deployer(REVERTER_RUNTIME)

# --- the factory and its children ---------------------------------------------------------------
# Each call CREATEs a child (an emitter whose constructor emits Born(factory)) and emits
# ChildCreated(child) itself: one transaction, two logs from two addresses, one of them new.

CHILD_INIT = deployer(
    EMITTER_RUNTIME,
    constructor=[
        "CALLER",  # [factory]
        0,  # [0, factory]
        "MSTORE",  # memory[0:32] = factory; []
        Push(BORN_TOPIC, 32),  # [topic0]
        32,  # [32, topic0]
        0,  # [0, 32, topic0]
        "LOG1",  # log(memory[0:32], Born); []
    ],
)

FACTORY_RUNTIME = assemble(
    [
        Push(len(CHILD_INIT), 2),  # [size]
        "DUP1",  # [size, size]
        Ref("child"),  # [offset, size, size]
        0,  # [0, offset, size, size]
        "CODECOPY",  # memory[0:size] = the child's init code; [size]
        0,  # [0 (offset), size]
        0,  # [0 (value), 0, size]
        "CREATE",  # [child] (0 when the constructor failed)
        "DUP1",  # [child, child]
        "ISZERO",  # [failed, child]
        Ref("failed"),  # [dest, failed, child]
        "JUMPI",  # [child]
        0,  # [0, child]
        "MSTORE",  # memory[0:32] = child; []
        Push(CHILD_CREATED_TOPIC, 32),  # [topic0]
        32,  # [32, topic0]
        0,  # [0, 32, topic0]
        "LOG1",  # log(memory[0:32], ChildCreated); []
        "STOP",
        Label("failed"),
        "JUMPDEST",
        *REVERT_EMPTY,
        Label("child"),
        Data(CHILD_INIT),
    ]
)
FACTORY_INIT = deployer(FACTORY_RUNTIME)
