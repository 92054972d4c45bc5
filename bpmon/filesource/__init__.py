"""The pieces of :class:`~bpmon.sources.RunFileSource`, one job to a module.

Each module holds the methods of one job as a class over the state they share
(:class:`~bpmon.filesource.state.FileState`: one reading of the file, set afresh whenever it is
opened again); :class:`~bpmon.sources.RunFileSource` is made of them, and owns the consumer's
side, opening the file and the reader thread's loop. Built bottom up:

- :mod:`~bpmon.filesource.curve`: one run's loss curve and where its snapshot lines start;
- :mod:`~bpmon.filesource.state`: the state the pieces share;
- :mod:`~bpmon.filesource.decode`: reading the lines a writer added, and decoding one line;
- :mod:`~bpmon.filesource.backfill`: the scan of the lines before the tail, and the findings of a
  file that does not record them;
- :mod:`~bpmon.filesource.follow`: following a growing file (``tail -F``: truncated, replaced,
  a newer file in a watched folder);
- :mod:`~bpmon.filesource.replay`: where a replay's cursor stands among the file's runs;
- :mod:`~bpmon.filesource.snapshots`: the snapshot the monitor is handed.

The pieces share one object's state rather than being objects of their own because they read and
write the same fields under one lock (the follower's curves are the backfill's to extend, the
cursor counts what both found): splitting that state would mean copying it between threads.
"""
