"""A faust TableManager whose recovery seeks the input partitions *before* resuming them.

faust-streaming 0.15.3 ends table recovery (`Recovery.on_recovery_completed`) by resuming
the stream partitions and only then seeking them to their committed offsets. The fetcher is
already running at that point (it read the changelogs), so with a backlog on the input it
fetches from the old position while the seek runs in the consumer thread; records fetched
in between are discarded by the seek and never reach an agent, and later offsets are
committed over the hole. For the alert service that lost whole minutes of window events
after a restart: a metro's compliance streak restarted (a resolve came windows late) and
coverage windows were finalised with most metros missing (a false coverage alert).

faust-streaming issue #596 describes the same race, and PR #217 once put the seek first in
the table-less path for this reason (0.15.3 resumes first in both paths). The partitions are
paused from assignment until here, so seeking before resuming is race-free.
"""
from __future__ import annotations

import asyncio
from typing import Any


def table_manager_class() -> type:
    """faust's TableManager with `SeekFirstRecovery` (faust is imported lazily)."""
    from faust.tables import TableManager
    from faust.tables.recovery import Recovery

    class SeekFirstRecovery(Recovery):
        async def on_recovery_completed(self, generation_id: int = 0) -> None:
            """faust 0.15.3's method with the seek moved before the resume."""
            app: Any = self.app
            consumer = app.consumer
            self.log.info("Restore complete!")
            await app.on_rebalance_complete.send()
            self._set_recovery_ended()
            callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                           self.standbys_for_table[table]))
                         for table in self.tables.values()]
            if callbacks:
                await asyncio.wait(callbacks)
            if app.consumer_generation_id != generation_id:
                self.log.warning("Recovery rebalancing again app id %s param %s",
                                 app.consumer_generation_id, generation_id)
                return
            assignment = consumer.assignment()
            if assignment:
                self.log.info("Seek stream partitions to committed offsets (still paused).")
                await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
            self.completed.set()
            app.flow_control.resume()
            consumer.resume_flow()
            await app._fetcher.maybe_start()
            self.tables.on_actives_ready()
            if not app.assignor.assigned_standbys():
                self.tables.on_standbys_ready()
            app.on_rebalance_end()
            self.log.info("Worker ready")

    class SeekFirstTableManager(TableManager):
        @property
        def recovery(self) -> Recovery:
            if self._recovery is None:
                self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
            return self._recovery

    return SeekFirstTableManager


def watch_for_stalled_input(app, check_s: float = 10.0) -> None:
    """Re-seek an input partition that recovery left idle: it has messages past its committed
    offset, yet nothing has been read from it since the seek to that offset, over two checks.

    A fetch that never resumed after recovery has been seen once (in about a dozen restarts on
    a backlog); seeking a partition nothing is read from cannot drop records, so this is safe.
    """
    idle_checks: dict = {}

    @app.timer(interval=check_s)
    async def unstick() -> None:
        consumer = app.consumer
        if app.rebalancing or app.in_recovery:
            idle_checks.clear()
            return
        tps = [tp for tp in consumer.assignment()
               if not app.tables.recovery._is_changelog_tp(tp) and tp not in consumer._paused_partitions]
        if not tps:
            return
        highwaters = await consumer.highwaters(*tps)
        for tp in tps:
            committed, read = consumer._committed_offset.get(tp), consumer._read_offset.get(tp)
            behind = committed is not None and read == committed and (highwaters.get(tp) or 0) > committed
            idle_checks[tp] = idle_checks.get(tp, 0) + 1 if behind else 0
            if idle_checks[tp] >= 2:
                app.log.warning("input %s[%d] has messages after offset %d but none was read for %.0f s "
                                "after recovery; seeking it again", tp.topic, tp.partition, committed,
                                check_s * idle_checks[tp])
                await consumer.seek(tp, committed)
                idle_checks[tp] = 0
