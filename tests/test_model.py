"""Random sequences of multias operations checked against a model of what
each address space must contain (hypothesis state machine)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import rasm

PAGE = 4096
PRIVATE_PAGES = 4


def machine_for(backend: str, ops: str):
    class MultiasModel(RuleBasedStateMachine):
        """Model: slot -> contents of a private region, plus one shared page
        and the extra mappings each slot has."""

        @initialize()
        def start(self):
            self.t = rasm.spawn([ops], backend=backend)
            self.private = self.t.mmap(0, PRIVATE_PAGES * PAGE, 3, 0x22)
            self.shared = self.t.mmap(0, PAGE, 3, 0x22)
            self.t.share(self.shared, PAGE)
            self.spaces = {0: bytearray(PRIVATE_PAGES * PAGE)}
            self.shared_bytes = bytearray(PAGE)
            self.extra = {0: set()}
            self.current = 0
            self.table = False  # the first new_as creates the table

        def teardown(self):
            if hasattr(self, "t"):
                self.t.close()

        @rule()
        def new_as(self):
            if len(self.spaces) == rasm.N_MM:
                with pytest.raises(rasm.NoFreeSlot):
                    self.t.new_as()
                return
            expected = min(set(range(rasm.N_MM)) - set(self.spaces))
            assert self.t.new_as() == expected
            self.table = True
            self.spaces[expected] = bytearray(self.spaces[self.current])
            self.extra[expected] = set(self.extra[self.current])

        @rule(n=st.integers(-1, rasm.N_MM))
        def switch_as(self, n):
            if n not in self.spaces or not self.table:
                with pytest.raises(rasm.BadSlot):
                    self.t.switch_as(n)
                return
            self.t.switch_as(n)
            self.current = n

        @rule(n=st.integers(-1, rasm.N_MM))
        def drop_as(self, n):
            if n not in self.spaces or not self.table:
                with pytest.raises(rasm.BadSlot):
                    self.t.drop_as(n)
            elif n == self.current:
                with pytest.raises(rasm.SlotBusy):
                    self.t.drop_as(n)
            else:
                self.t.drop_as(n)
                del self.spaces[n]
                del self.extra[n]

        @rule(data=st.data(), offset=st.integers(0, PRIVATE_PAGES * PAGE - 1),
              payload=st.binary(min_size=1, max_size=64))
        def write_private(self, data, offset, payload):
            slot = data.draw(st.sampled_from(sorted(self.spaces)))
            payload = payload[: PRIVATE_PAGES * PAGE - offset]
            self.t.write(self.private + offset, payload, space=slot)
            self.spaces[slot][offset: offset + len(payload)] = payload

        @rule(data=st.data(), offset=st.integers(0, PAGE - 8),
              payload=st.binary(min_size=8, max_size=8))
        def write_shared(self, data, offset, payload):
            slot = data.draw(st.sampled_from(sorted(self.spaces)))
            self.t.write(self.shared + offset, payload, space=slot)
            self.shared_bytes[offset: offset + 8] = payload

        @rule(data=st.data())
        def mmap_somewhere(self, data):
            slot = data.draw(st.sampled_from(sorted(self.spaces)))
            addr = self.t.mmap(0, PAGE, 1, 0x22, space=slot)
            self.extra[slot].add(addr)

        @rule(data=st.data())
        def munmap_something(self, data):
            slot = data.draw(st.sampled_from(sorted(self.spaces)))
            if self.extra[slot]:
                addr = data.draw(st.sampled_from(sorted(self.extra[slot])))
                self.t.munmap(addr, PAGE, space=slot)
                self.extra[slot].discard(addr)

        @precondition(lambda self: hasattr(self, "t"))
        @invariant()
        def contents_match(self):
            assert self.t.current_as == self.current
            assert self.t.address_spaces == sorted(self.spaces)
            for slot, expected in self.spaces.items():
                assert self.t.read(self.private, len(expected), space=slot) == bytes(expected)
                assert self.t.read(self.shared, PAGE, space=slot) == bytes(self.shared_bytes)
                maps = self.t.maps(space=slot)
                for addr in self.extra[slot]:  # adjacent mappings merge: look for coverage
                    assert any(m.start <= addr < m.end for m in maps)

    return MultiasModel


def test_random_operations_match_the_model(backend, ops):
    model = machine_for(backend, ops)
    model.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
    model.TestCase().runTest()
