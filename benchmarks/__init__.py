"""bpmon's benchmarks: bpmon against its contenders, side by side, in one run.

``python -m benchmarks`` measures every figure of the README's performance table, prints that
table as Markdown and writes every number to a JSON file (``benchmarks/results/latest.json``
unless ``--out`` says otherwise). ``--quick`` runs each contender once on a tiny budget: a smoke
test for CI that asserts no timing.

The machine this runs on is shared and noisy, so absolute numbers move from run to run; what
holds is a ratio between contenders that ran *interleaved* (A, B, B, A, ... see
:mod:`benchmarks.harness`), summarised by medians.

Groups, one module each:

- :mod:`benchmarks.xor`: the trainer on the xor preset vs a bare NumPy loop and PyTorch;
- :mod:`benchmarks.mlp`: a 64-128-128-10 float32 MLP, bpmon's engine and trainer vs PyTorch;
- :mod:`benchmarks.tui`: training speed under the Textual app, its frame rate and frame cost;
- :mod:`benchmarks.memory`: resident memory of a long run;
- :mod:`benchmarks.cli`: wall time of ``bpmon --help`` and ``bpmon --list-presets``;
- :mod:`benchmarks.terminal`: the app in a real pseudo-terminal: first frame, bytes per
  second, time to quit.
"""
